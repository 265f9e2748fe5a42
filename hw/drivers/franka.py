"""Franka Emika Panda and Franka Research 3 through franky (``pip install franky-control``).

What this adapter really achieves
---------------------------------
The Franka Control Interface (FCI) runs a 1 kHz real-time loop (`FCI_RATE_HZ`), and
libfranka requires every cycle to be answered within 1 ms. franky runs that loop in its
own C++ thread and exposes *motions* to Python, not a per-cycle callback. So this adapter
does **not** stream 1 kHz commands from Python. Instead:

* ``joint_position`` — each tick (default `DEFAULT_CONTROL_RATE_HZ` = 100 Hz, at most
  `MAX_CONTROL_RATE_HZ`) the filtered target becomes a new asynchronous
  ``JointMotion(JointState(q, dq))``, where ``dq`` is the velocity the safety filter
  implies between consecutive targets. franky's Ruckig generator takes over from the
  running motion and reaches (q, dq) at 1 kHz within the robot's velocity, acceleration
  and jerk limits, scaled by ``relative_dynamics_factor``. The arm therefore follows the
  stream one tick behind, smoothed by Ruckig; it is not a 1 kHz position servo.
* ``joint_velocity`` — each tick becomes a ``JointVelocityMotion(dq)`` held for
  `VELOCITY_HOLD_TICKS` ticks: if Python stops streaming, franky ramps to zero.
* ``joint_torque`` is **not offered**: franky has no Python per-cycle torque interface.
  For torque control from Python use panda-python (``panda_py``): its ``AppliedTorque``
  controller, started with ``Panda.start_controller`` and fed by ``set_control`` inside a
  ``Panda.create_context(frequency=1000)`` loop, is the alternative (not implemented here).
* `stop` queues franky's ``JointStopMotion`` / ``JointVelocityStopMotion``, which
  decelerate within the dynamics limits. franky's ``Robot.stop()`` is not used: it
  preempts the control loop with an exception instead of decelerating.

``read`` returns q, dq and the measured link-side torques ``tau_J`` from franky's
``Robot.state`` (the latest 1 kHz sample while a motion runs), ``q_d`` as
``q_desired``, and a monotonic timestamp. The gripper (Franka Hand) is polled at most
every `GRIPPER_POLL_PERIOD_S`, because each ``Gripper.width`` read is a network round trip.

Limits
------
Panda: Franka's "Robot and interface specifications" (FCI documentation), as in
`robot.arms.panda`. FR3: the position-independent ("conservative") joint position and
velocity limits of the FR3 section of the same page — the FR3's full velocity limits
depend on the joint position, which a constant `Capabilities` cannot express.

Untested without hardware: everything past the SDK boundary — that franky accepts the
calls as made here (written against franky-control 2.0's type stubs), Ruckig's tracking
of a 100 Hz stream, the reflex behaviour, the gripper timing.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from hw.drivers import DriverRobot, import_sdk
from hw.robot import RobotError
from robot.arms import get_arm, panda
from robot.kinematics import KinematicModel
from robot.safety import SafetyConfig
from robot.types import Capabilities, GripperCommand, JointCommand, RobotState

FCI_RATE_HZ = 1000.0  # Hz, libfranka's real-time loop (run by franky, not by Python)
DEFAULT_CONTROL_RATE_HZ = 100.0  # Hz, rate at which this adapter streams motion targets
MAX_CONTROL_RATE_HZ = FCI_RATE_HZ
VELOCITY_HOLD_TICKS = 3  # a velocity command stays in force this many ticks, then ramps to 0
GRIPPER_POLL_PERIOD_S = 0.05  # s, the Franka Hand's width is read at most this often
GRASP_EPSILON = 0.08  # m, grasp tolerance: any final width counts, the force is what matters
DEFAULT_DYNAMICS_FACTOR = 1.0  # franky's relative_dynamics_factor; the safety filter limits
MOTION_JOIN_TIMEOUT_S = 2.0  # s, longest wait for a stop motion before a mode switch

# Franka Research 3, "Limits for Franka Research 3" (FCI documentation), the
# position-independent set. Joint 4's range is negative, as on the Panda.
FR3_JOINT_LOWER = np.array([-2.3093, -1.5133, -2.4937, -2.7478, -2.4800, 0.8521, -2.6895])  # rad
FR3_JOINT_UPPER = np.array([2.3093, 1.5133, 2.4937, -0.4461, 2.4800, 4.2094, 2.6895])  # rad
FR3_VELOCITY_LIMIT = np.array([2.0, 1.0, 1.5, 1.25, 3.0, 1.5, 3.0])  # rad/s
FR3_ACCELERATION_LIMIT = np.full(7, 10.0)  # rad/s^2
FR3_TORQUE_LIMIT = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])  # N m

MODELS = ("panda", "fr3")
COMMAND_MODES = ("joint_position", "joint_velocity")

CONNECT_CHECKS = (
    "the arm is powered and its joints are unlocked in Desk; FCI is activated in Desk; "
    "this PC reaches the host (ping it) on the control network, not the Desk network port "
    "of the base; no other FCI client is connected; the libfranka bundled with franky "
    "matches the robot's system version; for realtime_config=Enforce, a PREEMPT_RT kernel; "
    "gripper=False if no Franka Hand is attached"
)


def capabilities(
    model: str = "panda", control_rate_hz: float = DEFAULT_CONTROL_RATE_HZ
) -> Capabilities:
    """Declared limits of a Panda or FR3 driven through franky at ``control_rate_hz``."""
    if model not in MODELS:
        raise ValueError(f"unknown Franka model {model!r}; valid models: {', '.join(MODELS)}")
    if not 0.0 < control_rate_hz <= MAX_CONTROL_RATE_HZ:
        raise ValueError(
            f"control_rate_hz must be in (0, {MAX_CONTROL_RATE_HZ:g}] Hz, got {control_rate_hz}"
        )
    caps = panda.capabilities(float(control_rate_hz))
    if model == "fr3":
        caps = dataclasses.replace(
            caps,
            joint_lower=FR3_JOINT_LOWER.copy(),
            joint_upper=FR3_JOINT_UPPER.copy(),
            velocity_limit=FR3_VELOCITY_LIMIT.copy(),
            acceleration_limit=FR3_ACCELERATION_LIMIT.copy(),
            torque_limit=FR3_TORQUE_LIMIT.copy(),
        )
    return dataclasses.replace(caps, name=f"franka-{model}", command_modes=COMMAND_MODES)


class FrankaRobot(DriverRobot):
    """A Panda or FR3 behind the `Robot` interface, through franky.

    Args:
        host: the FCI address of the arm (the control unit's robot network).
        model: ``"panda"`` or ``"fr3"``.
        control_rate_hz: how often `wait_for_tick` returns and targets are streamed.
        relative_dynamics_factor: franky's scaling of velocity, acceleration and jerk.
        gripper: connect the Franka Hand.
        safety: safety filter limits. The workspace check uses the Panda kinematic model
            (the FR3 has the same kinematic parameters).
        robot_options: more keyword arguments for ``franky.Robot`` (e.g.
            ``realtime_config``).
    """

    driver_name = "Franka"

    def __init__(
        self,
        host: str,
        *,
        model: str = "panda",
        control_rate_hz: float = DEFAULT_CONTROL_RATE_HZ,
        relative_dynamics_factor: float = DEFAULT_DYNAMICS_FACTOR,
        gripper: bool = True,
        safety: SafetyConfig = SafetyConfig(),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        robot_options: dict | None = None,
    ):
        self._franky = import_sdk(
            "franky", driver="Franka", package="franky-control", extra="franka"
        )
        caps = capabilities(model, control_rate_hz)
        if not gripper:
            caps = dataclasses.replace(caps, gripper=None)
        super().__init__(
            host,
            caps,
            kinematics=KinematicModel(get_arm("panda")),
            safety=safety,
            clock=clock,
            sleep=sleep,
        )
        self.model = model
        self.relative_dynamics_factor = float(relative_dynamics_factor)
        self._robot_options = dict(robot_options or {})
        self._robot = None
        self._gripper = None
        self._mode: str | None = None  # control signal type of the running motion
        self._last_target: np.ndarray | None = None
        self._gripper_width = 0.0
        self._gripper_read_at = -np.inf
        hold_ms = VELOCITY_HOLD_TICKS * 1000.0 / caps.control_rate_hz
        self._velocity_hold_ms = max(1, round(hold_ms))

    # -- lifecycle ------------------------------------------------------------------------
    def _connect(self) -> None:
        fr = self._franky
        try:
            self._robot = fr.Robot(self.host, **self._robot_options)
            self._robot.relative_dynamics_factor = self.relative_dynamics_factor
            if self.capabilities.gripper is not None:
                self._gripper = fr.Gripper(self.host)
        except Exception as exc:  # franky raises NetworkException, IncompatibleVersion...
            self._robot = self._gripper = None
            raise self._connection_error(exc, CONNECT_CHECKS) from None
        self._mode = None
        self._last_target = None
        self._gripper_read_at = -np.inf

    def _disconnect(self) -> None:
        # franky closes the connection when its objects are released.
        self._robot = self._gripper = None
        self._mode = None

    # -- the Robot interface ---------------------------------------------------------------
    def read(self) -> RobotState:
        """q, dq, measured torques tau_J and q_d from franky; gripper width polled."""
        robot = self._require()
        try:
            s = robot.state
        except Exception as exc:
            raise self._motion_error(exc) from None
        now = self.clock()
        if self._gripper is not None and now - self._gripper_read_at >= GRIPPER_POLL_PERIOD_S:
            self._gripper_width = float(self._gripper.width)
            self._gripper_read_at = now
        state = RobotState(
            time=now,
            q=np.array(s.q, dtype=float),
            dq=np.array(s.dq, dtype=float),
            tau=np.array(s.tau_J, dtype=float),
            gripper_width=self._gripper_width,
            q_desired=np.array(s.q_d, dtype=float),
        )
        self._last_state = state
        return state

    def _send(self, cmd: JointCommand) -> None:
        fr, robot = self._franky, self._require()
        mode = cmd.mode
        if mode == "joint_torque":
            raise RobotError(
                "franky exposes no per-cycle torque interface; use panda-python for torque"
            )
        if self._mode is not None and mode != self._mode:
            # franky refuses to change the control signal type while a motion runs.
            self._stop_motion()
            robot.join_motion(MOTION_JOIN_TIMEOUT_S)
            self._last_target = None
        values = np.asarray(cmd.values, dtype=float)
        try:
            if mode == "joint_position":
                prev = self._last_target if self._last_target is not None else values
                velocity = (values - prev) * self.capabilities.control_rate_hz
                target = fr.JointState(values, velocity)
                motion = fr.JointMotion(target, return_when_finished=False)
                self._last_target = values.copy()
            else:
                duration = fr.Duration(self._velocity_hold_ms)
                motion = fr.JointVelocityMotion(values, duration=duration)
            robot.move(motion, asynchronous=True)
        except Exception as exc:
            raise self._motion_error(exc) from None
        self._mode = mode

    def _send_gripper(self, cmd: GripperCommand) -> None:
        if self._gripper is None:
            raise RobotError("the Franka driver was created with gripper=False")
        current = self._gripper_width
        if cmd.width < current:  # closing: grasp, so the force limit applies on contact
            self._gripper.grasp_async(cmd.width, cmd.speed, cmd.force, GRASP_EPSILON, GRASP_EPSILON)
        else:
            self._gripper.move_async(cmd.width, cmd.speed)

    def _stop_motion(self) -> None:
        fr, robot = self._franky, self._require()
        if self._mode is None:
            return
        stop = fr.JointVelocityStopMotion() if self._mode == "joint_velocity" else None
        robot.move(stop if stop is not None else fr.JointStopMotion(), asynchronous=True)
        self._last_target = None

    # -- extras ----------------------------------------------------------------------------
    def recover(self) -> bool:
        """Run franky's automatic error recovery after a reflex; True if it succeeded."""
        ok = bool(self._require().recover_from_errors())
        self._mode = None
        self.safety.reset(self.read().q)
        return ok

    # -- internals ---------------------------------------------------------------------------
    def _require(self):
        if self._robot is None:
            raise self._not_connected()
        return self._robot

    def _motion_error(self, exc: BaseException) -> RobotError:
        self._mode = None
        return RobotError(
            f"Franka at {self.host}: {type(exc).__name__}: {exc}. The arm stopped (reflex or "
            "lost connection); check the cause, then call recover() and command again"
        )
