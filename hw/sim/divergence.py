"""The error a simulated backend raises when its physics blows up, and the speed bound that
catches a blow-up on the first control tick it shows.

MuJoCo's own instability warnings fire only once a value reaches ~1e10 or NaN: a run-away
arm has by then spun at 1e5 rad/s for tens of ticks. Every simulated backend therefore
also checks the arm's joint speeds after each control tick against `speed_bound`: no
joint servoed within its limits moves `robot.sensors.SPEED_FACTOR` times faster than its
velocity limit unless the integration went unstable.
"""

from __future__ import annotations

import numpy as np

from skillstack.hw.robot import RobotError
from skillstack.robot.sensors import SPEED_FACTOR
from skillstack.robot.types import Capabilities


class SimulationDiverged(RobotError):
    """The physics became unstable (NaN/inf or huge velocities); the episode must not count."""


def speed_bound(capabilities: Capabilities) -> np.ndarray:
    """Per-joint speeds (rad/s) no simulated arm reaches unless its physics blew up."""
    return SPEED_FACTOR * np.asarray(capabilities.velocity_limit, dtype=float)


def runaway_message(dq: np.ndarray, bound: np.ndarray, time: float) -> str:
    """One line naming the fastest joint over ``bound`` (for `SimulationDiverged`)."""
    j = int(np.argmax(np.abs(dq) / bound))
    return (
        f"simulation diverged at t={time:.3f} s: joint {j + 1} moves at {dq[j]:.3g} rad/s, "
        f"over {SPEED_FACTOR:.0f}x its {bound[j] / SPEED_FACTOR:.2f} rad/s limit; the state "
        "is invalid — reset() before continuing"
    )
