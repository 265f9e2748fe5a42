"""What a skill's plan and primitives work with: the robot, a planning model, orientations.

`Context.solve` answers "which joint configuration reaches this pose?" before anything
moves (an unreachable pose becomes a refusal), and `Context.clearance` how close the arm at
a configuration would come to the table and the objects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from hw.robot import Robot
from robot.ik_solve import solve_ik
from robot.kinematics import KinematicModel
from robot.types import Pose
from skills.base import Failure, SkillFailure


@dataclass
class Context:
    """What primitives need: the robot, a controller-side kinematic model, the posture."""

    robot: Robot  # a simulated backend: MujocoRobot or PybulletRobot (`hw.sim.truth.SimTruth`)
    kin: KinematicModel
    down: np.ndarray  # end-effector orientation pointing straight down (the home one)

    def solve(self, label: str, position, quat, seeds: Sequence[np.ndarray] = ()) -> np.ndarray:
        """A joint configuration for a pose, or `SkillFailure(UNREACHABLE)` before any motion."""
        state = self.robot.read()
        current = state.q if state.q_desired is None else state.q_desired
        pose = Pose(np.asarray(position, dtype=float), np.asarray(quat, dtype=float))
        q = solve_ik(
            self.kin, self.robot.capabilities, pose, [*seeds, current, self.robot.arm.home_q]
        )
        if q is None:
            x, y, z = pose.position
            raise SkillFailure(
                Failure.UNREACHABLE,
                f"{label}: no arm configuration reaches "
                f"({x:.3f}, {y:.3f}, {z:.3f}) m with that orientation",
            )
        return q

    def clearance(
        self, q: np.ndarray, ignore: set[str] = frozenset(), within: float = 0.1
    ) -> float:
        """Smallest distance (m, capped at ``within``) from the arm at ``q`` to the table and the
        objects, other than ``ignore`` (the held object) and particles; negative = penetrating.

        Answered by the backend with its own distance queries, with every object where it is
        now and without disturbing the simulation (MuJoCo: a scratch `MjData`; PyBullet: a
        shadow client, see `hw.sim.pybullet_robot`).
        """
        return self.robot.clearance(q, set(ignore), within)

    @staticmethod
    def for_robot(robot: Robot) -> Context:
        """A context with a fresh kinematic model of the robot's arm."""
        kin = KinematicModel(robot.arm)
        kin.update(robot.arm.home_q)
        return Context(robot, kin, kin.ee_pose().quat)


# -- orientations -------------------------------------------------------------------------
def yaw_quat(yaw: float) -> np.ndarray:
    """Rotation about world z."""
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a ⊗ b."""
    out = np.zeros(4)
    mujoco.mju_mulQuat(out, np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    return out


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
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.column_stack([x, y, z]).ravel())
    return quat
