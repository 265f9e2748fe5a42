"""Sensor health: is a `RobotState` fresh and physically possible?

Every control tick the skill program (`skills.program.Program`) hands the state it was
given to a `SensorMonitor` before anything uses it. A reading is *bad* when it is

* stale: its timestamp did not advance, or (``identical_is_stale``, for real drivers) it is
  bit-identical to the previous reading although the arm was commanded to move more than
  `FRESH_MOTION` in between (an ideal or resting arm may repeat itself; a moving one not);
* invalid: a joint position, speed or torque, or the finger width, is NaN or infinite;
* impossible: a joint moves faster than `SPEED_FACTOR` times its velocity limit, or reads
  more than `RANGE_MARGIN` outside its range;
* stuck: one joint's reading has not changed at all while its commanded position moved
  more than `STUCK_MOTION` away (a frozen encoder channel, a dropped field).

The monitor counts consecutive bad ticks. A bad reading is never used: the program holds
the position it last commanded (so the arm holds from the first bad tick, at the latest
from the `HOLD_AFTER`-th); at `STOP_AFTER` in a row it stops with the one-line reason
(`SensorMonitor.fault`). A good reading resets the count; `MAX_BAD_TOTAL` bad readings in
one run, in a row or not, stop it as well.
"""

from __future__ import annotations

import math

import numpy as np

from skillstack.robot.types import Capabilities, RobotState

HOLD_AFTER = 2  # consecutive bad ticks before the arm is held
STOP_AFTER = 20  # consecutive bad ticks before the loop stops with a sensor fault
SPEED_FACTOR = 3.0  # a joint reading faster than this times its limit is impossible
RANGE_MARGIN = 0.1  # rad, a joint reading further than this outside its range is impossible
STUCK_MOTION = 0.003  # rad, commanded motion an unchanged joint reading may not ignore
FRESH_MOTION = 1e-4  # rad, commanded motion between readings a real driver's must show
MAX_BAD_TOTAL = 5 * STOP_AFTER  # bad readings in one run, in a row or not, that also stop it


