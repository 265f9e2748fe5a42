# Over 400 lines: about a third is the docstring recording what was measured against franky-sim.
"""Franka Emika Panda and Franka Research 3 through franky (``pip install franky-control``).

What this adapter really achieves
---------------------------------
The Franka Control Interface (FCI) runs a 1 kHz real-time loop (`FCI_RATE_HZ`), and
libfranka requires every cycle to be answered within 1 ms. franky runs that loop in its
own C++ thread and exposes *motions* to Python, not a per-cycle callback. So this adapter
does **not** stream 1 kHz commands from Python. Instead:

* ``joint_position`` — each tick (default `DEFAULT_CONTROL_RATE_HZ` = 100 Hz, at most
  `MAX_CONTROL_RATE_HZ`) the filtered target becomes a new asynchronous
  ``JointMotion(JointState(q, dq))``, ``dq`` being the stream's own velocity (the step
  from the previous target times the declared rate: the caller meant one step per tick,
  whatever the jitter of the tick that carried it). franky's Ruckig generator takes over
  from the running motion and reaches (q, dq) at 1 kHz. Ruckig is time-optimal: left to
  the robot's full velocity limit it *catches up* on the target one tick ahead by
  overshooting the stream's speed (measured on franky-sim, a 0.1 rad/s wrist profile
  streamed at 100 Hz: the commanded position ``q_d`` peaked at 1.2-1.9x that speed over
  1 ms, 1.3-1.8x over 10 ms, the more the busier the PC). So each motion's velocity
  limit is scaled (``RelativeDynamicsFactor(v, 1, 1)``) to `SPEED_MARGIN` above the
  fastest speed the stream asked for over the last `SPEED_MEMORY_S` (as a fraction of
  franky's joint velocity limits, at least `MIN_VELOCITY_FACTOR`): the arm never runs
  faster than it was recently told to, and still makes up a lag when the stream slows
  down (measured: ``q_d`` within 1.05x over 10 ms on an idle PC, 1.16x on a busy one,
  where franky's own thread misses cycles). Acceleration and jerk keep
  ``relative_dynamics_factor``. The first motion of a stream (after connecting, a stop,
  a mode switch or an error) is not scaled: it starts from the ``dq_d``/``ddq_d`` the
  robot reports, franky-sim reports stale ones at rest (0.04 rad/s, 4 rad/s^2 measured),
  and with every motion scaled Ruckig twice failed to plan (errors -111 and -101; the
  second time again for every motion that followed) in about 60 runs of the suite.
  Should Ruckig still fail to plan a motion (`PLANNER_FAILURE`), the stream restarts once
  from rest (counted in ``planner_restarts``) before the failure becomes an error.
  A target repeated unchanged while the running motion already holds it is not re-sent
  (the motion holds it; franky is polled for errors instead). The arm follows the
  stream about one tick behind; it is not a 1 kHz position servo.
* ``joint_velocity`` — each tick becomes a ``JointVelocityMotion(dq)`` held for
  `VELOCITY_HOLD_TICKS` ticks: if Python stops streaming, franky ramps to zero.
* ``joint_torque`` is **not offered**: franky has no Python per-cycle torque interface.
  For torque control from Python use panda-python (``panda_py``): its ``AppliedTorque``
  controller, started with ``Panda.start_controller`` and fed by ``set_control`` inside a
  ``Panda.create_context(frequency=1000)`` loop, is the alternative (not implemented here).
* `stop` queues franky's ``JointStopMotion`` / ``JointVelocityStopMotion``, which
  decelerate within the dynamics limits, then (`DriverRobot.stop`) waits until every
  joint is slower than ``STOP_SETTLED_SPEED``. franky's ``Robot.stop()`` is not used: it
  preempts the control loop with an exception instead of decelerating.

``read`` returns q, the measured link-side torques ``tau_J`` and ``q_d`` (as
``q_desired``) from franky's ``Robot.state`` (the latest 1 kHz sample while a motion
runs), a monotonic timestamp, and as ``dq`` the **mean measured velocity over the last
`VELOCITY_WINDOW_S`**: the change of q between two libfranka samples at least that far
apart on the robot's own clock, divided by their time difference. A 100 Hz reader of a
1 kHz signal needs it averaged first, or components above 50 Hz alias into what it
reads; franky-sim's wrist, for one, sits in a 500 Hz limit cycle of +-0.077 rad/s after
any motion (its MuJoCo joint servo, kv dt / inertia = 2.6 > 2 at 1 ms steps), which
libfranka's instantaneous ``dq`` reports while the joint moves by 0.08 mrad. Without a
sample that old and at most `VELOCITY_MAX_AGE_S` old (the first read, or reads far
apart) ``dq`` is libfranka's instantaneous one. The gripper (Franka Hand) is polled at
most every `GRIPPER_POLL_PERIOD_S`, because each ``Gripper.width`` read is a network
round trip.

Options (`FrankaRobot.OPTIONS`, ``--robot-option KEY=VALUE``): ``model=panda|fr3``,
``realtime_config=enforce|ignore`` (libfranka's check for a PREEMPT_RT kernel; ``ignore``
for franky-sim or a test bench without real-time guarantees), ``control_rate_hz``,
``relative_dynamics_factor``, ``gripper=true|false``.

Limits
------
Panda: Franka's "Robot and interface specifications" (FCI documentation), as in
`robot.arms.panda`. FR3: the position-independent ("conservative") joint position and
velocity limits of the FR3 section of the same page — the FR3's full velocity limits
depend on the joint position, which a constant `Capabilities` cannot express.

What has been exercised
-----------------------
Against franky-sim 1.0.4 (an FR3 in MuJoCo behind the real libfranka protocol) with
franky-control 2.0.0, ``realtime_config=ignore``, on a non-real-time Linux kernel:
connecting (and the realtime refusal without ``ignore``, and a host with nothing
listening), ``read``, ``joint_position`` streaming at 100 Hz, `stop`, the e-stop, the
Franka Hand's move and grasp — the whole HAL conformance suite (`hw.conformance`,
``skillstack hw check``), see sim_tests/test_franka_sim.py. Not exercised: a real arm
(Ruckig's tracking as a real joint controller follows ``q_d``, reflexes and
``recover()``, the FCI's communication-constraint errors under a loaded PC, the real
hand's timing, the FR3's position-dependent limits), ``realtime_config=enforce`` on a
PREEMPT_RT kernel, ``joint_velocity`` streaming beyond the unit test's fake SDK, and the
Panda (FER) with its older libfranka.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from skillstack.hw.drivers.base import (
    FLAG_OPTION,
    DriverConnectionError,
    DriverRobot,
    caller_scheduling_kept,
    choice_option,
    import_sdk,
    number_option,
    option_table,
)
from skillstack.hw.robot import RobotError
from skillstack.robot.arms import get_arm, panda
from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.safety import SafetyConfig
from skillstack.robot.types import (
    Capabilities,
    CommandMode,
    GripperCommand,
    JointCommand,
    RobotState,
)

FCI_RATE_HZ = 1000.0  # Hz, libfranka's real-time loop (run by franky, not by Python)
DEFAULT_CONTROL_RATE_HZ = 100.0  # Hz, rate at which this adapter streams motion targets
MAX_CONTROL_RATE_HZ = FCI_RATE_HZ
VELOCITY_HOLD_TICKS = 3  # a velocity command stays in force this many ticks, then ramps to 0
GRIPPER_POLL_PERIOD_S = 0.05  # s, the Franka Hand's width is read at most this often
GRASP_EPSILON = 0.08  # m, grasp tolerance: any final width counts, the force is what matters
DEFAULT_DYNAMICS_FACTOR = 1.0  # franky's relative_dynamics_factor; the safety filter limits
MOTION_JOIN_TIMEOUT_S = 2.0  # s, longest wait for a stop motion before a mode switch
SPEED_MARGIN = 0.05  # a streamed target is reached at most this much faster than ...
SPEED_MEMORY_S = 0.2  # s, ... the fastest the stream moved within this past window
MIN_VELOCITY_FACTOR = 0.01  # floor of each motion's velocity scaling (holds, first ticks)
VELOCITY_WINDOW_S = 0.02  # s, dq is the mean measured velocity over at least this long ...
VELOCITY_MAX_AGE_S = 0.1  # s, ... and at most this long (else libfranka's instantaneous dq)
# franky's trajectory generator (Ruckig) sometimes fails to plan a motion from the state the
# robot reports (errors -111 and -101 seen against franky-sim, more often on a loaded PC).
# The failed motion ends; the stream restarts once from rest before it counts as an error.
PLANNER_FAILURE = "Motion planner failed"
REALTIME_CONFIGS = ("enforce", "ignore")  # libfranka's RealtimeConfig.Enforce / .Ignore

# Franka Research 3, "Limits for Franka Research 3" (FCI documentation), the
# position-independent set. Joint 4's range is negative, as on the Panda.
FR3_JOINT_LOWER = np.array([-2.3093, -1.5133, -2.4937, -2.7478, -2.4800, 0.8521, -2.6895])  # rad
FR3_JOINT_UPPER = np.array([2.3093, 1.5133, 2.4937, -0.4461, 2.4800, 4.2094, 2.6895])  # rad
FR3_VELOCITY_LIMIT = np.array([2.0, 1.0, 1.5, 1.25, 3.0, 1.5, 3.0])  # rad/s
FR3_ACCELERATION_LIMIT = np.full(7, 10.0)  # rad/s^2
FR3_TORQUE_LIMIT = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])  # N m

MODELS = ("panda", "fr3")
COMMAND_MODES: tuple[CommandMode, ...] = ("joint_position", "joint_velocity")

CONNECT_CHECKS = (
    "the arm is powered and its joints are unlocked in Desk; FCI is activated in Desk; "
    "this PC reaches the host (ping it) on the control network, not the Desk network port "
    "of the base; no other FCI client is connected; the libfranka bundled with franky "
    "matches the robot's system version; gripper=false if no Franka Hand is attached"
)
REALTIME_CHECKS = (
    "libfranka refuses to run without a real-time (PREEMPT_RT) kernel unless told to: on a "
    "real arm, boot a PREEMPT_RT kernel and grant this user real-time scheduling "
    "(libfranka's 'Setting up the real-time kernel'); for a simulator (franky-sim) or a "
    "bench where missed 1 ms cycles are acceptable, pass the option realtime_config=ignore "
    "(--robot-option realtime_config=ignore)"
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
        realtime_config: ``"enforce"`` (libfranka's default: refuse to run without a
            PREEMPT_RT kernel) or ``"ignore"`` (franky-sim, benches).
        safety: safety filter limits. The workspace check uses the Panda kinematic model
            (the FR3 has the same kinematic parameters).
        robot_options: more keyword arguments for ``franky.Robot`` (e.g.
            ``default_torque_threshold``); they override the ones above.
    """

    driver_name = "Franka"
    OPTIONS = option_table(
        model=choice_option(MODELS),
        realtime_config=choice_option(REALTIME_CONFIGS),
        control_rate_hz=number_option(0.0, MAX_CONTROL_RATE_HZ, unit="Hz"),
        relative_dynamics_factor=number_option(0.0, 1.0),
        gripper=FLAG_OPTION,
    )

    def __init__(
        self,
        host: str,
        *,
        model: str = "panda",
        control_rate_hz: float = DEFAULT_CONTROL_RATE_HZ,
        relative_dynamics_factor: float = DEFAULT_DYNAMICS_FACTOR,
        gripper: bool = True,
        realtime_config: str = "enforce",
        safety: SafetyConfig = SafetyConfig(),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        robot_options: dict | None = None,
    ):
        self._franky = import_sdk(
            "franky", driver="Franka", package="franky-control", extra="franka"
        )
        if realtime_config not in REALTIME_CONFIGS:
            raise ValueError(
                f"realtime_config must be one of {', '.join(REALTIME_CONFIGS)}, "
                f"got {realtime_config!r}"
            )
        if not 0.0 < relative_dynamics_factor <= 1.0:
            raise ValueError(
                f"relative_dynamics_factor must be in (0, 1], got {relative_dynamics_factor}"
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
        self.realtime_config = realtime_config
        self.relative_dynamics_factor = float(relative_dynamics_factor)
        self._robot_options = dict(robot_options or {})
        self._robot: Any | None = None  # franky.Robot while connected
        self._gripper: Any | None = None  # franky.Gripper while connected, if asked for
        self._mode: str | None = None  # control signal type of the running motion
        self._last_target: np.ndarray | None = None
        self._held: np.ndarray | None = None  # target the running motion holds at rest
        memory = max(1, round(SPEED_MEMORY_S * caps.control_rate_hz))
        self._speed_fractions: deque[float] = deque(maxlen=memory)
        self._velocity_limit = caps.velocity_limit.copy()  # replaced by franky's on connect
        self._samples: deque[tuple[float, np.ndarray]] = deque()  # (robot time s, q)
        self._gripper_width = 0.0
        self._gripper_read_at = -np.inf
        self.planner_restarts = 0  # motions re-planned from rest after a `PLANNER_FAILURE`
        hold_ms = VELOCITY_HOLD_TICKS * 1000.0 / caps.control_rate_hz
        self._velocity_hold_ms = max(1, round(hold_ms))

    # -- lifecycle ------------------------------------------------------------------------
    def _connect(self) -> None:
        fr = self._franky
        realtime = getattr(fr.RealtimeConfig, self.realtime_config.capitalize())
        options = {"realtime_config": realtime, **self._robot_options}
        try:
            with caller_scheduling_kept():  # libfranka makes the caller SCHED_FIFO 99
                self._robot = fr.Robot(self.host, **options)
                if self.capabilities.gripper is not None:
                    self._gripper = fr.Gripper(self.host)
            self._robot.relative_dynamics_factor = self.relative_dynamics_factor
        except Exception as exc:  # franky raises NetworkException, RealtimeException, ...
            self._robot = self._gripper = None
            raise self._bring_up_error(exc) from None
        try:  # Ruckig's velocity limits, which each motion's velocity factor scales
            limit = np.asarray(self._robot.joint_velocity_limit.get(), dtype=float)
            if limit.shape == (7,) and np.all(limit > 0):
                self._velocity_limit = limit
        except (AttributeError, TypeError, ValueError):
            pass  # an SDK without the property: the declared limits are the fallback
        self._reset_stream()
        self._samples.clear()
        self._gripper_read_at = -np.inf

    def _disconnect(self) -> None:
        # franky closes the connection when its objects are released.
        self._robot = self._gripper = None
        self._reset_stream()

    # -- the Robot interface ---------------------------------------------------------------
    def read(self) -> RobotState:
        """q, tau_J and q_d from franky, dq averaged over `VELOCITY_WINDOW_S`; gripper polled."""
        robot = self._require()
        try:
            s = robot.state
        except Exception as exc:
            raise self._motion_error(exc) from None
        now = self.clock()
        if self._gripper is not None and now - self._gripper_read_at >= GRIPPER_POLL_PERIOD_S:
            self._gripper_width = float(self._gripper.width)
            self._gripper_read_at = now
        q = np.array(s.q, dtype=float)
        state = RobotState(
            time=now,
            q=q,
            dq=self._mean_velocity(s, q),
            tau=np.array(s.tau_J, dtype=float),
            gripper_width=self._gripper_width,
            q_desired=np.array(s.q_d, dtype=float),
            wrench=_wrench(s),
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
        values = np.asarray(cmd.values, dtype=float)
        for retry in (False, True):
            try:
                if mode == "joint_position":
                    motion = self._position_motion(values)
                    if motion is None:
                        return  # the running motion already holds this target
                else:
                    duration = fr.Duration(self._velocity_hold_ms)
                    motion = fr.JointVelocityMotion(values, duration=duration)
                robot.move(motion, asynchronous=True)
                break
            except Exception as exc:
                if retry or PLANNER_FAILURE not in str(exc):
                    raise self._motion_error(exc) from None
                self.planner_restarts += 1  # a planning failure: restart the stream from rest
                self._reset_stream()
        self._mode = mode

    def _position_motion(self, values: np.ndarray):
        """The franky motion for one streamed target, or None if it is already held."""
        fr, robot = self._franky, self._require()
        first = self._last_target is None  # after connect, a stop, a mode switch, an error
        prev = values if first else self._last_target
        velocity = (values - prev) * self.capabilities.control_rate_hz
        self._last_target = values.copy()
        self._speed_fractions.append(float(np.max(np.abs(velocity) / self._velocity_limit)))
        at_rest = not velocity.any()
        if at_rest and self._held is not None and np.array_equal(values, self._held):
            if robot.poll_motion():  # raises what went wrong in the motion, if anything
                return None
        self._held = values.copy() if at_rest else None
        # The first motion of a stream starts from whatever (dq_d, ddq_d) the robot reports
        # (franky-sim: stale values after a motion ended, 0.04 rad/s and 4 rad/s^2
        # measured); Ruckig may fail to plan from outside a tight limit, so no cap here.
        scale = 1.0 if first else self._velocity_factor()
        factor = fr.RelativeDynamicsFactor(scale, 1.0, 1.0)
        return fr.JointMotion(
            fr.JointState(values, velocity),
            relative_dynamics_factor=factor,
            return_when_finished=False,
        )

    def _velocity_factor(self) -> float:
        """This motion's velocity scaling: `SPEED_MARGIN` above the stream's recent top speed."""
        fastest = max(self._speed_fractions, default=0.0)  # of franky's limits
        factor = (1.0 + SPEED_MARGIN) * fastest / self.relative_dynamics_factor
        return min(1.0, max(MIN_VELOCITY_FACTOR, factor))

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
        mode = self._mode
        self._reset_stream()
        if mode is None:
            return
        stop = fr.JointVelocityStopMotion() if mode == "joint_velocity" else fr.JointStopMotion()
        try:
            robot.move(stop, asynchronous=True)
        except Exception as exc:
            raise self._motion_error(exc) from None

    # -- extras ----------------------------------------------------------------------------
    def recover(self) -> bool:
        """Run franky's automatic error recovery after a reflex; True if it succeeded."""
        ok = bool(self._require().recover_from_errors())
        self._reset_stream()
        self.safety.reset(self.read().q)
        return ok

    # -- internals ---------------------------------------------------------------------------
    def _require(self):
        if self._robot is None:
            raise self._not_connected()
        return self._robot

    def _reset_stream(self) -> None:
        """Forget the streamed targets: the next one starts from rest."""
        self._mode = None
        self._last_target = None
        self._held = None
        self._speed_fractions.clear()

    def _mean_velocity(self, s, q: np.ndarray) -> np.ndarray:
        """Mean velocity since the newest earlier sample at least `VELOCITY_WINDOW_S` old."""
        stamp = getattr(s, "time", None)
        t = stamp.to_sec() if stamp is not None else None
        samples = self._samples
        if t is None:
            return np.array(s.dq, dtype=float)
        if samples and t < samples[-1][0]:
            samples.clear()  # the robot's clock restarted
        if not samples or t > samples[-1][0]:
            samples.append((t, q))
        while len(samples) > 1 and t - samples[1][0] >= VELOCITY_WINDOW_S:
            samples.popleft()
        t0, q0 = samples[0]
        if not VELOCITY_WINDOW_S <= t - t0 <= VELOCITY_MAX_AGE_S:
            return np.array(s.dq, dtype=float)
        return (q - q0) / (t - t0)

    def _bring_up_error(self, exc: BaseException) -> DriverConnectionError:
        if type(exc).__name__ == "RealtimeException" or "realtime" in str(exc).lower():
            return self._connection_error(exc, REALTIME_CHECKS)
        return self._connection_error(exc, CONNECT_CHECKS)

    def _motion_error(self, exc: BaseException) -> RobotError:
        self._reset_stream()
        return RobotError(
            f"Franka at {self.host}: {type(exc).__name__}: {exc}. The arm stopped (reflex or "
            "lost connection); check the cause, then call recover() and command again"
        )


def _wrench(s) -> np.ndarray | None:
    """libfranka's estimated external wrench on the end effector in the base frame
    (``O_F_ext_hat_K``: N, N m), or None where the state has none."""
    wrench = getattr(s, "O_F_ext_hat_K", None)
    if wrench is None:
        return None
    values = np.array(wrench, dtype=float)
    return values if values.shape == (6,) and np.all(np.isfinite(values)) else None
