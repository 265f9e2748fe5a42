"""Demonstration datasets: HDF5 files in the layout robomimic uses.

Layout of one file::

    data                        attrs: total (samples), env_args (JSON)
    data/demo_<i>               attrs: num_samples, success, seed, params (JSON), context (JSON,
                                optional: `skills.training.features.CallContext`)
    data/demo_<i>/obs/<key>     float32 (T, dim), one per key of `OBS_KEYS`; in the file
                                ``robot0_eef_quat`` is x y z w (robomimic's order; read back
                                as w x y z), and ``robot0_gripper_qpos`` (T, 2) = the two
                                finger positions is added for robomimic's default keys;
                                pour demos also hold ``object_fill`` (`OPTIONAL_OBS_KEYS`)
    data/demo_<i>/next_obs/<key>  the low-dimensional obs of the next sample (the last repeated)
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
    mask/train, mask/valid      the successful demos, split 90 / 10 (seeded by the demo names)
    stats/<key>/mean, std       per-dimension statistics over the successful demos

``env_args`` names the skill, the control and sample rates, the observation keys with their
sizes, the action layout and the skillstack version, and for robomimic's `EnvUtils` an
integer ``type`` (2, its gym type) with the gymnasium id as ``env_name``
(`skills.training.envs`). So robomimic's own ``SequenceDataset`` loads the files under its
default config (``filter_by_attribute="train"`` leaves the failed demos out).

Write with `write_dataset` (or `create_file` + `write_episode` + `finish_file`); read with
`skills.training.dataset_reader.open_dataset`, which validates the whole file on open and
raises `DatasetError` with a message naming what is wrong.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from skillstack.robot.rotations import to_scipy, xyzw_to_wxyz
from skillstack.skills.training.images import image_problems

FORMAT_VERSION = 2  # 2: robomimic conventions (quaternion order, next_obs, env type, splits)
ROBOMIMIC_GYM_TYPE = 2  # robomimic.envs.env_base.EnvType.GYM_TYPE
STORED_QUAT_ORDER = "xyzw"  # robot0_eef_quat in files of format 2 (w x y z in memory)
VALID_FRACTION = 0.1  # of the successful demos, in mask/valid
OBS_KEYS: dict[str, int] = {
    "robot0_joint_pos": 7,  # rad
    "robot0_joint_vel": 7,  # rad/s
    "robot0_eef_pos": 3,  # m, world frame
    "robot0_eef_quat": 4,  # unit quaternion w x y z
    "robot0_gripper_width": 1,  # m
    "object": 7,  # target object position (m) + quaternion w x y z
}
# Observations only some skills record (absent from the others' files): name -> size.
OPTIONAL_OBS_KEYS: dict[str, int] = {
    "object_fill": 1,  # pour: fraction of the held cup's particles still in it
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
    (`skills.training.images.IMAGE_KEYS`) to uint8 ``(T, H, W, 3)``; episodes read back
    (`skills.training.dataset_reader`) leave it empty (`DatasetReader.images` loads them).
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
        shapes: dict[str, tuple[Any, tuple[int, ...]]] = {
            f"obs/{k}": (self.obs[k], (n, d))
            for k, d in (OBS_KEYS | OPTIONAL_OBS_KEYS).items()
            if k in self.obs
        }
        shapes |= {
            "actions": (self.actions, (n, ACTION_DIM)),
            "joint_targets": (self.joint_targets, (n, JOINT_DIM)),
            "rewards": (self.rewards, (n,)),
            "dones": (self.dones, (n,)),
        }
        for name, (array, shape) in shapes.items():
            if np.shape(array) != shape:
                out.append(f"{name} has shape {np.shape(array)}, expected {shape}")
            else:
                out += _value_problems(name, array)
        if n == 0:
            out.append("it has no samples")
        return out + image_problems(self.images, n)


def _value_problems(name: str, array: Any) -> list[str]:
    """Why ``array`` cannot be trained on: not numbers, or NaN or infinity (naming where)."""
    try:
        values = np.asarray(array)
        if values.dtype.kind not in "biuf":
            return [f"{name} holds {values.dtype} values, not numbers"]
        finite = np.isfinite(values)
    except (TypeError, ValueError) as exc:
        return [f"{name} cannot be read as numbers ({str(exc)[:80]})"]
    if finite.all():
        return []
    bad = np.argwhere(~finite)
    first = tuple(int(i) for i in bad[0])
    value = values[first]
    at = f"sample {first[0]}" + (f", column {first[1]}" if len(first) > 1 else "")
    return [f"{name} holds {len(bad)} non-finite values (first {value} at {at})"]


def check_stats(stats: dict[str, dict[str, np.ndarray]]) -> list[str]:
    """Why stored or computed statistics cannot normalise: NaN or infinity, or a negative
    standard deviation (one line per key)."""
    out = []
    for key, s in stats.items():
        for part in ("mean", "std"):
            if part in s and not np.all(np.isfinite(np.asarray(s[part], dtype=float))):
                out.append(f"stats/{key}/{part} holds non-finite values")
        if "std" in s and np.any(np.asarray(s["std"], dtype=float) < 0):
            out.append(f"stats/{key}/std is negative")
    return out


# -- actions -----------------------------------------------------------------------------
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
        rot = to_scipy(eef_quat)
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
    rot = to_scipy(quat0)
    quats = [np.asarray(quat0, dtype=float)]
    for w in actions[:, 3:6]:
        rot = Rotation.from_rotvec(w) * rot
        quats.append(xyzw_to_wxyz(rot.as_quat()))
    return pos, np.array(quats)


# -- writing -------------------------------------------------------------------------------
def env_args(
    skill: str,
    rate_hz: float,
    control_rate_hz: float = DEFAULT_CONTROL_RATE_HZ,
    cameras: dict | None = None,
    scenes: str = "bench",
):
    """The ``env_args`` record (a dict; stored as JSON) of a dataset of ``skill``; ``cameras``
    (`skills.training.images.cameras_env_args`) where it holds images; ``scenes``, the scene
    set its episodes were drawn from (`skills.training.scenes`), to rebuild them for replay."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        skillstack_version = version("skillstack")
    except PackageNotFoundError:
        skillstack_version = "unknown"
    out = {
        "env_name": f"skillstack/{skill.title().replace('_', '')}-v0",  # gymnasium id
        "type": ROBOMIMIC_GYM_TYPE,
        "quat_order": STORED_QUAT_ORDER,
        "skill": skill,
        "scenes": scenes,
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
    stored = _stored_obs(episode.obs)
    for key, values in stored.items():
        group.create_dataset(f"obs/{key}", data=values)
        following = np.concatenate([values[1:], values[-1:]]) if len(values) else values
        group.create_dataset(f"next_obs/{key}", data=following)
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
    names = demo_names(h5["data"])
    episodes = {n: read_episode(h5["data"][n]) for n in names}
    h5["data"].attrs["total"] = sum(e.num_samples for e in episodes.values())
    for key in ("mask", "stats"):
        if key in h5:
            del h5[key]
    ok = [n for n in names if episodes[n].success]
    failed = [n for n in names if not episodes[n].success]
    h5.create_dataset("mask/successful", data=np.array(ok, dtype="S"), dtype=_bytes_dtype(ok))
    h5.create_dataset("mask/failed", data=np.array(failed, dtype="S"), dtype=_bytes_dtype(failed))
    valid = _valid_split(ok)
    for mask, members in (("train", [n for n in ok if n not in valid]), ("valid", valid)):
        h5.create_dataset(
            f"mask/{mask}", data=np.array(members, dtype="S"), dtype=_bytes_dtype(members)
        )
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
    scenes: str = "bench",
) -> Path:
    """Write a complete dataset (atomically: a temporary file renamed into place).

    ``episodes`` may be a generator: each is written as it comes. ``cameras``, ``scenes``: see
    `env_args`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        extra = {"control_rate_hz": control_rate_hz, "cameras": cameras, "scenes": scenes}
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


def _get(episode: Episode, key: str) -> np.ndarray:
    return episode.obs[key] if key in OBS_KEYS else getattr(episode, key)


def _stored_obs(obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The low-dimensional obs as the file holds them (robomimic's conventions)."""
    keys = [*OBS_KEYS, *(k for k in OPTIONAL_OBS_KEYS if k in obs)]
    out = {key: np.asarray(obs[key], dtype=np.float32) for key in keys}
    out["robot0_eef_quat"] = out["robot0_eef_quat"][:, [1, 2, 3, 0]]  # w x y z -> x y z w
    width = out["robot0_gripper_width"].reshape(-1, 1)
    out["robot0_gripper_qpos"] = np.hstack([width / 2, -width / 2])  # robosuite's finger qpos
    return out


