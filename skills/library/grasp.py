"""grasp(object, approach): pick an object up, verified by finger width and contact."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from skillstack.skills.base import Failure, Outcome, Refusal, Skill
from skillstack.skills.context import Context, side_on, top_down
from skillstack.skills.guards import Holding
from skillstack.skills.library.geometry import GRIPPER_MARGIN, SIDE_PITCH, side_grasp, top_grasp
from skillstack.skills.params import ObjectName, param
from skillstack.skills.program import Grip, JointMove, Move, Program
from skillstack.skills.registration import register
from skillstack.skills.world import WorldFacts, WorldState

PREGRASP_CLEARANCE = 0.10  # m above the object's top (top grasp) or back from it (side)
APPROACH_SPEED = 0.10  # m/s for the last few centimetres
SIDE_MIN_HEIGHT = 0.05  # m, shorter objects are only grasped from the top
SIDE_MIN_REACH = 0.45  # m from the base axis: closer in, the side approach folds the elbow
RETRACT_MARGIN = 0.03  # m, a hand this far below the safe travel height first rises to it


@dataclass(frozen=True)
class GraspParams:
    """Parameters of `grasp`."""

    object: ObjectName = param(description="name of the object to pick up")
    approach: Literal["auto", "top", "side"] = param(
        "auto", description="grasp from above or from the side; auto picks by object kind"
    )
    force: float = param(40.0, unit="N", low=5.0, high=70.0, description="grasp force")
    lift: float = param(0.10, unit="m", low=0.0, high=0.3, description="lift height after grasping")


class GraspProgram(Program):
    """The program of `grasp`, with the object's width across the fingers (m)."""

    grasp_width: float  # set by `Grasp.plan`


