"""Position IK for planning: find a joint configuration for a pose, within the joint limits.

The control loop uses differential IK (`robot.ik`), which follows a path from where the arm
is. Planning needs a different question answered before anything moves: *is there any*
configuration that reaches this pose, and which one near a seed? This solves it as a
bounded nonlinear least-squares problem (SciPy's trust-region reflective method) from a
few deterministic seeds and returns the first solution found, or None.
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np
from scipy.optimize import least_squares

from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.types import Capabilities, Pose

POSITION_TOL = 5e-4  # m, a solution must reach the pose this closely...
ANGLE_TOL = 5e-3  # rad, ...and this closely in orientation
ROTATION_WEIGHT = 0.2  # m per rad: how orientation error trades against position error
LIMIT_MARGIN = 0.03  # rad, solutions keep this far inside the joint limits
RANDOM_SEEDS = 8  # extra seeds tried, drawn deterministically, after the given ones


def solve_ik(
    kin: KinematicModel,
    caps: Capabilities,
    pose: Pose,
    seeds: Sequence[np.ndarray],
    rng_seed: int = 0,
) -> np.ndarray | None:
    """A configuration reaching ``pose`` (closest to the first seeds that work), or None."""
    target = np.zeros(9)
    mujoco.mju_quat2Mat(target, np.asarray(pose.quat, dtype=float))
    position = np.asarray(pose.position, dtype=float)
    lower, upper = caps.joint_lower + LIMIT_MARGIN, caps.joint_upper - LIMIT_MARGIN

    def residual(q: np.ndarray) -> np.ndarray:
        kin.update_positions_only(q)
        # The rotation-matrix difference vanishes only at the target orientation (a
        # cross-product error also vanishes for half-turns, so it would accept those).
        err = kin.ee_rotation - target
        return np.concatenate([kin.ee_position - position, ROTATION_WEIGHT * err])

    rng = np.random.default_rng(rng_seed)
    candidates = [np.clip(np.asarray(s, dtype=float), lower, upper) for s in seeds]
    candidates += [rng.uniform(lower, upper) for _ in range(RANDOM_SEEDS)]
    for seed in candidates:
        result = least_squares(residual, seed, bounds=(lower, upper), xtol=1e-10, ftol=1e-10)
        r = result.fun
        # ||R - R*||_F = 2 sqrt(2) sin(angle / 2), about sqrt(2) * angle for small angles.
        if (
            np.linalg.norm(r[:3]) < POSITION_TOL
            and np.linalg.norm(r[3:]) / ROTATION_WEIGHT < 1.4142 * ANGLE_TOL
        ):
            return result.x
    return None
