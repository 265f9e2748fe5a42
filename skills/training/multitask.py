"""One policy for several skills, conditioned on which skill is asked and on its parameters.

    skillstack train multi --skills grasp,place --data out/bc --out out/bc/multi.pt
    (`skills.training.train_multi`)
    skillstack eval grasp --policy out/bc/multi.pt          # each skill measured on its own
    skillstack run "..." --skill-impl grasp=learned:out/bc/multi.pt \\
        --skill-impl place=learned:out/bc/multi.pt

The input is the skill as a one-hot vector followed by that skill's own features
(`skills.training.features.feature_names`, which already carry the call's parameters: the
object's kind and size, the template, the place spot, the pour target), zero-padded to the
longest skill's; the output is the usual action chunk. Each skill's features are normalised
with that skill's statistics (the same slot means different things in different skills),
and each skill's samples get that skill's corrective augmentation. Skills whose datasets
are larger weigh more in training; nothing is re-balanced.

A multi-task checkpoint is loaded per skill (`load_policy(path, skill)` returns a
`SkillView`): the view takes the skill's own features, like a single-skill policy, so the
learned skills, `eval` and `--skill-impl` use it unchanged. The head is the MLP.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from skillstack.skills.training.augment import Corrective
from skillstack.skills.training.features import feature_names
from skillstack.skills.training.heads import ChunkMLP, ChunkPolicy

MULTI_TASK = "multi"  # the config's ``skill`` of a multi-task policy


def multi_feature_names(skills: Sequence[str]) -> list[str]:
    """The input layout: one ``skill_<name>`` flag per skill, then ``input_<i>`` slots."""
    width = max(len(feature_names(s)) for s in skills)
    return [f"skill_{s}" for s in skills] + [f"input_{i}" for i in range(width)]


def multi_input(skills: Sequence[str], skill: str, features: np.ndarray) -> np.ndarray:
    """Rows (T, F_skill) of ``skill``'s features → rows of the multi-task input."""
    features = np.atleast_2d(features)
    width = len(multi_feature_names(skills)) - len(skills)
    out = np.zeros((len(features), len(skills) + width))
    out[:, skills.index(skill)] = 1.0
    out[:, len(skills) : len(skills) + features.shape[1]] = features
    return out


class MultiTaskMLP(ChunkMLP):
    """The MLP head with per-skill input normalisation (selected by the skill flags)."""

    skill_mean: torch.Tensor
    skill_std: torch.Tensor

    def __init__(self, config):
        super().__init__(config)
        n, width = len(config.skills), config.feature_dim - len(config.skills)
        self.register_buffer("skill_mean", torch.zeros(n, width))
        self.register_buffer("skill_std", torch.ones(n, width))

    def normalise_features(self, x: torch.Tensor) -> torch.Tensor:
        """Skill flags kept; each row's features normalised with its skill's statistics."""
        n = len(self.config.skills)
        flags = x[:, :n]
        mean, std = flags @ self.skill_mean, flags @ self.skill_std
        return torch.cat([flags, (x[:, n:] - mean) / std], -1)


class SkillView(ChunkPolicy):
    """One skill of a `MultiTaskMLP`, taking that skill's own features like a single-skill
    policy (``config`` is the skill's: its features, open width, longest demonstration)."""

    def __init__(self, model: MultiTaskMLP, skill: str):
        cfg = model.config
        config = dataclasses.replace(
            cfg,
            skill=skill,
            feature_names=list(feature_names(skill)),
            gripper_open_width=cfg.skill_open_width[skill],
            max_duration_s=cfg.skill_max_duration_s[skill],
        )
        super().__init__(config)
        self.model, self.skills = model, list(cfg.skills)
        self.history = model.history

    def forward(self, normalised: torch.Tensor) -> torch.Tensor:
        """Not used: a view predicts through the multi-task model (`predict`)."""
        raise NotImplementedError("a SkillView predicts through its multi-task model")

    def predict(self, features: np.ndarray, *inputs) -> np.ndarray:
        """This skill's raw features (F,) → raw actions (chunk, 7)."""
        return self.model.predict(multi_input(self.skills, self.config.skill, features)[0])


class MultiCorrective:
    """Each skill's corrective augmentation (`skills.training.augment`) on its own rows."""

    def __init__(self, skills: Sequence[str]):
        self.n = len(skills)
        self.parts = [
            (k, len(feature_names(s)), Corrective(list(feature_names(s))))
            for k, s in enumerate(skills)
        ]

    def __call__(self, feats: torch.Tensor, actions: torch.Tensor, generator: torch.Generator):
        """Perturbed copies of ``feats`` (B, flags + slots) and ``actions`` (B, chunk, 7)."""
        f, a = feats.clone(), actions.clone()
        for k, width, augment in self.parts:
            rows = feats[:, k] > 0.5
            if bool(rows.any()):
                cols = slice(self.n, self.n + width)
                f[rows, cols], a[rows] = augment(feats[rows, cols], actions[rows], generator)
        return f, a
