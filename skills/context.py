"""What a skill's plan and primitives work with: the robot, the world model, orientations.

The contract is explicit in the types: ``Context.robot`` is the hardware abstraction
(`hw.robot.Robot`: joints, gripper, commands, the arm's kinematic description) and
``Context.world`` the world model (`skills.world_model.WorldModel`: objects, the hand's
pose, clearance, contacts). A skill that reached into a simulator would not type-check.

`Context.solve` answers "which joint configuration reaches this pose?" before anything
moves (an unreachable pose becomes a refusal), and `Context.clearance` how close the arm at
a configuration would come to the table and the objects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np

from skillstack.hw.robot import Robot, RobotError
from skillstack.robot.arms import Arm
from skillstack.robot.ik_solve import solve_ik
from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.rotations import matrix_to_quat, quat_mul, yaw_quat
from skillstack.robot.types import GripperSpec, Pose
from skillstack.skills.base import Failure, SkillFailure
from skillstack.skills.world_model import WorldModel, default_world


@dataclass
class Context:
    """What primitives need: the robot, the world model, a kinematic model, the posture."""

    robot: Robot  # any backend: joints, gripper and the arm's description, nothing more
    world: WorldModel  # where the objects are, clearance and contacts
    kin: KinematicModel
    down: np.ndarray  # end-effector orientation pointing straight down (the home one)

    def solve(self, label: str, position, quat, seeds: Sequence[np.ndarray] = ()) -> np.ndarray:
        """A joint configuration for a pose, or `SkillFailure(UNREACHABLE)` before any motion."""
        state = self.robot.read()
        current = state.q if state.q_desired is None else state.q_desired
        pose = Pose(np.asarray(position, dtype=float), np.asarray(quat, dtype=float))
        q = solve_ik(self.kin, self.robot.capabilities, pose, [*seeds, current, self.home_q])
        if q is None:
            x, y, z = pose.position
            raise SkillFailure(
                Failure.UNREACHABLE,
                f"{label}: no arm configuration reaches "
                f"({x:.3f}, {y:.3f}, {z:.3f}) m with that orientation",
            )
        return q

    def clearance(
        self, q: np.ndarray, ignore: AbstractSet[str] = frozenset(), within: float = 0.1
    ) -> float:
        """Smallest distance (m, capped at ``within``) from the arm at ``q`` to the table and the
        objects, other than ``ignore`` (the held object) and particles; negative = penetrating.

        Answered by the world model: the simulator's own distance queries (which do not
        disturb the simulation), or a MuJoCo twin of a declared workcell.
        """
        return self.world.clearance(q, set(ignore), within)

    @property
    def home_q(self) -> np.ndarray:
        """The arm's home posture."""
        return self.arm.home_q

    @property
    def arm(self) -> Arm:
        """The robot's arm model (`robot.arms`), which the context plans with."""
        arm = self.robot.arm
        assert arm is not None, "Context.for_robot refuses a robot without an arm model"
        return arm

    @property
    def gripper_spec(self) -> GripperSpec:
        """The gripper's limits (widths in m); `RobotError` for a robot without a gripper."""
        spec = self.robot.capabilities.gripper
        if spec is None:
            raise RobotError(f"{self.robot.capabilities.name} has no gripper")
        return spec

    @staticmethod
    def for_robot(robot: Robot, world: WorldModel | None = None) -> Context:
        """A context with a fresh kinematic model of the robot's arm; ``world`` defaults to
        the simulator's truth (`skills.world_model.default_world`)."""
        if robot.arm is None:
            raise RobotError(
                f"{robot.capabilities.name} has no kinematic model in robot/arms, which skills "
                "plan with; joint-level commands work, skills do not"
            )
        kin = KinematicModel(robot.arm)
        kin.update(robot.arm.home_q)
        return Context(robot, world or default_world(robot), kin, kin.ee_pose().quat)


# -- orientations -------------------------------------------------------------------------
def top_down(ctx: Context, yaw: float) -> np.ndarray:
    """Gripper pointing down, fingers opening along the world direction ``yaw``+90°."""
    return quat_mul(yaw_quat(yaw), ctx.down)


def side_on(heading: float, pitch_down: float = 0.0) -> np.ndarray:
    """Gripper pointing along world direction ``heading``, tilted down by ``pitch_down``, with
    the fingers opening horizontally (``pitch_down`` = pi/2 is the home orientation)."""
    cb, sb = math.cos(pitch_down), math.sin(pitch_down)
    z = np.array([cb * math.cos(heading), cb * math.sin(heading), -sb])
    y = np.array([math.sin(heading), -math.cos(heading), 0.0])
    x = np.cross(y, z)
    return matrix_to_quat(np.column_stack([x, y, z]))
