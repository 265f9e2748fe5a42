"""Quaternion helpers for the tests, written independently of MuJoCo (the reference the
library's MuJoCo-based maths is checked against). Scalar-first (w, x, y, z)."""

from __future__ import annotations

import math

import numpy as np


def quat_mul(a, b) -> np.ndarray:
    """Hamilton product a ⊗ b."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def quat_conj(q) -> np.ndarray:
    """The conjugate (the inverse of a unit quaternion)."""
    return np.array([q[0], -q[1], -q[2], -q[3]])


def quat_to_rotvec(q) -> np.ndarray:
    """Rotation vector (axis * angle, angle in [0, pi])."""
    q = np.asarray(q, dtype=float) / np.linalg.norm(q)
    if q[0] < 0:
        q = -q
    s = np.linalg.norm(q[1:])
    if s < 1e-300:
        return np.zeros(3)
    return q[1:] / s * 2.0 * math.atan2(s, q[0])


def quat_to_mat(q) -> np.ndarray:
    """Rotation matrix."""
    w, x, y, z = np.asarray(q, dtype=float) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def axis_angle_quat(axis, angle: float) -> np.ndarray:
    """The rotation by ``angle`` about ``axis``."""
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    return np.concatenate([[math.cos(angle / 2)], math.sin(angle / 2) * axis])


def angle_between(qa, qb) -> float:
    """The angle (rad) of the rotation from qb to qa (exact near zero, unlike acos)."""
    return float(np.linalg.norm(quat_to_rotvec(quat_mul(qa, quat_conj(qb)))))
