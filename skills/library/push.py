"""push(object, direction, distance): slide an object along the table with the closed fingers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from skillstack.robot.types import RobotState
from skillstack.skills.base import Failure, Outcome, Refusal, Skill
from skillstack.skills.context import Context, top_down
from skillstack.skills.library.geometry import PAD_HALF_THICKNESS, half_extent_along, wrap_half_turn
from skillstack.skills.params import ObjectName, param
from skillstack.skills.program import Grip, Move, Program
from skillstack.skills.registration import register
from skillstack.skills.world import WorldState

STANDOFF = 0.04  # m, the fingers start this far behind the object's face
PUSH_HEIGHT = 0.018  # m, fingertip height while pushing (low, to push rather than tip)
PUSH_SPEED = 0.06  # m/s, slow enough that the object stops when the fingers stop
TOLERANCE = 0.02  # m, |moved - distance| within this is a success
PUSHABLE = ("box", "cylinder", "cup", "bowl", "plate")


@dataclass(frozen=True)
class PushParams:
    """Parameters of `push`."""

    object: ObjectName = param(description="the object to push")
    direction: float = param(
        description="direction to push in, world frame (0 = +x, 90 = +y)",
        unit="deg",
        low=-180.0,
        high=180.0,
    )
    distance: float = param(0.10, unit="m", low=0.02, high=0.25, description="how far to move it")


@register
class Push(Skill):
    """Slide an object over the table without grasping it."""

    name = "push"
    description = (
        "Push an object along the table by `distance` metres in world direction `direction` "
        "(degrees; 0 is away from the robot, 90 is to its left), with the closed gripper. Needs an "
        "empty gripper and the object resting on the table."
    )
    Params = PushParams
    timeout_s = 25.0
    templates = ("fingertips",)

    def preconditions(self, p: PushParams) -> list[tuple]:
        """An empty gripper; the object on the table with nothing on it."""
        return [("gripper_empty",), ("on_table", p.object), ("clear", p.object)]

    def check(self, world: WorldState, p: PushParams) -> Refusal | None:
        """Refuse kinds that cannot be pushed, tipped-over objects, an end point outside
        0.25-0.80 m from the base, and other objects in the swept path."""
        refusal = super().check(world, p)
        if refusal:
            return refusal
        obj = world.object(p.object)
        if obj.kind not in PUSHABLE:
            return Refusal(Failure.INVALID_TARGET, f"{obj.kind}s cannot be pushed")
        if not obj.upright:
            return Refusal(Failure.PRECONDITION_FAILED, f"{obj.name} has tipped over")
        a = math.radians(p.direction)
        end = np.array(obj.position[:2]) + p.distance * np.array([math.cos(a), math.sin(a)])
        if not 0.25 <= float(np.hypot(*end)) <= 0.8:
            return Refusal(
                Failure.UNREACHABLE,
                f"pushing {obj.name} {p.distance:.2f} m that way ends "
                f"{float(np.hypot(*end)):.2f} m from the base, outside 0.25-0.80 m",
            )
        for other in world.objects.values():
            if other.name != obj.name and _sweeps_into(obj, other, end):
                return Refusal(Failure.PRECONDITION_FAILED, f"{other.name} is in the way")
        return None

    def plan(self, world: WorldState, p: PushParams, ctx: Context) -> Program:
        """Close the fingers, lower them behind the object, push it ``distance`` m along
        ``direction``, back off and raise; the world model is told where the object went."""
        obj = world.object(p.object)
        a = math.radians(p.direction)
        u = np.array([math.cos(a), math.sin(a), 0.0])
        contact = half_extent_along(obj, a) + PAD_HALF_THICKNESS
        centre = np.array([obj.position[0], obj.position[1], min(PUSH_HEIGHT, obj.top - 0.008)])
        start = centre - (contact + STANDOFF) * u
        end = centre + (p.distance - contact) * u
        quat = top_down(ctx, wrap_half_turn(a))  # pad faces across the push direction
        above = start + np.array([0.0, 0.0, obj.top - centre[2] + 0.08])
        for label, pos in (("approach", above), ("start", start), ("push", end)):
            ctx.solve(label, pos, quat)

        def pushed(ctx: Context, state: RobotState) -> None:
            # The object moved as far as the measured fingers travelled past first contact.
            travel = float((ctx.world.ee_pose().position - start) @ u) - STANDOFF
            moved = np.array(obj.position) + max(travel, 0.0) * u
            ctx.world.note_moved(obj.name, moved)

        steps = [
            Grip("close", 0.0, 40.0),
            Move("approach", above, quat),
            Move("descend", start, quat, speed=0.1),
            Move("push", end, quat, speed=PUSH_SPEED, on_finish=pushed),
            Move("back off", end - 0.03 * u, quat, speed=0.05),
            Move("raise", end - 0.03 * u + np.array([0, 0, 0.1]), quat, speed=0.15),
        ]
        program = Program(steps, ctx, "fingertips")
        program.allowed_contacts = {obj.name}
        return program

    def verify(
        self, before: WorldState, after: WorldState, p: PushParams, program: Program
    ) -> Outcome:
        """Success when the object is upright and moved along ``direction`` within
        `TOLERANCE` of ``distance``."""
        a = math.radians(p.direction)
        moved = np.array(after.object(p.object).position[:2]) - np.array(
            before.object(p.object).position[:2]
        )
        along = float(moved @ np.array([math.cos(a), math.sin(a)]))
        error = abs(along - p.distance)
        metrics = {"moved_m": along, "distance_error_m": error}
        if not after.object(p.object).upright:
            return Outcome(False, Failure.MISSED_TARGET, f"{p.object} tipped over", metrics)
        if error > TOLERANCE:
            return Outcome(
                False,
                Failure.MISSED_TARGET,
                f"{p.object} moved {along * 100:.1f} cm, asked {p.distance * 100:.1f} cm",
                metrics,
            )
        return Outcome(True, metrics=metrics)


def _sweeps_into(obj, other, end: np.ndarray) -> bool:
    """Would ``obj`` sliding to ``end`` touch ``other`` (footprints as circles)?"""
    start = np.array(obj.position[:2])
    seg = end - start
    t = float(
        np.clip((np.array(other.position[:2]) - start) @ seg / max(seg @ seg, 1e-12), 0.0, 1.0)
    )
    closest = start + t * seg
    return (
        float(np.hypot(*(np.array(other.position[:2]) - closest)))
        < obj.radius + other.radius + 0.01
    )
