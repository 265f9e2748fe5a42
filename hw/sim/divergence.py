"""The error a simulated backend raises when its physics blows up."""

from __future__ import annotations

from skillstack.hw.robot import RobotError


class SimulationDiverged(RobotError):
    """The physics became unstable (NaN/inf or huge velocities); the episode must not count."""
