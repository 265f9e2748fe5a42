# Over 400 lines: one filter, every rule with its braking look-ahead, reviewed as one unit.
"""The safety filter: the last layer every command passes before any backend sees it.

Rules, checked on every command of every backend (simulated or real):

* **Well-formed input** — a command whose values are not a real-numbered array of one value
  per joint (complex, object, string, structured or boolean dtypes, array subclasses, wrong
  shape) or whose mode or stamp has the wrong type: refused (``bad_type`` / ``bad_shape`` /
  ``bad_mode``), never an exception.
* **Finite values** — NaN (quiet or signalling) or ±inf anywhere in a command: refused.
  Commanded positions are clamped into the joint range before any difference is formed, so
  no finite command (however large, e.g. alternating ±1e308) can make an intermediate
  overflow; the filter's own state is checked on every tick, and should it ever be
  non-finite the filter resets to a hold at the measured position (``bad_state``).
* **Joint limits** — position, velocity and acceleration, by finite differences at the
  control period against the previous output. A command within every limit passes through
  unchanged (bit-identical); one outside is clipped to the nearest feasible command. The
  velocity toward a position limit is capped so the joint can always brake to a stop
  before the limit, which is what lets position, velocity and acceleration limits hold
  together.
* **Workspace** — the end effector of the commanded configuration must stay inside a
  box and above the table plane, and so must every configuration the arm would pass through
  if it braked from the new output at the acceleration limits (the braking look-ahead):
  otherwise refused. The look-ahead costs nothing while the arm is far from the boundary
  (a bound on how far braking can carry the end effector, from `KinematicModel.joint_reach`)
  and a few forward-kinematics evaluations near it.
* **Torque mode** — torques are clipped to their limits, and with a kinematic model the
  next tick's joint velocities are predicted (``dq + dt M^-1 (tau - bias)``, bias being
  Coriolis, centrifugal and damping torques, plus what the model missed last tick); where a
  joint would exceed `TORQUE_SPEED_MARGIN` of its velocity limit, or could no longer brake
  (at half its acceleration limit) to rest `TORQUE_POSITION_MARGIN` inside its range, the
  torques are corrected (damping injection) to keep it inside. Torques that cannot (the
  limits, coupled through the inertia, leave it out of reach), a measured hand outside the
  workspace, or a braking look-ahead from the predicted state leaving it: a controlled stop
  from the measured motion, held until the arm is at rest. Without a model the stop
  (``torque_guard``) comes once a measured joint speed passes `FREE_TORQUE_SPEED` of its
  limit or nears a position limit.
* **Stale commands** — a command older than ``watchdog_timeout`` is refused (watchdog).
* **Emergency stop** — latched by `estop()`, cleared only by `reset_estop()`.

A *refused* command is replaced by a controlled stop: the joints decelerate at their
acceleration limits from the previous output and then hold still. The emergency stop is
stricter: from the very next tick the arm is held where it is measured to be (the brake of
a real arm), so no further motion is commanded. Each refusal is recorded as a `SafetyEvent`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.types import Capabilities, JointCommand, RobotState

Verdict = Literal["pass", "clipped", "refused", "estop"]
EventCode = Literal[
    "non_finite",
    "workspace",
    "table",
    "stale",
    "estop",
    "bad_shape",
    "bad_type",
    "bad_mode",
    "bad_state",
    "torque_guard",
    "clipped",
]
# Codes after which the arm was stopped rather than moved (everything but "clipped").
REFUSAL_CODES: tuple[EventCode, ...] = (
    "non_finite",
    "workspace",
    "table",
    "stale",
    "estop",
    "bad_shape",
    "bad_type",
    "bad_mode",
    "bad_state",
    "torque_guard",
)

# Limits are applied this fraction inside their nominal value, so that finite differences
# of the output, recomputed by anyone in floating point, never exceed the nominal limit.
LIMIT_SHRINK = 1.0 - 1e-9
RETURN_PROGRESS = 1e-7  # m per tick: the least progress back into the workspace that counts
LOOKAHEAD_FK_BUDGET = 48  # most forward-kinematics evaluations to certify one braking path
TORQUE_SPEED_MARGIN = 0.9  # torque mode: predicted joint speeds kept below this x the limit
FREE_TORQUE_SPEED = 0.5  # torque mode without a model: stop past this x the velocity limit
TORQUE_POSITION_MARGIN = 0.03  # rad, torque mode brakes to rest this far inside the range
TORQUE_REST_SPEED = 0.02  # x velocity limit: a torque-mode stop holds until joints are slower
_FLOAT64 = np.dtype(np.float64)


@dataclass(frozen=True)
class Workspace:
    """Axis-aligned box (world frame, metres) the end effector must stay in."""

    lower: tuple[float, float, float] = (-0.25, -0.75, 0.0)
    upper: tuple[float, float, float] = (0.90, 0.75, 0.90)
    table_z: float = 0.0  # m, the table plane
    table_clearance: float = 0.008  # m, fingertips reach this far below the ee site


@dataclass(frozen=True)
class SafetyConfig:
    """Limits of the safety filter. Joint limits come from the robot's `Capabilities`."""

    workspace: Workspace = Workspace()
    watchdog_timeout: float = 0.1  # s, older commands are refused
    position_margin: float = 0.0  # rad, shrink the joint range by this much on each side


