"""The fixed-rate control loop: read → policy → safety filter → command → tick.

The loop runs at the robot's declared control rate, either lock-step as fast as the
computer allows (simulation) or paced to the wall clock (``realtime=True``, or on
hardware, whose driver blocks in ``wait_for_tick``). Late ticks are counted and reported,
never hidden; what *late* means is defined once, by `TickDeadlines`, for this loop, the
drivers' pacers and the robot server alike.

The loop knows the robot only through the small `TickedRobot` protocol, so this module
stays below the hardware layer: `hw.Robot` satisfies it.
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from skillstack.robot.types import Capabilities, JointCommand, RobotState

SPIN_BEFORE_DEADLINE = 300e-6  # s; sleep() overshoots by up to ~100 µs, so spin the rest


class TickDeadlines:
    """The one definition of a late tick, for every fixed-rate loop in the stack.

    Each tick has a deadline, one ``period`` after the previous tick's deadline; a tick is
    *late* when it ends more than ``tolerance`` after its deadline. After a late tick the
    schedule is re-anchored at that tick's end, so one stall counts once rather than as a
    burst of late ticks. A loop that is not paced (lock-step simulation) calls `start` at
    the start of each tick, which anchors the deadline there: late then means the tick's
    work took longer than a period.

    Args:
        period: seconds between deadlines.
        tolerance: seconds past the deadline still on time (the robot server allows one
            period of jitter before a tick counts against a running skill).
    """

    def __init__(self, period: float, tolerance: float = 0.0):
        if not (math.isfinite(period) and period > 0.0):
            raise ValueError(f"tick period must be a positive number of seconds, got {period}")
        self.period = period
        self.tolerance = tolerance
        self.deadline: float | None = None  # the current tick's; None before the first
        self.ticks = 0
        self.late_ticks = 0
        self.late_run = 0  # consecutive late ticks up to the latest
        self.max_overrun_s = 0.0  # s, the latest any tick ended after its deadline
        self.wake = 0.0  # when an on-time tick's period ends (a paced loop sleeps until then)

    def reset(self) -> None:
        """Forget the schedule: the next tick's deadline is one period after it ends."""
        self.deadline = None
        self.late_run = 0

    def start(self, now: float) -> None:
        """Anchor this tick's deadline one period after ``now`` (unpaced loops)."""
        self.deadline = now + self.period

    def end(self, now: float) -> bool:
        """Count a tick that ended at ``now``; True if it was late. Afterwards `deadline` is
        the time the next tick should start at (on time) or its new anchor (late)."""
        self.ticks += 1
        if self.deadline is None:  # the first tick sets the schedule
            self.deadline = now + self.period
        else:
            overrun = now - self.deadline
            if overrun > self.tolerance:
                self.late_ticks += 1
                self.late_run += 1
                self.max_overrun_s = max(self.max_overrun_s, overrun)
                self.deadline = now + self.period
                return True
        self.late_run = 0
        self.wake = self.deadline
        self.deadline = self.wake + self.period
        return False


class TickedRobot(Protocol):
    """What the loop needs of a robot (`hw.robot.Robot` provides it)."""

    capabilities: Capabilities

    def read(self) -> RobotState:
        """The latest state."""
        ...

    def command(self, cmd: JointCommand) -> JointCommand:
        """Filter and send ``cmd``; returns what was actually sent."""
        ...

    def wait_for_tick(self) -> None:
        """Simulation: advance one control period. Hardware: block until the next tick."""
        ...


class Policy(Protocol):
    """Anything that turns a state into a joint command once per tick."""

    def reset(self, state: RobotState) -> None:
        """Start from ``state`` (called once, before the first `step`)."""
        ...

    def step(self, state: RobotState) -> JointCommand:
        """The command for this tick."""
        ...

    @property
    def done(self) -> bool:
        """True once the policy has finished (the loop then stops)."""
        ...


@dataclass
class LoopStats:
    """What a run of the loop measured. Tick times are wall-clock seconds of each full tick."""

    ticks: int = 0
    late_ticks: int = 0
    tick_seconds: np.ndarray = field(default_factory=lambda: np.zeros(0))
    wall_seconds: float = 0.0
    sim_seconds: float = 0.0

    @property
    def late_fraction(self) -> float:
        """Late ticks over all ticks."""
        return self.late_ticks / self.ticks if self.ticks else 0.0

    def percentile_us(self, q: float) -> float:
        """A percentile of the tick duration, in microseconds."""
        return float(np.percentile(self.tick_seconds, q) * 1e6) if self.ticks else float("nan")


class ControlLoop:
    """Runs a `Policy` on a robot at the control rate.

    Args:
        robot: the robot (any `TickedRobot`).
        realtime: pace ticks to the wall clock instead of running lock-step.
        on_tick: optional callback ``(state, sent_command)`` after every tick (logging, video).
    """

    def __init__(self, robot: TickedRobot, realtime: bool = False, on_tick=None):
        self.robot = robot
        self.period = robot.capabilities.control_dt
        self.realtime = realtime
        self.on_tick = on_tick

    def run(self, policy: Policy, max_seconds: float) -> LoopStats:
        """Run until ``policy.done`` or ``max_seconds`` of robot time; return the stats."""
        max_ticks = round(max_seconds / self.period)
        durations = np.empty(max_ticks)
        state = self.robot.read()
        policy.reset(state)
        t_start_sim = state.time
        wall_start = time.perf_counter()
        # A garbage-collector pass in the middle of a tick costs milliseconds: postpone
        # collection until the loop ends (the loop itself creates no reference cycles).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            ticks, late = self._spin(policy, durations, wall_start)
        finally:
            if gc_was_enabled:
                gc.enable()
        end = self.robot.read()
        return LoopStats(
            ticks=ticks,
            late_ticks=late,
            tick_seconds=durations[:ticks],
            wall_seconds=time.perf_counter() - wall_start,
            sim_seconds=end.time - t_start_sim,
        )

    def _spin(self, policy: Policy, durations: np.ndarray, start: float) -> tuple[int, int]:
        robot, period = self.robot, self.period
        read, command, wait = robot.read, robot.command, robot.wait_for_tick
        on_tick, realtime = self.on_tick, self.realtime
        clock = time.perf_counter
        deadlines = TickDeadlines(period)
        deadlines.start(start)
        ticks = 0
        max_ticks = len(durations)
        while ticks < max_ticks:
            t0 = clock()
            if not realtime:
                deadlines.start(t0)  # lock-step: late = the tick's work took over a period
            state = read()
            sent = command(policy.step(state))
            wait()
            if on_tick is not None:
                on_tick(state, sent)
            t1 = clock()
            durations[ticks] = t1 - t0
            ticks += 1
            if not deadlines.end(t1) and realtime:
                _sleep_until(deadlines.wake, clock)
            if policy.done:
                break
        return ticks, deadlines.late_ticks


def _sleep_until(deadline: float, clock) -> None:
    remaining = deadline - clock()
    if remaining > SPIN_BEFORE_DEADLINE:
        time.sleep(remaining - SPIN_BEFORE_DEADLINE)
    while clock() < deadline:
        time.sleep(0)  # yield the GIL: other threads (a robot server's) keep answering
