"""The MuJoCo backend: a simulated arm on a table, behind the `Robot` interface.

Physics and control share the clock: ``wait_for_tick()`` advances the simulation by one
control period (one or more physics steps). Each step is split into ``mj_step2`` (apply
the command, integrate) followed by ``mj_step1`` (kinematics and contacts at the new
state), so `read()` always returns kinematics that are current, at no extra cost.

Command modes:

* ``joint_position`` — targets for the joint servos (stiff PD, gravity compensated, like
  the Panda's internal joint impedance controller);
* ``joint_velocity`` — integrated into a position target each tick;
* ``joint_torque`` — servos off, torques applied directly (gravity still compensated,
  as libfranka's torque interface does).

Stops brake at the drives (`MujocoRobot.brake`): a computed-torque deceleration of every
joint at `BRAKE_DECELERATION` times its planning acceleration limit, within the torque
limits, then the servos hold where the arm came to rest. Holding the measured joints with
the position servo alone would take about 75 ms to settle from 0.4 rad/s: the servo springs
back toward the held point and excites the coupled joints.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from skillstack.hw.robot import Robot as _Robot
from skillstack.hw.sim.divergence import SimulationDiverged, runaway_message, speed_bound
from skillstack.hw.sim.mujoco.cameras import CameraRig
from skillstack.hw.sim.mujoco.scene import build_model
from skillstack.hw.sim.mujoco.truth import MujocoTruth
from skillstack.hw.sim.timing import control_timing
from skillstack.robot.arms import Arm, get_arm
from skillstack.robot.camera import DEFAULT_CAMERAS, CameraSpec, RGBDFrame
from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.safety import SafetyConfig
from skillstack.robot.scene import Scene, default_scene
from skillstack.robot.types import GripperCommand, JointCommand, Pose, RobotState

__all__ = ["BRAKE_DECELERATION", "MujocoRobot", "SimulationDiverged"]

# A stop brakes each joint this many times harder than motions are planned (its
# acceleration limit), as an industrial arm's drive-level stop does: the Panda's joint 1 at
# 0.4 rad/s rests after 13 ms (27 ms at the planning limit), always within torque limits.
BRAKE_DECELERATION = 2.0
BRAKE_AT_REST = 1e-3  # rad/s, every joint slower than this: the brake lets the servos hold
BRAKE_FROM = 0.01  # rad/s, every joint slower than this: the hold command alone stops the arm
BRAKE_TIMEOUT_S = 0.5  # a brake still fighting (a contact pushing the arm) gives up to the servos


class MujocoRobot(MujocoTruth, _Robot):
    """A simulated arm (Panda by default) on the table of ``scene``.

    Ground-truth queries for the skills (`hw.sim.truth.SimTruth`: contacts, particles,
    clearance) come from `hw.sim.mujoco.truth.MujocoTruth`.

    Args:
        scene: objects on the table; `default_scene()` if None.
        arm: arm name or `Arm`.
        control_rate_hz: overrides the arm's declared rate; must be a whole number of
            physics steps.
        safety: limits of the safety filter.
    """

    arm: Arm  # a simulator always builds its own arm

    def __init__(
        self,
        scene: Scene | None = None,
        arm: str | Arm = "panda",
        *,
        control_rate_hz: float | None = None,
        safety: SafetyConfig = SafetyConfig(),
    ):
        self.arm = get_arm(arm) if isinstance(arm, str) else arm
        caps, self.substeps = control_timing(self.arm.capabilities, control_rate_hz)
        super().__init__(caps, KinematicModel(self.arm), safety)
        self.scene = scene if scene is not None else default_scene()
        self.model: mujoco.MjModel | None = None
        self.data: mujoco.MjData | None = None
        self.recorder = None  # anything with maybe_capture(sim_time), e.g. a MujocoVideoRecorder
        self._rig: CameraRig | None = None  # renderers, created on the first capture

    # -- lifecycle ---------------------------------------------------------------------------
    def _connect(self) -> None:
        self.model = build_model(self.scene, self.arm)
        self.data = mujoco.MjData(self.model)
        m, d, n = self.model, self.data, self.capabilities.dof
        self._ctrl_arm = d.ctrl[:n]
        self._qpos_arm = d.qpos[:n]
        self._qvel_arm = d.qvel[:n]
        self._qfrc_act = d.qfrc_actuator[:n]
        self._qfrc_applied = d.qfrc_applied[:n]
        self._finger_adr = [m.joint(j).qposadr[0] for j in self.arm.finger_joints]
        self._opening = self.arm.finger_opening  # finger joint position -> opening (m)
        self._grip_act = m.actuator(self.arm.gripper_actuator).id
        self._servo_gain = m.actuator_gainprm[:n, 0].copy()
        self._servo_bias = m.actuator_biasprm[:n, :3].copy()
        # Live views of MuJoCo's instability counters (NaN/huge qpos, qvel, qacc), bound
        # once because polling them every tick must be cheap.
        self._instability_stats = [
            d.warning[int(w)]
            for w in (
                mujoco.mjtWarning.mjWARN_BADQPOS,
                mujoco.mjtWarning.mjWARN_BADQVEL,
                mujoco.mjtWarning.mjWARN_BADQACC,
            )
        ]
        self._speed_bound = speed_bound(self.capabilities)
        self._speed_buf = np.empty(n)
        self._mode = "joint_position"
        self._brake_until: float | None = None  # simulation time a running brake gives up
        self._brake_acc = np.zeros(m.nv)  # the brake's joint accelerations, full length
        self._brake_force = np.zeros(m.nv)
        self._brake_limit = BRAKE_DECELERATION * self.capabilities.acceleration_limit
        self.reset()

    def _disconnect(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
        if self._rig is not None:
            self._rig.close()
            self._rig = None

    def reset(self, q: np.ndarray | None = None) -> RobotState:
        """Put the arm at ``q`` (default: home) with the gripper open and every object at its
        scene pose."""
        m, d = self._require()
        q = self.arm.home_q if q is None else np.asarray(q, dtype=float)
        mujoco.mj_resetData(m, d)
        d.qpos[: self.capabilities.dof] = q
        for adr in self._finger_adr:
            d.qpos[adr] = self.arm.finger_joint_position(self.arm.finger_travel)
        self._brake_until = None
        self._set_mode("joint_position")
        self._ctrl_arm[:] = q
        d.ctrl[self._grip_act] = self.arm.gripper_ctrl(self.arm.finger_travel)
        self._grip_goal = self._grip_target = self.arm.finger_travel
        self._grip_rate = 0.0
        mujoco.mj_forward(m, d)
        self._instabilities = sum(stat.number for stat in self._instability_stats)
        state = self.read()
        self.safety.reset(state.q)
        self.safety.reset_estop()
        return state

    # -- the Robot interface -------------------------------------------------------------------
    def read(self) -> RobotState:
        """The current state (kinematics are current after every step); kept as ``_last_state``."""
        d = self.data
        if d is None:
            _, d = self._require()  # raises: not connected
        qpos = d.qpos
        state = RobotState(
            time=d.time,
            q=self._qpos_arm.copy(),
            dq=self._qvel_arm.copy(),
            tau=self._qfrc_act + self._qfrc_applied,
            gripper_width=self._opening(qpos[self._finger_adr[0]])
            + self._opening(qpos[self._finger_adr[1]]),
            gripper_force=-d.actuator_force[self._grip_act],
            q_desired=self._ctrl_arm.copy() if self._mode != "joint_torque" else None,
        )
        self._last_state = state
        return state

    def wait_for_tick(self) -> None:
        """Advance the physics by one control period; `SimulationDiverged` if it blew up
        (MuJoCo's instability warnings, or an arm joint faster than
        `hw.sim.divergence.speed_bound`)."""
        m, d = self.model, self.data
        if m is None or d is None:
            m, d = self._require()  # raises: not connected
        if self._grip_rate:
            self._advance_gripper()
        for _ in range(self.substeps):
            if self._brake_until is not None:
                self._brake_step(m, d)
            mujoco.mj_step2(m, d)
            mujoco.mj_step1(m, d)
        if self._brake_until is not None:
            self._brake_check(d)
        pos, vel, acc = self._instability_stats
        if pos.number + vel.number + acc.number != self._instabilities:
            self._instabilities = pos.number + vel.number + acc.number
            raise SimulationDiverged(
                f"simulation diverged at t={d.time:.3f} s (non-finite or huge positions, "
                "velocities or accelerations); the state is invalid — reset() before continuing"
            )
        speed = np.abs(self._qvel_arm, out=self._speed_buf)
        if (speed > self._speed_bound).any():  # a blow-up, caught on its first tick
            raise SimulationDiverged(runaway_message(self._qvel_arm, self._speed_bound, d.time))
        if self.recorder is not None:
            self.recorder.maybe_capture(d.time)

    def brake(self) -> None:
        """Brake every joint to rest at the drives (see the module docstring), then hold
        there; joint commands are ignored until the arm is at rest (`braking`). An arm
        already at rest (every joint slower than `BRAKE_FROM`) is left to the hold command,
        which then stays exactly what it was."""
        _, d = self._require()
        if self._brake_until is None and float(np.max(np.abs(self._qvel_arm))) >= BRAKE_FROM:
            self._set_mode("joint_torque")
            self._brake_until = d.time + BRAKE_TIMEOUT_S

    @property
    def braking(self) -> bool:
        """Whether `brake` is still bringing the arm to rest."""
        return self._brake_until is not None

    def _brake_step(self, m: mujoco.MjModel, d: mujoco.MjData) -> None:
        """One physics step of the brake: the joint torques that cancel each joint's speed
        in one step, at most `_brake_limit` of deceleration and the torque limits."""
        n = self.capabilities.dof
        acc = self._brake_acc
        np.clip(
            self._qvel_arm * (-1.0 / m.opt.timestep),
            -self._brake_limit,
            self._brake_limit,
            out=acc[:n],
        )
        mujoco.mj_mulM(m, d, self._brake_force, acc)
        tau = self._brake_force[:n] + d.qfrc_bias[:n] - d.qfrc_passive[:n]
        limit = self.capabilities.torque_limit
        np.clip(tau, -limit, limit, out=self._qfrc_applied)

    def _brake_check(self, d: mujoco.MjData) -> None:
        """End the brake once the arm rests (or it timed out): the servos hold there, and the
        safety filter is re-armed there."""
        assert self._brake_until is not None
        if float(np.max(np.abs(self._qvel_arm))) >= BRAKE_AT_REST and d.time < self._brake_until:
            return
        self._brake_until = None
        self._set_mode("joint_position")  # the servos take over where the arm is
        self.safety.reset(self._qpos_arm.copy())

    def _send(self, cmd: JointCommand) -> None:
        if self._brake_until is not None:
            return  # the drives are braking: targets wait until the arm is at rest
        mode = cmd.mode
        if mode != self._mode:
            self._set_mode(mode)
        if mode == "joint_position":
            self._ctrl_arm[:] = cmd.values
        elif mode == "joint_velocity":
            self._ctrl_arm += cmd.values * self.capabilities.control_dt
        else:
            self._qfrc_applied[:] = cmd.values

    def _send_gripper(self, cmd: GripperCommand) -> None:
        m, d = self._require()
        self._grip_goal = cmd.width / 2
        # The fingers move on from where they are, as a real gripper's do: after a grasp the
        # last target lies inside the object, and ramping from there would hold the fingers
        # shut for width/speed seconds after a release was asked for.
        self._grip_target = self._opening(d.qpos[self._finger_adr[0]])
        self._grip_rate = cmd.speed / 2 * self.capabilities.control_dt  # per finger, per tick
        m.actuator_forcerange[self._grip_act] = (-cmd.force, cmd.force)

    # -- simulation extras -------------------------------------------------------------------------
    def object_pose(self, name: str) -> Pose:
        """Ground-truth pose of a scene object (its geometric centre)."""
        m, d = self._require()
        bid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, name)
        if bid < 0 or name not in self.scene.names:
            raise KeyError(f"no object {name!r}; objects: {', '.join(self.scene.names)}")
        return Pose(d.xpos[bid].copy(), d.xquat[bid].copy())

    @property
    def cameras(self) -> dict[str, CameraSpec]:
        """The RGB-D cameras of this robot's model (`robot.camera.DEFAULT_CAMERAS`)."""
        return dict(DEFAULT_CAMERAS)

    def capture(self, name: str) -> RGBDFrame:
        """Render camera ``name`` now (`hw.sim.mujoco.cameras`); `RenderUnavailable` where
        offscreen OpenGL is missing, `KeyError` listing the cameras for an unknown name."""
        m, d = self._require()
        if self._rig is None or self._rig.model is not m:
            objects = set(self.scene.names)
            robot_bodies = {
                b
                for b in range(1, m.nbody)
                if m.body(b).name not in objects and not m.body(b).name.startswith("particle_")
            }
            self._rig = CameraRig(m, d, self.cameras, robot_bodies)
        return self._rig.capture(name)

    def ee_pose(self) -> Pose:
        """Ground-truth end-effector pose."""
        m, d = self._require()
        sid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, self.arm.ee_site)
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, d.site_xmat[sid])
        return Pose(d.site_xpos[sid].copy(), quat)

    # -- internals -------------------------------------------------------------------------------
    def _require(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        if self.model is None or self.data is None:
            from skillstack.hw.robot import DeviceNotConnectedError

            raise DeviceNotConnectedError("MujocoRobot: call connect() (or use `with`) first")
        return self.model, self.data

    def _set_mode(self, mode: str) -> None:
        m, _ = self._require()
        n = self.capabilities.dof
        if mode == "joint_torque":
            m.actuator_gainprm[:n, 0] = 0.0
            m.actuator_biasprm[:n, :3] = 0.0
        else:
            m.actuator_gainprm[:n, 0] = self._servo_gain
            m.actuator_biasprm[:n, :3] = self._servo_bias
            self._qfrc_applied[:] = 0.0
            if self._mode == "joint_torque":  # resume servoing where the arm is now
                self._ctrl_arm[:] = self._qpos_arm
        self._mode = mode

    def _advance_gripper(self) -> None:
        target, goal, step = self._grip_target, self._grip_goal, self._grip_rate
        if abs(goal - target) <= step:
            target, self._grip_rate = goal, 0.0
        else:
            target += math.copysign(step, goal - target)
        self._grip_target = target
        _, d = self._require()
        d.ctrl[self._grip_act] = self.arm.gripper_ctrl(target)
