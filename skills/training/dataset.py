"""Demonstration datasets: HDF5 files in the layout robomimic uses.

Layout of one file::

    data                        attrs: total (samples), env_args (JSON)
    data/demo_<i>               attrs: num_samples, success, seed, params (JSON), context (JSON,
                                optional: `skills.training.features.CallContext`)
    data/demo_<i>/obs/<key>     float32 (T, dim), one per key of `OBS_KEYS`
    data/demo_<i>/obs/<image>   optional: uint8 (T, H, W, 3), gzip chunks of one frame, one per
                                key of `skills.training.images.IMAGE_KEYS` (all or none, in
                                every demo alike); their cameras in env_args["cameras"]
    data/demo_<i>/actions       float32 (T, 7): end-effector Δposition (3, m, world frame),
                                Δrotation vector (3, rad, world frame) to the next sample,
                                gripper command width (1, m)
    data/demo_<i>/joint_targets float32 (T, 7): commanded joint positions (rad)
    data/demo_<i>/rewards       float32 (T,): 1 at the last sample of a successful episode
    data/demo_<i>/dones         uint8 (T,): 1 at the last sample
    mask/successful, mask/failed   demo names (bytes), like robomimic's filter keys
    stats/<key>/mean, std       per-dimension statistics over the successful demos

``env_args`` names the skill, the control and sample rates, the observation keys with their
sizes, the action layout and the skillstack version. Write with `write_dataset` (or
`create_file` + `write_episode` + `finish_file`); read with `open_dataset`, which validates
the whole file on open and raises `DatasetError` with a message naming what is wrong.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from skillstack.skills.training.images import IMAGE_KEYS, image_problems, image_shapes

FORMAT_VERSION = 1
OBS_KEYS: dict[str, int] = {
    "robot0_joint_pos": 7,  # rad
    "robot0_joint_vel": 7,  # rad/s
    "robot0_eef_pos": 3,  # m, world frame
    "robot0_eef_quat": 4,  # unit quaternion w x y z
    "robot0_gripper_width": 1,  # m
    "object": 7,  # target object position (m) + quaternion w x y z
}
ACTION_LAYOUT = (
    "eef_dpos_x",
    "eef_dpos_y",
    "eef_dpos_z",
    "eef_drot_x",
    "eef_drot_y",
    "eef_drot_z",
    "gripper_width",
)
ACTION_DIM = len(ACTION_LAYOUT)
JOINT_DIM = 7
STATS_KEYS = (*OBS_KEYS, "actions", "joint_targets")
REQUIRED = (*(f"obs/{k}" for k in OBS_KEYS), "actions", "joint_targets", "rewards", "dones")
STD_FLOOR = 1e-6  # below this a dimension is treated as constant: normalised by 1, not std
DEFAULT_CONTROL_RATE_HZ = 1000.0


class DatasetError(Exception):
    """A dataset file that cannot be used: not HDF5, corrupt, incomplete or for another skill."""


@dataclass
class Episode:
    """One demonstration: ``T`` samples of observations, actions and commanded joints.

    ``obs`` maps each key of `OBS_KEYS` to a float array of shape ``(T, dim)``;
    ``rewards`` and ``dones`` have shape ``(T,)``. ``images`` (optional) maps image keys
    (`skills.training.images.IMAGE_KEYS`) to uint8 ``(T, H, W, 3)``; episodes read back by
    `open_dataset` leave it empty (`DatasetReader.images` loads them).
    """

    obs: dict[str, np.ndarray]
    actions: np.ndarray
    joint_targets: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    success: bool
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    # What a policy is conditioned on besides the observations (the object's kind and
    # extents, the template; `skills.training.features.CallContext`); stored as JSON.
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def num_samples(self) -> int:
        """Number of samples ``T``."""
        return len(self.actions)

    def problems(self) -> list[str]:
        """What is missing or inconsistent (empty when the episode is well formed)."""
        out = [f"obs/{k} is missing" for k in OBS_KEYS if k not in self.obs]
        n = self.num_samples
        shapes = {f"obs/{k}": (self.obs[k], (n, d)) for k, d in OBS_KEYS.items() if k in self.obs}
        shapes |= {
            "actions": (self.actions, (n, ACTION_DIM)),
            "joint_targets": (self.joint_targets, (n, JOINT_DIM)),
            "rewards": (self.rewards, (n,)),
            "dones": (self.dones, (n,)),
        }
        for name, (array, shape) in shapes.items():
            if np.shape(array) != shape:
                out.append(f"{name} has shape {np.shape(array)}, expected {shape}")
        if n == 0:
            out.append("it has no samples")
        return out + image_problems(self.images, n)


# -- actions -----------------------------------------------------------------------------
def _rotations(quat_wxyz: np.ndarray):
    from scipy.spatial.transform import Rotation

    q = np.asarray(quat_wxyz, dtype=float)
    return Rotation.from_quat(q[..., [1, 2, 3, 0]])


def actions_from_path(
    eef_pos: np.ndarray, eef_quat: np.ndarray, gripper_command: np.ndarray
) -> np.ndarray:
    """Actions (T, 7) that take each end-effector sample to the next one.

    Δposition is ``p[t+1] - p[t]``; Δrotation is the rotation vector of
    ``R[t+1] R[t]ᵀ`` (world frame); the last sample's deltas are zero.
    ``gripper_command`` (T,) is the commanded finger width at each sample.
    """
    pos = np.asarray(eef_pos, dtype=float)
    n = len(pos)
    out = np.zeros((n, ACTION_DIM))
    if n > 1:
        out[:-1, :3] = np.diff(pos, axis=0)
        rot = _rotations(eef_quat)
        out[:-1, 3:6] = (rot[1:] * rot[:-1].inv()).as_rotvec()
    out[:, 6] = np.asarray(gripper_command, dtype=float).reshape(n)
    return out


def integrate_actions(
    pos0: np.ndarray, quat0: np.ndarray, actions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``actions`` from pose (pos0, quat0 w x y z); returns the poses (T+1, 3), (T+1, 4)."""
    from scipy.spatial.transform import Rotation

    actions = np.asarray(actions, dtype=float)
    pos = np.vstack([np.asarray(pos0, dtype=float), actions[:, :3]]).cumsum(axis=0)
    rot = _rotations(quat0)
    quats = [np.asarray(quat0, dtype=float)]
    for w in actions[:, 3:6]:
        rot = Rotation.from_rotvec(w) * rot
        xyzw = rot.as_quat()
        quats.append(np.array([xyzw[3], *xyzw[:3]]))
    return pos, np.array(quats)


