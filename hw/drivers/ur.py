"""Universal Robots e-Series (UR3e, UR5e, UR10e, UR16e) through ur_rtde.

What this adapter really achieves
---------------------------------
ur_rtde's ``RTDEControlInterface`` uploads a URScript to the controller and feeds it
over RTDE (port 30004); ``RTDEReceiveInterface`` streams the state. The e-Series
controller runs at 500 Hz (`CONTROL_RATE_HZ`), and this adapter sends one command per
tick from Python:

* ``joint_position`` → ``servoJ(q, 0, 0, dt, lookahead_time, gain)`` with ``dt`` the
  control period: the controller servos to q over dt, smoothed by ``lookahead_time``
  (s, 0.03-0.2) with proportional ``gain`` (100-2000). The speed and acceleration
  arguments are unused by servoJ.
* ``joint_velocity`` → ``speedJ(dq, a, dt)``: accelerate at ``a`` (the declared limit
  of the leading axis) to dq, keep it for dt.
* ``joint_torque`` is not offered (ur_rtde 1.6's ``directTorque`` needs a recent
  PolyScope and is left out).
* `stop` → ``servoStop`` (at `SERVO_STOP_DECELERATION`, m/s² of the tool, ur_rtde's
  unit) or ``speedStop`` (at `SPEED_STOP_DECELERATION`, rad/s² of the leading axis):
  decelerate and leave servo/speed mode.

Switching between position and velocity mode first stops the running mode. ``read``
returns ``getActualQ``, ``getActualQd``, ``getTargetQ`` (as ``q_desired``) and
``getTargetMoment`` as ``tau``: the controller's target joint torques, not a measurement.
UR arms have no built-in gripper: ``gripper`` is None and ``gripper_width`` reads 0.0.

Limits
------
Position and velocity: Universal Robots e-Series user manuals (UR3e/UR5e/UR10e/UR16e,
"Technical specifications", joint ranges ±360° and maximum joint speeds); the elbow is
limited to ±180° because the arm collides with itself beyond it (as in Universal
Robots' own ROS description). Torque: the "Max. joint torques" support article by joint
size (12/28/56/150/330 N m, 54 N m for the UR16e wrists). UR does not publish joint
acceleration limits: `ACCELERATION_LIMIT` is this stack's conservative choice.

Untested without hardware: that ur_rtde accepts the calls as made here (written against
ur_rtde 1.6.5's signatures), servoJ's tracking at 500 Hz from Python, protective-stop
handling, and the controller's Remote Control prerequisites.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from skillstack.hw.drivers.base import (
    DriverRobot,
    choice_option,
    import_sdk,
    number_option,
    option_table,
)
from skillstack.hw.robot import RobotError
from skillstack.robot.safety import SafetyConfig
from skillstack.robot.types import (
    Capabilities,
    CommandMode,
    GripperCommand,
    JointCommand,
    RobotState,
)

CONTROL_RATE_HZ = 500.0  # Hz, e-Series controller and RTDE rate
SERVO_LOOKAHEAD_S = 0.1  # s, servoJ lookahead_time (ur_rtde accepts 0.03-0.2)
SERVO_GAIN = 300.0  # servoJ proportional gain (ur_rtde accepts 100-2000)
SERVO_STOP_DECELERATION = 2.0  # m/s^2, tool deceleration of servoStop (ur_rtde's unit)
SPEED_STOP_DECELERATION = 2.0  # rad/s^2, leading-axis deceleration of speedStop after speedJ
ACCELERATION_LIMIT = math.pi  # rad/s^2, all joints: UR publishes none; conservative choice

JOINT_NAMES = (
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
)
_FULL_TURN = 2.0 * math.pi
JOINT_LOWER = np.array([-_FULL_TURN, -_FULL_TURN, -math.pi, -_FULL_TURN, -_FULL_TURN, -_FULL_TURN])
JOINT_UPPER = -JOINT_LOWER  # rad


@dataclass(frozen=True)
class URModel:
    """Per-model figures from the e-Series user manuals and the joint-torque article."""

    velocity_limit_deg: tuple[float, ...]  # °/s per joint
    torque_limit: tuple[float, ...]  # N m per joint


MODELS: dict[str, URModel] = {
    "ur3e": URModel((180, 180, 180, 360, 360, 360), (56, 56, 28, 12, 12, 12)),
    "ur5e": URModel((180, 180, 180, 180, 180, 180), (150, 150, 150, 28, 28, 28)),
    "ur10e": URModel((120, 120, 180, 180, 180, 180), (330, 330, 150, 56, 56, 56)),
    "ur16e": URModel((120, 120, 180, 180, 180, 180), (330, 330, 150, 54, 54, 54)),
}
COMMAND_MODES: tuple[CommandMode, ...] = ("joint_position", "joint_velocity")

CONNECT_CHECKS = (
    "the arm is powered on with brakes released (initialised in PolyScope); the teach "
    "pendant is in Remote Control mode (e-Series); this PC reaches the host and TCP ports "
    "30001-30004 are open; no other program or RTDE client holds the control interface; "
    "the robot is not in protective or emergency stop"
)


def capabilities(model: str = "ur5e", control_rate_hz: float = CONTROL_RATE_HZ) -> Capabilities:
    """Declared limits of a UR e-Series ``model`` commanded at ``control_rate_hz``."""
    try:
        spec = MODELS[model]
    except KeyError:
        raise ValueError(f"unknown UR model {model!r}; valid models: {', '.join(MODELS)}") from None
    if not 0.0 < control_rate_hz <= CONTROL_RATE_HZ:
        raise ValueError(
            f"control_rate_hz must be in (0, {CONTROL_RATE_HZ:g}] Hz, got {control_rate_hz}"
        )
    return Capabilities(
        name=model,
        dof=6,
        joint_names=JOINT_NAMES,
        joint_lower=JOINT_LOWER.copy(),
        joint_upper=JOINT_UPPER.copy(),
        velocity_limit=np.radians(spec.velocity_limit_deg),
        acceleration_limit=np.full(6, ACCELERATION_LIMIT),
        torque_limit=np.array(spec.torque_limit, dtype=float),
        control_rate_hz=float(control_rate_hz),
        command_modes=COMMAND_MODES,
        gripper=None,
    )


class URRobot(DriverRobot):
    """A UR e-Series arm behind the `Robot` interface, through ur_rtde.

    Args:
        host: the robot's IP address.
        model: one of `MODELS`.
        control_rate_hz: tick rate; 500 Hz (the controller's) unless the PC cannot keep up.
        lookahead_time: servoJ smoothing, s.
        gain: servoJ proportional gain.
        safety: safety filter limits. No UR kinematic model exists in `robot.arms` yet, so
            the workspace box is not checked; joint limits are.
    """

    driver_name = "UR"
    OPTIONS = option_table(
        model=choice_option(tuple(MODELS)),
        control_rate_hz=number_option(0.0, CONTROL_RATE_HZ, unit="Hz"),
        lookahead_time=number_option(0.03, 0.2, unit="s", low_inclusive=True),
        gain=number_option(100.0, 2000.0, low_inclusive=True),
    )

    def __init__(
        self,
        host: str,
        *,
        model: str = "ur5e",
        control_rate_hz: float = CONTROL_RATE_HZ,
        lookahead_time: float = SERVO_LOOKAHEAD_S,
        gain: float = SERVO_GAIN,
        safety: SafetyConfig = SafetyConfig(),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._rtde_control = import_sdk("rtde_control", driver="UR", package="ur_rtde", extra="ur")
        self._rtde_receive = import_sdk("rtde_receive", driver="UR", package="ur_rtde", extra="ur")
        if not 0.03 <= lookahead_time <= 0.2:
            raise ValueError(
                f"servoJ lookahead_time must be in [0.03, 0.2] s, got {lookahead_time}"
            )
        if not 100.0 <= gain <= 2000.0:
            raise ValueError(f"servoJ gain must be in [100, 2000], got {gain}")
        super().__init__(
            host, capabilities(model, control_rate_hz), safety=safety, clock=clock, sleep=sleep
        )
        self.model = model
        self.lookahead_time = float(lookahead_time)
        self.gain = float(gain)
        self._ctrl = None
        self._recv = None
        self._mode: str | None = None  # "joint_position" (servo) or "joint_velocity" (speed)

    # -- lifecycle ------------------------------------------------------------------------
    def _connect(self) -> None:
        rate = self.capabilities.control_rate_hz
        try:
            self._recv = self._rtde_receive.RTDEReceiveInterface(self.host, rate)
            self._ctrl = self._rtde_control.RTDEControlInterface(self.host, rate)
        except Exception as exc:  # ur_rtde raises RuntimeError("... verify the IP")
            self._close()
            raise self._connection_error(exc, CONNECT_CHECKS) from None
        self._mode = None

    def _disconnect(self) -> None:
        try:
            if self._ctrl is not None:
                self._ctrl.stopScript()  # end the uploaded control script on the controller
        finally:
            self._close()

    def _close(self) -> None:
        for handle in (self._ctrl, self._recv):
            if handle is not None:
                try:
                    handle.disconnect()
                except Exception:  # already gone: nothing left to release
                    pass
        self._ctrl = self._recv = None
        self._mode = None

    # -- the Robot interface ---------------------------------------------------------------
    def read(self) -> RobotState:
        """Actual q and dq, target q, target joint torques (not measured), monotonic time."""
        recv = self._recv
        if recv is None:
            raise self._not_connected()
        state = RobotState(
            time=self.clock(),
            q=np.array(recv.getActualQ(), dtype=float),
            dq=np.array(recv.getActualQd(), dtype=float),
            tau=np.array(recv.getTargetMoment(), dtype=float),
            gripper_width=0.0,
            q_desired=np.array(recv.getTargetQ(), dtype=float),
        )
        self._last_state = state
        return state

    def _send(self, cmd: JointCommand) -> None:
        ctrl = self._require()
        if cmd.mode not in COMMAND_MODES:
            raise RobotError(f"the UR driver does not support {cmd.mode!r}")
        if self._mode is not None and cmd.mode != self._mode:
            self._stop_motion()
        values = [float(v) for v in cmd.values]
        dt = self.capabilities.control_dt
        if cmd.mode == "joint_position":
            ok = ctrl.servoJ(values, 0.0, 0.0, dt, self.lookahead_time, self.gain)
        else:
            ok = ctrl.speedJ(values, float(self.capabilities.acceleration_limit.max()), dt)
        self._mode = cmd.mode
        if ok is False:
            raise RobotError(
                f"UR at {self.host} refused {cmd.mode} (protective stop, program stopped, or "
                "lost Remote Control?); check the pendant, then reconnect"
            )

    def _send_gripper(self, cmd: GripperCommand) -> None:
        raise RobotError("UR arms have no built-in gripper; this driver drives none")

    def _stop_motion(self) -> None:
        ctrl = self._require()
        if self._mode == "joint_position":
            ctrl.servoStop(SERVO_STOP_DECELERATION)
        elif self._mode == "joint_velocity":
            ctrl.speedStop(SPEED_STOP_DECELERATION)
        self._mode = None

    def _require(self):
        if self._ctrl is None:
            raise self._not_connected()
        return self._ctrl
