"""Guards: conditions watched while a primitive runs, attached to it as data.

The program evaluates a running primitive's guards every few ticks; the first that trips
ends the program with its typed failure (the object slipped, the arm hit something).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Set as AbstractSet

import numpy as np

from skillstack.robot.types import RobotState
from skillstack.skills.base import Failure, SkillFailure
from skillstack.skills.context import Context


class Guard(ABC):
    """A condition watched while a primitive runs; `check` returns a failure or None."""

    @abstractmethod
    def check(self, ctx: Context, state: RobotState) -> SkillFailure | None:
        """Evaluate the condition now."""


class Holding(Guard):
    """The object must stay between the fingers (width and distance to the hand)."""

    def __init__(self, name: str, min_width: float, max_distance: float):
        self.name, self.min_width, self.max_distance = name, min_width, max_distance

    def check(self, ctx: Context, state: RobotState) -> SkillFailure | None:
        """`OBJECT_SLIPPED` if the fingers closed below ``min_width`` or the object is more
        than ``max_distance`` (m) from the hand."""
        if state.gripper_width < self.min_width:
            return SkillFailure(
                Failure.OBJECT_SLIPPED,
                f"{self.name} slipped out of the gripper "
                f"(fingers closed to {state.gripper_width * 1e3:.1f} mm)",
            )
        gap = np.linalg.norm(
            ctx.world.object_pose(self.name).position - ctx.world.ee_pose().position
        )
        if gap > self.max_distance:
            return SkillFailure(
                Failure.OBJECT_SLIPPED, f"{self.name} slipped: {gap * 1e3:.0f} mm from the hand"
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
