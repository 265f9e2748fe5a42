"""What every vendor driver shares: the `DriverRobot` base, option tables, SDK import, pacing.

The drivers (`skillstack.hw.drivers.franka`, `.ur`, `.xarm`) build on this module; the
package (`skillstack.hw.drivers`) holds their registry and re-exports these names.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Any, ClassVar

import numpy as np

from skillstack.hw.robot import DeviceNotConnectedError, Robot, RobotError
from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.loop import TickDeadlines
from skillstack.robot.safety import SafetyConfig
from skillstack.robot.types import Capabilities

SPIN_S = 2e-4  # s, the last stretch of each tick is spent polling the clock, not sleeping
STOP_SETTLE_TIMEOUT_S = 2.0  # s, longest a stop() waits for the arm to come to rest
STOP_SETTLED_SPEED = 0.01  # rad/s, every joint slower than this counts as at rest


class DriverUnavailable(RobotError):
    """The vendor SDK a driver needs is not installed (the message has the pip command)."""


class DriverConnectionError(RobotError):
    """The SDK is installed but the robot could not be reached or brought up."""


class DriverOptionError(ValueError):
    """An option the driver does not take, or a value it cannot read (one-line message)."""


@dataclass(frozen=True)
class DriverOption:
    """One option a driver takes as text: how to read it, and what it may be.

    Args:
        parse: text -> typed value; raises ValueError for a value it cannot read.
        values: what the value may be, as messages show it, e.g. ``"panda|fr3"``.
    """

    parse: Callable[[str], Any]
    values: str


def choice_option(names: Sequence[str]) -> DriverOption:
    """One of ``names`` (case-insensitive); the value is the name as listed."""
    by_key = {name.lower(): name for name in names}

    def parse(text: str) -> str:
        try:
            return by_key[text.strip().lower()]
        except KeyError:
            raise ValueError(text) from None

    return DriverOption(parse, "|".join(names))


def number_option(
    low: float, high: float, *, unit: str = "", low_inclusive: bool = False
) -> DriverOption:
    """A finite number in (low, high] (or [low, high] with ``low_inclusive``)."""

    def parse(text: str) -> float:
        value = float(text)
        above = value >= low if low_inclusive else value > low
        if not (math.isfinite(value) and above and value <= high):
            raise ValueError(text)
        return value

    bracket = "[" if low_inclusive else "("
    suffix = f" {unit}" if unit else ""
    return DriverOption(parse, f"N in {bracket}{low:g}, {high:g}]{suffix}")


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _parse_flag(text: str) -> bool:
    key = text.strip().lower()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise ValueError(text)


FLAG_OPTION = DriverOption(_parse_flag, "true|false")


def option_table(**options: DriverOption) -> Mapping[str, DriverOption]:
    """A driver's `DriverRobot.OPTIONS`: constructor keyword -> `DriverOption`, read-only."""
    return MappingProxyType(dict(options))


def import_sdk(module: str, *, driver: str, package: str, extra: str) -> ModuleType:
    """Import a vendor SDK module, or raise `DriverUnavailable` saying how to install it.

    Args:
        module: the module to import, e.g. ``"rtde_control"``.
        driver: the driver's name in messages, e.g. ``"UR"``.
        package: the PyPI package that provides ``module``.
        extra: the skillstack extra that installs ``package``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DriverUnavailable(
            f"the {driver} driver needs {package}: pip install 'skillstack[{extra}]' "
            f"(or pip install {package}); importing {module!r} failed: {exc}"
        ) from None


@contextlib.contextmanager
def caller_scheduling_kept() -> Iterator[None]:
    """Give the calling thread its scheduling policy back after an SDK call that changes it.

    libfranka's ``Robot`` constructor (under franky) moves the *calling* thread to SCHED_FIFO
    at priority 99 whenever the process may (root, or an rtprio limit), even with
    ``RealtimeConfig.Ignore``. Left so, every thread and process started from it afterwards
    inherits real-time priority: one busy loop among them then starves the whole machine.
    The SDK's own control threads set their priority themselves and keep it.
    """
    if not hasattr(os, "sched_getscheduler"):  # pragma: no cover - not Linux
        yield
        return
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        yield
    finally:
        if (os.sched_getscheduler(0), os.sched_getparam(0)) != (policy, param):
            os.sched_setscheduler(0, policy, param)


class TickPacer:
    """Paces a loop at a fixed rate on a monotonic clock and counts late ticks.

    `wait` blocks until the current tick's deadline, then moves the deadline one period
    on. A tick is late as `skillstack.robot.loop.TickDeadlines` defines it: `wait` is called
    after its deadline has passed (the loop body overran the period); it returns at once and
    the schedule is re-anchored at the current time, so a stall is not followed by a burst
    of zero-length ticks.

    Args:
        rate_hz: ticks per second.
        clock: monotonic time in seconds.
        sleep: blocks for the given seconds.
        spin_s: how much of each wait is spent polling ``clock`` instead of sleeping,
            because ``sleep`` may overshoot by tens of microseconds.
    """

    def __init__(
        self,
        rate_hz: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        spin_s: float = SPIN_S,
    ):
        if not (math.isfinite(rate_hz) and rate_hz > 0.0):
            raise ValueError(f"tick rate must be a positive number of Hz, got {rate_hz}")
        self.deadlines = TickDeadlines(1.0 / rate_hz)
        self.period = self.deadlines.period
        self._clock = clock
        self._sleep = sleep
        self._spin = spin_s

    @property
    def ticks(self) -> int:
        """Ticks waited for."""
        return self.deadlines.ticks

    @property
    def late_ticks(self) -> int:
        """Ticks whose `wait` came after their deadline."""
        return self.deadlines.late_ticks

    @property
    def max_overrun_s(self) -> float:
        """The latest (s) any tick's `wait` came after its deadline."""
        return self.deadlines.max_overrun_s

    def reset(self) -> None:
        """Forget the schedule: the next `wait` lasts one full period from its call."""
        self.deadlines.reset()

    def wait(self) -> bool:
        """Block until the next tick; returns True if this tick was already late."""
        if self.deadlines.end(self._clock()):
            return True
        deadline = self.deadlines.wake
        remaining = deadline - self._clock()
        if remaining > self._spin:
            self._sleep(remaining - self._spin)
        while self._clock() < deadline:
            pass
        return False


