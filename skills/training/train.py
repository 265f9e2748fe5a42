"""Behaviour cloning: fit a policy head to demonstrations, save a checkpoint and a loss curve.

    report = train("data/grasp.hdf5", "out/grasp.pt", skill="grasp", head="mlp", seed=0)

Seeded end to end (the validation split, weight initialisation, batch order and input
noise all derive from ``seed``; on the CPU the same seed gives the same weights). The
successful demonstrations are split *by episode* into training and validation sets. Each
head minimises its own loss (`skills.training.heads`: L1 for the MLP and the transformer,
the denoised chunk's MSE for diffusion); the validation loss is the same for all, the L1 distance
between predicted (for diffusion: sampled) and demonstrated action chunks in normalised
units, steps past an episode's end masked out; half the training samples get a corrective
augmentation (`skills.training.augment`). The checkpoint keeps the weights with the
lowest validation loss; ``<checkpoint>.png`` next to it shows both loss curves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from skillstack.skills.training.augment import Corrective
from skillstack.skills.training.dataset import DatasetError
from skillstack.skills.training.dataset_reader import open_dataset
from skillstack.skills.training.features import feature_names
from skillstack.skills.training.heads import (
    HEAD_DEFAULTS,
    HEADS,
    ChunkPolicy,
    masked_l1,
)
from skillstack.skills.training.images import IMAGE_KEYS
from skillstack.skills.training.policy import (
    PolicyConfig,
    build_policy,
    save_checkpoint,
    skillstack_version,
)
from skillstack.skills.training.torch_data import ChunkDataset, loader, open_width

DEVICES = ("cpu", "cuda")
CPU_THREADS = 1  # torch threads for CPU training: on a busy 2-core machine 2 threads ran 7x
# slower than 1 (their spin-waits fight the other processes); the model is small anyway
INPUT_NOISE = 0.05  # std of Gaussian noise on normalised inputs while training (robustness)
WEIGHT_DECAY = 1e-4


@dataclass
class TrainReport:
    """What a training run produced."""

    checkpoint: Path
    curve: Path | None
    epochs: int
    train_loss: list[float]
    val_loss: list[float]
    best_epoch: int
    seconds: float
    train_episodes: int
    val_episodes: int
    samples: int


def resolve_data(data: str | Path, skill: str) -> Path:
    """A dataset file, or a folder holding ``<skill>.hdf5``."""
    path = Path(data)
    if path.is_dir():
        path = path / f"{skill}.hdf5"
    return path


def check_device(device: str) -> torch.device:
    """The torch device for ``cpu`` or ``cuda``; `ValueError` if it is unknown or absent."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose {' or '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"--device cuda: no CUDA device is available to torch {torch.__version__} "
            "(built without CUDA, or no GPU); use --device cpu"
        )
    return torch.device(device)