class SensorMonitor:
    """Checks each reading for staleness and validity and counts bad ticks in a row.

    Args:
        capabilities: the robot's joint limits.
        identical_is_stale: treat a reading identical to the previous one as stale (real
            drivers; a simulator at rest may legitimately repeat itself).
    """

    def __init__(self, capabilities: Capabilities, identical_is_stale: bool = False):
        self.identical_is_stale = identical_is_stale
        lower = np.asarray(capabilities.joint_lower, dtype=float) - RANGE_MARGIN
        upper = np.asarray(capabilities.joint_upper, dtype=float) + RANGE_MARGIN
        self.center, self.half_range = (upper + lower) / 2, (upper - lower) / 2
        self.max_speed = SPEED_FACTOR * np.asarray(capabilities.velocity_limit, dtype=float)
        self.reset()

    def reset(self) -> None:
        """Forget the history (a new run)."""
        self.bad_run = 0  # consecutive bad readings up to the latest
        self.bad_total = 0
        self.first_bad_time: float | None = None  # state time of the current run's first
        self.reason = ""  # why the latest bad reading was bad
        self.fault = ""  # set once `STOP_AFTER` bad readings came in a row
        self._prev: RobotState | None = None
        self._prev_cmd: np.ndarray | None = None  # the command given with the previous reading
        self._last_time = -math.inf
        self._changed_q: np.ndarray | None = None  # each joint's reading when it last changed
        self._changed_cmd: np.ndarray | None = None  # the command at that moment

    @property
    def hold(self) -> bool:
        """True while the arm must be held (`HOLD_AFTER` or more bad readings in a row)."""
        return self.bad_run >= HOLD_AFTER

    @property
    def stop(self) -> bool:
        """True once `STOP_AFTER` bad readings came in a row."""
        return bool(self.fault)

    def check(
        self, state: RobotState, commanded: np.ndarray | None = None, again: bool = False
    ) -> bool:
        """Judge ``state``; True if it is good. Updates `bad_run`, `reason` and `fault`.

        ``commanded`` is the joint position command in force while the arm produced this
        reading (the one sent last tick); the state's own ``q_desired`` if None. ``again``:
        the same reading may come once more (a control loop reads the state before its
        first tick, then again at it, with no tick in between).
        """
        cmd = state.q_desired if commanded is None else commanded
        last_time = self._last_time
        reason = self._problem(state, cmd)
        if again:
            self._last_time = last_time
        if self.identical_is_stale:  # only a real driver's repeat check needs the last ones
            self._prev = state
            self._prev_cmd = None if cmd is None else cmd.copy()
        if not reason:
            self.bad_run = 0
            return True
        if self.bad_run == 0:
            self.first_bad_time = state.time
        self.bad_run += 1
        self.bad_total += 1
        self.reason = reason
        if self.fault:
            return False
        if self.bad_run >= STOP_AFTER:
            self.fault = f"sensor fault: {reason} for {self.bad_run} ticks in a row"
        elif self.bad_total >= MAX_BAD_TOTAL:
            self.fault = f"sensor fault: {self.bad_total} bad readings in this run, lately {reason}"
        return False

    def _problem(self, state: RobotState, cmd: np.ndarray | None) -> str:
        # A few µs a tick: whole-array sums and extremes first, details only when one fails
        # (a sum is non-finite iff some element is NaN or inf, or the values are ~1e308).
        q, dq, tau = state.q, state.dq, state.tau
        t = state.time
        if not math.isfinite(
            t + state.gripper_width + sum(q.tolist()) + sum(dq.tolist()) + sum(tau.tolist())
        ):
            return _non_finite(state)
        prev = self._prev
        if t <= self._last_time:
            return f"stale state: its timestamp stayed at {t:.3f} s"
        self._last_time = t
        if (
            self.identical_is_stale
            and prev is not None
            and cmd is not None
            and self._prev_cmd is not None
            and float(np.abs(cmd - self._prev_cmd).max()) > FRESH_MOTION
            and np.array_equal(q, prev.q)
            and np.array_equal(dq, prev.dq)
            and np.array_equal(tau, prev.tau)
        ):
            return "stale state: the reading repeated the previous one exactly"
        over = np.abs(dq) - self.max_speed
        if over.max() > 0.0:
            j = int(over.argmax())
            return f"joint {j + 1} reads {dq[j]:.1f} rad/s, over {SPEED_FACTOR:.0f}x its limit"
        out = np.abs(q - self.center) - self.half_range
        if out.max() > 0.0:
            j = int(out.argmax())
            return f"joint {j + 1} reads {q[j]:.3f} rad, outside its range"
        return self._stuck(q, cmd)

    def _stuck(self, q: np.ndarray, cmd: np.ndarray | None) -> str:
        if cmd is None:
            return ""
        changed_q, changed_cmd = self._changed_q, self._changed_cmd
        if changed_q is None or changed_cmd is None:
            self._changed_q, self._changed_cmd = q.copy(), cmd.copy()
            return ""
        np.copyto(changed_cmd, cmd, where=q != changed_q)  # joints whose reading moved
        np.copyto(changed_q, q)
        ignored = np.abs(cmd - changed_cmd)
        if ignored.max() > STUCK_MOTION:
            j = int(ignored.argmax())
            return (
                f"joint {j + 1}'s reading is stuck at {q[j]:.4f} rad while commanded "
                f"{cmd[j] - changed_cmd[j]:+.3f} rad away"
            )
        return ""


def _non_finite(state: RobotState) -> str:
    if not math.isfinite(state.time):
        return f"the state's timestamp is {state.time}"
    for name, values in (("position", state.q), ("speed", state.dq), ("torque", state.tau)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            return f"joint {int(bad[0]) + 1}'s {name} reads {values[bad[0]]}"
    if not math.isfinite(state.gripper_width):
        return f"the finger width reads {state.gripper_width}"
    return "the reading holds values too large to add up (~1e308)"
