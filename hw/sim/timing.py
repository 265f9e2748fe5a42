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
