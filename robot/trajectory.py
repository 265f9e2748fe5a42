"""Cartesian trajectories: straight-line position, geodesic orientation, minimum-jerk timing.

A `CartesianSegment` moves the end effector from one pose to another along a straight line
while the orientation rotates about a fixed axis, both following the same quintic
(minimum-jerk) time law: zero velocity and acceleration at both ends, a bell-shaped speed
profile in between. The duration is chosen from speed limits unless given.

`CartesianPath` chains segments through waypoints (stopping at each). Sampling writes into
caller-owned buffers so the 1 kHz loop does not allocate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from skillstack.robot.types import Pose

# Peak speed of the quintic law is 15/8 of the mean speed.
MIN_JERK_PEAK_FACTOR = 15.0 / 8.0
DEFAULT_MAX_LINEAR_SPEED = 0.25  # m/s, peak end-effector speed
DEFAULT_MAX_ANGULAR_SPEED = 1.0  # rad/s, peak end-effector angular speed
MIN_DURATION = 0.2  # s, even tiny moves take this long


def min_jerk(tau: float) -> tuple[float, float, float]:
    """Quintic time law at normalised time ``tau`` in [0, 1]: (s, ds/dtau, d2s/dtau2)."""
    t2 = tau * tau
    t3 = t2 * tau
    s = t3 * (10.0 - 15.0 * tau + 6.0 * t2)
    ds = 30.0 * t2 * (1.0 - 2.0 * tau + t2)
    dds = 60.0 * tau * (1.0 - 3.0 * tau + 2.0 * t2)
    return s, ds, dds


@dataclass(slots=True)
class TrajectorySample:
    """Buffers for one sample: pose and feed-forward twist (linear then angular, world frame)."""

    position: np.ndarray
    quat: np.ndarray
    twist: np.ndarray

    @staticmethod
    def empty() -> TrajectorySample:
        """Zeroed buffers."""
        return TrajectorySample(np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(6))


class CartesianSegment:
    """Minimum-jerk motion between two poses.

    Args:
        start, goal: end-effector poses.
        duration: seconds; if None, the shortest duration whose peak linear speed is at most
            ``max_linear_speed`` and peak angular speed at most ``max_angular_speed``.
    """

    def __init__(
        self,
        start: Pose,
        goal: Pose,
        duration: float | None = None,
        max_linear_speed: float = DEFAULT_MAX_LINEAR_SPEED,
        max_angular_speed: float = DEFAULT_MAX_ANGULAR_SPEED,
    ):
        if not (max_linear_speed > 0 and max_angular_speed > 0):  # also rejects NaN
            raise ValueError(
                f"speed limits must be positive numbers, got linear={max_linear_speed} m/s, "
                f"angular={max_angular_speed} rad/s"
            )
        self.start = start
        self.goal = goal
        self._p0 = np.array(start.position, dtype=float)
        self._dp = np.asarray(goal.position, dtype=float) - self._p0
        self._q0 = np.array(start.quat, dtype=float)
        # Rotation from start to goal as a rotation vector in the start frame, short way round.
        qg = np.array(goal.quat, dtype=float)
        if float(self._q0 @ qg) < 0.0:
            qg = -qg
        self._rotvec_local = np.zeros(3)
        mujoco.mju_subQuat(self._rotvec_local, qg, self._q0)
        rot0 = np.zeros(9)
        mujoco.mju_quat2Mat(rot0, self._q0)
        self._rotvec_world = rot0.reshape(3, 3) @ self._rotvec_local
        self.distance = float(np.linalg.norm(self._dp))
        self.angle = float(np.linalg.norm(self._rotvec_local))
        if duration is None:
            duration = max(
                MIN_JERK_PEAK_FACTOR * self.distance / max_linear_speed,
                MIN_JERK_PEAK_FACTOR * self.angle / max_angular_speed,
                MIN_DURATION,
            )
        if not duration > 0 or not math.isfinite(duration):
            raise ValueError(f"duration must be a positive number of seconds, got {duration}")
        self.duration = float(duration)

    def sample(self, t: float, out: TrajectorySample) -> bool:
        """Write the pose and twist at time ``t`` (s from the start); return True when done."""
        T = self.duration
        if t >= T:
            tau, done = 1.0, True
        elif t <= 0.0:
            tau, done = 0.0, False
        else:
            tau, done = t / T, False
        s, ds, _ = min_jerk(tau)
        rate = ds / T
        np.multiply(self._dp, s, out=out.position)
        out.position += self._p0
        out.quat[:] = self._q0
        mujoco.mju_quatIntegrate(out.quat, self._rotvec_local, s)
        np.multiply(self._dp, rate, out=out.twist[:3])
        np.multiply(self._rotvec_world, rate, out=out.twist[3:])
        return done


class CartesianPath:
    """A sequence of `CartesianSegment`s through waypoints, stopping at each one."""

    def __init__(
        self,
        start: Pose,
        waypoints: list[Pose],
        max_linear_speed: float = DEFAULT_MAX_LINEAR_SPEED,
        max_angular_speed: float = DEFAULT_MAX_ANGULAR_SPEED,
    ):
        if not waypoints:
            raise ValueError("a path needs at least one waypoint")
        self.segments: list[CartesianSegment] = []
        previous = start
        for goal in waypoints:
            self.segments.append(
                CartesianSegment(previous, goal, None, max_linear_speed, max_angular_speed)
            )
            previous = goal
        self._ends = np.cumsum([s.duration for s in self.segments])
        self.duration = float(self._ends[-1])
        self._index = 0

    def segment_index(self, t: float) -> int:
        """Index of the segment active at time ``t``."""
        while self._index > 0 and t < self._ends[self._index - 1]:
            self._index -= 1
        while self._index < len(self.segments) - 1 and t >= self._ends[self._index]:
            self._index += 1
        return self._index

    def sample(self, t: float, out: TrajectorySample) -> bool:
        """Write the pose and twist at time ``t``; return True once the last waypoint is due."""
        i = self.segment_index(t)
        begin = float(self._ends[i - 1]) if i else 0.0
        self.segments[i].sample(t - begin, out)
        # Compare with the path's own duration: t - begin can round to just below the last
        # segment's duration at t == self.duration.
        return t >= self.duration