@dataclass(frozen=True)
class SafetyEvent:
    """One intervention of the filter, with a message a person can act on."""

    time: float
    code: EventCode
    message: str


class SafetyFilter:
    """Clips or refuses joint commands; see the module docstring for the rules.

    The per-joint arithmetic runs on Python floats rather than numpy arrays: for seven
    joints that is several times faster than a dozen small-array numpy calls, and this
    runs on every tick of every backend.

    Args:
        capabilities: joint limits and control period of the robot.
        kinematics: used for the workspace check of commanded positions (None disables it).
    """

    def __init__(
        self,
        capabilities: Capabilities,
        kinematics: KinematicModel | None = None,
        config: SafetyConfig = SafetyConfig(),
    ):
        self.caps = capabilities
        self.kin = kinematics
        self.config = config
        self.dof = capabilities.dof
        self.dt = capabilities.control_dt
        k = LIMIT_SHRINK
        self._lower = (capabilities.joint_lower + config.position_margin).tolist()
        self._upper = (capabilities.joint_upper - config.position_margin).tolist()
        self._vmax = (capabilities.velocity_limit * k).tolist()
        self._amax = (capabilities.acceleration_limit * k).tolist()
        self._adt = (capabilities.acceleration_limit * k * self.dt).tolist()
        self._tau_max = np.asarray(capabilities.torque_limit, dtype=float)
        self._limits = list(
            zip(self._lower, self._upper, self._vmax, self._amax, self._adt, strict=True)
        )
        self._tau_list = self._tau_max.tolist()
        ws = config.workspace
        self._ws_lo = ws.lower
        self._ws_hi = ws.upper
        self._z_min = ws.table_z + ws.table_clearance
        self._z_lo = max(ws.lower[2], self._z_min)  # the lowest allowed end-effector height
        # Braking look-ahead: reach[i] bounds how far turning joint i by one radian moves the
        # end effector, so braking from v moves it at most sum(reach v^2 / (2 a)).
        reach = kinematics.joint_reach() * 1.001 + 1e-9 if kinematics is not None else None
        self._reach: list[float] = reach.tolist() if reach is not None else []
        self._reach_brake = [r / (2.0 * a) for r, a in zip(self._reach, self._amax)] or [
            0.0
        ] * self.dof
        self._q_safe: list[float] = [0.0] * self.dof  # where to hold if the state is corrupt
        self._now_prev = 0.0  # the last finite time seen
        # Torque mode: the velocities the model predicted for this tick (None: no prediction).
        self._v_model: list[float] | None = None
        self._v_model_time = 0.0
        self._torque_hold = False  # a torque-mode stop in progress
        self._qp: list[float] = [0.0] * self.dof  # previous output position
        self._vp: list[float] = [0.0] * self.dof  # previous output velocity
        self._c_prev: list[float] | None = None  # previous commanded positions
        self._ee_violation = (0.0, 0.0)  # (below table, outside box) of the current output, m
        self.estopped = False
        self.events: deque[SafetyEvent] = deque(maxlen=1000)
        self.counts: dict[str, int] = {}
        self.last_verdict: Verdict = "pass"
        self._initialised = False

    @property
    def q_prev(self) -> np.ndarray:
        """The last position output (what the arm is commanded to be at now)."""
        return np.array(self._qp)

    @property
    def v_prev(self) -> np.ndarray:
        """The last output velocity, by finite difference."""
        return np.array(self._vp)

    # -- lifecycle -----------------------------------------------------------------
    def reset(self, q: np.ndarray) -> None:
        """Start from rest at measured configuration ``q`` (call before the first command)."""
        q = np.asarray(q, dtype=float)
        if q.shape != (self.dof,) or not np.isfinite(q).all():
            raise ValueError(f"reset needs {self.dof} finite joint positions, got {q}")
        self._qp = q.tolist()
        self._q_safe = self._qp
        self._vp = [0.0] * self.dof
        self._c_prev = self._qp  # as if the arm had been commanded to stay here
        self._torque_hold = False
        self._track_violation()
        self._initialised = True

    def estop(
        self,
        reason: str = "emergency stop requested",
        time: float = 0.0,
        hold: np.ndarray | None = None,
    ) -> None:
        """Latch the emergency stop: hold still until `reset_estop`.

        ``hold`` is where to hold (the measured joints, normally): holding the last command
        instead would first carry the arm on by its tracking lag.
        """
        if not self.estopped:
            self.estopped = True
            self._record(time, "estop", reason)
            if hold is not None and np.isfinite(hold).all():
                self._qp = np.asarray(hold, dtype=float).tolist()

    def reset_estop(self) -> None:
        """Clear a latched emergency stop. Motion resumes from rest at the held position."""
        self.estopped = False
        self._vp = [0.0] * self.dof

    # -- the filter ------------------------------------------------------------------
    def filter(self, cmd: JointCommand, state: RobotState) -> JointCommand:
        """Return the command that may be sent: ``cmd`` itself, a clipped copy, or a stop."""
        if not self._initialised:
            self.reset(state.q)
        now = state.time
        # The filter's own state, checked every tick (one sum is non-finite iff an element is).
        c_prev = self._c_prev
        total = sum(self._qp) + sum(self._vp) + now
        if not math.isfinite(total + sum(c_prev) if c_prev is not None else total):
            return self._recover(state)
        self._now_prev = now
        if self.estopped:
            return self._hold(now)
        values = getattr(cmd, "values", None)
        if not isinstance(values, np.ndarray) or values.shape != (self.dof,):
            shape = getattr(values, "shape", type(values).__name__)
            return self._refuse(
                now, "bad_shape", f"command has shape {shape}; the robot has {self.dof} joints"
            )
        if values.dtype is _FLOAT64 and type(values) is np.ndarray:
            listed = values.tolist()
        else:
            listed = self._real_values(values)
            if listed is None:
                return self._refuse(
                    now,
                    "bad_type",
                    f"command values have type {type(values).__name__} of dtype "
                    f"{values.dtype}; a real-numbered array is needed",
                )
        stamp = getattr(cmd, "stamp", None)
        if type(stamp) is not float:
            stamp = _real_scalar(stamp)
            if stamp is None:
                return self._refuse(now, "bad_type", "command stamp is not a real number")
        # One sum is non-finite iff some element is NaN or ±inf (or the values are absurdly
        # large, ~1e308, which deserves the same refusal); far cheaper than np.isfinite.
        if not math.isfinite(sum(listed) + stamp):
            return self._refuse(now, "non_finite", "command contains NaN or inf")
        age = now - stamp
        if not age <= self.config.watchdog_timeout:  # (NaN-safe: a NaN age is stale too)
            return self._refuse(
                now,
                "stale",
                f"command is {age * 1e3:.0f} ms old "
                f"(watchdog {self.config.watchdog_timeout * 1e3:.0f} ms)",
            )
        mode = getattr(cmd, "mode", None)
        if type(mode) is str:  # (first: comparing an array with a string gives an array)
            if mode == "joint_position":
                return self._limit_motion(cmd, listed, now, True)
            if mode == "joint_velocity":
                return self._limit_motion(cmd, listed, now, False)
            if mode == "joint_torque":
                return self._limit_torque(cmd, listed, state)
        return self._refuse(now, "bad_mode", f"unknown command mode {mode!r}")

    @staticmethod
    def _real_values(values: np.ndarray) -> list[float] | None:
        """The values of a non-float64 array as floats, or None unless real-numbered.

        Integers and other float widths are accepted (converted exactly or to ±inf); complex,
        boolean, object, string, structured and date dtypes are not, nor array subclasses
        (a masked array, whose masked entries have no value).
        """
        if type(values) is not np.ndarray or values.dtype.kind not in "fiu":
            return None
        with np.errstate(over="ignore", invalid="ignore"):
            return values.astype(np.float64).tolist()

    def _recover(self, state: RobotState) -> JointCommand:
        """Reset a corrupt state to a hold at the measured position (or the last safe one)."""
        q = getattr(state, "q", None)
        if isinstance(q, np.ndarray) and q.shape == (self.dof,) and np.isfinite(q).all():
            held = [min(max(x, lo), hi) for x, lo, hi in zip(q.tolist(), self._lower, self._upper)]
        else:
            held = list(self._q_safe)
        now = state.time if math.isfinite(state.time) else self._now_prev
        self._qp = held
        self._vp = [0.0] * self.dof
        self._c_prev = None
        self._track_violation()
        self._record(now, "bad_state", "safety filter state or clock was not finite; holding")
        self.last_verdict = "refused"
        return JointCommand("joint_position", np.array(held), now)

    def _window(
        self, q: float, v: float, lower: float, upper: float, vmax: float, a: float, adt: float
    ) -> tuple[float, float]:
        """Feasible velocities of one joint this tick: velocity, acceleration and braking."""
        hi = v + adt
        if hi > vmax:
            hi = vmax
        lo = v - adt
        if lo < -vmax:
            lo = -vmax
        # Largest speed toward a limit from which the joint can still stop before it:
        # v*dt + v^2/(2a) <= distance  ->  v <= -a dt + sqrt((a dt)^2 + 2 a distance).
        d = upper - q
        brake = math.sqrt(adt * adt + 2.0 * a * d) - adt if d > 0.0 else 0.0
        if brake < hi:
            hi = brake
        d = q - lower
        brake = adt - math.sqrt(adt * adt + 2.0 * a * d) if d > 0.0 else 0.0
        if brake > lo:
            lo = brake
        # Braking may ask for more than the acceleration limit allows (only right after a
        # reset close to a limit): the acceleration limit wins.
        if hi < lo:
            hi = lo = v - adt if v > 0.0 else v + adt
        return lo, hi

    def _limit_motion(
        self, cmd: JointCommand, listed: list[float], now: float, position: bool
    ) -> JointCommand:
        """Pass ``cmd`` if every joint's velocity is inside its window, else clip.

        ``listed`` are the commanded positions (``position``) or velocities. Commanded
        positions are clamped into the joint range first, so every difference formed below
        is between two numbers inside the range: no finite command can overflow it. The
        window of `_window` is inlined: this loop runs for every joint on every tick.
        """
        sqrt = math.sqrt
        dt = self.dt
        previous = self._c_prev if position else None
        targets: list[float] = []
        v_out = []
        within = True
        reach = 0.0  # how far braking from the output velocities can carry the hand (bound)
        for i, (c, q, v, (lower, upper, vmax, a, adt), rb) in enumerate(
            zip(listed, self._qp, self._vp, self._limits, self._reach_brake)
        ):
            if position:
                if c < lower:
                    c, within = lower, False
                elif c > upper:
                    c, within = upper, False
                targets.append(c)
                vd = (c - q) / dt
            else:
                vd = c
            hi = v + adt
            if hi > vmax:
                hi = vmax
            lo = v - adt
            if lo < -vmax:
                lo = -vmax
            d = upper - q
            brake = sqrt(adt * adt + 2.0 * a * d) - adt if d > 0.0 else 0.0
            if brake < hi:
                hi = brake
            d = q - lower
            brake = adt - sqrt(adt * adt + 2.0 * a * d) if d > 0.0 else 0.0
            if brake > lo:
                lo = brake
            if hi < lo:
                hi = lo = v - adt if v > 0.0 else v + adt
            if not lo <= vd <= hi:
                within = False
                if position:
                    # The output has fallen behind the commanded positions (a step, a stream
                    # faster than the limits, a refusal): move with the command stream and
                    # close the gap time-optimally, braking to land on it, not overshoot it.
                    c_prev = previous[i] if previous is not None else c
                    gap = c_prev - q
                    catch_up = sqrt(adt * adt + 2.0 * a * abs(gap)) - adt
                    vd = (c - c_prev) / dt + (catch_up if gap >= 0.0 else -catch_up)
                vd = hi if vd > hi else lo if vd < lo else vd
            v_out.append(vd)
            reach += rb * vd * vd
        if position:
            self._c_prev = targets
        if within:
            if position:
                q_list = targets
                q_next = cmd.values
            else:
                q_list = [q + v * dt for q, v in zip(self._qp, v_out)]
                q_next = np.array(q_list)
            if not self._ee_allowed(q_next, now, q_list, v_out, reach):
                return self._controlled_stop(now)
            self._qp = q_list
            self._vp = v_out
            self.last_verdict = "pass"
            return cmd
        q_list = [q + v * dt for q, v in zip(self._qp, v_out)]
        if not math.isfinite(sum(q_list) + sum(v_out)):  # cannot happen from a finite state
            return self._refuse(now, "bad_state", "clipped command was not finite")
        q_next = np.array(q_list)
        reach = 0.0
        for rb, v in zip(self._reach_brake, v_out):
            reach += rb * v * v
        if not self._ee_allowed(q_next, now, q_list, v_out, reach):
            return self._controlled_stop(now)
        self._qp = q_list
        self._vp = v_out
        self.last_verdict = "clipped"
        self.counts["clipped"] = self.counts.get("clipped", 0) + 1
        out = q_next if position else np.array(v_out)
        return JointCommand(cmd.mode, out, cmd.stamp)

    def _limit_torque(
        self, cmd: JointCommand, listed: list[float], state: RobotState
    ) -> JointCommand:
        """Clip torques to their limits and keep joint speeds and positions inside theirs.

        Once the arm had to be stopped in torque mode it is held (a controlled stop from its
        measured motion, in position mode) until it has come to rest: alternating torques
        and stops tick by tick would leave every prediction one tick stale.
        """
        out = self._torque_output(cmd, listed, state)
        if self.last_verdict == "refused":
            self._torque_hold = True
        return out

    def _torque_output(
        self, cmd: JointCommand, listed: list[float], state: RobotState
    ) -> JointCommand:
        """The torque command (or stop) for one tick; see `_limit_torque`.

        In torque mode the arm's own (measured) motion is what the workspace rule watches.
        """
        now = state.time
        # (a prediction holds for the very next tick only, and only if torques went out)
        v_model, self._v_model = self._v_model, None
        if (
            v_model is not None
            and not abs(state.time - self._v_model_time - self.dt) < 0.5 * self.dt
        ):
            v_model = None
        q_meas, dq_meas = getattr(state, "q", None), getattr(state, "dq", None)
        shape = (self.dof,)
        if not (
            isinstance(q_meas, np.ndarray)
            and isinstance(dq_meas, np.ndarray)
            and q_meas.shape == shape
            and dq_meas.shape == shape
        ):
            return self._refuse(now, "bad_state", "measured joint state has the wrong shape")
        q = q_meas.tolist()
        dq = dq_meas.tolist()
        if not math.isfinite(sum(q) + sum(dq)):
            return self._refuse(now, "bad_state", "measured joint state is not finite")
        self._qp = [min(max(x, lo), hi) for x, lo, hi in zip(q, self._lower, self._upper)]
        self._vp = dq
        self._c_prev = None
        if self._torque_hold:
            if max(abs(v) / vmax for v, vmax in zip(dq, self._vmax)) > TORQUE_REST_SPEED:
                return self._torque_brake(now)  # still braking
            self._torque_hold = False
        # Torques only inside the region (no "heading back in" from outside as in the other
        # modes: the motion torques cause is not the command's).
        if not self._ee_allowed(q_meas, now) or self._ee_violation != (0.0, 0.0):
            return self._torque_brake(now)
        tau = [max(-t_max, min(t, t_max)) for t, t_max in zip(listed, self._tau_list)]
        clipped = tau != listed
        # Velocities each joint may reach next tick: its speed margin, and slow enough to
        # brake (at half the acceleration limit) to rest a margin inside its range.
        sqrt = math.sqrt
        windows = []  # the velocities aimed for
        accept = []  # the velocities accepted: the speed part with half the margin as slack
        free = self.kin is None
        speed = FREE_TORQUE_SPEED if free else TORQUE_SPEED_MARGIN
        slack = speed + 0.5 * (1.0 - speed)
        margin = TORQUE_POSITION_MARGIN
        for x, (lower, upper, vmax, a, adt) in zip(q, self._limits):
            a, adt = 0.5 * a, 0.5 * adt
            d = upper - margin - x
            brake_hi = sqrt(adt * adt + 2.0 * a * d) - adt if d > 0.0 else 0.0
            d = x - lower - margin
            brake_lo = adt - sqrt(adt * adt + 2.0 * a * d) if d > 0.0 else 0.0
            windows.append((max(-speed * vmax, brake_lo), min(speed * vmax, brake_hi)))
            accept.append((max(-slack * vmax, brake_lo), min(slack * vmax, brake_hi)))
        if free:
            if any(not lo <= v <= hi for v, (lo, hi) in zip(dq, windows)):
                return self._refuse(
                    now, "torque_guard", "a joint neared its speed or position limit in torque mode"
                )
        else:
            assert self.kin is not None
            mass, bias = self.kin.dynamics(q_meas, dq_meas)
            dt = self.dt
            # What the model missed last tick (contact, friction, model error), assumed to
            # persist for one more tick: a one-step disturbance observer.
            start = dq_meas + (dq_meas - v_model) if v_model is not None else dq_meas

            def landing(torques: list[float]) -> list[float]:
                """The joint velocities next tick under ``torques`` (the model's prediction)."""
                return (start + np.linalg.solve(mass, np.array(torques) - bias) * dt).tolist()

            def torques_for(v_target: list[float]) -> list[float]:
                """The torques (within limits) that land on ``v_target``, as far as they can."""
                wanted = (mass @ ((np.array(v_target) - start) / dt) + bias).tolist()
                return [max(-t_max, min(t, t_max)) for t, t_max in zip(wanted, self._tau_list)]

            v_next = landing(tau)
            v_safe = [min(max(v, lo), hi) for v, (lo, hi) in zip(v_next, windows)]
            if v_safe != v_next:
                # Damping injection: the torques that land on the nearest safe velocities.
                # Where the torque limits leave that out of reach (coupling between joints),
                # the torques that stop every joint from speeding up instead; failing both,
                # a controlled stop.
                tau = torques_for(v_safe)
                if not self._torque_window_holds(landing(tau), accept):
                    v_keep = [min(max(v, lo), hi) for v, (lo, hi) in zip(dq, windows)]
                    tau = torques_for(v_keep)
                    if not self._torque_window_holds(landing(tau), accept):
                        self._record(
                            now, "torque_guard", "torque limits cannot hold a joint to its limits"
                        )
                        return self._torque_brake(now)
                clipped = True
                v_next = landing(tau)
            # The braking look-ahead on where the arm will be next tick: stop now (from a
            # state whose own stop was certified a tick ago) rather than a tick too late.
            q_next = [x + v * dt for x, v in zip(self._qp, v_next)]
            if not self._ee_allowed(np.array(q_next), now, q_next, v_next):
                return self._torque_brake(now)
            self._v_model = (np.array(v_next) - (start - dq_meas)).tolist()
            self._v_model_time = now
        if not clipped:
            self.last_verdict = "pass"
            return cmd
        self.last_verdict = "clipped"
        self.counts["clipped"] = self.counts.get("clipped", 0) + 1
        return JointCommand(cmd.mode, np.array(tau), cmd.stamp)

    def _torque_brake(self, now: float) -> JointCommand:
        """A controlled stop from the measured motion (in position mode), re-planned every
        tick from the measured state until the arm is at rest (`_limit_torque`).

        (Braking with model torques instead was tried: with the arm in contact, or the wrist
        saturated by the coupling from braking shoulder joints, it sped joints up.)
        """
        self.last_verdict = "refused"
        return self._controlled_stop(now)

    @staticmethod
    def _torque_window_holds(v_next: list[float], windows: list[tuple[float, float]]) -> bool:
        """True if predicted velocities are inside their (acceptance) windows."""
        return all(lo <= v <= hi for v, (lo, hi) in zip(v_next, windows))

    def _ee_allowed(
        self,
        q: np.ndarray,
        now: float,
        q_list: list[float] | None = None,
        v: list[float] | None = None,
        reach: float | None = None,
    ) -> bool:
        """Workspace and table rules for the end effector at ``q`` moving at ``v``.

        With ``v`` (and ``q_list``, the same positions as a list), the braking look-ahead:
        every configuration of a controlled stop from (q, v) must be inside as well.

        Outside the allowed region (after a reset there) a command is still allowed if it
        does not take the end effector further out, only if it brings the end effector
        back toward the region by at least `RETURN_PROGRESS` (or holds still), so the arm
        can always be moved back in but never slides along outside.
        """
        kin = self.kin
        if kin is None:
            return True
        kin.update_positions_only(q)
        x, y, z = kin.ee_position
        lo, hi = self._ws_lo, self._ws_hi
        below = self._z_min - z
        outside = (
            max(lo[0] - x, 0.0, x - hi[0])
            + max(lo[1] - y, 0.0, y - hi[1])
            + max(lo[2] - z, 0.0, z - hi[2])
        )
        if below <= 0.0 and outside == 0.0:
            if v is None or q_list is None:
                self._ee_violation = (0.0, 0.0)
                return True
            # Braking look-ahead. Free while braking cannot carry the end effector as far
            # as the nearest boundary; otherwise certified along the stop path.
            margin = min(x - lo[0], hi[0] - x, y - lo[1], hi[1] - y, z - self._z_lo, hi[2] - z)
            if reach is None:  # (the bound `_limit_motion` accumulates; see __init__)
                reach = 0.0
                for rb, vi in zip(self._reach_brake, v):
                    reach += rb * vi * vi
            failed = None if reach <= margin else self._stop_leaves_region(q_list, v)
            if failed is None:
                self._ee_violation = (0.0, 0.0)
                return True
            x, y, z = failed
            if z < self._z_lo:
                self._record(
                    now,
                    "table",
                    "braking from this speed would take the end effector "
                    f"{1e3 * (self._z_min - z):.1f} mm below the table clearance",
                )
            else:
                self._record(
                    now,
                    "workspace",
                    "braking from this speed would take the end effector out of the "
                    f"workspace box, to ({x:.3f}, {y:.3f}, {z:.3f}) m",
                )
            return False
        prev_below, prev_outside = self._ee_violation
        below = max(below, 0.0)
        progress = prev_below + prev_outside - below - outside
        if progress > RETURN_PROGRESS or (progress == 0.0 and q.tolist() == self._qp):
            self._ee_violation = (below, outside)
            return True  # outside, but heading back in (or holding still)
        if below > prev_below:
            self._record(
                now,
                "table",
                f"end effector would go {1e3 * below:.1f} mm below the table clearance",
            )
        else:
            self._record(
                now,
                "workspace",
                f"end effector would leave the workspace box at ({x:.3f}, {y:.3f}, {z:.3f}) m",
            )
        return False

    def _stop_leaves_region(
        self, q: list[float], v: list[float]
    ) -> tuple[float, float, float] | None:
        """Where a controlled stop from (q, v) leaves the region, or None if it stays in.

        The stop is the one `_controlled_stop` commands: each joint's speed drops by its
        acceleration limit times dt per tick, so after k ticks joint i has moved
        ``dt * (m |v| - adt m (m + 1) / 2)`` with ``m = min(k, n_i)`` (n_i ticks to rest).
        Every joint moves monotonically, so the configurations of ticks ka..kb lie in the
        box spanned by those two ticks; if the end effector at the box centre is farther
        from every boundary than `KinematicModel.joint_reach` lets the box's corners move
        it, the whole stretch is inside. Stretches that cannot be certified are split, down
        to single ticks checked exactly, within `LOOKAHEAD_FK_BUDGET` evaluations; a path
        not certified within the budget counts as leaving (conservative).
        """
        kin = self.kin
        assert kin is not None
        dt = self.dt
        speeds = [abs(x) for x in v]
        signs = [dt if x >= 0.0 else -dt for x in v]
        ticks = [int(s / adt) for s, adt in zip(speeds, self._adt)]
        reach = self._reach
        lo, hi, z_lo = self._ws_lo, self._ws_hi, self._z_lo

        def at(k: int) -> list[float]:
            out = []
            for qi, s, sg, n, adt in zip(q, speeds, signs, ticks, self._adt):
                m = k if k < n else n
                out.append(qi + sg * (m * s - adt * m * (m + 1) * 0.5))
            return out

        def margin(p: list[float]) -> tuple[float, tuple[float, float, float]]:
            kin.update_positions_only(np.array(p))
            x, y, z = kin.ee_position.tolist()
            return min(x - lo[0], hi[0] - x, y - lo[1], hi[1] - y, z - z_lo, hi[2] - z), (
                x,
                y,
                z,
            )

        budget = LOOKAHEAD_FK_BUDGET
        stack = [(0, max(ticks, default=0))]
        while stack:
            ka, kb = stack.pop()
            if kb <= ka:
                continue
            pa, pb = at(ka), at(kb)
            if kb - ka == 1:  # one tick: check its configuration exactly (ka is checked)
                m, where = margin(pb)
                budget -= 1
                if m < 0.0:
                    return where
                continue
            centre = [0.5 * (a + b) for a, b in zip(pa, pb)]
            spread = 0.5 * sum(r * abs(b - a) for r, a, b in zip(reach, pa, pb))
            m, where = margin(centre)
            budget -= 1
            if m >= spread:
                continue
            if budget <= 0:
                return where
            mid = (ka + kb) // 2
            stack.append((mid, kb))
            stack.append((ka, mid))
        return None

    # -- outcomes -------------------------------------------------------------------
    def _refuse(self, now: float, code: EventCode, message: str) -> JointCommand:
        self._record(now, code, message)
        return self._controlled_stop(now)

    def _controlled_stop(self, now: float) -> JointCommand:
        """Decelerate every joint at its limit toward zero velocity, then hold."""
        v_out = []
        for q, v, (lower, upper, vmax, a, adt) in zip(self._qp, self._vp, self._limits):
            lo, hi = self._window(q, v, lower, upper, vmax, a, adt)
            v_out.append(min(max(0.0, lo), hi))
        dt = self.dt
        self._qp = [q + v * dt for q, v in zip(self._qp, v_out)]
        self._vp = v_out
        self._c_prev = None
        self._track_violation()
        self.last_verdict = "refused"
        return JointCommand("joint_position", np.array(self._qp), now)

    def _track_violation(self) -> None:
        """Remember how far outside the region the current output is (0 when inside)."""
        if self.kin is None:
            return
        self.kin.update_positions_only(np.array(self._qp))
        x, y, z = self.kin.ee_position
        lo, hi = self._ws_lo, self._ws_hi
        self._ee_violation = (
            max(self._z_min - z, 0.0),
            max(lo[0] - x, 0.0, x - hi[0])
            + max(lo[1] - y, 0.0, y - hi[1])
            + max(lo[2] - z, 0.0, z - hi[2]),
        )

    def _hold(self, now: float) -> JointCommand:
        self._vp = [0.0] * self.dof
        self.last_verdict = "estop"
        return JointCommand("joint_position", np.array(self._qp), now)

    def _record(self, now: float, code: EventCode, message: str) -> None:
        self.counts[code] = self.counts.get(code, 0) + 1
        # Log the first of a run of identical refusals only, so a held refusal cannot flood.
        last = self.events[-1] if self.events else None
        if last is None or last.code != code or now - last.time > 0.5:
            self.events.append(SafetyEvent(now, code, message))


def _real_scalar(x: object) -> float | None:
    """``x`` as a float if it is a real number (±inf for one too large), else None."""
    if isinstance(x, bool | np.bool_) or not isinstance(x, int | float | np.integer | np.floating):
        return None
    try:
        return float(x)
    except OverflowError:  # an int beyond the float range
        return math.inf
