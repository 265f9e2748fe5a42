"""place(object, target): set the held object on a surface, in a container or on the table."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from skillstack.robot.scene.model import CONTAINER_WALL
from skillstack.skills.base import Failure, Outcome, Refusal, Skill
from skillstack.skills.context import Context
from skillstack.skills.guards import Holding
from skillstack.skills.params import ObjectName, param
from skillstack.skills.program import Grip, Move, Program
from skillstack.skills.registration import register
from skillstack.skills.world import Predicate, WorldFacts, WorldState

CARRY_CLEARANCE = 0.06  # m, the carried object's bottom clears every object top by this much
PLACE_GAP = 0.004  # m, released this far above the surface
DROP_HEIGHT = 0.015  # m, objects go into containers released this far above the rim
RETREAT = 0.08  # m, upward after releasing
RELEASE_OPENING = 0.03  # m, the fingers open this much wider than the held object to let go
TABLE_TOLERANCE = 0.02  # m, a table placement within this of the asked position succeeds
SURFACE_KINDS = ("box", "plate")
CONTAINER_KINDS = ("bowl", "cup")


@dataclass(frozen=True)
class PlaceSpot:
    """Where a place call puts the object: its centre over (x, y), its bottom released at
    ``bottom`` after being carried at ``carry`` (clear of every other object's top)."""

    template: str
    x: float
    y: float
    bottom: float  # m, world z of the object's bottom when it is let go
    carry: float  # m, world z of the object's bottom while it is carried


def place_spot(world: WorldState, p: PlaceParams, template: str) -> PlaceSpot:
    """The spot of a `place` call (``check`` has passed); the learned place is told it too."""
    obj = world.object(p.object)
    if template == "table":
        assert p.position is not None, "check() refuses a table placement without one"
        x, y = p.position
        bottom = PLACE_GAP
    else:
        target = world.object(p.target)
        x, y = target.position[0] + p.offset[0], target.position[1] + p.offset[1]
        bottom = target.top + (PLACE_GAP if template == "on" else DROP_HEIGHT)
    tallest = max((o.top for o in world.objects.values() if o.name != obj.name), default=0.0)
    return PlaceSpot(template, x, y, bottom, max(tallest, bottom) + CARRY_CLEARANCE)


def release_width(world: WorldState, max_width: float) -> float:
    """The finger opening that lets go of what the gripper holds now."""
    return min(world.gripper_width + RELEASE_OPENING, max_width)


@dataclass(frozen=True)
class PlaceParams:
    """Parameters of `place`."""

    object: ObjectName = param(description="the held object to put down")
    target: str = param(
        description="an object to put it on (box, plate) or in (bowl, cup), or 'table'"
    )
    position: tuple[float, float] | None = param(
        None,
        unit="m",
        low=-1.0,
        high=1.0,
        description="where on the table (x, y), when target is 'table'",
    )
    offset: tuple[float, float] = param(
        (0.0, 0.0),
        unit="m",
        low=-0.1,
        high=0.1,
        description="offset (dx, dy) from the target's centre",
    )


@register
class Place(Skill):
    """Put the held object down on a surface, into a container, or on the table."""

    name = "place"
    description = (
        "Put down the object being held: on top of a box or plate, into a bowl or cup, or on the "
        "table at position (x, y). Needs the object to be held (grasp it first)."
    )
    Params = PlaceParams
    timeout_s = 25.0
    templates = ("on", "in", "table")

    def preconditions(self, p: PlaceParams) -> list[tuple]:
        """The object must be held."""
        return [("holding", p.object)]

    def template_for(self, world: WorldFacts, p: PlaceParams) -> str:
        """'on' a surface, 'in' a container, or on the 'table'."""
        if p.target == "table":
            return "table"
        return "in" if world.object(p.target).kind in CONTAINER_KINDS else "on"

    def effects(self, world: WorldFacts, p: PlaceParams) -> tuple[set, set]:
        """Adds ``gripper_empty`` and ``on_table``, ``on`` (deleting the target's ``clear``) or
        ``in``; deletes ``holding(object)``."""
        add: set[Predicate] = {("gripper_empty",)}
        delete: set[Predicate] = {("holding", p.object)}
        template = (
            self.template_for(world, p)
            if p.target in world.objects or p.target == "table"
            else "table"
        )
        if template == "table":
            add.add(("on_table", p.object))
        elif template == "on":
            add.add(("on", p.object, p.target))
            delete.add(("clear", p.target))
        else:
            add.add(("in", p.object, p.target))
        return add, delete

    def check(self, world: WorldState, p: PlaceParams) -> Refusal | None:
        """Refuse a table spot that is out of reach or taken, an unknown target or one that is
        neither surface nor container, a container too small, or an occupied surface."""
        refusal = super().check(world, p)
        if refusal:
            return refusal
        obj = world.object(p.object)
        if p.target == "table":
            if p.position is None:
                return Refusal(
                    Failure.INVALID_PARAMETERS, "placing on the table needs position=[x, y]"
                )
            return _table_spot_problem(world, obj, p.position)
        if p.target not in world.objects:
            return Refusal(
                Failure.UNKNOWN_OBJECT,
                f"no object named {p.target!r}; objects: {', '.join(world.objects)} (or 'table')",
            )
        if p.target == p.object:
            return Refusal(Failure.INVALID_TARGET, f"cannot place {p.object} on itself")
        target = world.object(p.target)
        if target.kind not in SURFACE_KINDS + CONTAINER_KINDS:
            return Refusal(
                Failure.INVALID_TARGET,
                f"{target.name} is a {target.kind}: neither a surface "
                "(box, plate) nor a container (bowl, cup)",
            )
        if (
            target.kind in CONTAINER_KINDS
            and obj.radius > target.size[0] / 2 - CONTAINER_WALL - 0.005
        ):
            return Refusal(
                Failure.INVALID_TARGET,
                f"{obj.name} ({2 * obj.radius * 100:.1f} cm across) does "
                f"not fit in {target.name} ({target.size[0] * 100:.1f} cm)",
            )
        if target.kind in SURFACE_KINDS and not world.holds("clear", target.name):
            return Refusal(
                Failure.PRECONDITION_FAILED, f"something already stands on {target.name}"
            )
        return None

    def plan(self, world: WorldState, p: PlaceParams, ctx: Context) -> Program:
        """Lift, carry above everything, lower the object to just above its spot, open, and
        retreat; the carry and release configurations are solved before anything moves."""
        obj = world.object(p.object)
        spot = place_spot(world, p, self.template_for(world, p))
        ee = np.array(world.ee_position)
        hold_offset = np.array(obj.position) - ee  # object centre relative to the fingertips
        quat = ctx.world.ee_pose().quat
        # Fingertip heights that put the object's bottom where we want it.
        to_ee = -hold_offset[2] + obj.height / 2
        carry_z, release_z = spot.carry + to_ee, spot.bottom + to_ee
        gx, gy = spot.x - hold_offset[0], spot.y - hold_offset[1]
        ctx.solve("carry", (gx, gy, carry_z), quat)
        ctx.solve("release", (gx, gy, release_z), quat)
        holding = Holding(
            obj.name, min_width=0.005, max_distance=float(np.linalg.norm(hold_offset)) + 0.03
        )
        open_width = release_width(world, ctx.gripper_spec.max_width)
        steps = [
            Move("lift", (ee[0], ee[1], max(carry_z, ee[2])), quat, speed=0.15, guards=[holding]),
            Move("carry", (gx, gy, carry_z), quat, speed=0.25, guards=[holding]),
            Move("lower", (gx, gy, release_z), quat, speed=0.08, guards=[holding]),
            Grip("release", open_width, 20.0),
            Move("retreat", (gx, gy, release_z + RETREAT), quat, speed=0.15),
        ]
        program = Program(steps, ctx, spot.template)
        program.allowed_contacts = {obj.name}
        return program

    def verify(
        self, before: WorldState, after: WorldState, p: PlaceParams, program: Program
    ) -> Outcome:
        """Success when the object was let go and rests on/in the target, or on the table
        within `TABLE_TOLERANCE` of ``position``."""
        if after.held is not None:
            return Outcome(False, Failure.MISSED_TARGET, f"{after.held} is still in the gripper")
        obj = after.object(p.object)
        if program.template == "table":
            assert p.position is not None, "check() refuses a table placement without one"
            err = math.hypot(obj.position[0] - p.position[0], obj.position[1] - p.position[1])
            ok = after.holds("on_table", p.object) and err <= TABLE_TOLERANCE
            msg = (
                "" if ok else f"{p.object} came to rest {err * 100:.1f} cm from the asked position"
            )
            return Outcome(
                ok, None if ok else Failure.MISSED_TARGET, msg, {"position_error_m": err}
            )
        relation = "on" if program.template == "on" else "in"
        if after.holds(relation, p.object, p.target):
            return Outcome(
                True, metrics={"center_offset_m": obj.xy_distance(after.object(p.target))}
            )
        return Outcome(
            False,
            Failure.MISSED_TARGET,
            f"{p.object} is not {relation} {p.target} "
            f"(it rests at {tuple(round(v, 3) for v in obj.position)})",
        )


def _table_spot_problem(world: WorldState, obj, position) -> Refusal | None:
    x, y = position
    r = math.hypot(x, y)
    if not 0.25 <= r <= 0.8:
        return Refusal(
            Failure.UNREACHABLE,
            f"table position ({x:.2f}, {y:.2f}) is {r:.2f} m from the "
            "robot base; reachable placements are 0.25-0.80 m away",
        )
    for other in world.objects.values():
        if other.name == obj.name:
            continue
        gap = math.hypot(other.position[0] - x, other.position[1] - y) - other.radius - obj.radius
        if gap < 0.005:
            return Refusal(
                Failure.INVALID_TARGET,
                f"table position ({x:.2f}, {y:.2f}) is taken by {other.name}",
            )
    return None
