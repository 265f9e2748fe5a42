"""Guards: conditions watched while a primitive runs, attached to it as data.

The program evaluates a running primitive's guards every few ticks (each guard's
``period``); the first that trips ends the program with its typed failure (the object
slipped, the arm hit something).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Set as AbstractSet

import numpy as np

from skillstack.robot.rotations import quat_conj, quat_rotate
from skillstack.robot.types import RobotState
from skillstack.skills.base import Failure, SkillFailure
from skillstack.skills.context import Context

# Guard periods are in ticks at the 1 kHz reference rate; at other control rates a program
# scales them (`period_ticks`) so that guards watch as often in simulated time.
REFERENCE_DT = 0.001  # s
GUARD_PERIOD = 20  # ticks between a guard's evaluations unless it asks for more (50 Hz at 1 kHz)
SLIP_PERIOD = 4  # ticks between `Holding` evaluations: a dropped object falls 5 mm in 32 ms
SLIP_DRIFT = 0.005  # m, the held object moved this far in the hand: it is slipping out


def period_ticks(period: int, control_dt: float) -> int:
    """A period of ``period`` ticks at the 1 kHz reference rate, in ticks of ``control_dt``
    (at least every tick): 20 reference ticks are 2 ticks at 100 Hz, 5 at 250 Hz."""
    if control_dt == REFERENCE_DT:
        return period
    return max(1, round(period * REFERENCE_DT / control_dt))


class Guard(ABC):
    """A condition watched while a primitive runs; `check` returns a failure or None.

    ``period`` is the number of control ticks between evaluations at the 1 kHz reference
    rate (`period_ticks` converts it to the robot's rate).
    """

    period: int = GUARD_PERIOD

    @abstractmethod
    def check(self, ctx: Context, state: RobotState) -> SkillFailure | None:
        """Evaluate the condition now."""


class Holding(Guard):
    """The object must stay between the fingers, where they took it.

    Evaluated every `SLIP_PERIOD` ticks. The first evaluation latches where the object sits
    in the hand's frame; it has slipped when it moves more than `SLIP_DRIFT` from there,
    when the fingers close below ``min_width``, or when it is more than ``max_distance``
    from the hand. A carried object that loses its grip falls `SLIP_DRIFT` in about 32 ms,
    so a slip is reported within 50 ms of its start (in simulation, which sees the object).
    A declared world (a real arm) moves the held object with the hand, so only the finger
    width can show a slip there; its poses are checked every `GUARD_PERIOD` ticks.
    """

    period = SLIP_PERIOD

    def __init__(self, name: str, min_width: float, max_distance: float):
        self.name, self.min_width, self.max_distance = name, min_width, max_distance
        self.seat: np.ndarray | None = None  # the object's centre in the hand frame (m)
        self.max_drift = 0.0  # m, the furthest the object moved from its seat so far
        self._calls = 0

    def check(self, ctx: Context, state: RobotState) -> SkillFailure | None:
        """`OBJECT_SLIPPED` if the fingers closed below ``min_width``, the object moved more
        than `SLIP_DRIFT` in the hand, or it is more than ``max_distance`` (m) from it."""
        if state.gripper_width < self.min_width:
            return SkillFailure(
                Failure.OBJECT_SLIPPED,
                f"{self.name} slipped out of the gripper "
                f"(fingers closed to {state.gripper_width * 1e3:.1f} mm)",
            )
        self._calls += 1
        if ctx.world.source == "declared" and self._calls % (GUARD_PERIOD // SLIP_PERIOD) != 1:
            # a declared world moves the held object with the hand (no drift to see) and
            # reads the arm for each pose: its poses are checked every GUARD_PERIOD ticks
            return None
        hand = ctx.world.ee_pose()
        offset = ctx.world.object_pose(self.name).position - hand.position
        gap = float(np.linalg.norm(offset))
        if gap > self.max_distance:
            return SkillFailure(
                Failure.OBJECT_SLIPPED, f"{self.name} slipped: {gap * 1e3:.0f} mm from the hand"
            )
        seat = quat_rotate(quat_conj(hand.quat), offset)
        if self.seat is None:
            self.seat = seat
            return None
        drift = float(np.linalg.norm(seat - self.seat))
        self.max_drift = max(self.max_drift, drift)
        if drift > SLIP_DRIFT:
            return SkillFailure(
                Failure.OBJECT_SLIPPED,
                f"{self.name} slipped: it moved {drift * 1e3:.0f} mm in the hand",
            )
        return None


class NoCollision(Guard):
    """No arm link other than the finger pads may touch anything but ``allowed`` bodies.

    Particles never count: pouring them over the hand is part of the job. The contacts come
    from the world model (`skills.world_model.WorldModel.unexpected_contacts`): the
    simulator's contact list, or on a real arm its external-force estimate and the twin.
    """

    def __init__(self, allowed: AbstractSet[str] = frozenset()):
        self.allowed_bodies = set(allowed)

    def check(self, ctx: Context, state: RobotState) -> SkillFailure | None:
        """`COLLISION` naming the first unexpected contact the world model reports."""
        contacts = ctx.world.unexpected_contacts(self.allowed_bodies)
        if not contacts:
            return None
        link, what = contacts[0]
        return SkillFailure(Failure.COLLISION, f"the arm ({link}) hit {what}")
