"""Training a multi-task policy (`skills.training.multitask`) on several skills' datasets.

    report = train_multi("out/bc", "out/bc/multi.pt", ["grasp", "place"])

Each skill's successful demonstrations are split by episode into training and validation
sets as `skills.training.train.train` splits one skill's; the fitting loop is the same
(`skills.training.train.fit`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from skillstack.skills.training.dataset import STD_FLOOR, DatasetError
from skillstack.skills.training.dataset_reader import open_dataset
from skillstack.skills.training.features import SKILL_FEATURE_NAMES, episode_features
from skillstack.skills.training.multitask import (
    MULTI_TASK,
    MultiCorrective,
    MultiTaskMLP,
    multi_feature_names,
    multi_input,
)
from skillstack.skills.training.policy import PolicyConfig, skillstack_version
from skillstack.skills.training.torch_data import ChunkDataset, open_width
from skillstack.skills.training.train import (
    CPU_THREADS,
    TrainReport,
    _cpu_threads,
    check_device,
    fit,
    resolve_data,
    save_trained,
)


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
) -> TrainReport:
    """Train one policy on ``<data>/<skill>.hdf5`` of every skill in ``skills``; a
    `skills.training.train.TrainReport` (episode counts summed over the skills).

    Raises:
        DatasetError: a dataset is missing, corrupt, of another skill or too small.
        ValueError: fewer than two skills, a skill that cannot be learned, or bad sizes.
    """
    skills = list(dict.fromkeys(skills))
    unknown = [s for s in skills if s not in SKILL_FEATURE_NAMES]
    if len(skills) < 2 or unknown:
        raise ValueError(
            f"a multi-task policy needs two or more of {', '.join(SKILL_FEATURE_NAMES)}"
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
        network = ("+".join(skills), "multi-task")
        return save_trained(
            model, history, best_epoch, out, network, start, (counts[0], counts[1]), len(train_set)
        )
