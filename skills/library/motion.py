"""The small skills: move_to(position), release(), home()."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from skillstack.skills.base import Failure, Outcome, Refusal, Skill
from skillstack.skills.context import Context, top_down
from skillstack.skills.params import param
from skillstack.skills.program import Grip, Move, Program
from skillstack.skills.registration import register
from skillstack.skills.world import WorldFacts, WorldState

ARRIVAL_TOLERANCE = 0.005  # m
MIN_HEIGHT = 0.03  # m, move_to keeps the fingertips this far above the table


@dataclass(frozen=True)
class MoveToParams:
    """Parameters of `move_to`."""

    position: tuple[float, float, float] = param(
        unit="m", low=-1.0, high=1.0, description="fingertip position (x, y, z)"
    )
    yaw: float = param(
        0.0, unit="deg", low=-90.0, high=90.0, description="gripper rotation about vertical"
    )
    speed: float = param(0.25, unit="m/s", low=0.02, high=0.5, description="peak speed")


@register
class MoveTo(Skill):
    """Move the gripper (pointing down) to a position."""

    name = "move_to"
    description = (
        "Move the gripper, pointing down, to a position (x, y, z) in metres, carrying whatever "
        "it holds."
    )
    Params = MoveToParams
    timeout_s = 15.0

    def check(self, world: WorldState, p: MoveToParams) -> Refusal | None:
        """`UNREACHABLE` for a position outside the reachable shell (0.2-0.85 m from the base
        axis, `MIN_HEIGHT` to 0.8 m high)."""
        x, y, z = p.position
        r = math.hypot(x, y)
        if z < MIN_HEIGHT or not 0.2 <= r <= 0.85 or z > 0.8:
            return Refusal(
                Failure.UNREACHABLE,
                f"({x:.2f}, {y:.2f}, {z:.2f}) m is outside the reachable "
                f"space (0.20-0.85 m from the base, {MIN_HEIGHT * 100:.0f}-80 cm high)",
            )
        return None

    def plan(self, world: WorldState, p: MoveToParams, ctx: Context) -> Program:
        """One straight move, gripper down, to a configuration found before moving."""
        quat = top_down(ctx, math.radians(p.yaw))
        posture = ctx.solve("move", p.position, quat)
        move = Move("move", p.position, quat, speed=p.speed, posture=posture)
        return _carrying(Program([move], ctx, "cartesian"), world)

    def verify(
        self, before: WorldState, after: WorldState, p: MoveToParams, program: Program
    ) -> Outcome:
        """Success when the fingertips ended within `ARRIVAL_TOLERANCE` of ``position``."""
        return _arrived(after, p.position, "the target")


@dataclass(frozen=True)
class NoParams:
    """No parameters."""


@register
class Release(Skill):
    """Open the gripper and move up."""

    name = "release"
    description = "Open the gripper, letting go of anything held, and move 5 cm up."
    Params = NoParams
    timeout_s = 10.0

    def effects(self, world: WorldFacts, p: NoParams) -> tuple[set, set]:
        """Adds ``gripper_empty`` and deletes ``holding`` of what was held (none if nothing)."""
        if world.held is None:
            return set(), set()
        return {("gripper_empty",)}, {("holding", world.held)}

    def plan(self, world: WorldState, p: NoParams, ctx: Context) -> Program:
        """Open the gripper fully, then retreat 5 cm straight up."""
        ee = np.array(world.ee_position)
        quat = ctx.world.ee_pose().quat
        steps = [
            Grip("open", ctx.gripper_spec.max_width, 20.0),
            Move("retreat", ee + np.array([0.0, 0.0, 0.05]), quat, speed=0.1),
        ]
        return _carrying(Program(steps, ctx, "open"), world)

    def verify(
        self, before: WorldState, after: WorldState, p: NoParams, program: Program
    ) -> Outcome:
        """Success when nothing is held any more."""
        ok = after.held is None
        return Outcome(
            ok, None if ok else Failure.MISSED_TARGET, "" if ok else f"{after.held} is still held"
        )


class HomeProgram(Program):
    """The program of `home`, with the fingertip position (m) it must end at."""

    home: np.ndarray  # set by `Home.plan`


@register
class Home(Skill):
    """Return to the home posture."""

    name = "home"
    description = "Move the arm back to its home posture above the table, gripper pointing down."
    Params = NoParams
    timeout_s = 15.0

    def plan(self, world: WorldState, p: NoParams, ctx: Context) -> HomeProgram:
        """One move to the home posture's end-effector pose, remembered for `verify`."""
        ctx.kin.update(ctx.home_q)
        home = ctx.kin.ee_pose()
        move = Move("home", home.position, home.quat, posture=ctx.home_q)
        program = HomeProgram([move], ctx, "cartesian")
        program.home = home.position
        return _carrying(program, world)

    def verify(
        self, before: WorldState, after: WorldState, p: NoParams, program: HomeProgram
    ) -> Outcome:
        """Success when the fingertips ended within `ARRIVAL_TOLERANCE` of the home pose."""
        return _arrived(after, program.home, "home")


P = TypeVar("P", bound=Program)


def _carrying(program: P, world: WorldState) -> P:
    """Let the hand touch whatever it holds while the program runs."""
    if world.held:
        program.allowed_contacts = {world.held}
    return program


def _arrived(after: WorldState, goal, name: str) -> Outcome:
    """Success when the fingertips ended within `ARRIVAL_TOLERANCE` of ``goal``."""
    err = float(np.linalg.norm(np.array(after.ee_position) - np.array(goal)))
    ok = err <= ARRIVAL_TOLERANCE
    message = "" if ok else f"ended {err * 1e3:.1f} mm from {name}"
    return Outcome(ok, None if ok else Failure.MISSED_TARGET, message, {"position_error_m": err})
