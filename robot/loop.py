"""The fixed-rate control loop: read → policy → safety filter → command → tick.

The loop runs at the robot's declared control rate, either lock-step as fast as the
computer allows (simulation) or paced to the wall clock (``realtime=True``, or on
hardware, whose driver blocks in ``wait_for_tick``). A tick is *late* when its work took
longer than one control period — in paced mode that means its deadline was missed. Late
ticks are counted and reported, never hidden.

The loop knows the robot only through the small `TickedRobot` protocol, so this module
stays below the hardware layer: `hw.Robot` satisfies it.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from skillstack.robot.types import Capabilities, JointCommand, RobotState

SPIN_BEFORE_DEADLINE = 300e-6  # s; sleep() overshoots by up to ~100 µs, so spin the rest


class TickedRobot(Protocol):
    """What the loop needs of a robot (`hw.robot.Robot` provides it)."""

    capabilities: Capabilities

    def read(self) -> RobotState: ...

    def command(self, cmd: JointCommand) -> JointCommand: ...

    def wait_for_tick(self) -> None: ...


class Policy(Protocol):
    """Anything that turns a state into a joint command once per tick."""

    def reset(self, state: RobotState) -> None: ...

    def step(self, state: RobotState) -> JointCommand: ...

    @property
    def done(self) -> bool: ...


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
        deadline = start
        late = ticks = 0
        max_ticks = len(durations)
        while ticks < max_ticks:
            t0 = clock()
            state = read()
            sent = command(policy.step(state))
            wait()
            if on_tick is not None:
                on_tick(state, sent)
            t1 = clock()
            durations[ticks] = t1 - t0
            ticks += 1
            deadline += period
            if realtime:
                if t1 > deadline:
                    late += 1
                    deadline = t1  # do not try to catch up with a burst of fast ticks
                else:
                    _sleep_until(deadline, clock)
            elif t1 - t0 > period:
                late += 1
            if policy.done:
                break
        return ticks, late


def _sleep_until(deadline: float, clock) -> None:
    remaining = deadline - clock()
    if remaining > SPIN_BEFORE_DEADLINE:
        time.sleep(remaining - SPIN_BEFORE_DEADLINE)
    while clock() < deadline:
        time.sleep(0)  # yield the GIL: other threads (a robot server's) keep answering
