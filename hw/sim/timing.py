"""The simulated clock both backends share: the physics step and the control period.

Both simulators integrate at `PHYSICS_DT`; a control tick (`Robot.wait_for_tick`) advances
a whole number of physics steps, which `control_timing` works out from the arm's declared
control rate (or an override) and refuses when the period is not a whole number of steps.
"""

from __future__ import annotations

import dataclasses

from skillstack.robot.types import Capabilities

PHYSICS_DT = 0.001  # s


def control_timing(caps: Capabilities, control_rate_hz: float | None) -> tuple[Capabilities, int]:
    """The capabilities at ``control_rate_hz`` (the arm's own rate if None) and the number of
    `PHYSICS_DT` steps per control tick; `ValueError` if the period is not a whole number."""
    if control_rate_hz is not None:
        caps = dataclasses.replace(caps, control_rate_hz=float(control_rate_hz))
    substeps = caps.control_dt / PHYSICS_DT
    if abs(substeps - round(substeps)) > 1e-9 or round(substeps) < 1:
        raise ValueError(
            f"control period {caps.control_dt * 1e3:g} ms must be a whole number of "
            f"{PHYSICS_DT * 1e3:g} ms physics steps"
        )
    return caps, round(substeps)


def check_control_rate(control_rate_hz: float) -> float:
    """``control_rate_hz`` if it is a whole number of `PHYSICS_DT` steps per tick (1000, 500,
    250, 200, 100, ... Hz), else `ValueError` saying which rates are allowed."""
    rate = float(control_rate_hz)
    steps = 1.0 / (rate * PHYSICS_DT) if 0.0 < rate < float("inf") else 0.0
    if steps < 1 or abs(steps - round(steps)) > 1e-9:
        raise ValueError(
            f"control rate {control_rate_hz!r:.20} Hz must be {1 / PHYSICS_DT:g} Hz divided by a "
            "whole number (1000, 500, 250, 200, 100, 50 ...)"
        )
    return rate
