"""Corrective augmentation: teach a cloned policy to return to the demonstrated path.

Behaviour cloning only ever sees the expert on its own path, so the learned policy has no
idea how to recover from the small offsets its own errors create on the robot (it drifted a
few millimetres and degrees, stopped at the bottom misaligned, and never closed the fingers).
Like DART, but without collecting again: a fraction of the training samples get their hand
pose shifted by a random offset (position, and yaw about the vertical), every feature that
depends on it recomputed, and the target actions corrected to bring the hand back to the
demonstrated path over the first few steps of the chunk. The gripper labels are kept: an
expert a centimetre off would still close there.

What moves with the hand depends on the skill: for grasp the object stays put (its offset
from the hand, ``obj_rel_*``, changes); for place the object moves with the hand and the
spot stays put (``goal_rel_*`` and ``carry_rel_z`` change, ``obj_rel_*`` does not); for
pour the cup moves and turns with the hand (its offset and axis turn with the yaw) and the
target stays put (``target_rel_*`` change).
"""

from __future__ import annotations

import torch

from skillstack.skills.training.features import NEAR_M

POSITION_SIGMA_M = (0.01, 0.01, 0.005)  # per-axis std of the hand offset
YAW_SIGMA_RAD = 0.06  # std of the hand's yaw offset (about 3.4°)
FRACTION = 0.5  # of the samples in a batch that are perturbed
SPREAD_STEPS = 5  # policy steps over which the correction is spread


class Corrective:
    """Applies the augmentation to raw feature/action batches (indices from feature names)."""

    def __init__(self, feature_names: list[str]):
        idx = {name: i for i, name in enumerate(feature_names)}
        self.eef = [idx[f"eef_{a}"] for a in "xyz"]
        # Features that measure something fixed in the world from the hand (or from the
        # object it holds): (feature column, axis of the hand's offset).
        self.pour = "target_rel_x" in idx  # the held cup moves and turns with the hand
        if self.pour:
            fixed = [(f"target_rel_{a}", i) for i, a in enumerate("xyz")]
            self.held = (
                idx["obj_rel_x"],
                idx["obj_rel_y"],
                idx["target_rel_x"],
                idx["target_rel_y"],
            )
            self.cup_axis = (idx["cup_axis_x"], idx["cup_axis_y"])
        elif "goal_rel_x" in idx:
            fixed = [(f"goal_rel_{a}", i) for i, a in enumerate("xyz")] + [("carry_rel_z", 2)]
        else:
            fixed = [(f"obj_rel_{a}", i) for i, a in enumerate("xyz")]
        self.rel = [idx[name] for name, _ in fixed]
        self.rel_axes = [axis for _, axis in fixed]
        # Place: the goal offsets clipped to ±NEAR_M, recomputed from the shifted ones.
        self.near = [
            (idx[f"goal_near_{a}"], idx[f"goal_rel_{a}"]) for a in "xy" if f"goal_near_{a}" in idx
        ]
        self.columns = [
            (idx["eef_rot6d_0"], idx["eef_rot6d_1"]),
            (idx["eef_rot6d_3"], idx["eef_rot6d_4"]),
        ]
        self.yaw: tuple[int, int] | None = None  # grasp: the grasp yaw relative to the hand
        if "grasp_rel_yaw_sin2" in idx:
            self.yaw = (idx["grasp_rel_yaw_sin2"], idx["grasp_rel_yaw_cos2"])
        self.sigma = torch.tensor(POSITION_SIGMA_M)

    def __call__(
        self, feats: torch.Tensor, actions: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Perturbed copies of ``feats`` (B, F) and ``actions`` (B, chunk, 7)."""
        n = len(feats)
        chosen = (torch.rand(n, generator=generator) < FRACTION).float()
        delta = torch.randn(n, 3, generator=generator) * self.sigma * chosen[:, None]
        eps = torch.randn(n, generator=generator) * YAW_SIGMA_RAD * chosen
        return self.shift(feats, actions, delta, eps)

    def shift(
        self, feats: torch.Tensor, actions: torch.Tensor, delta: torch.Tensor, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features of the hand moved by ``delta`` (B, 3) m and turned by ``eps`` (B,) rad
        about the vertical, and actions that undo it over the first `SPREAD_STEPS` steps."""
        f, a = feats.clone(), actions.clone()
        f[:, self.eef] += delta
        f[:, self.rel] -= delta[:, self.rel_axes]
        for near, rel in self.near:
            f[:, near] = f[:, rel].clamp(-NEAR_M, NEAR_M)
        c, s = torch.cos(eps), torch.sin(eps)
        for ix, iy in self.columns:  # the hand's frame turned about the vertical by eps
            x, y = feats[:, ix], feats[:, iy]
            f[:, ix], f[:, iy] = c * x - s * y, s * x + c * y
        if self.pour:  # the cup turns about the hand: its offset and axis turn, the target's too
            ix, iy, tx, ty = self.held
            x, y = feats[:, ix], feats[:, iy]
            f[:, ix], f[:, iy] = c * x - s * y, s * x + c * y
            f[:, tx] -= f[:, ix] - x
            f[:, ty] -= f[:, iy] - y
            ax, ay = self.cup_axis
            x, y = feats[:, ax], feats[:, ay]
            f[:, ax], f[:, ay] = c * x - s * y, s * x + c * y
        if self.yaw is not None:  # the grasp yaw relative to the hand decreases by eps
            i_sin, i_cos = self.yaw
            c2, s2 = torch.cos(2 * eps), torch.sin(2 * eps)
            sin2, cos2 = feats[:, i_sin], feats[:, i_cos]
            f[:, i_sin], f[:, i_cos] = sin2 * c2 - cos2 * s2, cos2 * c2 + sin2 * s2
        steps = min(SPREAD_STEPS, a.shape[1])
        a[:, :steps, :3] -= delta[:, None, :] / steps
        a[:, :steps, 5] -= eps[:, None] / steps
        return f, a
