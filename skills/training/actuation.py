"""From policy actions at the policy rate to joint targets at the control rate.

A learned policy (or an RL agent in a gymnasium environment) acts at 10–50 Hz; the arm is
servoed at 1 kHz. `PolicyActuator` bridges the two the way the timing model in
ARCHITECTURE.md describes: each action moves the end-effector *target*, and over the next
``ticks_per_action`` control ticks the target slides from where it was to where the action
put it (linear in position, slerp in orientation, with the matching feed-forward twist),
tracked by the same differential IK as every scripted skill.

Actions use the dataset layout (`skills.training.dataset.ACTION_LAYOUT`): end-effector
Δposition (m, world frame), Δrotation vector (rad, world frame), gripper width (m). They are
applied to the previous *target*, not to the measured pose: the demonstrations' deltas were
measured on an arm that lags its target by the servo's tracking error, and adding them to
the target reproduces the demonstrated speed. Should the arm be held back (a contact), the
target is kept within `MAX_TARGET_LEAD` of the measured hand so it cannot run away.
"""

from __future__ import annotations

import numpy as np

from skillstack.robot.ik import DifferentialIK
from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.rotations import quat_mul, rotvec_to_quat
from skillstack.robot.trajectory import TrajectorySample
from skillstack.robot.types import GripperCommand, JointCommand, Pose, RobotState

MAX_STEP_M = 0.05  # largest Δposition one action may ask for (m); larger ones are clipped
MAX_STEP_RAD = 0.5  # largest Δrotation one action may ask for (rad)
# m the target may run ahead of the measured hand: one full step plus the servo lag of a
# fast carry (~3 cm); a tighter bound slows fast demonstrations down and they end short.
MAX_TARGET_LEAD = MAX_STEP_M + 0.03
GRIPPER_DEADBAND = 0.002  # m: width changes smaller than this are not re-sent
DEFAULT_GRIP_FORCE = 40.0  # N, what the scripted grasp squeezes with by default


class ActionError(ValueError):
    """An action of the wrong shape or with NaN/inf in it."""


class PolicyActuator:
    """Applies policy actions and produces one joint command per control tick.

    Args:
        robot: a connected robot (its ``arm`` and ``capabilities`` give the kinematics).
        rate_hz: the policy rate; must divide the control rate.
        grip_force: force (N) of gripper commands.

    Call `reset(state)` once, then for each policy step `apply(action, state)` followed by
    ``ticks_per_action`` calls of `step(state)`, sending each returned command.
    """

    def __init__(self, robot, rate_hz: float = 20.0, grip_force: float = DEFAULT_GRIP_FORCE):
        caps = robot.capabilities
        ticks = caps.control_rate_hz / rate_hz
        if rate_hz <= 0 or abs(ticks - round(ticks)) > 1e-6 or round(ticks) < 1:
            raise ValueError(
                f"policy rate {rate_hz:g} Hz must divide the control rate "
                f"{caps.control_rate_hz:g} Hz"
            )
        self.robot = robot
        self.rate_hz = float(rate_hz)
        self.ticks_per_action = round(ticks)
        self.grip_force = grip_force
        self.kin = KinematicModel(robot.arm)
        self.measure = KinematicModel(robot.arm)
        self.ik = DifferentialIK(self.kin, caps, robot.arm.home_q)
        self.target = Pose(np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]))
        self.sample = TrajectorySample.empty()
        self._dt = caps.control_dt
        self._from = self.target
        self._drot: np.ndarray | None = None  # rotation vector of the current action
        self._velocity = np.zeros(6)
        self._tick = 0
        self._gripper_width: float | None = None

    def reset(self, state: RobotState) -> None:
        """Start from the commanded configuration, with the target at its end-effector pose."""
        q0 = state.q if state.q_desired is None else state.q_desired
        self.ik.reset(q0)
        self.kin.update(q0)
        pose = self.kin.ee_pose()
        self.target = Pose(pose.position.copy(), pose.quat.copy())
        self._from = self.target
        self._drot = None
        self._velocity[:] = 0.0
        self._tick = self.ticks_per_action
        self._gripper_width = None
        self._set_sample(self.target.position, self.target.quat, np.zeros(6))

    def apply(self, action: np.ndarray, state: RobotState) -> None:
        """Start moving toward the pose ``action`` asks for; send its gripper width."""
        a = np.asarray(action, dtype=float)
        if a.shape != (7,):
            raise ActionError(f"an action has 7 numbers (Δpos, Δrot, gripper), not {a.shape}")
        if not np.isfinite(a).all():
            raise ActionError(f"the action has NaN or inf: {a}")
        dpos, drot = a[:3].copy(), a[3:6].copy()
        if (n := np.linalg.norm(dpos)) > MAX_STEP_M:
            dpos *= MAX_STEP_M / n
        if (n := np.linalg.norm(drot)) > MAX_STEP_RAD:
            drot *= MAX_STEP_RAD / n
        self._from = Pose(self.sample.position.copy(), self.sample.quat.copy())
        position = self._from.position + dpos
        self.measure.update_positions_only(state.q)
        lead = position - self.measure.ee_position
        if (n := np.linalg.norm(lead)) > MAX_TARGET_LEAD:
            position = self.measure.ee_position + lead * (MAX_TARGET_LEAD / n)
        goal = quat_mul(rotvec_to_quat(drot), self._from.quat)  # (scipy's Rotation: ~1 ms)
        self.target = Pose(position, goal if goal[0] >= 0.0 else -goal)
        self._drot = drot
        period = self.ticks_per_action * self._dt
        self._velocity[:3] = (position - self._from.position) / period
        self._velocity[3:] = drot / period
        self._tick = 0
        self.grip(float(a[6]))

    def grip(self, width: float) -> None:
        """Command the fingers to ``width`` (m, clipped to the gripper's range) unless they
        were already sent within `GRIPPER_DEADBAND` of it."""
        width = float(np.clip(width, 0.0, self.robot.capabilities.gripper.max_width))
        if self._gripper_width is None or abs(width - self._gripper_width) > GRIPPER_DEADBAND:
            self.robot.gripper(GripperCommand(width=width, force=self.grip_force))
            self._gripper_width = width

    def step(self, state: RobotState) -> JointCommand:
        """The joint target for this control tick."""
        if self._tick < self.ticks_per_action and self._drot is not None:
            self._tick += 1
            s = self._tick / self.ticks_per_action
            position = self._from.position + s * (self.target.position - self._from.position)
            # Turned by the world-frame rotation vector: the slerp toward the full turn in
            # closed form (scipy's Slerp costs ~1 ms a tick).
            turned = quat_mul(rotvec_to_quat(s * self._drot), self._from.quat)
            self._set_sample(position, turned, self._velocity)
        elif self._tick == self.ticks_per_action:
            self._set_sample(self.target.position, self.target.quat, np.zeros(6))
            self._tick += 1
        q = self.ik.step(self.sample, self._dt)
        return JointCommand("joint_position", q.copy(), state.time)

    def _set_sample(self, position, quat, twist) -> None:
        self.sample.position[:] = position
        self.sample.quat[:] = quat
        self.sample.twist[:] = twist