# -- writing -------------------------------------------------------------------------------
def env_args(
    skill: str,
    rate_hz: float,
    control_rate_hz: float = DEFAULT_CONTROL_RATE_HZ,
    cameras: dict | None = None,
):
    """The ``env_args`` record (a dict; stored as JSON) of a dataset of ``skill``; ``cameras``
    (`skills.training.images.cameras_env_args`) where it holds images."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        skillstack_version = version("skillstack")
    except PackageNotFoundError:
        skillstack_version = "unknown"
    out = {
        "env_name": skill,
        "type": "skillstack",
        "skill": skill,
        "env_kwargs": {"control_rate_hz": control_rate_hz, "sample_rate_hz": rate_hz},
        "obs_keys": dict(OBS_KEYS),
        "action_layout": list(ACTION_LAYOUT),
        "skillstack_version": skillstack_version,
        "format_version": FORMAT_VERSION,
    }
    if cameras:
        out["cameras"] = cameras
    return out


def create_file(path: str | Path, skill: str, rate_hz: float, **extra):
    """Open a new HDF5 file for writing with its ``data`` group and ``env_args``."""
    import h5py

    h5 = h5py.File(path, "w")
    data = h5.create_group("data")
    data.attrs["total"] = 0
    data.attrs["env_args"] = json.dumps(env_args(skill, rate_hz, **extra))
    return h5


def write_episode(h5, index: int, episode: Episode) -> str:
    """Write ``episode`` as ``data/demo_<index>`` of the open file ``h5``; returns its name."""
    problems = episode.problems()
    if problems:
        raise ValueError(f"episode {index} is malformed: {'; '.join(problems)}")
    name = f"demo_{index}"
    group = h5["data"].create_group(name)
    group.attrs["num_samples"] = episode.num_samples
    group.attrs["success"] = bool(episode.success)
    group.attrs["seed"] = int(episode.seed)
    group.attrs["params"] = json.dumps(episode.params)
    if episode.context:
        group.attrs["context"] = json.dumps(episode.context)
    for key in OBS_KEYS:
        group.create_dataset(f"obs/{key}", data=np.asarray(episode.obs[key], dtype=np.float32))
    group.create_dataset("actions", data=np.asarray(episode.actions, dtype=np.float32))
    group.create_dataset("joint_targets", data=np.asarray(episode.joint_targets, np.float32))
    group.create_dataset("rewards", data=np.asarray(episode.rewards, dtype=np.float32))
    group.create_dataset("dones", data=np.asarray(episode.dones, dtype=np.uint8))
    for key, frames in episode.images.items():
        frames = np.asarray(frames)
        group.create_dataset(
            f"obs/{key}", data=frames, chunks=(1, *frames.shape[1:]), compression="gzip"
        )
    return name


def finish_file(h5) -> None:
    """Write ``data.attrs['total']``, the ``mask`` filter keys and the ``stats`` group."""
    names = _demo_names(h5["data"])
    episodes = {n: _read_episode(h5["data"][n]) for n in names}
    h5["data"].attrs["total"] = sum(e.num_samples for e in episodes.values())
    for key in ("mask", "stats"):
        if key in h5:
            del h5[key]
    ok = [n for n in names if episodes[n].success]
    failed = [n for n in names if not episodes[n].success]
    h5.create_dataset("mask/successful", data=np.array(ok, dtype="S"), dtype=_bytes_dtype(ok))
    h5.create_dataset("mask/failed", data=np.array(failed, dtype="S"), dtype=_bytes_dtype(failed))
    basis = [episodes[n] for n in ok] or list(episodes.values())
    stats = compute_stats(basis)
    h5.create_group("stats").attrs["episodes"] = "successful" if ok else "all"
    for key, s in stats.items():
        h5.create_dataset(f"stats/{key}/mean", data=s["mean"])
        h5.create_dataset(f"stats/{key}/std", data=s["std"])


def write_dataset(
    path: str | Path,
    skill: str,
    episodes: Iterable[Episode],
    rate_hz: float,
    control_rate_hz: float = DEFAULT_CONTROL_RATE_HZ,
    cameras: dict | None = None,
) -> Path:
    """Write a complete dataset (atomically: a temporary file renamed into place).

    ``episodes`` may be a generator: each is written as it comes. ``cameras``: see `env_args`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        extra = {"control_rate_hz": control_rate_hz, "cameras": cameras}
        with create_file(tmp, skill, rate_hz, **extra) as h5:
            for i, episode in enumerate(episodes):
                write_episode(h5, i, episode)
            finish_file(h5)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def compute_stats(episodes: Sequence[Episode]) -> dict[str, dict[str, np.ndarray]]:
    """Per-dimension mean and std (float64) of every key of `STATS_KEYS` over ``episodes``."""
    out = {}
    for key in STATS_KEYS:
        arrays = [_get(e, key) for e in episodes]
        x = np.concatenate(arrays).astype(np.float64) if arrays else np.zeros((0, 1))
        out[key] = {"mean": x.mean(axis=0), "std": x.std(axis=0)} if len(x) else {}
    return out


