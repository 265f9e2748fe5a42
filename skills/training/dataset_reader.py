"""Reading demonstration datasets: `open_dataset` validates a whole file and returns a
`DatasetReader` holding its demos in memory (the layout: `skills.training.dataset`).

Every problem is a `skills.training.dataset.DatasetError` whose message names what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from skillstack.skills.training.dataset import (
    ACTION_DIM,
    JOINT_DIM,
    OBS_KEYS,
    REQUIRED,
    STATS_KEYS,
    STD_FLOOR,
    DatasetError,
    Episode,
    check_stats,
    compute_stats,
    demo_names,
    read_episode,
)
from skillstack.skills.training.images import IMAGE_KEYS, image_problems, image_shapes

MAX_LISTED = 8  # problem demos named in one DatasetError (the rest are counted)


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

    def named_episodes(self, successful_only: bool = True) -> list[tuple[str, Episode]]:
        """(demo name, demonstration) pairs in index order (the name reads its images)."""
        return [(n, e) for n, e in self._episodes.items() if e.success or not successful_only]

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
    names = demo_names(data)
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
        episode = read_episode(group)
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
        more = len(problems) - MAX_LISTED
        listed = "; ".join(p if len(p) <= 300 else p[:297] + "..." for p in problems[:MAX_LISTED])
        raise DatasetError(f"{path}: {listed}" + (f"; and {more} more demos" if more > 0 else ""))
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
        if stats[key]["mean"].shape != (_dim(key),) or stats[key]["std"].shape != (_dim(key),):
            raise DatasetError(f"{path}: stats/{key} has the wrong size")
    try:
        bad = check_stats(stats)
    except (TypeError, ValueError) as exc:
        bad = [f"stats are not numbers ({str(exc)[:80]})"]
    if bad:
        raise DatasetError(f"{path}: " + "; ".join(bad[:MAX_LISTED]))
    return stats


def _dim(key: str) -> int:
    return OBS_KEYS.get(key) or (ACTION_DIM if key == "actions" else JOINT_DIM)
