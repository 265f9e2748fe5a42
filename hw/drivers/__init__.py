"""Vendor drivers: real arms behind the `hw.robot.Robot` interface.

Three adapters, one per vendor SDK; none of the SDKs is a dependency of skillstack:

==========  =================================  ========================  =========================
kind        class                              SDK (pip extra)           default rate, modes
==========  =================================  ========================  =========================
``franka``  `hw.drivers.franka.FrankaRobot`    franky-control (franka)   100 Hz position, velocity
``ur``      `hw.drivers.ur.URRobot`            ur_rtde (ur)              500 Hz servoJ, speedJ
``xarm``    `hw.drivers.xarm.XArmRobot`        xarm-python-sdk (xarm)    100 Hz servo, velocity
==========  =================================  ========================  =========================

Each module documents what its adapter really achieves (rate, modes, what the SDK does
between our ticks) and cites the source of its limits. Every driver

* imports its SDK only when constructed, and raises `DriverUnavailable` with the pip
  command when it is missing — importing this package never needs an SDK;
* wraps the SDK's connection errors in `DriverConnectionError`, naming the host and what
  to check, instead of letting a raw traceback through;
* reports SI units (rad, rad/s, N m, m) whatever the SDK speaks;
* timestamps states with a monotonic clock and paces `wait_for_tick` at its declared
  rate with a `TickPacer`, which counts the ticks the caller was late for;
* stops through the SDK's own controlled stop and then re-arms the safety filter at the
  measured configuration.

Use::

    from hw.drivers import make_driver

    with make_driver("ur", "192.168.1.10", model="ur5e") as robot:
        state = robot.read()
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable
from types import ModuleType

import numpy as np

from hw.robot import DeviceNotConnectedError, Robot, RobotError
from robot.kinematics import KinematicModel
from robot.safety import SafetyConfig
from robot.types import Capabilities

SPIN_S = 2e-4  # s, the last stretch of each tick is spent polling the clock, not sleeping
STOP_SETTLE_TIMEOUT_S = 2.0  # s, longest a stop() waits for the arm to come to rest
STOP_SETTLED_SPEED = 0.01  # rad/s, every joint slower than this counts as at rest


class DriverUnavailable(RobotError):
    """The vendor SDK a driver needs is not installed (the message has the pip command)."""


class DriverConnectionError(RobotError):
    """The SDK is installed but the robot could not be reached or brought up."""


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


class TickPacer:
    """Paces a loop at a fixed rate on a monotonic clock and counts late ticks.

    `wait` blocks until the current tick's deadline, then moves the deadline one period
    on. A tick is *late* when `wait` is called after its deadline has passed (the loop
    body overran the period): it returns at once and the schedule is re-anchored at the
    current time, so a stall is not followed by a burst of zero-length ticks.

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
        self.period = 1.0 / rate_hz
        self._clock = clock
        self._sleep = sleep
        self._spin = spin_s
        self._deadline: float | None = None
        self.ticks = 0
        self.late_ticks = 0
        self.max_overrun_s = 0.0  # s, the latest any tick was called after its deadline

    def reset(self) -> None:
        """Forget the schedule: the next `wait` lasts one full period from its call."""
        self._deadline = None

    def wait(self) -> bool:
        """Block until the next tick; returns True if this tick was already late."""
        now = self._clock()
        self.ticks += 1
        if self._deadline is None:
            self._deadline = now + self.period
        elif now > self._deadline:
            self.late_ticks += 1
            self.max_overrun_s = max(self.max_overrun_s, now - self._deadline)
            self._deadline = now + self.period
            return True
        deadline = self._deadline
        remaining = deadline - now
        if remaining > self._spin:
            self._sleep(remaining - self._spin)
        while self._clock() < deadline:
            pass
        self._deadline = deadline + self.period
        return False


class DriverRobot(Robot):
    """What the vendor drivers share: host, monotonic clock, pacing, stop and e-stop.

    Subclasses implement `Robot`'s backend methods plus `_stop_motion` (the SDK's
    controlled stop). ``clock`` and ``sleep`` are injectable so the pacing can be tested
    without a robot.
    """

    driver_name = "vendor"  # used in messages, e.g. "UR"

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
            f"{type(exc).__name__}: {exc}. Check: {checks}"
        )

    def _not_connected(self) -> DeviceNotConnectedError:
        return DeviceNotConnectedError(
            f"{self.driver_name} driver ({self.host}): call connect() (or use `with`) first"
        )


def _registry() -> dict[str, type[DriverRobot]]:
    # The driver modules import this package's base classes, so they are imported here,
    # after those exist. They import no SDK at module level: this costs no vendor package.
    from hw.drivers.franka import FrankaRobot
    from hw.drivers.ur import URRobot
    from hw.drivers.xarm import XArmRobot

    return {"franka": FrankaRobot, "ur": URRobot, "xarm": XArmRobot}


DRIVERS: dict[str, type[DriverRobot]] = _registry()


def make_driver(kind: str, host: str, **options) -> DriverRobot:
    """Construct (not connect) the driver ``kind`` for the arm at ``host``.

    ``options`` go to the driver's constructor (e.g. ``model="ur10e"``,
    ``control_rate_hz=250``). Raises ValueError for an unknown kind, listing valid ones,
    and `DriverUnavailable` if the driver's SDK is not installed.
    """
    try:
        cls = DRIVERS[kind]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown driver kind {kind!r}; valid kinds: {', '.join(sorted(DRIVERS))}"
        ) from None
    return cls(host, **options)


__all__ = [
    "DRIVERS",
    "DriverConnectionError",
    "DriverRobot",
    "DriverUnavailable",
    "TickPacer",
    "import_sdk",
    "make_driver",
]
