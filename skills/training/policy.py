"""Behaviour-cloning policies: their config, the execution of action chunks, checkpoints.

A policy maps one feature vector (`skills.training.features`) to the next ``chunk``
actions in the dataset's layout (`skills.training.dataset.ACTION_LAYOUT`), through one of
the heads of `skills.training.heads` (MLP, ACT-style transformer, diffusion). Inputs and
outputs are normalised inside the module with statistics of the training data, so the
module takes raw features and returns raw actions.

A checkpoint is one file written by `save_checkpoint` (``torch.save`` of plain containers:
it loads with ``weights_only=True``, no pickled code)::

    format            "skillstack-policy", format_version
    config            PolicyConfig as a dict: skill, arm, observation keys and sizes, feature
                      names, chunk length, policy rate, execution, action layout,
                      head and its sizes, gripper width, training data path and episode seeds,
                      seed, epochs, skillstack version
    state_dict        the weights, and the normalisation statistics as buffers
                      (feature_mean/std, action_mean/std)
    history           train/validation loss per epoch, best epoch

`load_policy` validates all of it and raises `PolicyError` naming what is wrong.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from skillstack.skills.training.dataset import ACTION_LAYOUT, OBS_KEYS
from skillstack.skills.training.features import SKILL_FEATURE_NAMES
from skillstack.skills.training.heads import HEAD_CLASSES, HEADS, ChunkPolicy
from skillstack.skills.training.multitask import MultiTaskMLP, SkillView, multi_feature_names
from skillstack.skills.training.policy_config import PolicyConfig
from skillstack.skills.training.vision import VISION_FEATURE_NAMES, VISION_SKILLS, VisionChunkMLP

FORMAT = "skillstack-policy"
FORMAT_VERSION = 1


class PolicyError(Exception):
    """A checkpoint that cannot be used: missing, corrupt, for another skill or mismatched."""


EXECUTIONS = ("receding", "ensemble")


class ChunkExecutor:
    """Turns predicted chunks into one action per policy step.

    ``receding`` (default): predict a chunk, execute its first ``steps`` actions open loop,
    predict again. ``ensemble``: predict every step and average (`TemporalEnsemble`).

    Receding horizon is the default because the scripted experts wait in place before they
    act (the hand comes to rest at the grasp pose, *then* the fingers close): from that
    resting state a chunk says "close in ~8 steps", and re-predicting every step, as
    ensembling does, postpones the close for ever. Executing the chunk reaches it.
    """

    def __init__(self, chunk: int, mode: str = "receding", steps: int = 0, decay: float = 0.1):
        if mode not in EXECUTIONS:
            raise ValueError(f"unknown execution {mode!r}; choose {' or '.join(EXECUTIONS)}")
        self.mode, self.steps = mode, steps if 0 < steps <= chunk else chunk
        self._ensemble = TemporalEnsemble(chunk, decay)
        self._queue: list[np.ndarray] = []

    def action(self, predict) -> np.ndarray:
        """The action for this step; ``predict()`` → (chunk, 7) is called when needed."""
        if self.mode == "ensemble":
            return self._ensemble.add(predict())
        if not self._queue:
            self._queue = list(predict()[: self.steps])
        return self._queue.pop(0).copy()


class TemporalEnsemble:
    """Execution of action chunks by temporal ensembling (as in ACT).

    Every policy step adds a predicted chunk; the action executed at step ``t`` is the
    weighted mean of every stored prediction for ``t``, weight ``exp(-decay * age)`` where
    age counts steps since that prediction was made, so recent chunks weigh the most.
    """

    def __init__(self, chunk: int, decay: float):
        self.chunk, self.decay = chunk, decay
        self._chunks: list[tuple[int, np.ndarray]] = []
        self.t = 0

    def add(self, actions: np.ndarray) -> np.ndarray:
        """Add the chunk predicted now; return the action to execute now and advance."""
        self._chunks = [(s, c) for s, c in self._chunks if self.t - s < self.chunk]
        self._chunks.append((self.t, actions))
        ages = np.array([self.t - s for s, _ in self._chunks], dtype=float)
        rows = np.array([c[self.t - s] for s, c in self._chunks])
        weights = np.exp(-self.decay * ages)
        self.t += 1
        return (weights[:, None] * rows).sum(axis=0) / weights.sum()


# -- checkpoints -----------------------------------------------------------------------------
def skillstack_version() -> str:
    """The installed skillstack version ("unknown" when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("skillstack")
    except PackageNotFoundError:
        return "unknown"


def save_checkpoint(path: str | Path, model: ChunkPolicy, history: dict | None = None) -> Path:
    """Write ``model`` with its config and normalisation to ``path`` (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": asdict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "history": history or {},
    }
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(blob, tmp)
    tmp.replace(path)
    return path


def load_policy(
    path: str | Path, skill: str | None = None, feature_names: list[str] | None = None
) -> ChunkPolicy:
    """Load and validate a checkpoint; the model is in eval mode on the CPU.

    ``skill``: the skill it must be a policy of. ``feature_names``: the inputs the caller
    will provide (default: this version's features of the checkpoint's skill,
    `skills.training.features.SKILL_FEATURE_NAMES`); a checkpoint expecting other inputs,
    or another observation size, is refused.

    Raises:
        PolicyError: missing or corrupt file, not a skillstack policy, another skill, or
            an observation/action spec that does not match.
    """
    path = Path(path)
    if not path.is_file():
        raise PolicyError(f"{path}: no such checkpoint")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise PolicyError(f"{path}: not a policy checkpoint or corrupt ({exc})") from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise PolicyError(f"{path}: not a skillstack policy checkpoint")
    if blob.get("format_version") != FORMAT_VERSION:
        raise PolicyError(
            f"{path}: checkpoint format {blob.get('format_version')}, this version reads "
            f"{FORMAT_VERSION}"
        )
    config = _config(path, blob.get("config"))
    if config.skills:
        return _skill_view(path, blob, config, skill)
    if skill is not None and config.skill != skill:
        raise PolicyError(f"{path}: a policy for skill {config.skill!r}, not {skill!r}")
    if config.skill not in SKILL_FEATURE_NAMES:
        raise PolicyError(
            f"{path}: a policy for {config.skill!r}; learned implementations exist for "
            f"{', '.join(SKILL_FEATURE_NAMES)}"
        )
    default = SKILL_FEATURE_NAMES[config.skill]
    if config.images:
        from skillstack.skills.training.images import IMAGE_KEYS, MAX_IMAGE_SIZE, MIN_IMAGE_SIZE

        if config.skill not in VISION_SKILLS or not set(config.images) <= set(IMAGE_KEYS):
            raise PolicyError(
                f"{path}: an image policy for {config.skill!r} on cameras "
                f"{config.images[:4]}; this version has image policies for "
                f"{', '.join(VISION_SKILLS)} on {', '.join(IMAGE_KEYS)}"
            )
        if not MIN_IMAGE_SIZE <= int(config.image_size) <= MAX_IMAGE_SIZE:
            raise PolicyError(f"{path}: image size {config.image_size} cannot be rendered")
        default = VISION_FEATURE_NAMES
    expected = list(default) if feature_names is None else list(feature_names)
    if config.obs_keys != dict(OBS_KEYS):
        raise PolicyError(
            f"{path}: trained on observations {config.obs_keys}, this environment gives "
            f"{dict(OBS_KEYS)}"
        )
    if config.feature_names != expected:
        raise PolicyError(
            f"{path}: expects {config.feature_dim} inputs, the environment gives "
            f"{len(expected)} ({_first_difference(config.feature_names, expected)})"
        )
    if config.action_layout != list(ACTION_LAYOUT):
        raise PolicyError(f"{path}: action layout {config.action_layout}, expected {ACTION_LAYOUT}")
    return _weights(path, blob, config)


def build_policy(config: PolicyConfig) -> ChunkPolicy:
    """The untrained network of ``config``: its head (`skills.training.heads`), the image
    policy (`skills.training.vision`) with ``config.images``, the multi-task policy
    (`skills.training.multitask`) with ``config.skills``; `ValueError` for an unknown head."""
    if config.head not in HEAD_CLASSES:
        raise ValueError(f"unknown head {config.head!r}; choose one of {', '.join(HEADS)}")
    if (config.skills or config.images) and config.head != "mlp":
        kind = "multi-task" if config.skills else "image"
        raise ValueError(f"{kind} policies have the mlp head, not {config.head!r}")
    if config.skills:
        return MultiTaskMLP(config)
    if config.images:
        return VisionChunkMLP(config)
    return HEAD_CLASSES[config.head](config)


def _weights(path: Path, blob: dict, config: PolicyConfig) -> ChunkPolicy:
    """The network of ``config`` with the checkpoint's weights, in eval mode."""
    try:
        model = build_policy(config)
        model.load_state_dict(blob["state_dict"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise PolicyError(f"{path}: weights do not fit the recorded architecture ({exc})") from exc
    if not all(torch.isfinite(v).all() for v in model.state_dict().values()):
        raise PolicyError(f"{path}: weights contain NaN or inf")
    model.history = blob.get("history", {})
    return model.eval()


def _skill_view(path: Path, blob: dict, config: PolicyConfig, skill: str | None) -> ChunkPolicy:
    """Skill ``skill`` of a multi-task checkpoint (`skills.training.multitask`)."""
    skills = [str(s)[:20] for s in config.skills[:8]]
    unknown = [s for s in skills if s not in SKILL_FEATURE_NAMES]
    if unknown or len(skills) != len(config.skills):
        raise PolicyError(f"{path}: a multi-task policy of unknown skills {unknown}")
    if skill is None or skill not in skills:
        asked = "no skill was named" if skill is None else f"not {skill!r}"
        raise PolicyError(f"{path}: a multi-task policy of {', '.join(skills)}; {asked}")
    if config.feature_names != multi_feature_names(skills):
        raise PolicyError(f"{path}: its inputs differ from what this version computes")
    missing = [s for s in skills if s not in config.skill_open_width]
    missing += [s for s in skills if s not in config.skill_max_duration_s]
    if missing or config.obs_keys != dict(OBS_KEYS) or config.action_layout != list(ACTION_LAYOUT):
        raise PolicyError(f"{path}: multi-task config is incomplete or for other observations")
    model = _weights(path, blob, config)
    assert isinstance(model, MultiTaskMLP), "build_policy makes the multi-task MLP"
    return SkillView(model, skill).eval()


def _config(path: Path, raw: Any) -> PolicyConfig:
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: checkpoint lacks its config")
    names = {f.name for f in fields(PolicyConfig)}
    unknown = sorted(set(raw) - names)
    if unknown or "skill" not in raw:
        raise PolicyError(f"{path}: config has unknown fields {unknown} or no skill")
    try:
        config = PolicyConfig(**raw)
    except TypeError as exc:
        raise PolicyError(f"{path}: config is not valid ({exc})") from exc
    if not (1 <= int(config.chunk) <= 1000 and config.rate_hz > 0 and config.hidden > 0):
        raise PolicyError(f"{path}: config has an invalid chunk, rate or size")
    if config.head not in HEADS:
        head = str(config.head)[:40]
        raise PolicyError(f"{path}: unknown head {head!r}; this version has {', '.join(HEADS)}")
    return config


def _first_difference(got: list[str], want: list[str]) -> str:
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return f"input {i} is {a!r} there, {b!r} here"
    return "different lengths"