@register
class Grasp(Skill):
    """Pick an object up with a top or side grasp."""

    name = "grasp"
    description = (
        "Pick up an object with the gripper and lift it. Needs an empty gripper and nothing "
        "stacked on the object. approach='top' grasps from above (boxes, cylinders), 'side' by "
        "the body, inclined from the robot's side (boxes and cylinders at least 5 cm tall). Cups "
        "are taken by the rim from above, which is how they are held to pour."
    )
    Params = GraspParams
    timeout_s = 20.0
    templates = ("top", "side")

    def preconditions(self, p: GraspParams) -> list[tuple]:
        """An empty gripper, and nothing stacked on the object."""
        return [("gripper_empty",), ("clear", p.object)]

    def effects(self, world: WorldFacts, p: GraspParams) -> tuple[set, set]:
        """Adds ``holding(object)`` (and ``clear`` of what it stood on); deletes
        ``gripper_empty`` and where the object rested (``on_table``, ``on``, ``in``)."""
        delete = {("gripper_empty",), ("on_table", p.object)}
        delete |= {q for q in world.predicates if q[0] in ("on", "in") and q[1] == p.object}
        add = {("holding", p.object)}
        add |= {("clear", q[2]) for q in world.predicates if q[0] == "on" and q[1] == p.object}
        return add, delete

    def template_for(self, world: WorldFacts, p: GraspParams) -> str:
        """The template that will run: the requested one, or the kind's natural one."""
        return "top" if p.approach == "auto" else p.approach

    def check(self, world: WorldState, p: GraspParams) -> Refusal | None:
        """Beyond the preconditions: refuse tipped-over objects, objects wider than the open
        gripper, side grasps of cups, and side grasps too close to the base or too short."""
        refusal = super().check(world, p)
        if refusal:
            return refusal
        obj = world.object(p.object)
        if not obj.upright:
            return Refusal(
                Failure.PRECONDITION_FAILED,
                f"{obj.name} has tipped over; it can only be grasped upright",
            )
        template = self.template_for(world, p)
        width = (top_grasp if template == "top" else side_grasp)(obj)[0]
        limit = 0.08 - 2 * GRIPPER_MARGIN
        if obj.kind in ("bowl", "plate") or width > limit:
            return Refusal(
                Failure.TOO_LARGE,
                f"{obj.name} is {width * 100:.1f} cm across; the gripper "
                f"takes at most {limit * 100:.1f} cm",
            )
        if template == "side" and obj.kind == "cup":
            return Refusal(
                Failure.PRECONDITION_FAILED,
                "cups are grasped by the rim from above "
                "(approach='top'): from the side the hand would hit the rim",
            )
        reach = math.hypot(obj.position[0], obj.position[1])
        if template == "side" and reach < SIDE_MIN_REACH:
            return Refusal(
                Failure.UNREACHABLE,
                f"{obj.name} is {reach * 100:.0f} cm from the base; side "
                f"grasps need {SIDE_MIN_REACH * 100:.0f} cm (the elbow would fold against "
                "its limit): use approach='top'",
            )
        if template == "side" and obj.height < SIDE_MIN_HEIGHT:
            return Refusal(
                Failure.PRECONDITION_FAILED,
                f"{obj.name} is {obj.height * 100:.1f} cm tall; "
                f"side grasps need at least {SIDE_MIN_HEIGHT * 100:.0f} cm: use approach='top'",
            )
        return None

    def plan(self, world: WorldState, p: GraspParams, ctx: Context) -> GraspProgram:
        """Open, approach (from above, or turned sideways behind the object), close on the
        object and lift it, every configuration solved before anything moves."""
        obj = world.object(p.object)
        template = self.template_for(world, p)
        x, y, _ = obj.position
        open_width = ctx.gripper_spec.max_width
        if template == "top":
            width, z, yaw = top_grasp(obj)
            quat = top_down(ctx, yaw)
            above = (x, y, obj.top + PREGRASP_CLEARANCE)
            q_above = ctx.solve("approach", above, quat)
            q_grasp = ctx.solve("grasp", (x, y, z), quat, [q_above])
            lifted = (x, y, z + p.lift)
            q_lift = ctx.solve("lift", lifted, quat, [q_grasp])
            steps = [
                Grip("open", open_width, p.force),
                Move("approach", above, quat, posture=q_above),
                Move("descend", (x, y, z), quat, speed=APPROACH_SPEED, posture=q_grasp),
            ]
        else:
            width, z, heading = side_grasp(obj)
            quat = side_on(heading, SIDE_PITCH)
            # Back off along the (tilted) approach axis.
            c = PREGRASP_CLEARANCE
            back = (
                x - c * math.cos(SIDE_PITCH) * math.cos(heading),
                y - c * math.cos(SIDE_PITCH) * math.sin(heading),
                z + c * math.sin(SIDE_PITCH),
            )
            # Turn the hand sideways well above and behind the object, then come down to it.
            high = (back[0], back[1], max(obj.top, z) + PREGRASP_CLEARANCE)
            q_high = ctx.solve("approach", high, quat)
            q_back = ctx.solve("align", back, quat, [q_high])
            q_grasp = ctx.solve("grasp", (x, y, z), quat, [q_back])
            lifted = (x, y, z + p.lift)
            q_lift = ctx.solve("lift", lifted, quat, [q_grasp])
            steps = [
                Grip("open", open_width, p.force),
                JointMove("approach", q_high),
                JointMove("align", q_back),
                Move("reach", (x, y, z), quat, speed=APPROACH_SPEED, posture=q_grasp),
            ]
        steps[1:1] = self._retract(world, ctx, obj)
        holding = Holding(
            obj.name, min_width=width - 0.01, max_distance=obj.radius + obj.height / 2 + 0.02
        )
        steps += [
            Grip("close", 0.0, p.force, expect_width=width - 0.012, target=obj.name),
            Move("lift", lifted, quat, speed=0.15, guards=[holding], posture=q_lift),
        ]
        program = GraspProgram(steps, ctx, template)
        program.grasp_width = width
        return program

    @staticmethod
    def _retract(world: WorldState, ctx: Context, obj) -> list[Move]:
        """Straight up first when the hand is low (after a missed grasp, say): the approach is
        a straight line, which from down there could sweep through other objects."""
        x, y, z = world.ee_position
        safe = max(o.top for o in world.objects.values()) + PREGRASP_CLEARANCE
        if z >= safe - RETRACT_MARGIN:
            return []
        quat = ctx.world.ee_pose().quat
        posture = ctx.solve("retract", (x, y, safe), quat)
        return [Move("retract", (x, y, safe), quat, speed=0.15, posture=posture)]

    def verify(
        self, before: WorldState, after: WorldState, p: GraspParams, program: Program
    ) -> Outcome:
        """Success when the object is between the fingers and rose at least half of
        ``lift``."""
        obj = after.object(p.object)
        rose = obj.position[2] - before.object(p.object).position[2]
        if after.held != p.object:
            if after.gripper_width < 0.005:
                return Outcome(
                    False,
                    Failure.GRASP_MISSED,
                    f"the fingers closed on nothing; {p.object} was not caught",
                )
            return Outcome(False, Failure.GRASP_MISSED, f"{p.object} is not between the fingers")
        if rose < 0.5 * p.lift:
            return Outcome(
                False, Failure.OBJECT_SLIPPED, f"{p.object} rose only {rose * 1e3:.0f} mm"
            )
        return Outcome(True, metrics={"finger_width_m": after.gripper_width, "lifted_m": rose})
