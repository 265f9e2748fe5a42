"""UFACTORY xArm 6 and xArm 7 through xarm-python-sdk (``xarm.wrapper.XArmAPI``).

What this adapter really achieves
---------------------------------
The SDK speaks degrees and millimetres by default. This adapter creates ``XArmAPI`` with
``is_radian=True`` and also passes ``is_radian=True`` on every joint call, so joint values
cross the boundary in radians; the gripper's native unit (pulses, 0 = closed,
`GRIPPER_OPEN_PULSE` = open) and speed unit (motor r/min) are converted from and to
metres and m/s here.

* ``joint_position`` → servo mode (``set_mode(1)``) and ``set_servo_angle_j(q)``. In
  servo mode the controller executes only the latest target, at full speed, with no
  interpolation of its own: the motion is exactly as smooth as the stream, which is why
  every target must first pass the safety filter. UFACTORY suggests 100-250 Hz; the
  default here is `DEFAULT_CONTROL_RATE_HZ` = 100 Hz, at most `MAX_CONTROL_RATE_HZ`.
* ``joint_velocity`` → joint velocity mode (``set_mode(4)``) and
  ``vc_set_joint_velocity(dq, is_sync=False, duration)``: each command lapses after
  `VELOCITY_HOLD_TICKS` ticks (firmware ≥ 1.8), so a stalled stream stops the arm.
* ``joint_torque`` is not offered (the SDK has no joint torque command).
* `stop`: in velocity mode, a zero velocity command (the controller decelerates); in
  servo mode, ``set_state(4)`` (the SDK's stop: halt and drop pending targets), then
  servo mode is re-armed so the arm holds where it stopped.

``read`` uses ``get_joint_states(is_radian=True)`` (firmware ≥ 1.9): positions,
velocities and the controller's joint efforts as ``tau``; a monotonic timestamp. Each
read is one request/response on the command socket (UFACTORY advises ≤ 250 Hz). The
gripper position is a Modbus round trip through the controller, so it is polled at most
every `GRIPPER_POLL_PERIOD_S`.

Limits
------
Joint ranges and torques: UFACTORY's own robot description (xarm_ros2,
``xarm_description/urdf/xarm{6,7}/*.urdf.xacro``), the same ranges as the SDK's
``XCONF.Robot.JOINT_LIMITS`` for hardware type X4 (xArm 7 and xArm 6). Some other types
mirror a joint's range (xArm 7 type X3: joint 4 in [-225°, 11°]; xArm 6 type X8: joint 3
in [-11°, 225°]); on those, the SDK refuses targets outside its range with a non-zero
code, which this adapter raises as `RobotError` — check ``XCONF.Robot.JOINT_LIMITS`` for
your arm's type before use. Joint speed: 180°/s, the xArm datasheet's maximum joint speed
(3.14 rad/s in the same description). Acceleration: 20 rad/s², the SDK's upper bound for
``set_joint_maxacc``. Gripper: xArm Gripper, nominal 86 mm stroke over pulses 0-850; the
pulse-to-width map is taken as linear (`GRIPPER_OPEN_WIDTH` / `GRIPPER_OPEN_PULSE`) —
measure yours. The SDK's position command has no force input, so
``GripperCommand.force`` is not applied.

Untested without hardware: the SDK's behaviour behind these calls (written against
xarm-python-sdk 1.18's source), servo-mode smoothness at 100 Hz, the gripper's
pulse-to-width linearity, error recovery.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import numpy as np

from skillstack.hw.drivers.base import (
    FLAG_OPTION,
    DriverRobot,
    choice_option,
    import_sdk,
    number_option,
    option_table,
)
from skillstack.hw.robot import RobotError
from skillstack.robot.arms import ARMS, get_arm
from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.safety import SafetyConfig
from skillstack.robot.types import (
    Capabilities,
    CommandMode,
    GripperCommand,
    GripperSpec,
    JointCommand,
    RobotState,
)

DEFAULT_CONTROL_RATE_HZ = 100.0  # Hz, servo-mode command rate
MAX_CONTROL_RATE_HZ = 250.0  # Hz, the most UFACTORY suggests for servo mode and state reads
VELOCITY_HOLD_TICKS = 3  # a velocity command lapses after this many ticks
GRIPPER_POLL_PERIOD_S = 0.1  # s, the gripper position is read at most this often

SERVO_MODE = 1  # XArmAPI.set_mode: servo motion mode (set_servo_angle_j)
VELOCITY_MODE = 4  # XArmAPI.set_mode: joint velocity control mode
READY_STATE = 0  # XArmAPI.set_state: motion state
STOP_STATE = 4  # XArmAPI.set_state: stop state

JOINT_SPEED_LIMIT = math.radians(180.0)  # rad/s, xArm datasheet maximum joint speed
JOINT_ACCELERATION_LIMIT = 20.0  # rad/s^2, the SDK's bound for set_joint_maxacc

GRIPPER_OPEN_PULSE = 850.0  # pulses, xArm Gripper fully open (0 = closed)
GRIPPER_OPEN_WIDTH = 0.086  # m, xArm Gripper stroke at GRIPPER_OPEN_PULSE
GRIPPER_MAX_SPEED_RPM = 5000.0  # r/min, fastest gripper motor speed this adapter commands
# GripperSpec needs SI figures; UFACTORY states speed in motor r/min and the position API
# takes no force. These two are nominal, used for clipping only.
GRIPPER_NOMINAL_MAX_SPEED = 0.1  # m/s, mapped linearly onto GRIPPER_MAX_SPEED_RPM
GRIPPER_NOMINAL_MAX_FORCE = 30.0  # N, not commanded
GRIPPER = GripperSpec(
    max_width=GRIPPER_OPEN_WIDTH,
    max_force=GRIPPER_NOMINAL_MAX_FORCE,
    max_speed=GRIPPER_NOMINAL_MAX_SPEED,
)

_TURN = 2.0 * math.pi


@dataclasses.dataclass(frozen=True)
class XArmModel:
    """Joint ranges (rad) and torques (N m) from UFACTORY's robot description."""

    lower: tuple[float, ...]
    upper: tuple[float, ...]
    torque: tuple[float, ...]