def train(
    data: str | Path,
    out: str | Path,
    skill: str,
    epochs: int | None = None,
    batch_size: int = 256,
    chunk: int = 20,
    seed: int = 0,
    device: str = "cpu",
    head: str = "mlp",
    hidden: int | None = None,
    layers: int | None = None,
    images: bool = False,
    lr: float = 1e-3,
    val_fraction: float = 0.1,
    curve: bool = True,
    progress: Callable[[int, int, float, float], None] | None = None,
) -> TrainReport:
    """Train a policy for ``skill`` on ``data`` and save it to ``out``.

    ``head`` is one of `skills.training.heads.HEADS`; ``epochs``, ``hidden`` and ``layers``
    default to that head's `HEAD_DEFAULTS`. ``images``: train the image policy of
    `skills.training.vision` (mlp head, a dataset collected with ``--images``).
    ``progress(epoch, epochs, train_loss, val_loss)`` is called after every epoch.

    Raises:
        DatasetError: the dataset is missing, corrupt, incomplete, for another skill, or has
            too few successful episodes to split.
        ValueError: bad hyper-parameters or an unavailable device.
    """
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    epochs = HEAD_DEFAULTS[head]["epochs"] if epochs is None else epochs
    hidden = HEAD_DEFAULTS[head]["hidden"] if hidden is None else hidden
    layers = HEAD_DEFAULTS[head]["layers"] if layers is None else layers
    if epochs < 1 or batch_size < 1 or chunk < 1 or not 0.0 <= val_fraction < 1.0:
        raise ValueError("epochs, batch size and chunk must be ≥ 1; val_fraction in [0, 1)")
    if images:
        _check_image_policy(skill, head)
    dev = check_device(device)
    with _cpu_threads(CPU_THREADS if dev.type == "cpu" else None):
        start = time.perf_counter()
        path = resolve_data(data, skill)
        reader = open_dataset(path, skill)
        if images and set(reader.image_keys) != set(IMAGE_KEYS):
            raise DatasetError(
                f"{path}: no camera images (collect it with --images to train on images)"
            )
        named = reader.named_episodes()
        episodes = [e for _, e in named]
        if len(episodes) < 2:
            raise DatasetError(
                f"{path}: {len(episodes)} successful demonstrations; need at least 2"
            )
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(episodes))
        n_val = (
            min(len(episodes) - 1, math.ceil(val_fraction * len(episodes))) if val_fraction else 0
        )
        val_named = [named[i] for i in sorted(order[:n_val])]
        train_named = [named[i] for i in sorted(order[n_val:])]
        train_eps, val_eps = [e for _, e in train_named], [e for _, e in val_named]
        width = open_width(episodes)
        if images:
            from skillstack.skills.training.vision import VisionChunkDataset

            train_set: ChunkDataset = VisionChunkDataset.from_named(
                reader, train_named, chunk, width
            )
            val_set: ChunkDataset | None = (
                VisionChunkDataset.from_named(reader, val_named, chunk, width) if val_eps else None
            )
        else:
            train_set = ChunkDataset.from_episodes(skill, train_eps, chunk, width)
            val_set = ChunkDataset.from_episodes(skill, val_eps, chunk, width) if val_eps else None

        torch.manual_seed(seed)
        config = PolicyConfig(
            skill=skill,
            feature_names=list(_input_names(skill, images)),
            arm=str(
                reader.env_args.get("arm") or reader.env_args["env_kwargs"].get("arm", "panda")
            ),
            chunk=chunk,
            rate_hz=reader.rate_hz,
            head=head,
            hidden=hidden,
            layers=layers,
            gripper_open_width=width,
            max_duration_s=max(e.num_samples for e in episodes) / reader.rate_hz,
            data_path=str(path),
            train_seeds=sorted(int(e.seed) for e in reader.episodes(successful_only=False)),
            seed=seed,
            epochs=epochs,
            skillstack_version=skillstack_version(),
            images=list(reader.image_keys) if images else [],
            image_size=_recorded_size(reader) if images else 0,
        )
        model = build_policy(config)
        model.set_normalisation(
            train_set.features.mean(0).numpy(),
            train_set.features.std(0).numpy(),
            train_set.actions.mean(0).numpy(),
            train_set.actions.std(0).numpy(),
        )
        # the corrective augmentation moves the hand in the features; images would contradict it
        augment = None if images else Corrective(config.feature_names)
        history, best_epoch = fit(
            model, train_set, val_set, augment, epochs, batch_size, lr, seed, dev, progress
        )
        label = f"{head} head on images" if images else f"{head} head"
        return save_trained(
            model,
            history,
            best_epoch,
            out,
            (skill, label) if curve else None,
            start,
            (len(train_eps), len(val_eps)),
            len(train_set),
        )


def fit(
    model: ChunkPolicy,
    train_set: ChunkDataset,
    val_set: ChunkDataset | None,
    augment: Callable | None,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    dev: torch.device,
    progress: Callable[[int, int, float, float], None] | None = None,
) -> tuple[dict[str, list[float]], int]:
    """Fit ``model`` (its normalisation already set) and leave it, on the CPU, with the
    weights of the epoch with the lowest validation loss: (loss history, that epoch).

    ``augment(features, actions, generator)`` (optional) perturbs each raw training batch.
    """
    model.to(dev)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    steps = epochs * math.ceil(len(train_set) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, lr, total_steps=steps)
    noise = torch.Generator(device=dev).manual_seed(seed)
    aug_gen = torch.Generator().manual_seed(seed + 1)
    history: dict[str, list[float]] = {"train": [], "val": []}
    best, best_epoch, best_state = math.inf, 0, None
    for epoch in range(1, epochs + 1):
        model.train()
        total, count = 0.0, 0
        for feats, actions, pad, *inputs in loader(train_set, batch_size, seed * 100_003 + epoch):
            if augment is not None:
                feats, actions = augment(feats, actions, aug_gen)
            feats, actions, pad = feats.to(dev), actions.to(dev), pad.to(dev)
            x = model.normalise_features(feats)
            x = x + INPUT_NOISE * torch.randn(x.shape, generator=noise, device=dev)
            target = model.normalise_actions(actions)
            inputs = [i.to(dev) for i in inputs]
            loss = model.training_loss(x, target, pad, noise, *inputs)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total, count = total + loss.item() * len(feats), count + len(feats)
        history["train"].append(total / count)
        val = evaluate_loss(model, val_set, batch_size, dev) if val_set else history["train"][-1]
        history["val"].append(val)
        if val < best:
            best, best_epoch = val, epoch
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if progress:
            progress(epoch, epochs, history["train"][-1], val)
    if best_state is None:  # no epoch had a finite loss: no weights are worth keeping
        raise ValueError(f"training diverged: no epoch had a finite loss ({val}); lower lr")
    model.cpu().load_state_dict(best_state)
    return history, best_epoch


