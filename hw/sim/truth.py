"""What every simulated backend tells the skills that a real robot cannot: the ground truth.

Skills observe the world (`skills.world.observe`), watch for collisions
(`skills.guards.NoCollision`) and check clearance before a motion (`skills.context.Context`)
through the small interface below, so the same skill code runs on MuJoCo and PyBullet. Both
`hw.sim.mujoco.robot.MujocoRobot` and `hw.sim.pybullet.robot.PybulletRobot` implement it
with their simulator's own contact and distance queries.

The interface is a `typing.Protocol`: nothing inherits from it; it documents the contract and
lets a type checker verify it.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Protocol, runtime_checkable

import numpy as np

from skillstack.robot.types import Pose

PARTICLE_PREFIX = "particle_"  # name prefix of the small spheres a cup's `contents` become


@runtime_checkable
class SimTruth(Protocol):
    """Ground-truth queries of a simulated robot and its scene."""

    @property
    def sim_time(self) -> float:
        """Simulated seconds since the last reset."""
        ...

    def object_pose(self, name: str) -> Pose:
        """Pose of a scene object's geometric centre; `KeyError` listing the objects."""
        ...

    def ee_pose(self) -> Pose:
        """Pose of the end-effector site (the grasp centre between the fingertips)."""
        ...

    def pad_contacts(self) -> dict[str, set[int]]:
        """Scene objects touched by the finger pads: name -> pad indices (0 left, 1 right)."""
        ...

    def arm_contacts(self) -> list[tuple[str, str]]:
        """Contacts of arm parts other than the finger pads, as (arm link, other thing).

        The other thing is a scene object's name, ``"table"`` or ``"floor"``; particles are
        left out (pouring them over the hand is part of the job).
        """
        ...

    def particle_positions(self) -> np.ndarray:
        """World positions of every particle, shape (N, 3)."""
        ...

    def clearance(
        self, q: np.ndarray, ignore: AbstractSet[str] = frozenset(), within: float = 0.1
    ) -> float:
        """Smallest distance (m, capped at ``within``) from the arm at joint configuration ``q``
        to the table and the objects other than ``ignore`` and particles, with every object
        where it is now; negative = penetrating. The simulation itself is not disturbed."""
        ...
