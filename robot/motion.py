"""Cartesian motion as a control-rate policy: trajectory → differential IK → joint target.

`CartesianMotion` is the workhorse under every scripted skill: give it waypoints, run it in
the `ControlLoop`, and it tracks them with the end effector, reporting how closely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skillstack.robot.ik import DifferentialIK, IKConfig
from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.trajectory import (
    DEFAULT_MAX_ANGULAR_SPEED,
    DEFAULT_MAX_LINEAR_SPEED,
    CartesianPath,
    TrajectorySample,
)
from skillstack.robot.types import Capabilities, JointCommand, Pose, RobotState

SETTLE_TIME = 0.3  # s, time given after the trajectory ends for the arm to come to rest
SETTLE_JOINT_TOL = 0.002  # rad, measured joints this close to the final target have arrived
JOINT_SETTLE_TIME = 0.1  # s, the same after a joint-space profile (it ends at rest)
SETTLE_TIMEOUT = 3.0  # s, longest wait after the trajectory for them to arrive
MIN_JERK_PEAK = 15.0 / 8.0  # peak over mean speed of the quintic profile


def settled(
    state: RobotState, target: np.ndarray, since_end: float, settle_time: float = SETTLE_TIME
) -> bool:
    """Whether a motion whose reference ended ``since_end`` seconds ago may end now.

    After ``settle_time``, once every measured joint is within `SETTLE_JOINT_TOL` of the final
    target; a lagging arm (a loaded simulator, a heavy payload) gets up to `SETTLE_TIMEOUT`,
    so that what follows (closing the fingers, checking a lift) sees the arm where it was
    sent rather than where the reference clock says it should be.
    """
    if since_end < settle_time:
        return False
    if since_end >= SETTLE_TIMEOUT:
        return True
    return float(np.max(np.abs(state.q - target))) <= SETTLE_JOINT_TOL


@dataclass
class TrackingReport:
    """How well the measured end effector followed the trajectory."""

    max_position_error: float  # m, largest distance from the reference during the motion
    final_position_error: float  # m, distance from the last waypoint at the end
    final_angle_error: float  # rad, orientation error at the end


class CartesianMotion:
    """Follow Cartesian waypoints with the end effector.

    Args:
        kinematics: kinematic model for the IK (the controller's own, not the sim's).
        capabilities: the robot's limits.
        waypoints: end-effector poses to visit in order, stopping at each.
        posture: null-space posture for the IK (the arm's home configuration).
        measure: a `KinematicModel` used to measure the tracking error from the *measured*
            joints; None skips measuring (saves ~2 µs a tick).
    """

    def __init__(
        self,
        kinematics: KinematicModel,
        capabilities: Capabilities,
        waypoints: list[Pose],
        posture: np.ndarray,
        max_linear_speed: float = DEFAULT_MAX_LINEAR_SPEED,
        max_angular_speed: float = DEFAULT_MAX_ANGULAR_SPEED,
        ik_config: IKConfig = IKConfig(),
        measure: KinematicModel | None = None,
    ):
        self.kin = kinematics
        self.ik = DifferentialIK(kinematics, capabilities, posture, ik_config)
        self.waypoints = list(waypoints)
        self.max_linear_speed = max_linear_speed
        self.max_angular_speed = max_angular_speed
        self.measure = measure
        self._period = capabilities.control_dt
        self.sample = TrajectorySample.empty()
        self.path: CartesianPath | None = None
        self._t0 = 0.0
        self._traj_done = False
        self._done = False
        self._max_err = 0.0
        self._end_time = 0.0

    def reset(self, state: RobotState) -> None:
        """Plan the path from the commanded pose and start the IK there.

        Starting from the last commanded joints (rather than the measured ones, which lag by
        the servo's tracking error) makes consecutive motions join without a velocity step.
        """
        q0 = state.q if state.q_desired is None else state.q_desired
        self.ik.reset(q0)
        self.kin.update(q0)
        start = self.kin.ee_pose()
        self.path = CartesianPath(
            start, self.waypoints, self.max_linear_speed, self.max_angular_speed
        )
        self._t0 = state.time
        self._traj_done = self._done = False
        self._max_err = 0.0

    @property
    def done(self) -> bool:
        """True once the trajectory has ended and the arm has arrived (see `settled`)."""
        return self._done

    @property
    def duration(self) -> float:
        """Planned duration of the path in seconds (after `reset`)."""
        return self.path.duration if self.path is not None else 0.0

    def step(self, state: RobotState) -> JointCommand:
        """One tick: sample the path, solve the IK, return the joint target."""
        t = state.time - self._t0
        if not self._traj_done:
            assert self.path is not None, "reset() plans the path before the first step"
            self._traj_done = self.path.sample(t, self.sample)
            if self._traj_done:
                self._end_time = t
        q = self.ik.step(self.sample, self._period)
        if self.measure is not None:
            self.measure.update_positions_only(state.q)
            err = float(np.linalg.norm(self.measure.ee_position - self.sample.position))
            if err > self._max_err:
                self._max_err = err
        if self._traj_done and settled(state, q, t - self._end_time):
            self._done = True
        return JointCommand("joint_position", q.copy(), state.time)

    def report(self, measured_q: np.ndarray) -> TrackingReport:
        """Tracking figures, given the measured joints at the end of the motion."""
        kin = self.measure or self.kin
        kin.update(measured_q)
        pose = kin.ee_pose()
        goal = self.waypoints[-1]
        dq = float(abs(np.dot(pose.quat, goal.quat)))
        angle = 2.0 * float(np.arccos(min(1.0, dq)))
        return TrackingReport(
            max_position_error=self._max_err,
            final_position_error=float(np.linalg.norm(pose.position - goal.position)),
            final_angle_error=angle,
        )


class Hold:
    """A policy that holds the joints where they were when it started (e.g. while gripping)."""

    def __init__(self, duration: float):
        self.duration = duration
        self._q: np.ndarray | None = None  # latched by reset
        self._t0 = 0.0
        self._done = False

    def reset(self, state: RobotState) -> None:
        """Latch the configuration to hold (the commanded one, if the robot reports it)."""
        self._q = (state.q if state.q_desired is None else state.q_desired).copy()
        self._t0 = state.time
        self._done = False

    @property
    def done(self) -> bool:
        """True once ``duration`` seconds have passed."""
        return self._done

    def step(self, state: RobotState) -> JointCommand:
        """Command the latched configuration."""
        self._done = state.time - self._t0 >= self.duration
        assert self._q is not None, "reset() latches the configuration before the first step"
        return JointCommand("joint_position", self._q, state.time)


class JointMotion:
    """Move the joints to ``goal`` along a minimum-jerk profile (no Cartesian path).

    For large reconfigurations (pointing down → pointing sideways) where following a
    straight Cartesian line would run into joint limits. The duration is the shortest for
    which every joint stays under ``speed_fraction`` of its velocity limit.
    """

    def __init__(self, goal: np.ndarray, capabilities: Capabilities, speed_fraction: float = 0.3):
        self.goal = np.asarray(goal, dtype=float)
        self.vmax = capabilities.velocity_limit * speed_fraction
        self._start: np.ndarray | None = None  # set by reset
        self._t0 = 0.0
        self.duration = 0.0
        self._done = False

    def reset(self, state: RobotState) -> None:
        """Start from the commanded (or measured) joints."""
        start = (state.q if state.q_desired is None else state.q_desired).copy()
        self._start = start
        travel = np.abs(self.goal - start)
        self.duration = max(float(np.max(MIN_JERK_PEAK * travel / self.vmax)), 0.2)
        self._t0 = state.time
        self._done = False

    @property
    def done(self) -> bool:
        """True once the profile has ended and the arm has arrived (see `settled`)."""
        return self._done

    def step(self, state: RobotState) -> JointCommand:
        """The joint target for this tick."""
        t = state.time - self._t0
        tau = min(t / self.duration, 1.0)
        s = tau**3 * (10.0 - 15.0 * tau + 6.0 * tau * tau)
        assert self._start is not None, "reset() sets the start before the first step"
        q = self._start + s * (self.goal - self._start)
        self._done = tau >= 1.0 and settled(state, q, t - self.duration, JOINT_SETTLE_TIME)
        return JointCommand("joint_position", q, state.time)
