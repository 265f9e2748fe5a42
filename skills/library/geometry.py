"""Grasp and placement geometry shared by the scripted skills."""

from __future__ import annotations

import math

from skillstack.skills.world import ObjectState

GRIPPER_MARGIN = 0.004  # m, free opening left on each side of an object when grasping
FINGER_DEPTH = 0.025  # m, how far below an object's top the fingertips go (top grasp)
RIM_DEPTH = 0.02  # m, fingertips below a cup's rim: the pads grip the wall just under it
MIN_GRASP_Z = 0.016  # m, lowest fingertip-centre height above the table
SIDE_GRASP_MIN_Z = 0.035  # m, the hand is ~6 cm thick: stay clear of the table sideways
SIDE_GRASP_BELOW_TOP = 0.02  # m, side grasps pinch this far below the top (hand stays above it)
# The Panda cannot hold its hand level near the table in front of it (joint 6 would pass
# its limit): "side" grasps approach from the robot's side inclined 30° from vertical.
SIDE_PITCH = math.radians(60)  # rad below horizontal
PAD_HALF_THICKNESS = 0.0085  # m, closed finger pads, measured along the push direction
# Boxes whose two sides differ by at most this are square: the fingers may close across
# either side, and the grasp takes the one that turns the hand least from the home yaw.
SQUARE_TOLERANCE = 0.001  # m


def wrap_half_turn(angle: float) -> float:
    """Wrap to [-pi/2, pi/2): a parallel gripper is symmetric under a half turn."""
    return (angle + math.pi / 2) % math.pi - math.pi / 2


def wrap_quarter_turn(angle: float) -> float:
    """Wrap to [-pi/4, pi/4): a square box looks the same after a quarter turn."""
    return (angle + math.pi / 4) % (math.pi / 2) - math.pi / 4


def box_top_grasp(size_x: float, size_y: float, yaw: float) -> tuple[float, float]:
    """(width across the fingers, gripper yaw in [-pi/2, pi/2)) for a box seen from above.

    The fingers close across the narrower side. A square box (sides within
    `SQUARE_TOLERANCE`) has four equally good gripper yaws; the one nearest the home yaw (0)
    is taken, so a box at yaw ~0 is always grasped the same way. (Picking the narrower side
    by a sub-millimetre difference, or wrapping +90° vs -90° by a sub-degree jitter of the
    measured yaw, turned the hand by a quarter turn either way, which a learned policy
    cannot imitate.)
    """
    if abs(size_x - size_y) <= SQUARE_TOLERANCE:
        grip_yaw = wrap_quarter_turn(yaw)
        # At the box's own yaw (+ a half turn) the fingers close across its y side.
        across_y = abs(wrap_half_turn(grip_yaw - yaw)) < math.pi / 4
        return (size_y if across_y else size_x), grip_yaw
    if size_x < size_y:
        return size_x, wrap_half_turn(yaw + math.pi / 2)
    return size_y, wrap_half_turn(yaw)


def top_grasp_yaw(kind: str, size, yaw: float, position) -> float:
    """The gripper yaw of a top grasp of an object of ``kind``, ``size`` (scene layout), yaw
    and position (what `top_grasp` chooses; `skills.training.features` uses it too)."""
    if kind == "box":
        return box_top_grasp(size[0], size[1], yaw)[1]
    if kind == "cup":
        # By the rim, fingers opening radially: the cup can then be tilted about the finger
        # axis to pour sideways, which the arm reaches easily.
        return wrap_half_turn(math.atan2(position[1], position[0]) + math.pi / 2)
    return 0.0


def top_grasp(obj: ObjectState) -> tuple[float, float, float]:
    """(width across the fingers, fingertip-centre height, gripper yaw) for a top grasp."""
    yaw = top_grasp_yaw(obj.kind, obj.size, obj.yaw, obj.position)
    if obj.kind == "box":
        width = box_top_grasp(obj.size[0], obj.size[1], obj.yaw)[0]
    elif obj.kind == "cup":
        return obj.size[0], obj.top - RIM_DEPTH, yaw
    else:
        width = obj.size[0]
    z = max(
        obj.top - FINGER_DEPTH, obj.bottom + 0.5 * min(obj.height, 2 * FINGER_DEPTH), MIN_GRASP_Z
    )
    return width, z, yaw


def side_grasp(obj: ObjectState) -> tuple[float, float, float]:
    """(width across the fingers, grasp height, approach heading) for a side grasp."""
    heading = math.atan2(obj.position[1], obj.position[0])  # radially, from the robot base
    width = obj.size[0] if obj.kind != "box" else min(obj.size[0], obj.size[1])
    return width, max(obj.top - SIDE_GRASP_BELOW_TOP, SIDE_GRASP_MIN_Z), heading


def half_extent_along(obj: ObjectState, direction: float) -> float:
    """Half the object's extent along a world direction (rad) through its centre."""
    if obj.kind != "box":
        return obj.size[0] / 2
    a = direction - obj.yaw
    return abs(obj.size[0] / 2 * math.cos(a)) + abs(obj.size[1] / 2 * math.sin(a))
