"""Tests for robot.ik.DifferentialIK: convergence, joint limits, speed limits, robustness."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skillstack.robot.arms import get_arm
from skillstack.robot.ik import DifferentialIK, IKConfig
from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.rotations import quat_angle, quat_mul
from skillstack.robot.trajectory import CartesianSegment, TrajectorySample
from skillstack.robot.types import Pose

ARM = get_arm("panda")
CAPS = ARM.capabilities
HOME = ARM.home_q
DT = 0.001
STEPS = 3000
POS_TOL = 1e-4  # m
ANGLE_TOL = math.radians(0.05)


@pytest.fixture(scope="module")
def fk() -> KinematicModel:
    """A kinematic model for the test's own measurements, separate from the IK's."""
    return KinematicModel(ARM)


@pytest.fixture
def ik() -> DifferentialIK:
    solver = DifferentialIK(KinematicModel(ARM), CAPS, HOME)
    solver.reset(HOME)
    return solver


def pose_of(fk: KinematicModel, q: np.ndarray) -> Pose:
    fk.update(q)
    return fk.ee_pose()


def target_at(pose: Pose) -> TrajectorySample:
    return TrajectorySample(pose.position.copy(), pose.quat.copy(), np.zeros(6))


def errors(fk: KinematicModel, q: np.ndarray, target: TrajectorySample) -> tuple[float, float]:
    pose = pose_of(fk, q)
    return float(np.linalg.norm(pose.position - target.position)), quat_angle(
        pose.quat, target.quat
    )


def run(ik: DifferentialIK, target: TrajectorySample, steps: int = STEPS) -> np.ndarray:
    """Iterate the IK; return the commanded configuration after every step (steps+1, dof)."""
    history = np.empty((steps + 1, CAPS.dof))
    history[0] = ik.q
    for k in range(1, steps + 1):
        history[k] = ik.step(target, DT)
    return history


def assert_within_margin_and_speed(history: np.ndarray, config: IKConfig = IKConfig()) -> None:
    assert np.isfinite(history).all()
    assert (history >= CAPS.joint_lower + config.limit_margin).all()
    assert (history <= CAPS.joint_upper - config.limit_margin).all()
    speed = np.abs(np.diff(history, axis=0)) / DT
    vmax = CAPS.velocity_limit * config.speed_fraction
    assert (speed <= vmax * (1 + 1e-9)).all(), (speed / vmax).max()


def reachable_targets(fk: KinematicModel, n: int, seed: int) -> list[np.ndarray]:
    """Joint configurations within limits (shrunk by 0.3 rad), at most 1 rad from home per
    joint, whose end effector is in a box in front of the robot above the table."""
    rng = np.random.default_rng(seed)
    lower, upper = CAPS.joint_lower + 0.3, CAPS.joint_upper - 0.3
    found = []
    while len(found) < n:
        q = np.clip(HOME + rng.uniform(-1.0, 1.0, CAPS.dof), lower, upper)
        p = pose_of(fk, q).position
        if 0.3 <= p[0] <= 0.7 and abs(p[1]) <= 0.3 and 0.1 <= p[2] <= 0.6:
            found.append(q)
    return found


def test_converges_to_reachable_targets_within_limits(fk, ik):
    configs = reachable_targets(fk, 12, seed=2024)
    worst_pos = worst_ang = 0.0
    for q_goal in configs:
        target = target_at(pose_of(fk, q_goal))
        ik.reset(HOME)
        start_err = errors(fk, HOME, target)
        history = run(ik, target)
        assert_within_margin_and_speed(history)
        pos_err, ang_err = errors(fk, history[-1], target)
        worst_pos, worst_ang = max(worst_pos, pos_err), max(worst_ang, ang_err)
        assert pos_err < POS_TOL, (q_goal, pos_err, start_err)
        assert ang_err < ANGLE_TOL, (q_goal, math.degrees(ang_err), start_err)
    assert worst_pos > 0 or worst_ang > 0  # measured, not trivially zero


def test_error_is_position_then_world_frame_rotation_vector(fk, ik):
    home = pose_of(fk, HOME)
    yaw = 0.1
    about_z = np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])
    quat = quat_mul(about_z, home.quat)  # a world-frame rotation of the home orientation
    target = TrajectorySample(home.position + np.array([0.01, -0.02, 0.005]), quat, np.zeros(6))
    err = ik.error(target)
    np.testing.assert_allclose(err, [0.01, -0.02, 0.005, 0.0, 0.0, yaw], atol=1e-9)


def test_step_returns_the_commanded_configuration(fk, ik):
    target = target_at(pose_of(fk, HOME))
    q = ik.step(target, DT)
    assert q is ik.q
    start = HOME.copy()
    ik.reset(start)
    start[0] += 1.0  # reset copied its argument
    np.testing.assert_array_equal(ik.q, HOME)


def test_holds_still_at_its_target(fk, ik):
    target = target_at(pose_of(fk, HOME))
    history = run(ik, target, 500)
    np.testing.assert_allclose(history, np.tile(HOME, (501, 1)), atol=1e-9)


def test_tracks_a_cartesian_segment_with_feedforward(fk, ik):
    start = pose_of(fk, HOME)
    about_z = np.array([math.cos(0.3), 0.0, 0.0, math.sin(0.3)])  # 0.6 rad
    goal_quat = quat_mul(about_z, start.quat)
    goal = Pose(start.position + np.array([0.15, 0.1, -0.2]), goal_quat)
    seg = CartesianSegment(start, goal)
    ref = TrajectorySample.empty()
    worst = 0.0
    history = [ik.q.copy()]
    for k in range(1, int(seg.duration / DT) + 200):
        seg.sample(k * DT, ref)
        history.append(ik.step(ref, DT).copy())
        pos_err, ang_err = errors(fk, history[-1], ref)
        worst = max(worst, pos_err)
        assert ang_err < math.radians(0.1)
    assert_within_margin_and_speed(np.array(history))
    assert worst < 5e-4  # 0.5 mm (motion's settle tolerance) while moving at 0.25 m/s
    pos_err, ang_err = errors(fk, history[-1], target_at(goal))
    assert pos_err < POS_TOL and ang_err < ANGLE_TOL


def test_posture_moves_only_the_null_space(fk):
    """Moved along its self-motion (same ee pose), the arm drifts back to the posture."""
    q_start = HOME.copy()
    previous = None
    for _ in range(400):  # walk 0.4 rad along the null space of the Jacobian
        fk.update(q_start)
        n = np.linalg.svd(fk.ee_jacobian())[2][-1]
        if previous is not None and n @ previous < 0:
            n = -n
        q_start += 1e-3 * n
        previous = n
    assert np.linalg.norm(q_start - HOME) > 0.35
    target = target_at(pose_of(fk, q_start))
    ik = DifferentialIK(KinematicModel(ARM), CAPS, HOME)
    ik.reset(q_start)
    history = run(ik, target, 2000)
    for q in history[::100]:  # the ee stays on target all along, not only at the end
        pos_err, ang_err = errors(fk, q, target)
        assert pos_err < POS_TOL and ang_err < ANGLE_TOL
    assert np.linalg.norm(history[-1] - HOME) < 0.02


@pytest.mark.parametrize(
    "position",
    [(1.6, 0.2, 0.4), (0.0, 0.0, 2.0), (-1.0, -1.0, -0.5)],
    ids=["far-front", "straight-up", "below-behind"],
)
def test_target_out_of_reach_stays_finite_and_within_limits(fk, ik, position):
    home = pose_of(fk, HOME)
    target = TrajectorySample(np.array(position, dtype=float), home.quat.copy(), np.zeros(6))
    start_dist, _ = errors(fk, HOME, target)
    history = run(ik, target, 2000)
    assert_within_margin_and_speed(history)
    end_dist, _ = errors(fk, history[-1], target)
    assert end_dist < start_dist - 0.05  # it reaches toward the target


@pytest.mark.parametrize(
    ("position", "yaw", "pinned"),
    [
        ((0.4, 0.0, 0.4), -3.0, {6: "upper"}),  # more wrist roll than joint 7 has
        ((-0.6, 0.0, 0.3), 0.0, {1: "lower", 5: "lower"}),  # behind the base
    ],
    ids=["wrist-roll", "behind"],
)
def test_joints_pressed_against_their_limits_stay_at_the_margin(fk, ik, position, yaw, pinned):
    home = pose_of(fk, HOME)
    about_z = np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])
    target = TrajectorySample(
        np.array(position, dtype=float), quat_mul(about_z, home.quat), np.zeros(6)
    )
    history = run(ik, target, 2000)
    assert_within_margin_and_speed(history)
    margin = IKConfig().limit_margin
    for j, side in pinned.items():
        limit = CAPS.joint_upper[j] - margin if side == "upper" else CAPS.joint_lower[j] + margin
        assert history[-1, j] == pytest.approx(limit, abs=1e-12)


def test_speed_limit_holds_under_a_large_feedforward_twist(fk, ik):
    home = pose_of(fk, HOME)
    target = TrajectorySample(home.position.copy(), home.quat.copy(), np.zeros(6))
    target.twist[:] = [5.0, -5.0, 5.0, 20.0, -20.0, 20.0]  # absurd feed-forward
    history = run(ik, target, 1000)
    assert_within_margin_and_speed(history)
    # The fastest joint moves at its (scaled) limit: the scaling is not overly timid.
    speed = np.abs(np.diff(history[:50], axis=0)) / DT
    vmax = CAPS.velocity_limit * IKConfig().speed_fraction
    assert (speed / vmax).max(axis=1).min() > 0.999


def test_custom_margin_and_speed_fraction_are_respected(fk):
    config = IKConfig(limit_margin=0.1, speed_fraction=0.5)
    solver = DifferentialIK(KinematicModel(ARM), CAPS, HOME, config)
    solver.reset(HOME)
    target = TrajectorySample(
        np.array([0.2, 0.8, 0.1]), np.array([0.0, 1.0, 0.0, 0.0]), np.zeros(6)
    )
    history = run(solver, target, 2000)
    assert_within_margin_and_speed(history, config)


def test_without_posture_task_the_error_vanishes(fk):
    """Without the posture task the far target below converges to machine precision."""
    q_goal = np.array([-0.144, 1.207, 1.381, -0.573, -1.935, 0.516, -2.232])
    target = target_at(pose_of(fk, q_goal))
    solver = DifferentialIK(KinematicModel(ARM), CAPS, HOME, IKConfig(posture_gain=0.0))
    solver.reset(HOME)
    history = run(solver, target, 4000)
    pos_err, ang_err = errors(fk, history[-1], target)
    assert pos_err < 1e-9 and ang_err < 1e-8


def test_converges_to_a_target_far_from_the_posture(fk, ik):
    """The posture task leaks into the end-effector task through the DLS damping (at
    equilibrium gain*e = lambda^2 (J J^T)^-1 (-J z)); with lambda = 1e-2 this target stalled
    0.27 mm away. The damping must stay small enough for it to converge."""
    q_goal = np.array([-0.144, 1.207, 1.381, -0.573, -1.935, 0.516, -2.232])
    target = target_at(pose_of(fk, q_goal))
    history = run(ik, target, 6000)
    pos_err, ang_err = errors(fk, history[-1], target)
    assert pos_err < POS_TOL and ang_err < ANGLE_TOL
