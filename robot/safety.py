"""The safety filter: the last layer every command passes before any backend sees it.

Rules, checked on every command of every backend (simulated or real):

* **Finite values** — NaN (quiet or signalling) or ±inf anywhere in a command: refused.
* **Joint limits** — position, velocity and acceleration, by finite differences at the
  control period against the previous output. A command within every limit passes through
  unchanged (bit-identical); one outside is clipped to the nearest feasible command. The
  velocity toward a position limit is capped so the joint can always brake to a stop
  before the limit, which is what lets position, velocity and acceleration limits hold
  together.
* **Workspace** — the end effector of the commanded configuration must stay inside a
  box and above the table plane: otherwise refused.
* **Torque limits** in torque mode: clipped.
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
    "non_finite", "workspace", "table", "stale", "estop", "bad_shape", "bad_mode", "clipped"
]

# Limits are applied this fraction inside their nominal value, so that finite differences
# of the output, recomputed by anyone in floating point, never exceed the nominal limit.
LIMIT_SHRINK = 1.0 - 1e-9
RETURN_PROGRESS = 1e-7  # m per tick: the least progress back into the workspace that counts


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
        ws = config.workspace
        self._ws_lo = ws.lower
        self._ws_hi = ws.upper
        self._z_min = ws.table_z + ws.table_clearance
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
        self._vp = [0.0] * self.dof
        self._c_prev = self._qp  # as if the arm had been commanded to stay here
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
        if self.estopped:
            return self._hold(now)
        values = cmd.values
        if not isinstance(values, np.ndarray) or values.shape != (self.dof,):
            shape = getattr(values, "shape", type(values).__name__)
            return self._refuse(
                now, "bad_shape", f"command has shape {shape}; the robot has {self.dof} joints"
            )
        listed = values.tolist()
        # One sum is non-finite iff some element is NaN or ±inf (or the values are absurdly
        # large, ~1e308, which deserves the same refusal); far cheaper than np.isfinite.
        if not math.isfinite(sum(listed) + cmd.stamp):
            return self._refuse(now, "non_finite", "command contains NaN or inf")
        age = now - cmd.stamp
        if age > self.config.watchdog_timeout:
            return self._refuse(
                now,
                "stale",
                f"command is {age * 1e3:.0f} ms old "
                f"(watchdog {self.config.watchdog_timeout * 1e3:.0f} ms)",
            )
        mode = cmd.mode
        if mode == "joint_position":
            dt = self.dt
            v_des = [(a - b) / dt for a, b in zip(listed, self._qp)]
            return self._limit_motion(cmd, v_des, now, listed)
        if mode == "joint_velocity":
            return self._limit_motion(cmd, listed, now, None)
        if mode == "joint_torque":
            return self._limit_torque(cmd, state)
        return self._refuse(now, "bad_mode", f"unknown command mode {mode!r}")

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
        self, cmd: JointCommand, v_des: list[float], now: float, targets: list[float] | None
    ) -> JointCommand:
        """Pass ``cmd`` if every joint's velocity is inside its window, else clip.

        ``targets`` are the commanded positions (position mode) or None (velocity mode).
        The window of `_window` is inlined: this loop runs for every joint on every tick.
        """
        sqrt = math.sqrt
        dt = self.dt
        previous = self._c_prev if targets is not None else None
        if previous is None:
            previous = targets
        v_out = []
        within = True
        for i, (vd, q, v, (lower, upper, vmax, a, adt)) in enumerate(
            zip(v_des, self._qp, self._vp, self._limits)
        ):
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
                if previous is not None and targets is not None:  # both or neither
                    # The output has fallen behind the commanded positions (a step, a stream
                    # faster than the limits, a refusal): move with the command stream and
                    # close the gap time-optimally, braking to land on it, not overshoot it.
                    c_prev = previous[i]
                    gap = c_prev - q
                    catch_up = sqrt(adt * adt + 2.0 * a * abs(gap)) - adt
                    vd = (targets[i] - c_prev) / dt + (catch_up if gap >= 0.0 else -catch_up)
                vd = hi if vd > hi else lo if vd < lo else vd
            v_out.append(vd)
        if targets is not None:
            self._c_prev = targets
        if within:
            if targets is not None:
                q_next = cmd.values
            else:
                q_next = np.array([q + v * dt for q, v in zip(self._qp, v_out)])
            if not self._ee_allowed(q_next, now):
                return self._controlled_stop(now)
            self._qp = targets if targets is not None else q_next.tolist()
            self._vp = v_out
            self.last_verdict = "pass"
            return cmd
        q_next = np.array([q + v * dt for q, v in zip(self._qp, v_out)])
        if not self._ee_allowed(q_next, now):
            return self._controlled_stop(now)
        self._qp = q_next.tolist()
        self._vp = v_out
        self.last_verdict = "clipped"
        self.counts["clipped"] = self.counts.get("clipped", 0) + 1
        out = q_next if targets is not None else np.array(v_out)
        return JointCommand(cmd.mode, out, cmd.stamp)

    def _limit_torque(self, cmd: JointCommand, state: RobotState) -> JointCommand:
        # In torque mode the arm's own motion is what the workspace rule watches.
        self._qp = state.q.tolist()
        self._vp = state.dq.tolist()
        if not self._ee_allowed(state.q, state.time):
            return self._controlled_stop(state.time)
        tau = cmd.values
        if (np.abs(tau) <= self._tau_max).all():
            self.last_verdict = "pass"
            return cmd
        self.last_verdict = "clipped"
        self.counts["clipped"] = self.counts.get("clipped", 0) + 1
        return JointCommand(cmd.mode, np.clip(tau, -self._tau_max, self._tau_max), cmd.stamp)

    def _ee_allowed(self, q: np.ndarray, now: float) -> bool:
        """Workspace and table rules for the end effector at ``q``.

        Outside the allowed region (after a stop that braked across the boundary, or a reset
        there) a command is still allowed if it does not take the end effector further out,
        only if it brings the end effector back toward the region by at least
        `RETURN_PROGRESS` (or holds still), so the arm can always be moved back in but never
        slides along outside.
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
            self._ee_violation = (0.0, 0.0)
            return True
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