# -- reading -------------------------------------------------------------------------------
class DatasetReader:
    """A validated dataset, held in memory (demonstration sets are small).

    Attributes:
        path: the file.
        skill: the skill that produced the demonstrations.
        env_args: the ``env_args`` record.
        names: demo names in index order.
        image_keys: the image observation keys every demo holds (empty: none).
    """

    def __init__(
        self,
        path: Path,
        env: dict,
        episodes: dict[str, Episode],
        stats: dict | None,
        image_keys: Sequence[str] = (),
    ):
        self.path = path
        self.env_args = env
        self.skill = env["skill"]
        self.names = list(episodes)
        self.image_keys = tuple(image_keys)
        self._episodes = episodes
        self._stats = stats

    def __len__(self) -> int:
        return len(self._episodes)

    @property
    def rate_hz(self) -> float:
        """Sample rate of the demonstrations (Hz)."""
        return float(self.env_args["env_kwargs"]["sample_rate_hz"])

    def episodes(self, successful_only: bool = True) -> list[Episode]:
        """The demonstrations in index order (by default only the successful ones)."""
        return [e for e in self._episodes.values() if e.success or not successful_only]

    def images(self, name: str, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Demo ``name``'s images (default: every key of `image_keys`), read from the file
        now (they are not held in memory): uint8 ``(T, H, W, 3)`` per key."""
        import h5py

        keys = self.image_keys if keys is None else tuple(keys)
        unknown = [k for k in keys if k not in self.image_keys]
        if unknown:
            raise KeyError(f"{self.path} has no images {unknown}; images: {self.image_keys}")
        with h5py.File(self.path, "r") as h5:
            return {k: h5[f"data/{name}/obs/{k}"][()] for k in keys}

    def stats(self) -> dict[str, dict[str, np.ndarray]]:
        """Per-key ``{"mean", "std"}`` arrays: the ones stored in the file, else computed."""
        if self._stats is None:
            self._stats = compute_stats(self.episodes() or self.episodes(False))
        return self._stats

    def normalise(self, key: str, x: np.ndarray) -> np.ndarray:
        """``(x - mean) / std`` of ``key`` (std below `STD_FLOOR` counts as 1), float32."""
        s = self.stats()[key]
        std = np.where(s["std"] < STD_FLOOR, 1.0, s["std"])
        return ((x - s["mean"]) / std).astype(np.float32)

    def batches(
        self,
        batch_size: int,
        seed: int,
        keys: Sequence[str] | None = None,
        chunk: int = 1,
        successful_only: bool = True,
    ) -> Iterator[dict[str, np.ndarray]]:
        """One epoch of shuffled samples in batches, the same for the same ``seed``.

        Each batch maps every observation key of ``keys`` (default: all of `OBS_KEYS`) to
        normalised float32 ``(B, dim)``, or an image key of `image_keys` (only when named;
        the epoch's images are read into memory) to uint8 ``(B, H, W, 3)``; ``actions`` to
        raw float32 ``(B, 7)``, or ``(B, chunk, 7)`` when ``chunk > 1`` (the next ``chunk``
        actions, the last one repeated past the end of the episode); ``actions_pad`` to bool
        ``(B, chunk)``, True where the chunk ran past the end. The last batch may be smaller.
        """
        if batch_size < 1 or chunk < 1:
            raise ValueError("batch_size and chunk must be at least 1")
        keys = list(OBS_KEYS) if keys is None else list(keys)
        unknown = [k for k in keys if k not in OBS_KEYS and k not in self.image_keys]
        if unknown:
            known = ", ".join((*OBS_KEYS, *self.image_keys))
            raise KeyError(f"unknown observation keys {unknown}; keys: {known}")
        names = [n for n, e in self._episodes.items() if e.success or not successful_only]
        episodes = [self._episodes[n] for n in names]
        if not episodes:
            return
        low = [k for k in keys if k in OBS_KEYS]
        obs = {k: np.concatenate([self.normalise(k, e.obs[k]) for e in episodes]) for k in low}
        images = [k for k in keys if k not in OBS_KEYS]
        if images:
            loaded = [self.images(n, images) for n in names]
            obs |= {k: np.concatenate([d[k] for d in loaded]) for k in images}
        actions = np.concatenate([e.actions for e in episodes]).astype(np.float32)
        lengths = np.array([e.num_samples for e in episodes])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        ends = np.repeat(starts + lengths, lengths)  # one past each sample's episode end
        order = np.random.default_rng(seed).permutation(len(actions))
        steps = np.arange(chunk)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            future = idx[:, None] + steps[None, :]
            pad = future >= ends[idx, None]
            future = np.minimum(future, ends[idx, None] - 1)
            batch = {k: v[idx] for k, v in obs.items()}
            batch["actions"] = actions[future] if chunk > 1 else actions[idx]
            batch["actions_pad"] = pad
            yield batch


def open_dataset(path: str | Path, skill: str | None = None) -> DatasetReader:
    """Open and validate a dataset; ``skill``, if given, must be the one that produced it.

    Raises:
        DatasetError: the file is missing, not HDF5 or corrupt, lacks the ``data`` group,
            ``env_args`` or any key (named), is for another skill, or has inconsistent lengths.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as h5:
            return _load(path, h5, skill)
    except DatasetError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise DatasetError(f"{path}: not an HDF5 dataset or corrupt ({exc})") from exc


def _load(path: Path, h5, skill: str | None) -> DatasetReader:
    if "data" not in h5:
        raise DatasetError(f"{path}: no 'data' group (not a demonstration dataset)")
    data = h5["data"]
    if "env_args" not in data.attrs:
        raise DatasetError(f"{path}: data group lacks the 'env_args' attribute")
    try:
        env = json.loads(data.attrs["env_args"])
        found = env["skill"]
        env["env_kwargs"]["sample_rate_hz"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: env_args is not valid ({exc})") from exc
    if skill is not None and found != skill:
        raise DatasetError(f"{path}: a dataset of skill {found!r}, not {skill!r}")
    names = _demo_names(data)
    if not names:
        raise DatasetError(f"{path}: no demonstrations (data/demo_0, ...)")
    episodes, problems, layouts = {}, [], {}
    for name in names:
        group = data[name]
        missing = [k for k in REQUIRED if k not in group]
        missing += [f"attr {a}" for a in ("num_samples", "success", "seed") if a not in group.attrs]
        if missing:
            problems.append(f"{name} lacks {', '.join(missing)}")
            continue
        episode = _read_episode(group)
        bad = episode.problems()
        if int(group.attrs["num_samples"]) != episode.num_samples:
            bad.append(
                f"num_samples is {int(group.attrs['num_samples'])} "
                f"but it has {episode.num_samples} actions"
            )
        images = {k: group[f"obs/{k}"] for k in IMAGE_KEYS if f"obs/{k}" in group}
        bad += image_problems(images, episode.num_samples)  # shapes and dtypes only
        layouts[name] = image_shapes(images)
        if bad:
            problems.append(f"{name}: {'; '.join(bad)}")
        episodes[name] = episode
    if len({tuple(sorted(v.items())) for v in layouts.values()}) > 1 and not problems:
        first, other = names[0], next(n for n in names if layouts[n] != layouts[names[0]])
        problems.append(
            f"demos disagree on their images: {first} has {_layout(layouts[first])}, "
            f"{other} has {_layout(layouts[other])}"
        )
    if problems:
        raise DatasetError(f"{path}: " + "; ".join(problems))
    total = sum(e.num_samples for e in episodes.values())
    if "total" in data.attrs and int(data.attrs["total"]) != total:
        raise DatasetError(
            f"{path}: data.attrs['total'] is {int(data.attrs['total'])} but the demos hold "
            f"{total} samples"
        )
    image_keys = tuple(layouts[names[0]])
    return DatasetReader(path, env, episodes, _read_stats(path, h5), image_keys)


def _layout(shapes: dict[str, tuple[int, int]]) -> str:
    return ", ".join(f"{k} {h}×{w}" for k, (h, w) in shapes.items()) or "no images"


def _read_stats(path: Path, h5) -> dict | None:
    if "stats" not in h5:
        return None
    stats = {}
    for key in STATS_KEYS:
        if f"stats/{key}/mean" not in h5 or f"stats/{key}/std" not in h5:
            raise DatasetError(f"{path}: stats lacks {key}")
        stats[key] = {"mean": h5[f"stats/{key}/mean"][()], "std": h5[f"stats/{key}/std"][()]}
        if stats[key]["mean"].shape != (_dim(key),):
            raise DatasetError(f"{path}: stats/{key} has the wrong size")
    return stats


def _dim(key: str) -> int:
    return OBS_KEYS.get(key) or (ACTION_DIM if key == "actions" else JOINT_DIM)


def _demo_names(data) -> list[str]:
    names = [n for n in data if n.startswith("demo_") and n[5:].isdigit()]
    return sorted(names, key=lambda n: int(n[5:]))


def _read_episode(group) -> Episode:
    return Episode(
        obs={k: group[f"obs/{k}"][()] for k in OBS_KEYS if f"obs/{k}" in group},
        actions=group["actions"][()],
        joint_targets=group["joint_targets"][()],
        rewards=group["rewards"][()],
        dones=group["dones"][()],
        success=bool(group.attrs["success"]),
        seed=int(group.attrs["seed"]),
        params=json.loads(group.attrs.get("params", "{}")),
        context=json.loads(group.attrs.get("context", "{}")),
    )


def _get(episode: Episode, key: str) -> np.ndarray:
    return episode.obs[key] if key in OBS_KEYS else getattr(episode, key)


def _bytes_dtype(names: list[str]):
    return f"S{max((len(n) for n in names), default=1)}"