MODELS: dict[str, XArmModel] = {
    "xarm7": XArmModel(
        lower=(-_TURN, -2.059, -_TURN, -0.19198, -_TURN, -1.69297, -_TURN),
        upper=(_TURN, 2.0944, _TURN, 3.927, _TURN, math.pi, _TURN),
        torque=(50.0, 50.0, 30.0, 30.0, 30.0, 20.0, 20.0),
    ),
    "xarm6": XArmModel(
        lower=(-_TURN, -2.059, -3.927, -_TURN, -1.69297, -_TURN),
        upper=(_TURN, 2.0944, 0.19198, _TURN, math.pi, _TURN),
        torque=(50.0, 50.0, 32.0, 32.0, 32.0, 20.0),
    ),
}
COMMAND_MODES: tuple[CommandMode, ...] = ("joint_position", "joint_velocity")

CONNECT_CHECKS = (
    "the control box is on and the arm powered (emergency stop released); the host is "
    "the control box's IP address (XArmAPI treats anything that is not an IPv4 address or "
    "'localhost' as a serial port); this PC reaches it and TCP port 502 is open; xArm "
    "Studio or another client is not driving the arm"
)


def capabilities(
    model: str = "xarm7", control_rate_hz: float = DEFAULT_CONTROL_RATE_HZ, gripper: bool = True
) -> Capabilities:
    """Declared limits of an xArm ``model`` commanded at ``control_rate_hz``."""
    try:
        spec = MODELS[model]
    except KeyError:
        raise ValueError(
            f"unknown xArm model {model!r}; valid models: {', '.join(MODELS)}"
        ) from None
    if not 0.0 < control_rate_hz <= MAX_CONTROL_RATE_HZ:
        raise ValueError(
            f"control_rate_hz must be in (0, {MAX_CONTROL_RATE_HZ:g}] Hz, got {control_rate_hz}"
        )
    dof = len(spec.lower)
    return Capabilities(
        name=model,
        dof=dof,
        joint_names=tuple(f"joint{i}" for i in range(1, dof + 1)),
        joint_lower=np.array(spec.lower),
        joint_upper=np.array(spec.upper),
        velocity_limit=np.full(dof, JOINT_SPEED_LIMIT),
        acceleration_limit=np.full(dof, JOINT_ACCELERATION_LIMIT),
        torque_limit=np.array(spec.torque),
        control_rate_hz=float(control_rate_hz),
        command_modes=COMMAND_MODES,
        gripper=GRIPPER if gripper else None,
    )


