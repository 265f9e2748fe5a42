"""Tests for robot.trajectory: the minimum-jerk law, Cartesian segments and paths."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from skillstack.robot.rotations import (
    axis_angle_quat,
    quat_angle,
    quat_conj,
    quat_mul,
    quat_to_rotvec,
)
from skillstack.robot.trajectory import (
    DEFAULT_MAX_ANGULAR_SPEED,
    DEFAULT_MAX_LINEAR_SPEED,
    MIN_DURATION,
    MIN_JERK_PEAK_FACTOR,
    CartesianPath,
    CartesianSegment,
    TrajectorySample,
    min_jerk,
)
from skillstack.robot.types import Pose

DOWN = (0.0, 1.0, 0.0, 0.0)  # gripper pointing down: 180 deg about x


# -- quaternion helpers independent of MuJoCo ---------------------------------------------


def assert_same_rotation(qa, qb, atol=1e-12):
    assert quat_angle(qa, qb) <= atol, (qa, qb)


def sample_at(traj, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    out = TrajectorySample.empty()
    done = traj.sample(t, out)
    return out.position.copy(), out.quat.copy(), out.twist.copy(), done


@pytest.fixture
def start() -> Pose:
    return Pose.from_xyz_quat((0.4, -0.1, 0.3), DOWN)


@pytest.fixture
def goal() -> Pose:
    # 25 cm away, rotated 60 deg about a tilted axis.
    q = quat_mul(axis_angle_quat((0.3, -0.5, 1.0), math.radians(60)), DOWN)
    return Pose.from_xyz_quat((0.55, 0.1, 0.2), q)


# -- min_jerk ------------------------------------------------------------------------------
def test_min_jerk_boundary_values():
    assert min_jerk(0.0) == (0.0, 0.0, 0.0)
    s, ds, dds = min_jerk(1.0)
    assert s == 1.0
    assert ds == 0.0
    assert dds == 0.0


def test_min_jerk_is_monotonic_symmetric_and_peaks_at_the_middle():
    taus = np.linspace(0.0, 1.0, 2001)
    s = np.array([min_jerk(t)[0] for t in taus])
    ds = np.array([min_jerk(t)[1] for t in taus])
    assert (np.diff(s) > 0).all()
    assert (ds >= 0).all()
    assert s.min() >= 0.0 and s.max() <= 1.0
    np.testing.assert_allclose(s + s[::-1], 1.0, atol=1e-14)
    assert min_jerk(0.5)[0] == pytest.approx(0.5)
    assert ds.max() == pytest.approx(MIN_JERK_PEAK_FACTOR)
    assert taus[ds.argmax()] == pytest.approx(0.5)


def test_min_jerk_derivatives_match_finite_differences():
    h = 1e-6
    for tau in np.linspace(0.05, 0.95, 19):
        s_p, ds_p, _ = min_jerk(tau + h)
        s_m, ds_m, _ = min_jerk(tau - h)
        _, ds, dds = min_jerk(tau)
        assert ds == pytest.approx((s_p - s_m) / (2 * h), abs=1e-7)
        assert dds == pytest.approx((ds_p - ds_m) / (2 * h), abs=1e-6)


# -- CartesianSegment ---------------------------------------------------------------------
def test_segment_starts_and_ends_exactly_at_its_poses(start, goal):
    seg = CartesianSegment(start, goal)
    p, q, twist, done = sample_at(seg, 0.0)
    np.testing.assert_array_equal(p, start.position)
    assert_same_rotation(q, start.quat)
    np.testing.assert_array_equal(twist, np.zeros(6))
    assert not done
    p, q, twist, done = sample_at(seg, seg.duration)
    np.testing.assert_allclose(p, goal.position, rtol=0, atol=1e-12)
    assert_same_rotation(q, goal.quat)
    np.testing.assert_allclose(twist, 0.0, atol=1e-12)
    assert done


def test_segment_clamps_times_outside_its_duration(start, goal):
    seg = CartesianSegment(start, goal)
    before = sample_at(seg, -1.0)
    at_start = sample_at(seg, 0.0)
    np.testing.assert_array_equal(before[0], at_start[0])
    np.testing.assert_array_equal(before[1], at_start[1])
    assert not before[3]
    after = sample_at(seg, seg.duration + 5.0)
    at_end = sample_at(seg, seg.duration)
    np.testing.assert_array_equal(after[0], at_end[0])
    np.testing.assert_array_equal(after[1], at_end[1])
    np.testing.assert_array_equal(after[2], np.zeros(6))
    assert after[3]


def test_segment_reports_done_only_at_the_end(start, goal):
    seg = CartesianSegment(start, goal)
    for t in np.linspace(0.0, seg.duration, 50)[:-1]:
        assert not seg.sample(t, TrajectorySample.empty())
    assert not seg.sample(np.nextafter(seg.duration, 0.0), TrajectorySample.empty())
    assert seg.sample(seg.duration, TrajectorySample.empty())


def test_sample_writes_into_the_callers_buffers(start, goal):
    seg = CartesianSegment(start, goal)
    out = TrajectorySample.empty()
    buffers = (out.position, out.quat, out.twist)
    seg.sample(0.3 * seg.duration, out)
    assert all(a is b for a, b in zip((out.position, out.quat, out.twist), buffers, strict=True))
    assert np.linalg.norm(out.quat) == pytest.approx(1.0, abs=1e-12)


def test_duration_follows_the_speed_limits(start, goal):
    seg = CartesianSegment(start, goal, max_linear_speed=0.1, max_angular_speed=1.0)
    assert seg.distance == pytest.approx(np.linalg.norm(goal.position - start.position))
    assert seg.angle == pytest.approx(math.radians(60))
    expected = max(MIN_JERK_PEAK_FACTOR * seg.distance / 0.1, MIN_JERK_PEAK_FACTOR * seg.angle)
    assert seg.duration == pytest.approx(expected)
    # Rotation-limited: a slow angular limit makes the segment longer.
    slow = CartesianSegment(start, goal, max_linear_speed=0.1, max_angular_speed=0.1)
    assert slow.duration == pytest.approx(MIN_JERK_PEAK_FACTOR * seg.angle / 0.1)
    # A tiny move still takes the minimum duration; an explicit duration is kept.
    tiny = Pose.from_xyz_quat(start.position + 1e-6, start.quat)
    assert CartesianSegment(start, tiny).duration == MIN_DURATION
    assert CartesianSegment(start, goal, duration=3.5).duration == 3.5


@pytest.mark.parametrize(
    ("v_lin", "v_ang"),
    [(DEFAULT_MAX_LINEAR_SPEED, DEFAULT_MAX_ANGULAR_SPEED), (0.05, 2.0), (1.0, 0.2)],
)
def test_peak_speeds_respect_the_limits_and_one_of_them_is_reached(start, goal, v_lin, v_ang):
    seg = CartesianSegment(start, goal, max_linear_speed=v_lin, max_angular_speed=v_ang)
    ts = np.linspace(0.0, seg.duration, 4001)
    dt = ts[1] - ts[0]
    samples = [sample_at(seg, t) for t in ts]
    pos = np.array([s[0] for s in samples])
    quats = [s[1] for s in samples]
    lin = np.linalg.norm(np.diff(pos, axis=0), axis=1) / dt
    ang = np.array([quat_angle(b, a) for a, b in itertools.pairwise(quats)]) / dt
    assert lin.max() <= v_lin * (1 + 1e-9)
    assert ang.max() <= v_ang * (1 + 1e-9)
    # The duration is the shortest allowed: the binding limit is (almost) reached.
    assert max(lin.max() / v_lin, ang.max() / v_ang) > 0.999
    # Reported twists respect the limits too.
    twists = np.array([s[2] for s in samples])
    assert np.linalg.norm(twists[:, :3], axis=1).max() <= v_lin * (1 + 1e-9)
    assert np.linalg.norm(twists[:, 3:], axis=1).max() <= v_ang * (1 + 1e-9)


def test_twist_matches_finite_differences_of_the_pose(start, goal):
    seg = CartesianSegment(start, goal, max_linear_speed=0.3, max_angular_speed=0.8)
    h = 1e-6
    peak = 0.0
    for frac in (0.01, 0.2, 0.37, 0.5, 0.81, 0.99):
        t = frac * seg.duration
        _, _, twist, _ = sample_at(seg, t)
        p_p, q_p, _, _ = sample_at(seg, t + h)
        p_m, q_m, _, _ = sample_at(seg, t - h)
        v_fd = (p_p - p_m) / (2 * h)
        w_fd = quat_to_rotvec(quat_mul(q_p, quat_conj(q_m))) / (2 * h)  # world frame
        np.testing.assert_allclose(twist[:3], v_fd, rtol=0, atol=1e-7)
        np.testing.assert_allclose(twist[3:], w_fd, rtol=0, atol=1e-7)
        peak = max(peak, np.linalg.norm(twist[3:]))
    assert peak > 0.1  # the comparison above is not vacuous


def test_position_moves_on_the_straight_line_and_rotation_about_one_axis(start, goal):
    seg = CartesianSegment(start, goal)
    direction = (goal.position - start.position) / seg.distance
    axis = None
    progress = []
    for t in np.linspace(0.0, seg.duration, 101)[1:]:
        p, q, _, _ = sample_at(seg, t)
        off = p - start.position
        along = off @ direction
        np.testing.assert_allclose(off, along * direction, atol=1e-12)
        progress.append(along)
        # Rotation relative to the start, in the world frame: the axis never changes.
        rel = quat_to_rotvec(quat_mul(q, quat_conj(start.quat)))
        if axis is None:
            axis = rel / np.linalg.norm(rel)
        else:
            np.testing.assert_allclose(rel / np.linalg.norm(rel), axis, atol=1e-9)
    assert (np.diff(progress) >= 0).all()


def test_goal_quaternion_sign_does_not_change_the_path(start, goal):
    flipped = Pose(goal.position.copy(), -goal.quat)
    a = CartesianSegment(start, goal)
    b = CartesianSegment(start, flipped)
    assert b.angle == a.angle
    assert b.duration == a.duration
    for t in np.linspace(0.0, a.duration, 23):
        sa, sb = sample_at(a, t), sample_at(b, t)
        for x, y in zip(sa[:3], sb[:3], strict=True):
            np.testing.assert_array_equal(x, y)


def test_orientation_takes_the_short_way_round(start):
    # 270 deg about z is -90 deg the short way: the path must turn by 90 deg, clockwise.
    yaw_270 = Pose.from_xyz_quat(
        start.position, quat_mul(axis_angle_quat((0, 0, 1), 1.5 * math.pi), start.quat)
    )
    seg = CartesianSegment(start, yaw_270)
    assert seg.angle == pytest.approx(math.pi / 2)
    _, q_mid, twist, _ = sample_at(seg, seg.duration / 2)
    rel = quat_to_rotvec(quat_mul(q_mid, quat_conj(start.quat)))
    np.testing.assert_allclose(rel, [0.0, 0.0, -math.pi / 4], atol=1e-12)
    assert twist[5] < 0  # turning about -z
    # The same holds when the start quaternion is the negative one.
    neg_start = Pose(start.position.copy(), -start.quat)
    assert CartesianSegment(neg_start, yaw_270).angle == pytest.approx(math.pi / 2)


def test_zero_motion_segment_stays_still(start):
    seg = CartesianSegment(start, start)
    assert seg.duration == MIN_DURATION
    for t in (0.0, 0.05, 0.1, 0.2):
        p, q, twist, _ = sample_at(seg, t)
        np.testing.assert_array_equal(p, start.position)
        assert_same_rotation(q, start.quat)
        np.testing.assert_array_equal(twist, np.zeros(6))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_linear_speed": 0.0},
        {"max_linear_speed": -0.1},
        {"max_angular_speed": 0.0},
        {"max_angular_speed": -1.0},
        {"max_linear_speed": math.nan},
        {"max_angular_speed": math.nan},  # not positive either: max() used to ignore it
        {"duration": 0.0},
        {"duration": -1.0},
        {"duration": math.nan},
        {"duration": math.inf},
    ],
)
def test_invalid_speeds_or_duration_raise(start, goal, kwargs):
    with pytest.raises(ValueError):
        CartesianSegment(start, goal, **kwargs)


# -- CartesianPath ---------------------------------------------------------------------------
@pytest.fixture
def waypoints(goal) -> list[Pose]:
    return [
        goal,
        Pose.from_xyz_quat((0.55, 0.1, 0.35), goal.quat),  # straight up, same orientation
        Pose.from_xyz_quat((0.35, 0.2, 0.35), DOWN),  # sideways and rotate back
    ]


def test_path_needs_waypoints(start):
    with pytest.raises(ValueError):
        CartesianPath(start, [])


def test_path_duration_is_the_sum_of_its_segments(start, waypoints):
    path = CartesianPath(start, waypoints, max_linear_speed=0.2, max_angular_speed=0.7)
    assert len(path.segments) == len(waypoints)
    assert path.duration == pytest.approx(sum(s.duration for s in path.segments))
    # Each segment starts where the previous ends.
    assert path.segments[0].start is start
    for prev, seg, wp in zip([None, *path.segments], path.segments, waypoints, strict=False):
        assert seg.goal is wp
        if prev is not None:
            assert seg.start is prev.goal


def test_path_visits_each_waypoint_at_segment_boundaries(start, waypoints):
    path = CartesianPath(start, waypoints)
    t = 0.0
    for seg, wp in zip(path.segments, waypoints, strict=True):
        t += seg.duration
        p, q, twist, _ = sample_at(path, t)
        np.testing.assert_allclose(p, wp.position, rtol=0, atol=1e-12)
        assert_same_rotation(q, wp.quat, atol=1e-9)
        np.testing.assert_allclose(twist, 0.0, atol=1e-9)  # it stops at each waypoint
        # Approaching the boundary from the left gives the same pose (continuity).
        p_left, _, _, _ = sample_at(path, t - 1e-9)
        np.testing.assert_allclose(p_left, wp.position, atol=1e-9)


def test_path_reports_done_only_at_the_end(start, waypoints):
    path = CartesianPath(start, waypoints)
    ends = np.cumsum([s.duration for s in path.segments])
    out = TrajectorySample.empty()
    for t in np.linspace(0.0, path.duration, 400)[:-1]:
        assert not path.sample(t, out)
    for t in ends[:-1]:  # intermediate waypoints are not the end
        assert not path.sample(t, out)
    assert path.sample(path.duration + 1e-9, out)
    assert path.sample(path.duration + 1.0, out)
    np.testing.assert_allclose(out.position, waypoints[-1].position, atol=1e-12)


def test_path_is_done_exactly_at_its_duration(start, waypoints):
    """For these waypoints t - ends[-2] rounds to just below the last segment's duration."""
    path = CartesianPath(start, waypoints)
    out = TrajectorySample.empty()
    assert path.sample(path.duration, out)
    np.testing.assert_array_equal(out.twist, np.zeros(6))


def test_path_can_be_sampled_backwards_in_time(start, waypoints):
    path = CartesianPath(start, waypoints)
    times = np.linspace(0.0, path.duration, 37)
    forward = [sample_at(path, t)[0] for t in times]
    backward = [sample_at(path, t)[0] for t in times[::-1]][::-1]
    for a, b in zip(forward, backward, strict=True):
        np.testing.assert_array_equal(a, b)
    assert path.segment_index(0.0) == 0
    np.testing.assert_array_equal(sample_at(path, 0.0)[0], start.position)
