"""Grasp and placement geometry shared by the scripted skills."""

from __future__ import annotations

import math

from skills.world import ObjectState

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


def wrap_half_turn(angle: float) -> float:
    """Wrap to [-pi/2, pi/2): a parallel gripper is symmetric under a half turn."""
    return (angle + math.pi / 2) % math.pi - math.pi / 2


def top_grasp(obj: ObjectState) -> tuple[float, float, float]:
    """(width across the fingers, fingertip-centre height, gripper yaw) for a top grasp."""
    if obj.kind == "box":
        sx, sy = obj.size[0], obj.size[1]
        # Fingers close across the narrower side.
        width, yaw = (sx, obj.yaw + math.pi / 2) if sx <= sy else (sy, obj.yaw)
    elif obj.kind == "cup":
        # By the rim, fingers opening radially: the cup can then be tilted about the finger
        # axis to pour sideways, which the arm reaches easily.
        width, yaw = obj.size[0], math.atan2(obj.position[1], obj.position[0]) + math.pi / 2
        return width, obj.top - RIM_DEPTH, wrap_half_turn(yaw)
    else:
        width, yaw = obj.size[0], 0.0
    z = max(
        obj.top - FINGER_DEPTH, obj.bottom + 0.5 * min(obj.height, 2 * FINGER_DEPTH), MIN_GRASP_Z
    )
    return width, z, wrap_half_turn(yaw)


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
