"""One policy for several skills, conditioned on which skill is asked and on its parameters.

    skillstack train multi --skills grasp,place --data out/bc --out out/bc/multi.pt
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
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from skillstack.skills.training.augment import Corrective
from skillstack.skills.training.features import episode_features, feature_names
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


def train_multi(
    data: str | Path,
    out: str | Path,
    skills: Sequence[str],
    epochs: int = 30,
    batch_size: int = 256,
    chunk: int = 20,
    seed: int = 0,
    device: str = "cpu",
    hidden: int = 256,
    layers: int = 3,
    lr: float = 1e-3,
    val_fraction: float = 0.1,
    progress: Callable[[int, int, float, float], None] | None = None,
):
    """Train one policy on ``<data>/<skill>.hdf5`` of every skill in ``skills``; a
    `skills.training.train.TrainReport` (episode counts summed over the skills).

    Raises:
        DatasetError: a dataset is missing, corrupt, of another skill or too small.
        ValueError: fewer than two skills, a skill that cannot be learned, or bad sizes.
    """
    from skillstack.skills.training.dataset import STD_FLOOR, DatasetError
    from skillstack.skills.training.dataset_reader import open_dataset
    from skillstack.skills.training.learned import LEARNABLE_SKILLS
    from skillstack.skills.training.policy import PolicyConfig, save_checkpoint, skillstack_version
    from skillstack.skills.training.torch_data import ChunkDataset, open_width
    from skillstack.skills.training.train import (
        CPU_THREADS,
        TrainReport,
        _cpu_threads,
        check_device,
        fit,
        resolve_data,
        save_curve,
    )

    skills = list(dict.fromkeys(skills))
    unknown = [s for s in skills if s not in LEARNABLE_SKILLS]
    if len(skills) < 2 or unknown:
        raise ValueError(
            f"a multi-task policy needs two or more of {', '.join(LEARNABLE_SKILLS)}"
            + (f"; unknown: {', '.join(s[:20] for s in unknown[:3])}" if unknown else "")
        )
    if epochs < 1 or batch_size < 1 or chunk < 1 or not 0.0 <= val_fraction < 1.0:
        raise ValueError("epochs, batch size and chunk must be ≥ 1; val_fraction in [0, 1)")
    dev = check_device(device)
    with _cpu_threads(CPU_THREADS if dev.type == "cpu" else None):
        start = time.perf_counter()
        rng = np.random.default_rng(seed)
        parts: dict[str, list] = {"train": [], "val": [], "train_actions": [], "val_actions": []}
        stats_mean, stats_std, widths, durations, seeds, paths = [], [], {}, {}, [], []
        counts = [0, 0]
        arm, rate = None, None
        for s in skills:
            path = resolve_data(data, s)
            reader = open_dataset(path, s)
            episodes = reader.episodes()
            if len(episodes) < 2:
                raise DatasetError(f"{path}: {len(episodes)} successful demonstrations; need 2")
            if rate is not None and reader.rate_hz != rate:
                raise DatasetError(f"{path}: sampled at {reader.rate_hz} Hz, the others {rate}")
            rate = reader.rate_hz
            env = reader.env_args
            arm = arm or str(env.get("arm") or env["env_kwargs"].get("arm", "panda"))
            order = rng.permutation(len(episodes))
            n_val = min(len(episodes) - 1, math.ceil(val_fraction * len(episodes)))
            width = open_width(episodes)
            widths[s] = width
            durations[s] = max(e.num_samples for e in episodes) / reader.rate_hz
            seeds += [int(e.seed) for e in reader.episodes(successful_only=False)]
            paths.append(str(path))
            for split, chosen in (("val", order[:n_val]), ("train", order[n_val:])):
                for i in sorted(chosen):
                    rows = episode_features(s, episodes[i], width)
                    parts[split].append(multi_input(skills, s, rows))
                    parts[f"{split}_actions"].append(np.asarray(episodes[i].actions))
                counts[split == "val"] += len(chosen)
            raw = np.concatenate([episode_features(s, episodes[i], width) for i in order[n_val:]])
            pad = len(multi_feature_names(skills)) - len(skills) - raw.shape[1]
            stats_mean.append(np.pad(raw.mean(0), (0, pad)))
            stats_std.append(np.pad(raw.std(0), (0, pad), constant_values=1.0))
        train_set = ChunkDataset(parts["train"], parts["train_actions"], chunk)
        val_set = ChunkDataset(parts["val"], parts["val_actions"], chunk) if parts["val"] else None
        torch.manual_seed(seed)
        config = PolicyConfig(
            skill=MULTI_TASK,
            skills=skills,
            feature_names=multi_feature_names(skills),
            arm=arm or "panda",
            chunk=chunk,
            rate_hz=float(rate or 20.0),
            hidden=hidden,
            layers=layers,
            gripper_open_width=max(widths.values()),
            max_duration_s=max(durations.values()),
            skill_open_width=widths,
            skill_max_duration_s=durations,
            data_path=", ".join(paths),
            train_seeds=sorted(seeds),
            seed=seed,
            epochs=epochs,
            skillstack_version=skillstack_version(),
        )
        model = MultiTaskMLP(config)
        model.set_normalisation(
            np.zeros(config.feature_dim),
            np.ones(config.feature_dim),
            train_set.actions.mean(0).numpy(),
            train_set.actions.std(0).numpy(),
        )
        floor = np.where(np.array(stats_std) < STD_FLOOR, 1.0, np.array(stats_std))
        model.skill_mean.copy_(torch.as_tensor(np.array(stats_mean), dtype=torch.float32))
        model.skill_std.copy_(torch.as_tensor(floor, dtype=torch.float32))
        history, best_epoch = fit(
            model,
            train_set,
            val_set,
            MultiCorrective(skills),
            epochs,
            batch_size,
            lr,
            seed,
            dev,
            progress,
        )
        history["best_epoch"] = [best_epoch]
        checkpoint = save_checkpoint(out, model, history)
        png = save_curve(history, checkpoint.with_suffix(".png"), "+".join(skills), "multi-task")
        return TrainReport(
            checkpoint,
            png,
            epochs,
            history["train"],
            history["val"],
            best_epoch,
            time.perf_counter() - start,
            counts[0],
            counts[1],
            len(train_set),
        )