def save_trained(
    model: ChunkPolicy,
    history: dict[str, list[float]],
    best_epoch: int,
    out: str | Path,
    curve: tuple[str, str] | None,
    started: float,
    episodes: tuple[int, int],
    samples: int,
) -> TrainReport:
    """Save the fitted ``model`` and, with ``curve`` = (title, network), its loss curve beside
    it; the `TrainReport` (``episodes``: training and validation episodes; ``started``: the
    `time.perf_counter` at the start)."""
    history["best_epoch"] = [best_epoch]
    checkpoint = save_checkpoint(out, model, history)
    png = save_curve(history, checkpoint.with_suffix(".png"), *curve) if curve else None
    return TrainReport(
        checkpoint,
        png,
        len(history["train"]),
        history["train"],
        history["val"],
        best_epoch,
        time.perf_counter() - started,
        episodes[0],
        episodes[1],
        samples,
    )


def _input_names(skill: str, images: bool) -> tuple[str, ...]:
    if images:
        from skillstack.skills.training.vision import VISION_FEATURE_NAMES

        return VISION_FEATURE_NAMES
    return feature_names(skill)


def _check_image_policy(skill: str, head: str) -> None:
    """`ValueError` unless ``skill`` has an image policy with ``head``."""
    from skillstack.skills.training.vision import VISION_SKILLS

    if skill not in VISION_SKILLS:
        raise ValueError(
            f"image policies exist for {', '.join(VISION_SKILLS)}; train {skill} without --images"
        )
    if head != "mlp":
        raise ValueError(f"image policies have the mlp head; drop --head {head}")


def _recorded_size(reader) -> int:
    """The square size of the dataset's images (checked equal for every camera)."""
    name = reader.names[0]
    sizes = {v.shape[1] for v in reader.images(name).values()} | {
        v.shape[2] for v in reader.images(name).values()
    }
    if len(sizes) != 1:
        raise DatasetError(f"{reader.path}: images are not all square and of one size: {sizes}")
    return int(sizes.pop())


@contextmanager
def _cpu_threads(n: int | None):
    """Run with ``n`` torch CPU threads (unchanged if None), restoring the count after."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def evaluate_loss(model: ChunkPolicy, data: ChunkDataset, batch_size: int, device) -> float:
    """Mean masked L1 of ``model``'s chunks on ``data`` (no noise, no gradient)."""
    model.eval()
    total, count = 0.0, 0
    for feats, actions, pad, *inputs in loader(data, batch_size, 0, shuffle=False):
        x = model.normalise_features(feats.to(device))
        pred = model(x, *(i.to(device) for i in inputs))
        loss = masked_l1(pred, model.normalise_actions(actions.to(device)), pad.to(device))
        total, count = total + loss.item() * len(feats), count + len(feats)
    return total / count


def save_curve(history: dict, path: Path, skill: str, network: str = "mlp head") -> Path:
    """Training and validation loss per epoch as a PNG (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    epochs = range(1, len(history["train"]) + 1)
    own = "denoising MSE" if network.startswith("diffusion") else "L1"
    ax.plot(epochs, history["train"], label=f"training ({own}; input noise, augmentation)")
    ax.plot(epochs, history["val"], label="validation (L1 of the predicted chunks)")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (normalised actions)")
    ax.set_title(f"behaviour cloning: {skill}, {network}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
