"""Rotation maths, in one place: unit quaternions scalar-first ``(w, x, y, z)`` (MuJoCo's
order), rotation matrices, rotation vectors, yaw.

Every function takes array-likes and returns new float arrays (or floats); none normalises
its input unless it says so. The conversions to and from scipy's `Rotation` (scalar-last)
and PyBullet (scalar-last, ``xyzw``) are here too, so that no other module reorders
quaternion components by hand. ``sim_tests/test_rotations.py`` checks each function
against scipy's independent implementation on random rotations.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mujoco
import numpy as np

if TYPE_CHECKING:  # scipy is imported by the two functions that need it, not on import
    from scipy.spatial.transform import Rotation

IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])  # no rotation, (w, x, y, z)


def quat_mul(a, b) -> np.ndarray:
    """Hamilton product a ⊗ b: rotate by ``b``, then by ``a``."""
    aw, ax, ay, az = (float(v) for v in a)
    bw, bx, by, bz = (float(v) for v in b)
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def quat_conj(q) -> np.ndarray:
    """The conjugate: the inverse rotation of a unit quaternion."""
    return np.array([q[0], -q[1], -q[2], -q[3]], dtype=float)


def quat_normalize(q) -> np.ndarray:
    """``q`` scaled to unit length, with ``w >= 0`` (one of the two equal quaternions)."""
    q = np.asarray(q, dtype=float)
    q = q / np.linalg.norm(q)
    return -q if q[0] < 0 else q


def quat_rotate(q, v) -> np.ndarray:
    """The vector ``v`` rotated by the unit quaternion ``q`` (``v`` may be a stack of
    vectors; a single one goes through MuJoCo's ``mju_rotVecQuat``, ~15× cheaper than two
    `numpy.cross` calls, as the slip guard runs it every few control ticks)."""
    q = np.asarray(q, dtype=float)
    v = np.asarray(v, dtype=float)
    if v.shape == (3,) and q.shape == (4,):
        out = np.empty(3)
        mujoco.mju_rotVecQuat(out, v, q)
        return out
    w = float(q[0])
    u = q[1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def quat_to_matrix(q) -> np.ndarray:
    """The 3x3 rotation matrix of ``q`` (normalised first)."""
    w, x, y, z = np.asarray(q, dtype=float) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quat(matrix) -> np.ndarray:
    """The unit quaternion of a 3x3 rotation matrix, as MuJoCo computes it (so that a pose
    built here and one read from the simulator agree in sign as well as in rotation)."""
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.ascontiguousarray(matrix, dtype=float).ravel())
    return quat


def quat_to_rotvec(q) -> np.ndarray:
    """Rotation vector (axis times angle, angle in [0, pi]), exact near the identity."""
    q = quat_normalize(q)
    s = float(np.linalg.norm(q[1:]))
    if s < 1e-300:
        return np.zeros(3)
    return q[1:] / s * 2.0 * math.atan2(s, q[0])


def rotvec_to_quat(rotvec) -> np.ndarray:
    """The unit quaternion of a rotation vector (axis times angle)."""
    rotvec = np.asarray(rotvec, dtype=float)
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-300:
        return IDENTITY.copy()
    return axis_angle_quat(rotvec / angle, angle)


def axis_angle_quat(axis, angle: float) -> np.ndarray:
    """The rotation by ``angle`` (rad) about ``axis`` (normalised here)."""
    axis = np.asarray(axis, dtype=float)
    axis = axis / np.linalg.norm(axis)
    return np.concatenate([[math.cos(angle / 2)], math.sin(angle / 2) * axis])


def quat_angle(a, b) -> float:
    """The angle (rad, in [0, pi]) of the rotation between ``a`` and ``b``."""
    return float(np.linalg.norm(quat_to_rotvec(quat_mul(a, quat_conj(b)))))


def yaw_quat(yaw: float) -> np.ndarray:
    """The rotation by ``yaw`` (rad) about the world z axis."""
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def quat_yaw(q) -> float:
    """Heading (rad) of the rotated x axis in the world xy plane (the yaw of a yaw-only
    rotation; for a tilted one, that of its x axis projected on the plane)."""
    w, x, y, z = (float(v) for v in q)
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def yaw_matrix_2d(yaw: float) -> np.ndarray:
    """Rows are the local x and y axes, in the world xy plane, of a frame yawed by ``yaw``."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, s], [-s, c]])


def wrap_angle(angle: float, period: float = 2 * math.pi) -> float:
    """``angle`` wrapped into ``[-period/2, period/2)`` (``period`` pi for a symmetric box)."""
    return (angle + period / 2) % period - period / 2


def xyzw_to_wxyz(q) -> np.ndarray:
    """Scalar-last (scipy, PyBullet) to scalar-first (MuJoCo, this project)."""
    q = np.asarray(q, dtype=float)
    return np.array([q[3], q[0], q[1], q[2]])


def wxyz_to_xyzw(q) -> np.ndarray:
    """Scalar-first (MuJoCo, this project) to scalar-last (scipy, PyBullet)."""
    q = np.asarray(q, dtype=float)
    return np.array([q[1], q[2], q[3], q[0]])


def to_scipy(q) -> Rotation:
    """A scipy `Rotation` of one ``(w, x, y, z)`` quaternion, or of an (N, 4) array of them."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_quat(np.asarray(q, dtype=float)[..., [1, 2, 3, 0]])


def from_scipy(rotation: Rotation) -> np.ndarray:
    """The ``(w, x, y, z)`` quaternion(s) of a scipy `Rotation` (``w >= 0``)."""
    q = rotation.as_quat()[..., [3, 0, 1, 2]]
    return np.where(q[..., :1] < 0, -q, q)
