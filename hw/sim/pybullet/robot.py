"""The PyBullet backend: the same simulated Panda and scene as MuJoCo, in a second engine.

``PybulletRobot(scene)`` implements the `hw.robot.Robot` interface with the MuJoCo backend's
capabilities (1 kHz control, one 1 ms physics step per tick, joint_position / joint_velocity
/ joint_torque modes, a speed- and force-limited gripper, `reset(q)`), the ground-truth
queries of `hw.sim.truth.SimTruth` (`hw.sim.pybullet.truth`), RGB-D cameras and videos
(`hw.sim.pybullet.camera`). Each robot owns its own DIRECT (headless) client, so several can
coexist in one process.

How the arm is driven:

* ``joint_position`` — Bullet's joint motors (`setJointMotorControlArray`, POSITION_CONTROL):
  an implicit velocity constraint per joint, limited to the joint's torque limit, whose
  target velocity is the command's rate of change plus `POSITION_GAIN` times the position
  error per step. Implicit, so stable at 1 ms with stiff gains, and gravity is held without
  droop as the Panda's own controller does.
* ``joint_velocity`` — integrated into a position target each tick (as in MuJoCo).
* ``joint_torque`` — motors off, torques applied directly plus gravity compensation from
  `calculateInverseDynamics` (as libfranka's torque interface does).
* gripper — both fingers position-servoed to a target that moves at the commanded speed,
  each with half the commanded force (so the squeeze equals MuJoCo's single servo acting
  through the finger coupling), plus a gear constraint that keeps the fingers symmetric
  (the URDF's ``<mimic>``, which Bullet ignores).

Divergence (non-finite joint states, an arm joint over `hw.sim.divergence.speed_bound`,
objects thrown out of the world) raises `hw.sim.divergence.SimulationDiverged`, like
MuJoCo's instability warnings do, on the first control tick it shows.
"""

from __future__ import annotations

import math

import numpy as np
import pybullet as pb

from skillstack.hw.robot import DeviceNotConnectedError, RobotError
from skillstack.hw.robot import Robot as _Robot
from skillstack.hw.sim.divergence import SimulationDiverged, runaway_message, speed_bound
from skillstack.hw.sim.pybullet.camera import PybulletCameras
from skillstack.hw.sim.pybullet.scene import BuiltScene, build_scene
from skillstack.hw.sim.pybullet.truth import PybulletTruth
from skillstack.hw.sim.timing import PHYSICS_DT, control_timing
from skillstack.robot.arms import Arm, get_arm
from skillstack.robot.arms import panda as panda_constants
from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.safety import SafetyConfig
from skillstack.robot.scene import Scene, default_scene
from skillstack.robot.types import GripperCommand, JointCommand, Pose, RobotState

POSITION_GAIN = 0.2  # fraction of the position error corrected per step by the joint motors
VELOCITY_GAIN = 1.0  # weight of the velocity target in the motor constraint
GRIPPER_POSITION_GAIN = 0.05  # softer: the fingers close on objects, not through them
GEAR_MAX_FORCE = 100.0  # N, finger coupling strength
SOLVER_ITERATIONS = 50  # Bullet's default, stated: contacts of the pinch grasp converge
JOINT_DAMPING = panda_constants.JOINT_DAMPING  # N m s/rad, as in the MuJoCo model
WORLD_RADIUS = 20.0  # m; an object further away than this was thrown out by an instability
OBJECT_CHECK_PERIOD = 50  # ticks between divergence checks of the objects


