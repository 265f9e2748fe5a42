"""Scripted sim sequences for `skillstack sim`/`demo` and the physics tests.

* `run_tour` drives the end effector through Cartesian waypoints and reports how closely it
  tracked them (the figures `skillstack sim` prints).
* `pick_and_shake` grasps an object from above, lifts it and shakes it, and measures how far
  it slipped in the hand: the acceptance test of contact and friction tuning.

These are motions, not skills: the skill library (grasp, place, pour, ...) builds the same
thing with preconditions, success checks and failure codes. They run on either simulated
backend (`hw.sim.backends.make_sim`): ``robot`` is a `hw.robot.Robot` that also answers the
ground-truth queries of `hw.sim.truth.SimTruth` and has an ``arm`` and a ``scene``
(`TourRobot` states exactly what is used).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from skillstack.robot.arms import Arm
from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.loop import ControlLoop, LoopStats, TickedRobot
from skillstack.robot.motion import CartesianMotion, Hold, TrackingReport
from skillstack.robot.scene import Scene
from skillstack.robot.trajectory import DEFAULT_MAX_LINEAR_SPEED
from skillstack.robot.types import GripperCommand, Pose

# End-effector positions of the default tour (m); orientation stays pointing down.
TOUR = ((0.50, 0.00, 0.30), (0.55, 0.20, 0.20), (0.40, -0.20, 0.15), (0.35, 0.00, 0.45))
GRASP_FORCE = 40.0  # N
APPROACH_HEIGHT = 0.12  # m above the object's centre
LIFT_HEIGHT = 0.20  # m above the table
SHAKE_AMPLITUDE = 0.08  # m, side to side
SHAKE_SPEED = 0.6  # m/s peak


class TourRobot(TickedRobot, Protocol):
    """What the tour needs of a robot: the control loop's part of `hw.robot.Robot`, its
    gripper, its ``arm`` and ``scene``, and two `hw.sim.truth.SimTruth` queries. Both
    simulated backends (`MujocoRobot`, `PybulletRobot`) are one."""

    @property
    def arm(self) -> Arm:
        """Kinematic description of the arm (home posture, ...)."""
        ...

    @property
    def scene(self) -> Scene:
        """The objects on the table."""
        ...

    def gripper(self, cmd: GripperCommand) -> GripperCommand:
        """Move the gripper; returns the command sent, clipped to the gripper's range."""
        ...

    def ee_pose(self) -> Pose:
        """Ground-truth end-effector pose."""
        ...

    def object_pose(self, name: str) -> Pose:
        """Ground-truth pose of scene object ``name`` (its geometric centre)."""
        ...


@dataclass
class LegResult:
    """One waypoint of a tour: where it went and how well it tracked."""

    target: tuple[float, float, float]
    duration_s: float
    tracking: TrackingReport
    stats: LoopStats


@dataclass
class ShakeResult:
    """Outcome of `pick_and_shake`."""

    held: bool  # the fingers stopped on the object, not closed on nothing
    lifted: bool  # the object rose with the hand
    slip_mm: float  # largest displacement of the object relative to the hand after lifting
    gripper_width_mm: float


class Mover:
    """Runs Cartesian moves and holds on a simulated robot, with its own kinematics."""

    def __init__(self, robot: TourRobot, realtime: bool = False, on_tick=None):
        self.robot = robot
        self.kin = KinematicModel(robot.arm)
        self.measure = KinematicModel(robot.arm)
        self.loop = ControlLoop(robot, realtime=realtime, on_tick=on_tick)
        self.down = robot.ee_pose().quat  # home orientation: gripper pointing down

    def move(
        self,
        position: Sequence[float],
        speed: float = DEFAULT_MAX_LINEAR_SPEED,
        quat: np.ndarray | None = None,
    ) -> LegResult:
        """Move the end effector to ``position`` (orientation ``quat``, default pointing down)."""
        goal = Pose(np.asarray(position, dtype=float), self.down if quat is None else quat)
        motion = CartesianMotion(
            self.kin,
            self.robot.capabilities,
            [goal],
            self.robot.arm.home_q,
            max_linear_speed=speed,
            measure=self.measure,
        )
        stats = self.loop.run(motion, max_seconds=30.0)
        report = motion.report(self.robot.read().q)
        x, y, z = position
        return LegResult((x, y, z), motion.duration, report, stats)

    def hold(self, seconds: float) -> LoopStats:
        """Keep the arm still for ``seconds`` (the gripper keeps moving meanwhile)."""
        return self.loop.run(Hold(seconds), max_seconds=seconds + 0.01)


def run_tour(
    robot: TourRobot,
    waypoints=TOUR,
    speed: float = DEFAULT_MAX_LINEAR_SPEED,
    realtime: bool = False,
) -> list[LegResult]:
    """Visit ``waypoints`` in order; one `LegResult` per waypoint."""
    mover = Mover(robot, realtime=realtime)
    return [mover.move(p, speed) for p in waypoints]


def pick_and_shake(robot: TourRobot, name: str, shakes: int = 3) -> ShakeResult:
    """Grasp ``name`` from above, lift it, shake it side to side and measure the slip."""
    mover = Mover(robot)
    obj = robot.scene.object(name)
    cx, cy, cz = robot.object_pose(name).position
    spec = robot.capabilities.gripper
    assert spec is not None  # every arm in robot.arms has one
    robot.gripper(GripperCommand(width=spec.max_width, force=GRASP_FORCE))
    mover.move((cx, cy, cz + APPROACH_HEIGHT))
    mover.move((cx, cy, cz), speed=0.1)
    robot.gripper(GripperCommand(width=0.0, force=GRASP_FORCE))
    mover.hold(0.8)
    width = robot.read().gripper_width
    held = bool(width > 0.5 * min(obj.size[:2]))
    mover.move((cx, cy, LIFT_HEIGHT), speed=0.15)
    lifted = bool(robot.object_pose(name).position[2] > LIFT_HEIGHT - 0.05)

    def offset() -> np.ndarray:
        return robot.object_pose(name).position - robot.ee_pose().position

    reference = offset()
    slip = 0.0
    for _ in range(shakes):
        for dy in (SHAKE_AMPLITUDE, -SHAKE_AMPLITUDE):
            mover.move((cx, cy + dy, LIFT_HEIGHT), speed=SHAKE_SPEED)
            slip = max(slip, float(np.linalg.norm(offset() - reference)))
    mover.move((cx, cy, LIFT_HEIGHT), speed=SHAKE_SPEED)
    slip = max(slip, float(np.linalg.norm(offset() - reference)))
    return ShakeResult(held, lifted, slip * 1e3, robot.read().gripper_width * 1e3)
