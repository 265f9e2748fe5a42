"""What a skill needs from the world, and the world model that answers from simulator truth.

A skill runs on a robot (`hw.robot.Robot`: joints, gripper, commands — the signals every arm
has) and reads the world through a `WorldModel`, never through the simulator. The world
model says where the objects are, what the hand holds, how close the arm would come to
things at a configuration, and whether the arm touches something it should not. Where
those answers come from is the world model's *source*:

``sim``       the simulator's ground truth (`SimWorld`, the default in simulation);
``declared``  a workcell scene file, then tracked through the skills' own grips and
              releases and confirmed by the arm's real signals
              (`skills.declared.DeclaredWorld`, the default on a real arm);
``camera``    RGB-D perception (`skills.perceive`), with the simulator's truth for guards.

Both protocols are `typing.Protocol`s: a type checker verifies that a skill uses only what
`Context` exposes (``ctx.robot`` is a `hw.robot.Robot`, which has no ``object_pose``).
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Literal, Protocol

import numpy as np

from skillstack.hw.robot import Robot, RobotError
from skillstack.robot.types import Pose, RobotState
from skillstack.skills.world import ObservableSim, WorldState, observe

WorldSource = Literal["sim", "declared", "camera"]
WORLD_SOURCES: tuple[WorldSource, ...] = ("sim", "declared", "camera")
# What `SimTruth` answers; looked up on the class, since reading the properties of an
# unconnected simulator raises.
TRUTH_QUERIES = ("object_pose", "ee_pose", "arm_contacts", "pad_contacts", "clearance")


class WorldModel(Protocol):
    """What skills read about the world (besides the robot's own signals)."""

    source: WorldSource

    def observe(self) -> WorldState:
        """The world state now."""
        ...

    def object_pose(self, name: str) -> Pose:
        """Pose of an object's geometric centre; `KeyError` listing the objects."""
        ...

    def ee_pose(self) -> Pose:
        """Pose of the end-effector site (the grasp centre between the fingertips)."""
        ...

    def clearance(
        self, q: np.ndarray, ignore: AbstractSet[str] = frozenset(), within: float = 0.1
    ) -> float:
        """Smallest distance (m, capped at ``within``) from the arm at joint configuration
        ``q`` to the table and the objects other than ``ignore``; negative = penetrating."""
        ...

    def unexpected_contacts(self, allowed: set[str]) -> list[tuple[str, str]]:
        """Contacts of the arm with anything but the finger pads and ``allowed``, as
        (arm part, other thing); empty when there are none."""
        ...

    def track(self, state: RobotState) -> None:
        """Follow a running skill (called every few control ticks with the latest state)."""
        ...

    def note_grip(self, closing: bool, target: str | None, state: RobotState, ok: bool) -> None:
        """A gripper motion ended: ``closing`` on ``target`` (if any); ``ok`` is False when a
        closing grip found nothing between the fingers."""
        ...

    def note_moved(self, name: str, position: np.ndarray) -> None:
        """A skill moved ``name`` without holding it (a push); its centre is now about at
        ``position`` as the skill measured it."""
        ...


class SimWorld:
    """The world model of a simulated robot: every answer is the simulator's ground truth."""

    source: WorldSource = "sim"

    def __init__(self, robot: ObservableSim):
        self.robot = robot

    def observe(self) -> WorldState:
        """Ground truth (`skills.world.observe`)."""
        return observe(self.robot)

    def object_pose(self, name: str) -> Pose:
        """The simulator's pose of ``name``."""
        return self.robot.object_pose(name)

    def ee_pose(self) -> Pose:
        """The simulator's end-effector pose."""
        return self.robot.ee_pose()

    def clearance(
        self, q: np.ndarray, ignore: AbstractSet[str] = frozenset(), within: float = 0.1
    ) -> float:
        """The backend's own distance queries (`hw.sim.truth.SimTruth.clearance`)."""
        return self.robot.clearance(q, set(ignore), within)

    def unexpected_contacts(self, allowed: set[str]) -> list[tuple[str, str]]:
        """The simulator's contact list, less the finger pads, particles and ``allowed``."""
        return [(link, what) for link, what in self.robot.arm_contacts() if what not in allowed]

    def track(self, state: RobotState) -> None:
        """Nothing to track: the simulator knows."""

    def note_grip(self, closing: bool, target: str | None, state: RobotState, ok: bool) -> None:
        """Nothing to record: the simulator knows."""

    def note_moved(self, name: str, position: np.ndarray) -> None:
        """Nothing to record: the simulator knows."""


def default_world(robot: Robot) -> WorldModel:
    """`SimWorld` for a simulated robot; a `RobotError` saying what to do for any other."""
    if all(hasattr(type(robot), name) for name in TRUTH_QUERIES):
        return SimWorld(robot)  # type: ignore[arg-type]  # checked structurally just above
    raise RobotError(
        f"{robot.capabilities.name} has no simulator ground truth: give the skills a world "
        "model, e.g. a declared workcell (--scene FILE; skills.declared.DeclaredWorld)"
    )