class PybulletRobot(PybulletTruth, PybulletCameras, _Robot):
    """A simulated Panda on the table of ``scene``, in PyBullet.

    Args:
        scene: objects on the table; `default_scene()` if None.
        arm: arm name or `Arm` (the PyBullet backend builds the Panda only).
        control_rate_hz: overrides the arm's declared rate; a whole number of 1 ms steps.
        safety: limits of the safety filter.
        cameras: name -> `robot.camera.CameraSpec`; `robot.camera.DEFAULT_CAMERAS` if None.
    """

    arm: Arm  # a simulator always builds its own arm

    def __init__(
        self,
        scene: Scene | None = None,
        arm: str | Arm = "panda",
        *,
        control_rate_hz: float | None = None,
        safety: SafetyConfig = SafetyConfig(),
        cameras: dict | None = None,
    ):
        self.arm = get_arm(arm) if isinstance(arm, str) else arm
        if self.arm.name != panda_constants.NAME:
            raise ValueError(
                f"the PyBullet backend builds the Panda only, not {self.arm.name!r}; "
                "use --backend mujoco for other arms"
            )
        caps, self.substeps = control_timing(self.arm.capabilities, control_rate_hz)
        super().__init__(caps, KinematicModel(self.arm), safety)
        self.scene = scene if scene is not None else default_scene()
        self._init_cameras(cameras)
        self.client: int | None = None
        self.built: BuiltScene | None = None
        self.recorder = None  # anything with maybe_capture(sim_time), e.g. a video recorder

    # -- lifecycle ---------------------------------------------------------------------------
    def _connect(self) -> None:
        cid = pb.connect(pb.DIRECT)
        self.client = cid
        pb.setGravity(0.0, 0.0, -9.81, physicsClientId=cid)
        pb.setTimeStep(PHYSICS_DT, physicsClientId=cid)
        pb.setPhysicsEngineParameter(
            numSolverIterations=SOLVER_ITERATIONS,
            deterministicOverlappingPairs=1,
            physicsClientId=cid,
        )
        built = self.built = build_scene(cid, self.scene)
        body = built.arm
        joints = {
            pb.getJointInfo(body, j, physicsClientId=cid)[1].decode(): j
            for j in range(pb.getNumJoints(body, physicsClientId=cid))
        }
        self._arm_joints = [joints[n] for n in self.arm.capabilities.joint_names]
        self._finger_joints = [joints[n] for n in self.arm.finger_joints]
        self._all_joints = self._arm_joints + self._finger_joints
        self._ee_link = joints["panda_grasptarget_hand"]
        self._link_names = {
            j: pb.getJointInfo(body, j, physicsClientId=cid)[12].decode()
            for j in range(pb.getNumJoints(body, physicsClientId=cid))
        }
        for j in self._arm_joints:
            pb.changeDynamics(body, j, jointDamping=JOINT_DAMPING, physicsClientId=cid)
        # Bullet damps every body's motion a little by default; MuJoCo does not.
        for b in [body, *built.objects.values(), *built.particles]:
            for link in range(-1, pb.getNumJoints(b, physicsClientId=cid)):
                pb.changeDynamics(
                    b, link, linearDamping=0.0, angularDamping=0.0, physicsClientId=cid
                )
        gear = pb.createConstraint(
            body,
            self._finger_joints[0],
            body,
            self._finger_joints[1],
            pb.JOINT_GEAR,
            [1, 0, 0],
            [0, 0, 0],
            [0, 0, 0],
            physicsClientId=cid,
        )
        pb.changeConstraint(gear, gearRatio=-1, maxForce=GEAR_MAX_FORCE, physicsClientId=cid)
        self._initial = {
            b: pb.getBasePositionAndOrientation(b, physicsClientId=cid)
            for b in [*built.objects.values(), *built.particles]
        }
        self._torque_limit = self.capabilities.torque_limit.copy()
        self._speed_bound = speed_bound(self.capabilities)
        self._mode = "joint_position"
        self._steps = 0
        self.reset()

    def _disconnect(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
        self._close_shadow()
        if self.client is not None:
            pb.disconnect(physicsClientId=self.client)
            self.client = None
            self.built = None

    def reset(self, q: np.ndarray | None = None) -> RobotState:
        """Put the arm at ``q`` (default: home) with the gripper open and every object at its
        scene pose, at rest, with the clock at zero."""
        cid, body = self._require()
        q = self.arm.home_q if q is None else np.asarray(q, dtype=float)
        for j, v in zip(self._arm_joints, q, strict=True):
            pb.resetJointState(body, j, float(v), 0.0, physicsClientId=cid)
        for j in self._finger_joints:
            pb.resetJointState(body, j, self.arm.finger_travel, 0.0, physicsClientId=cid)
        for b, (pos, orn) in self._initial.items():
            pb.resetBasePositionAndOrientation(b, pos, orn, physicsClientId=cid)
            pb.resetBaseVelocity(b, [0, 0, 0], [0, 0, 0], physicsClientId=cid)
        self._steps = 0
        self._q_target = q.copy()
        self._dq_target = np.zeros(len(q))
        self._mode = "joint_position"
        self._apply_position_targets()
        self._grip_goal = self._grip_target = self.arm.finger_travel
        self._grip_rate = 0.0
        gripper = self.capabilities.gripper
        assert gripper is not None  # every arm in robot.arms has one
        self._grip_force = gripper.max_force
        self._apply_gripper()
        state = self.read()
        self.safety.reset(state.q)
        self.safety.reset_estop()
        return state

    # -- the Robot interface -------------------------------------------------------------------
    def read(self) -> RobotState:
        """The current state from Bullet's joint states; kept as ``_last_state``."""
        cid, body = self._require()
        states = pb.getJointStates(body, self._all_joints, physicsClientId=cid)
        pos = np.array([s[0] for s in states])
        vel = np.array([s[1] for s in states])
        applied = np.array([s[3] for s in states])
        n = self.capabilities.dof
        tau = self._tau_applied if self._mode == "joint_torque" else applied[:n]
        state = RobotState(
            time=self._steps * PHYSICS_DT,
            q=pos[:n],
            dq=vel[:n],
            tau=np.array(tau, dtype=float),
            gripper_width=float(pos[n] + pos[n + 1]),
            gripper_force=float(-(applied[n] + applied[n + 1])),
            q_desired=self._q_target.copy() if self._mode != "joint_torque" else None,
        )
        self._last_state = state
        return state

    def wait_for_tick(self) -> None:
        """Advance the physics by one control period; `SimulationDiverged` if it blew up."""
        cid, _ = self._require()
        if self._grip_rate:
            self._advance_gripper()
        for _ in range(self.substeps):
            if self._mode == "joint_torque":
                self._apply_torques()
            pb.stepSimulation(physicsClientId=cid)
            self._steps += 1
        self._check_divergence()
        if self.recorder is not None:
            self.recorder.maybe_capture(self._steps * PHYSICS_DT)

    def _send(self, cmd: JointCommand) -> None:
        mode, dt = cmd.mode, self.capabilities.control_dt
        if mode != self._mode:
            self._set_mode(mode)
        values = np.asarray(cmd.values, dtype=float)
        if mode == "joint_position":
            self._dq_target = (values - self._q_target) / dt
            self._q_target = values.copy()
            self._apply_position_targets()
        elif mode == "joint_velocity":
            self._dq_target = values.copy()
            self._q_target = self._q_target + values * dt
            self._apply_position_targets()
        else:
            self._tau_cmd = values.copy()

    def _send_gripper(self, cmd: GripperCommand) -> None:
        self._require()
        self._grip_goal = cmd.width / 2
        self._grip_rate = cmd.speed / 2 * self.capabilities.control_dt  # per finger, per tick
        self._grip_force = cmd.force
        self._apply_gripper()

    # -- simulation extras -------------------------------------------------------------------------
    @property
    def sim_time(self) -> float:
        """Simulated seconds since the last reset."""
        return self._steps * PHYSICS_DT

    def object_pose(self, name: str) -> Pose:
        """Ground-truth pose of a scene object (its geometric centre)."""
        cid, built = self._require_scene()
        body = built.objects.get(name)
        if body is None:
            raise KeyError(f"no object {name!r}; objects: {', '.join(self.scene.names)}")
        pos, (x, y, z, w) = pb.getBasePositionAndOrientation(body, physicsClientId=cid)
        return Pose(np.array(pos), np.array([w, x, y, z]))

    def ee_pose(self) -> Pose:
        """Ground-truth end-effector pose (the URDF's grasp target, MuJoCo's ``ee`` site)."""
        cid, body = self._require()
        link = pb.getLinkState(body, self._ee_link, computeForwardKinematics=1, physicsClientId=cid)
        x, y, z, w = link[5]
        return Pose(np.array(link[4]), np.array([w, x, y, z]))

    # -- internals -------------------------------------------------------------------------------
    def _require_scene(self) -> tuple[int, BuiltScene]:
        if self.client is None or self.built is None:
            raise DeviceNotConnectedError("PybulletRobot: call connect() (or use `with`) first")
        return self.client, self.built

    def _require(self) -> tuple[int, int]:
        cid, built = self._require_scene()
        return cid, built.arm

    def _apply_position_targets(self) -> None:
        cid, body = self._require()
        n = self.capabilities.dof
        pb.setJointMotorControlArray(
            body,
            self._arm_joints,
            pb.POSITION_CONTROL,
            targetPositions=self._q_target.tolist(),
            targetVelocities=self._dq_target.tolist(),
            forces=self._torque_limit.tolist(),
            positionGains=[POSITION_GAIN] * n,
            velocityGains=[VELOCITY_GAIN] * n,
            physicsClientId=cid,
        )

    def _apply_gripper(self) -> None:
        cid, body = self._require()
        force = self._grip_force / 2  # per finger; see the module docstring
        pb.setJointMotorControlArray(
            body,
            self._finger_joints,
            pb.POSITION_CONTROL,
            targetPositions=[self._grip_target] * 2,
            forces=[force, force],
            positionGains=[GRIPPER_POSITION_GAIN] * 2,
            physicsClientId=cid,
        )

    def _advance_gripper(self) -> None:
        target, goal, step = self._grip_target, self._grip_goal, self._grip_rate
        if abs(goal - target) <= step:
            target, self._grip_rate = goal, 0.0
        else:
            target += math.copysign(step, goal - target)
        self._grip_target = target
        self._apply_gripper()

    def _set_mode(self, mode: str) -> None:
        cid, body = self._require()
        n = self.capabilities.dof
        if mode not in self.capabilities.command_modes:
            raise RobotError(f"unsupported mode {mode!r}")
        if mode == "joint_torque":
            # Bullet's motors stay on until told otherwise: switch them off to apply torques.
            pb.setJointMotorControlArray(
                body, self._arm_joints, pb.VELOCITY_CONTROL, forces=[0.0] * n, physicsClientId=cid
            )
            self._tau_cmd = np.zeros(n)
            self._tau_applied = np.zeros(n)
        elif self._mode == "joint_torque":  # resume servoing where the arm is now
            self._q_target = self.read().q.copy()
            self._dq_target = np.zeros(n)
        self._mode = mode
        if mode != "joint_torque":
            self._apply_position_targets()

    def _apply_torques(self) -> None:
        cid, body = self._require()
        states = pb.getJointStates(body, self._all_joints, physicsClientId=cid)
        q = [s[0] for s in states]
        zeros = [0.0] * len(q)
        gravity = pb.calculateInverseDynamics(body, q, zeros, zeros, physicsClientId=cid)
        n = self.capabilities.dof
        tau = np.clip(
            self._tau_cmd + np.asarray(gravity[:n]), -self._torque_limit, self._torque_limit
        )
        self._tau_applied = tau
        pb.setJointMotorControlArray(
            body, self._arm_joints, pb.TORQUE_CONTROL, forces=tau.tolist(), physicsClientId=cid
        )

    def _check_divergence(self) -> None:
        last = self.read()
        bad = not (np.isfinite(last.q).all() and np.isfinite(last.dq).all())
        if not bad and (np.abs(last.dq) > self._speed_bound).any():  # caught on its first tick
            raise SimulationDiverged(runaway_message(last.dq, self._speed_bound, self.sim_time))
        if not bad and self._steps % OBJECT_CHECK_PERIOD == 0:
            cid = self.client
            for b in self._initial:
                p = pb.getBasePositionAndOrientation(b, physicsClientId=cid)[0]
                if not (
                    math.isfinite(p[0] + p[1] + p[2])
                    and abs(p[0]) + abs(p[1]) + abs(p[2]) < WORLD_RADIUS
                ):
                    bad = True
                    break
        if bad:
            raise SimulationDiverged(
                f"simulation diverged at t={self.sim_time:.3f} s (non-finite joint states, or "
                "an object thrown out of the world); the state is invalid — "
                "reset() before continuing"
            )