class DriverRobot(Robot):
    """What the vendor drivers share: host, monotonic clock, pacing, stop and e-stop.

    Subclasses implement `Robot`'s backend methods plus `_stop_motion` (the SDK's
    controlled stop). ``clock`` and ``sleep`` are injectable so the pacing can be tested
    without a robot.
    """

    driver_name = "vendor"  # used in messages, e.g. "UR"
    # Options a person may give as text (``--robot-option KEY=VALUE``): constructor keyword
    # -> how to read its value. Subclasses list theirs; see `parse_options`.
    OPTIONS: ClassVar[Mapping[str, DriverOption]] = option_table()
    # A real arm's readings always differ from one tick to the next (measured torques are
    # noisy): one identical to the previous is stale (`robot.sensors.SensorMonitor`).
    readings_always_change: ClassVar[bool] = True

    @classmethod
    def option_help(cls) -> str:
        """The options as one line, e.g. ``model=panda|fr3, gripper=true|false``."""
        return ", ".join(f"{key}={spec.values}" for key, spec in cls.OPTIONS.items()) or "none"

    @classmethod
    def parse_options(cls, options: Mapping[str, str] | None) -> dict[str, Any]:
        """Turn text options into the typed keywords of this driver's constructor.

        Raises `DriverOptionError` (one line, naming the valid keys or values) for a key
        the driver does not take or a value it cannot read.
        """
        parsed: dict[str, Any] = {}
        for key, text in (options or {}).items():
            spec = cls.OPTIONS.get(key)
            if spec is None:
                raise DriverOptionError(
                    f"the {cls.driver_name} driver has no option {key!r}; "
                    f"valid options: {cls.option_help()}"
                )
            try:
                parsed[key] = spec.parse(str(text))
            except (ValueError, TypeError):
                raise DriverOptionError(
                    f"bad value {text!r} for the {cls.driver_name} option {key}: "
                    f"expected {spec.values}"
                ) from None
        return parsed

    def __init__(
        self,
        host: str,
        capabilities: Capabilities,
        *,
        kinematics: KinematicModel | None = None,
        safety: SafetyConfig = SafetyConfig(),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not isinstance(host, str) or not host.strip():
            raise ValueError(f"the {self.driver_name} driver needs the robot's host or IP")
        super().__init__(capabilities, kinematics, safety)
        self.host = host.strip()
        self.clock = clock
        self.pacer = TickPacer(capabilities.control_rate_hz, clock=clock, sleep=sleep)

    # -- pacing ------------------------------------------------------------------------
    def wait_for_tick(self) -> None:
        """Block until the next control tick at the declared rate (late ticks are counted)."""
        self.pacer.wait()

    @property
    def late_ticks(self) -> int:
        """How many ticks the caller reached `wait_for_tick` after their deadline."""
        return self.pacer.late_ticks

    def connect(self) -> None:
        """Connect, arm the safety filter at the measured configuration, restart pacing."""
        super().connect()
        self.pacer.reset()

    # -- stopping ----------------------------------------------------------------------
    def stop(self) -> None:
        """Controlled stop through the SDK, then re-arm the safety filter where the arm rests.

        Waits (at most `STOP_SETTLE_TIMEOUT_S`) for every joint to slow below
        `STOP_SETTLED_SPEED`, so the next command starts from rest at the measured
        configuration rather than from the last command sent before the stop.
        """
        if not self._connected:
            return
        self._stop_motion()
        state = self.read()
        deadline = self.clock() + STOP_SETTLE_TIMEOUT_S
        while np.abs(state.dq).max() > STOP_SETTLED_SPEED and self.clock() < deadline:
            self.wait_for_tick()
            state = self.read()
        self.safety.reset(state.q)

    def estop(self, reason: str = "emergency stop") -> None:
        """Latch the safety filter's e-stop, then stop through the SDK (it stays latched)."""
        state = self._last_state if self._last_state is not None else self.read()
        self.safety.estop(reason, state.time)
        self.stop()

    def _stop_motion(self) -> None:
        """Ask the SDK for a controlled stop (decelerate within its limits, then hold)."""
        raise NotImplementedError

    # -- helpers for subclasses ------------------------------------------------------------
    def _connection_error(self, exc: BaseException, checks: str) -> DriverConnectionError:
        """A `DriverConnectionError` naming the host, the SDK's message and what to check."""
        return DriverConnectionError(
            f"cannot bring up the {self.driver_name} arm at {self.host}: "
            f"{type(exc).__name__}: {str(exc).strip().rstrip('.')}. Check: {checks}"
        )

    def _not_connected(self) -> DeviceNotConnectedError:
        return DeviceNotConnectedError(
            f"{self.driver_name} driver ({self.host}): call connect() (or use `with`) first"
        )