def _valid_split(names: list[str]) -> list[str]:
    """The validation demos among ``names``: a seeded 10 % (at least one of two or more)."""
    if len(names) < 2:
        return []
    count = max(1, round(VALID_FRACTION * len(names)))
    rng = np.random.default_rng(len(names))
    return sorted(rng.choice(names, size=count, replace=False).tolist(), key=lambda n: int(n[5:]))


def _bytes_dtype(names: list[str]):
    return f"S{max((len(n) for n in names), default=1)}"


# -- reading one demo ----------------------------------------------------------------------
def demo_names(data) -> list[str]:
    """The ``demo_<i>`` group names of ``data`` in index order."""
    names = [n for n in data if n.startswith("demo_") and n[5:].isdigit()]
    return sorted(names, key=lambda n: int(n[5:]))


def read_episode(group) -> Episode:
    """The demo stored in the HDF5 group ``group`` (its images left in the file)."""
    keys = (*OBS_KEYS, *OPTIONAL_OBS_KEYS)
    obs = {k: group[f"obs/{k}"][()] for k in keys if f"obs/{k}" in group}
    env = json.loads(group.file["data"].attrs.get("env_args", "{}"))
    if env.get("quat_order") == STORED_QUAT_ORDER and "robot0_eef_quat" in obs:
        obs["robot0_eef_quat"] = obs["robot0_eef_quat"][:, [3, 0, 1, 2]]  # back to w x y z
    return Episode(
        obs=obs,
        actions=group["actions"][()],
        joint_targets=group["joint_targets"][()],
        rewards=group["rewards"][()],
        dones=group["dones"][()],
        success=bool(group.attrs["success"]),
        seed=int(group.attrs["seed"]),
        params=json.loads(group.attrs.get("params", "{}")),
        context=json.loads(group.attrs.get("context", "{}")),
    )