def width_to_pulse(width: float) -> float:
    """Gripper opening in metres → xArm Gripper position in pulses (0 closed, 850 open)."""
    return min(max(width, 0.0), GRIPPER_OPEN_WIDTH) * (GRIPPER_OPEN_PULSE / GRIPPER_OPEN_WIDTH)


def pulse_to_width(pulse: float) -> float:
    """xArm Gripper position in pulses → opening in metres (clipped to the stroke)."""
    return min(max(pulse, 0.0), GRIPPER_OPEN_PULSE) * (GRIPPER_OPEN_WIDTH / GRIPPER_OPEN_PULSE)


def speed_to_rpm(speed: float) -> float:
    """Finger speed in m/s → gripper motor speed in r/min (nominal linear map)."""
    fraction = min(max(speed / GRIPPER_NOMINAL_MAX_SPEED, 0.0), 1.0)
    return fraction * GRIPPER_MAX_SPEED_RPM


class XArmRobot(DriverRobot):
    """An xArm 6 or 7 behind the `Robot` interface, through xarm-python-sdk.

    Args:
        host: the control box's IPv4 address.
        model: ``"xarm7"`` or ``"xarm6"``.
        control_rate_hz: servo-mode command rate.
        gripper: an xArm Gripper is fitted.
        safety: safety filter limits. The xArm 6 has a kinematic model in `robot.arms`
            (`robot.arms.xarm6`, from UFACTORY's description): its workspace box is checked
            and skills plan with it. The xArm 7 has none yet: joint limits are checked, the
            workspace is not, and skills refuse it (they need the model).
    """

    driver_name = "xArm"
    OPTIONS = option_table(
        model=choice_option(tuple(MODELS)),
        control_rate_hz=number_option(0.0, MAX_CONTROL_RATE_HZ, unit="Hz"),
        gripper=FLAG_OPTION,
    )

    def __init__(
        self,
        host: str,
        *,
        model: str = "xarm7",
        control_rate_hz: float = DEFAULT_CONTROL_RATE_HZ,
        gripper: bool = True,
        safety: SafetyConfig = SafetyConfig(),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        wrapper = import_sdk("xarm.wrapper", driver="xArm", package="xarm-python-sdk", extra="xarm")
        self._api_class = wrapper.XArmAPI
        caps = capabilities(model, control_rate_hz, gripper)
        kinematics = KinematicModel(get_arm(model)) if model in ARMS else None
        super().__init__(host, caps, kinematics=kinematics, safety=safety, clock=clock, sleep=sleep)
        self.model = model
        self._arm = None
        self._mode: int | None = None
        self._gripper_width = 0.0
        self._gripper_read_at = -np.inf
        self._velocity_hold_s = VELOCITY_HOLD_TICKS * caps.control_dt

    # -- lifecycle ------------------------------------------------------------------------
    def _connect(self) -> None:
        try:
            arm = self._api_class(self.host, is_radian=True, do_not_open=True)
            arm.connect()
        except Exception as exc:  # the SDK raises a bare Exception('connect socket failed')
            raise self._connection_error(exc, CONNECT_CHECKS) from None
        self._arm = arm
        try:
            if getattr(arm, "error_code", 0):
                raise RobotError(
                    f"xArm at {self.host} reports controller error {arm.error_code}: look it "
                    "up in the xArm manual, remove the cause, then clear it (xArm Studio, or "
                    "XArmAPI.clean_error()) and connect again"
                )
            self._check(arm.motion_enable(True), "motion_enable(True)")
            self._enter_mode(SERVO_MODE)
            if self.capabilities.gripper is not None:
                self._check(arm.set_gripper_mode(0), "set_gripper_mode(0)")
                self._check(arm.set_gripper_enable(True), "set_gripper_enable(True)")
        except Exception:
            self._release()
            raise
        self._gripper_read_at = -np.inf

    def _disconnect(self) -> None:
        self._release()

    def _release(self) -> None:
        arm, self._arm, self._mode = self._arm, None, None
        if arm is not None:
            try:
                arm.disconnect()
            except Exception:  # the socket is already gone: nothing left to release
                pass

    # -- the Robot interface ---------------------------------------------------------------
    def read(self) -> RobotState:
        """Joint positions, velocities and efforts in SI units; gripper width polled."""
        arm = self._require()
        code, states = arm.get_joint_states(is_radian=True)
        self._check(code, "get_joint_states")
        dof = self.capabilities.dof
        position, velocity, effort = states[0], states[1], states[2]
        now = self.clock()
        if self.capabilities.gripper is not None:
            if now - self._gripper_read_at >= GRIPPER_POLL_PERIOD_S:
                code, pulse = arm.get_gripper_position()
                self._check(code, "get_gripper_position")
                self._gripper_width = pulse_to_width(float(pulse))
                self._gripper_read_at = now
        state = RobotState(
            time=now,
            q=np.array(position[:dof], dtype=float),
            dq=np.array(velocity[:dof], dtype=float),
            tau=np.array(effort[:dof], dtype=float),
            gripper_width=self._gripper_width,
        )
        self._last_state = state
        return state

    def _send(self, cmd: JointCommand) -> None:
        arm = self._require()
        values = [float(v) for v in cmd.values]
        if cmd.mode == "joint_position":
            self._enter_mode(SERVO_MODE)
            self._check(arm.set_servo_angle_j(values, is_radian=True), "set_servo_angle_j")
        elif cmd.mode == "joint_velocity":
            self._enter_mode(VELOCITY_MODE)
            code = arm.vc_set_joint_velocity(
                values, is_radian=True, is_sync=False, duration=self._velocity_hold_s
            )
            self._check(code, "vc_set_joint_velocity")
        else:
            raise RobotError(f"the xArm driver does not support {cmd.mode!r}")

    def _send_gripper(self, cmd: GripperCommand) -> None:
        arm = self._require()
        code = arm.set_gripper_position(
            width_to_pulse(cmd.width), wait=False, speed=speed_to_rpm(cmd.speed)
        )
        self._check(code, "set_gripper_position")

    def _stop_motion(self) -> None:
        arm = self._require()
        if self._mode == VELOCITY_MODE:
            zero = [0.0] * self.capabilities.dof
            code = arm.vc_set_joint_velocity(zero, is_radian=True, is_sync=False, duration=0)
            self._check(code, "vc_set_joint_velocity(0)")
            return
        self._check(arm.set_state(STOP_STATE), "set_state(4)")
        self._mode = None
        self._enter_mode(SERVO_MODE)

    # -- internals ---------------------------------------------------------------------------
    def _enter_mode(self, mode: int) -> None:
        if self._mode == mode:
            return
        arm = self._require()
        self._check(arm.set_mode(mode), f"set_mode({mode})")
        self._check(arm.set_state(READY_STATE), "set_state(0)")
        self._mode = mode

    def _require(self):
        if self._arm is None:
            raise self._not_connected()
        return self._arm

    def _check(self, code, call: str) -> None:
        if code not in (0, None):
            raise RobotError(
                f"xArm at {self.host}: {call} returned code {code} (see the SDK's API code "
                "table; an error or warning on the controller must be cleared before moving)"
            )
