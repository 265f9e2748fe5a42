"""`skillstack.robot.rotations` against scipy's independent implementation, on random
rotations (hypothesis), and the identities the rest of the stack relies on."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from skillstack.robot import rotations as rot

TOL = 1e-9

unit = st.floats(-1.0, 1.0, allow_nan=False)
quats = (
    st.tuples(unit, unit, unit, unit)
    .filter(lambda q: np.linalg.norm(q) > 0.1)
    .map(lambda q: np.asarray(q) / np.linalg.norm(q))
)
vectors = st.tuples(*[st.floats(-10.0, 10.0, allow_nan=False)] * 3).map(np.asarray)
angles = st.floats(-2 * math.pi, 2 * math.pi, allow_nan=False)


def scipy_of(q) -> Rotation:
    w, x, y, z = q
    return Rotation.from_quat([x, y, z, w])  # scipy is scalar-last


def same_rotation(a, b) -> bool:
    return abs(abs(float(np.dot(a, b))) - 1.0) < 1e-9


@settings(max_examples=200, deadline=None)
@given(quats, quats)
def test_product_composes_like_scipy(a, b):
    expected = (scipy_of(a) * scipy_of(b)).as_matrix()
    assert np.allclose(rot.quat_to_matrix(rot.quat_mul(a, b)), expected, atol=TOL)


@settings(max_examples=200, deadline=None)
@given(quats, vectors)
def test_rotating_a_vector_matches_the_matrix_and_scipy(q, v):
    expected = scipy_of(q).apply(v)
    assert np.allclose(rot.quat_rotate(q, v), expected, atol=1e-8)
    assert np.allclose(rot.quat_to_matrix(q) @ v, expected, atol=1e-8)


@settings(max_examples=200, deadline=None)
@given(quats)
def test_round_trips_through_matrix_rotvec_scipy_and_xyzw(q):
    assert same_rotation(rot.matrix_to_quat(rot.quat_to_matrix(q)), q)
    assert same_rotation(rot.rotvec_to_quat(rot.quat_to_rotvec(q)), q)
    rotvec = rot.quat_to_rotvec(q)  # at pi, +axis and -axis are the same rotation
    assert math.isclose(np.linalg.norm(rotvec), scipy_of(q).magnitude(), abs_tol=1e-8)
    assert same_rotation(rot.from_scipy(Rotation.from_rotvec(rotvec)), q)
    assert same_rotation(rot.from_scipy(rot.to_scipy(q)), q)
    assert np.allclose(rot.xyzw_to_wxyz(rot.wxyz_to_xyzw(q)), q)
    assert np.allclose(rot.quat_mul(q, rot.quat_conj(q)), rot.IDENTITY, atol=TOL)


@settings(max_examples=200, deadline=None)
@given(quats, quats)
def test_angle_between_is_scipys_magnitude_and_symmetric(a, b):
    expected = (scipy_of(a) * scipy_of(b).inv()).magnitude()
    assert math.isclose(rot.quat_angle(a, b), expected, abs_tol=1e-7)
    assert math.isclose(rot.quat_angle(a, b), rot.quat_angle(b, a), abs_tol=1e-9)
    assert rot.quat_angle(a, a) < 1e-7  # exact near zero, where acos is not


@settings(max_examples=200, deadline=None)
@given(angles, vectors)
def test_yaw_quat_turns_about_z_and_quat_yaw_reads_it_back(yaw, axis):
    q = rot.yaw_quat(yaw)
    assert np.allclose(rot.quat_to_matrix(q), Rotation.from_euler("z", yaw).as_matrix(), atol=TOL)
    assert math.isclose(rot.wrap_angle(rot.quat_yaw(q) - yaw), 0.0, abs_tol=1e-9)
    # The heading of a tilted frame is that of its x axis on the table.
    if np.linalg.norm(axis) > 1e-3:
        tilted = rot.quat_mul(q, rot.axis_angle_quat(axis, 0.0))
        assert math.isclose(rot.wrap_angle(rot.quat_yaw(tilted) - yaw), 0.0, abs_tol=1e-9)


@given(angles)
def test_the_2d_yaw_matrix_rows_are_the_frames_axes(yaw):
    axes = rot.yaw_matrix_2d(yaw)
    full = rot.quat_to_matrix(rot.yaw_quat(yaw))
    assert np.allclose(axes, full[:2, :2].T, atol=TOL)


@given(angles)
def test_wrap_angle_stays_in_range_and_keeps_the_direction(angle):
    for period in (2 * math.pi, math.pi):
        wrapped = rot.wrap_angle(angle, period)
        assert -period / 2 <= wrapped < period / 2
        turns = (angle - wrapped) / period
        assert math.isclose(turns, round(turns), abs_tol=1e-9)


def test_scipy_arrays_convert_many_at_once():
    qs = np.array([rot.yaw_quat(a) for a in (0.0, 0.5, -2.0)])
    assert np.allclose(rot.from_scipy(rot.to_scipy(qs)), qs)
