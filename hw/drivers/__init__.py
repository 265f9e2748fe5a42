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
  measured configuration;
* declares the options a person may set as text (``--robot-option KEY=VALUE`` on the
  command line) in a table, `DriverRobot.OPTIONS`, which turns the text into the typed
  keyword its constructor takes, or refuses it with one line naming the valid ones.

Use::

    from skillstack.hw.drivers import make_driver, parse_driver_options

    with make_driver("ur", "192.168.1.10", model="ur5e") as robot:
        state = robot.read()

    options = parse_driver_options("franka", {"model": "fr3", "realtime_config": "ignore"})
    robot = make_driver("franka", "172.16.0.2", **options)  # model="fr3", realtime_config=...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skillstack.hw.drivers.base import (
    FLAG_OPTION,
    DriverConnectionError,
    DriverOption,
    DriverOptionError,
    DriverRobot,
    DriverUnavailable,
    TickPacer,
    choice_option,
    import_sdk,
    number_option,
    option_table,
)


def _registry() -> dict[str, type[DriverRobot]]:
    # The driver modules import no SDK at module level: this costs no vendor package.
    from skillstack.hw.drivers.franka import FrankaRobot
    from skillstack.hw.drivers.ur import URRobot
    from skillstack.hw.drivers.xarm import XArmRobot

    return {"franka": FrankaRobot, "ur": URRobot, "xarm": XArmRobot}


DRIVERS: dict[str, type[DriverRobot]] = _registry()


def driver_class(kind: str) -> type[DriverRobot]:
    """The driver class of ``kind``; ValueError listing the valid kinds for another."""
    try:
        return DRIVERS[kind]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown driver kind {kind!r}; valid kinds: {', '.join(sorted(DRIVERS))}"
        ) from None


def parse_driver_options(kind: str, options: Mapping[str, str] | None) -> dict[str, Any]:
    """Text options (``{"model": "fr3"}``) -> the typed keywords of driver ``kind``.

    Needs no SDK. Raises ValueError for an unknown kind and `DriverOptionError` (a
    ValueError) for an option the driver does not take or a value it cannot read.
    """
    return driver_class(kind).parse_options(options)


def make_driver(kind: str, host: str, **options) -> DriverRobot:
    """Construct (not connect) the driver ``kind`` for the arm at ``host``.

    ``options`` go to the driver's constructor (e.g. ``model="ur10e"``,
    ``control_rate_hz=250``; `parse_driver_options` makes them from text). Raises
    ValueError for an unknown kind, listing valid ones, and `DriverUnavailable` if the
    driver's SDK is not installed.
    """
    return driver_class(kind)(host, **options)


__all__ = [
    "DRIVERS",
    "FLAG_OPTION",
    "DriverConnectionError",
    "DriverOption",
    "DriverOptionError",
    "DriverRobot",
    "DriverUnavailable",
    "TickPacer",
    "choice_option",
    "driver_class",
    "import_sdk",
    "make_driver",
    "number_option",
    "option_table",
    "parse_driver_options",
]
