"""Plain data types that cross layer boundaries: poses, robot state, commands.

Conventions used everywhere in skillstack:

* SI units: metres, radians, seconds, newtons, newton-metres.
* Quaternions are scalar-first ``(w, x, y, z)``, as in MuJoCo.
* The world frame has its origin at the robot base, z up, and the table top at z = 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

CommandMode = Literal["joint_position", "joint_velocity", "joint_torque"]
COMMAND_MODES: tuple[CommandMode, ...] = ("joint_position", "joint_velocity", "joint_torque")


@dataclass(frozen=True, slots=True)
class Pose:
    """A rigid transform: ``position`` (3,) in metres and unit quaternion ``quat`` (w, x, y, z)."""

    position: np.ndarray
    quat: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.0, 0.0, 0.0]))

    @staticmethod
    def from_xyz_quat(
        xyz: tuple[float, float, float] | np.ndarray, quat=(1.0, 0.0, 0.0, 0.0)
    ) -> Pose:
        """Build a pose from any sequences, copying and normalising the quaternion."""
        q = np.asarray(quat, dtype=float)
        return Pose(np.array(xyz, dtype=float), q / np.linalg.norm(q))


@dataclass(frozen=True, slots=True)
class GripperSpec:
    """What a parallel gripper can do."""

    max_width: float  # m, fully open distance between the fingers
    max_force: float  # N, largest grasp force the gripper can exert
    max_speed: float  # m/s, fastest finger-opening speed


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a `Robot` declares about itself before anything moves.

    Limits are per joint, shape ``(dof,)``. ``control_rate_hz`` is the rate at which the
    backend expects commands (1 kHz for a Franka Panda, 500 Hz for a UR e-series, ...).
    """

    name: str
    dof: int
    joint_names: tuple[str, ...]
    joint_lower: np.ndarray  # rad
    joint_upper: np.ndarray  # rad
    velocity_limit: np.ndarray  # rad/s
    acceleration_limit: np.ndarray  # rad/s^2
    torque_limit: np.ndarray  # N m
    control_rate_hz: float
    command_modes: tuple[CommandMode, ...]
    gripper: GripperSpec | None = None

    @property
    def control_dt(self) -> float:
        """The control period in seconds."""
        return 1.0 / self.control_rate_hz


@dataclass(slots=True)
class RobotState:
    """One reading of the arm. Arrays have shape ``(dof,)`` and are owned by the reader."""

    time: float  # s, backend clock (simulation time in sim, monotonic time on hardware)
    q: np.ndarray  # rad
    dq: np.ndarray  # rad/s
    tau: np.ndarray  # N m, measured (or actuator) joint torques
    gripper_width: float  # m, distance between the fingers
    gripper_force: float = 0.0  # N, squeezing force currently applied by the gripper
    # rad, the joint positions last commanded (libfranka's q_d); None if the backend cannot
    # tell. Controllers start from here so that a new motion continues the old command.
    q_desired: np.ndarray | None = None
    # N and N m, the estimated external wrench on the end effector in the base frame
    # (fx, fy, fz, tx, ty, tz), where the arm estimates one (libfranka's O_F_ext_hat_K);
    # None where it cannot. Guards use it to notice unexpected contact on a real arm.
    wrench: np.ndarray | None = None


@dataclass(slots=True)
class JointCommand:
    """A command for every arm joint in one ``mode``; ``values`` has shape ``(dof,)``.

    ``stamp`` is the time (same clock as `RobotState.time`) at which the command was made;
    the safety filter's watchdog uses it to refuse stale commands.
    """

    mode: CommandMode
    values: np.ndarray
    stamp: float = 0.0


@dataclass(frozen=True, slots=True)
class GripperCommand:
    """Move the fingers to ``width`` (m) at ``speed`` (m/s), squeezing with up to ``force`` (N)."""

    width: float
    force: float = 40.0
    speed: float = 0.1
