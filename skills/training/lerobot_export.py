# Over 400 lines: the v3 layout and its parquet, video and meta writers, which share it.
"""Export a demonstration dataset (HDF5, `skills.training.dataset`) as a LeRobotDataset v3.

The layout LeRobot's reader (``lerobot``, or the standalone ``lerobot-dataset`` package)
loads, with every frame in one file per kind (small demonstration sets stay far below
LeRobot's 100 MB data and 200 MB video file sizes)::

    meta/info.json                          codebase_version "v3.0", fps, features, paths
    meta/stats.json                         per feature min, max, mean, std, count
    meta/tasks.parquet                      one row per task string: task_index (index: task)
    meta/episodes/chunk-000/file-000.parquet  one row per episode: length, tasks, frame
                                            range, file indices, video timestamps, stats
    meta/skillstack.json                    the source file, its env_args, what was left out
    data/chunk-000/file-000.parquet         one row per frame
    videos/<key>/chunk-000/file-000.mp4     per camera: the episodes' frames one after another

Features: ``observation.state`` (joint positions, joint velocities, end-effector position
and quaternion, gripper width: 22 floats), ``observation.environment_state`` (the target
object's position and quaternion), ``action`` (the dataset's 7 end-effector deltas and
gripper width), ``joint_targets`` (commanded joint positions), ``next.reward``,
``next.done``, and per camera of a dataset with images ``observation.images.<camera>``
(H.264 video). An episode's task is its skill and call parameters (`task_string`).

Writing parquet needs pyarrow (the ``lerobot`` extra: ``pip install skillstack[lerobot]``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from skillstack.skills.training.dataset import (
    ACTION_LAYOUT,
    JOINT_DIM,
    Episode,
)
from skillstack.skills.training.dataset_reader import DatasetReader, open_dataset
from skillstack.skills.training.images import IMAGE_KEYS

CODEBASE_VERSION = "v3.0"
FORMATS = ("lerobot",)
CHUNKS_SIZE = 1000
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 200
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
ROBOT_TYPE = "panda"
VIDEO_CODEC = "h264"

# observation.state: the proprioceptive keys of OBS_KEYS, in this order
STATE_KEYS = (
    "robot0_joint_pos",
    "robot0_joint_vel",
    "robot0_eef_pos",
    "robot0_eef_quat",
    "robot0_gripper_width",
)
_STATE_NAMES = {
    "robot0_joint_pos": [f"joint_pos_{i}" for i in range(7)],
    "robot0_joint_vel": [f"joint_vel_{i}" for i in range(7)],
    "robot0_eef_pos": ["eef_pos_x", "eef_pos_y", "eef_pos_z"],
    "robot0_eef_quat": ["eef_quat_w", "eef_quat_x", "eef_quat_y", "eef_quat_z"],
    "robot0_gripper_width": ["gripper_width"],
}
ENV_STATE_NAMES = ["object_x", "object_y", "object_z", "object_qw", "object_qx", "object_qy"]
ENV_STATE_NAMES.append("object_qz")


class LeRobotExportError(Exception):
    """An export that cannot be made: nothing to export, a rate LeRobot cannot hold, or an
    output folder that is in the way."""


@dataclass
class ExportSummary:
    """What `export_lerobot` wrote.

    Attributes:
        out: the dataset's root folder.
        episodes: episodes exported.
        frames: frames exported.
        fps: the frame rate (the HDF5's sample rate).
        tasks: the distinct task strings, in task_index order.
        excluded_failed: failed demonstrations left out.
        video_keys: the camera features written as videos.
    """

    out: Path
    episodes: int
    frames: int
    fps: int
    tasks: list[str]
    excluded_failed: int
    video_keys: list[str] = field(default_factory=list)


def task_string(skill: str, params: dict) -> str:
    """The task of an episode: the skill and its call parameters, e.g.
    ``"grasp object=target approach=top"``."""
    parts = [skill] + [f"{k}={_short(v)}" for k, v in params.items()]
    return " ".join(parts)


def _short(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ",".join(_short(v) for v in value) + "]"
    return str(value)


def video_key(image_key: str) -> str:
    """The LeRobot feature name of an HDF5 image key: ``observation.images.<camera>``."""
    return f"observation.images.{IMAGE_KEYS.get(image_key, image_key)}"


def state_of(episode: Episode) -> np.ndarray:
    """``observation.state`` of every sample of ``episode``: float32 (T, 22)."""
    return np.concatenate([episode.obs[k] for k in STATE_KEYS], axis=1).astype(np.float32)


def fps_of(rate_hz: float) -> int:
    """The whole-number frame rate LeRobot stores for a sample rate (raises otherwise)."""
    fps = round(rate_hz)
    if fps < 1 or abs(fps - rate_hz) > 1e-6:
        raise LeRobotExportError(
            f"LeRobot needs a whole-number frame rate; this dataset is sampled at {rate_hz:g} Hz"
        )
    return fps


def features(reader: DatasetReader) -> dict[str, dict]:
    """The ``features`` of ``info.json`` for ``reader``'s dataset (videos without ``info``)."""
    state_names = [n for k in STATE_KEYS for n in _STATE_NAMES[k]]
    out: dict[str, dict] = {
        "observation.state": _vector(state_names),
        "observation.environment_state": _vector(ENV_STATE_NAMES),
        "action": _vector(list(ACTION_LAYOUT)),
        "joint_targets": _vector([f"joint_{i}" for i in range(JOINT_DIM)]),
        "next.reward": {"dtype": "float32", "shape": [1], "names": None},
        "next.done": {"dtype": "bool", "shape": [1], "names": None},
    }
    for key in reader.image_keys:
        h, w = _image_size(reader, key)
        out[video_key(key)] = {
            "dtype": "video",
            "shape": [h, w, 3],
            "names": ["height", "width", "channels"],
        }
    out |= {
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    }
    return out


def _vector(names: list[str]) -> dict:
    return {"dtype": "float32", "shape": [len(names)], "names": names}


def _image_size(reader: DatasetReader, key: str) -> tuple[int, int]:
    cams = reader.env_args.get("cameras") or {}
    if key in cams:
        return int(cams[key]["height"]), int(cams[key]["width"])
    frames = reader.images(reader.names[0], [key])[key]
    return int(frames.shape[1]), int(frames.shape[2])


def _require_pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError(
            "exporting to LeRobot needs pyarrow: pip install 'skillstack[lerobot]'"
        ) from exc
    return pa, pq


def export_lerobot(
    dataset: str | Path | DatasetReader,
    out: str | Path,
    include_failed: bool = False,
    overwrite: bool = False,
) -> ExportSummary:
    """Write ``dataset`` (an HDF5 path or an open reader) as a LeRobotDataset v3 in ``out``.

    Args:
        dataset: the demonstration file, or a `DatasetReader` of it.
        out: the dataset's root folder; it must not exist or be empty (unless ``overwrite``).
        include_failed: also export the failed demonstrations (default: successful only).
        overwrite: replace ``out`` if it holds anything.

    Returns:
        What was written.

    Raises:
        skills.training.dataset.DatasetError: the file is missing, not HDF5 or invalid.
        LeRobotExportError: no episode to export, a fractional sample rate, an odd image
            size, or ``out`` not empty.
        ImportError: pyarrow is not installed.
    """
    pa, pq = _require_pyarrow()
    reader = dataset if isinstance(dataset, DatasetReader) else open_dataset(dataset)
    fps = fps_of(reader.rate_hz)
    names = [n for n, e in zip(reader.names, reader.episodes(False)) if e.success or include_failed]
    excluded = len(reader) - len(names)
    if not names:
        raise LeRobotExportError(
            f"{reader.path}: no successful demonstrations to export "
            f"({excluded} failed; --include-failed exports them)"
        )
    for key in reader.image_keys:
        h, w = _image_size(reader, key)
        if h % 2 or w % 2:
            raise LeRobotExportError(f"{key} is {h}×{w}: H.264 video needs even image sides")
    root = _prepare(Path(out), overwrite)
    episodes = dict(zip(reader.names, reader.episodes(False)))
    feats = features(reader)

    tasks: dict[str, int] = {}
    columns: dict[str, list[np.ndarray]] = {k: [] for k in feats if feats[k]["dtype"] != "video"}
    rows: list[dict[str, Any]] = []
    start = 0
    for ep_index, name in enumerate(names):
        episode = episodes[name]
        n = episode.num_samples
        task = task_string(reader.skill, episode.params)
        task_index = tasks.setdefault(task, len(tasks))
        frame = {
            "observation.state": state_of(episode),
            "observation.environment_state": episode.obs["object"].astype(np.float32),
            "action": episode.actions.astype(np.float32),
            "joint_targets": episode.joint_targets.astype(np.float32),
            "next.reward": episode.rewards.astype(np.float32),
            "next.done": episode.dones.astype(bool),
            "timestamp": (np.arange(n) / fps).astype(np.float32),
            "frame_index": np.arange(n, dtype=np.int64),
            "episode_index": np.full(n, ep_index, dtype=np.int64),
            "index": np.arange(start, start + n, dtype=np.int64),
            "task_index": np.full(n, task_index, dtype=np.int64),
        }
        for key, value in frame.items():
            columns[key].append(value)
        row: dict[str, Any] = {
            "episode_index": ep_index,
            "tasks": [task],
            "length": n,
            "data/chunk_index": 0,
            "data/file_index": 0,
            "dataset_from_index": start,
            "dataset_to_index": start + n,
            "meta/episodes/chunk_index": 0,
            "meta/episodes/file_index": 0,
            "skillstack/demo": name,
            "skillstack/success": bool(episode.success),
            "skillstack/seed": int(episode.seed),
            "skillstack/params": json.dumps(episode.params),
            "skillstack/context": json.dumps(episode.context),
        }
        for key in reader.image_keys:
            row |= {
                f"videos/{video_key(key)}/chunk_index": 0,
                f"videos/{video_key(key)}/file_index": 0,
                f"videos/{video_key(key)}/from_timestamp": start / fps,
                f"videos/{video_key(key)}/to_timestamp": (start + n) / fps,
            }
        for key, value in frame.items():
            if key not in ("episode_index", "index", "task_index"):
                row |= {f"stats/{key}/{s}": v for s, v in _stats(value).items()}
        rows.append(row)
        start += n

    data = {k: np.concatenate(v) for k, v in columns.items()}
    table = pa.table({k: _column(pa, v) for k, v in data.items()})
    _write(pq, table, root / DATA_PATH.format(chunk_index=0, file_index=0))
    _write(pq, _episodes_table(pa, rows), root / EPISODES_PATH)
    _write(pq, _tasks_table(pa, list(tasks)), root / "meta/tasks.parquet")

    stats = {k: _stats(v) for k, v in data.items()}
    for key in reader.image_keys:
        vkey = video_key(key)
        path = root / VIDEO_PATH.format(video_key=vkey, chunk_index=0, file_index=0)
        stats[vkey] = _write_video(reader, names, key, path, fps)
        feats[vkey]["info"] = _video_info(feats[vkey]["shape"], fps)
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": ROBOT_TYPE,
        "total_episodes": len(names),
        "total_frames": start,
        "total_tasks": len(tasks),
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILES_SIZE_IN_MB,
        "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB,
        "fps": fps,
        "splits": {"train": f"0:{len(names)}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if reader.image_keys else None,
        "features": feats,
    }
    _write_json(root / "meta/info.json", info)
    _write_json(root / "meta/stats.json", stats)
    _write_json(
        root / "meta/skillstack.json",
        {
            "source": str(reader.path),
            "skill": reader.skill,
            "env_args": reader.env_args,
            "demos": names,
            "excluded_failed": excluded,
        },
    )
    return ExportSummary(
        root,
        len(names),
        start,
        fps,
        list(tasks),
        excluded,
        [video_key(k) for k in reader.image_keys],
    )


def _prepare(root: Path, overwrite: bool) -> Path:
    if root.exists() and not root.is_dir():
        raise LeRobotExportError(f"{root} is a file, not a folder")
    if root.is_dir() and any(root.iterdir()):
        if not overwrite:
            raise LeRobotExportError(f"{root} is not empty (--overwrite replaces it)")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    return root


def _column(pa, values: np.ndarray):
    """A parquet column: scalars for one value per frame, fixed-size lists for vectors."""
    if values.ndim == 1:
        return pa.array(values)
    flat = pa.array(values.reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])


def _stats(values: np.ndarray) -> dict[str, list]:
    x = np.asarray(values)
    x = x.reshape(len(x), -1).astype(np.float64)
    return {
        "min": x.min(axis=0).tolist(),
        "max": x.max(axis=0).tolist(),
        "mean": x.mean(axis=0).tolist(),
        "std": x.std(axis=0).tolist(),
        "count": [len(x)],
    }


def _episodes_table(pa, rows: Sequence[dict[str, Any]]):
    keys = list(rows[0])
    return pa.table({k: [r[k] for r in rows] for k in keys})


def _tasks_table(pa, tasks: list[str]):
    """``meta/tasks.parquet`` as pandas writes a frame indexed by the task string (LeRobot
    reads it with ``pandas.read_parquet`` and looks tasks up by index)."""
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": tasks})
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": "task",
                "field_name": "task",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def _write(pq, table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="snappy")


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4, ensure_ascii=False) + "\n")


def _write_video(
    reader: DatasetReader, names: list[str], key: str, path: Path, fps: int
) -> dict[str, list]:
    """Encode ``key``'s frames of the episodes ``names`` one after another into ``path``;
    returns the per-channel stats of the pixels in [0, 1] (LeRobot's shape (3, 1, 1))."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    total = np.zeros(3)
    total_sq = np.zeros(3)
    low, high = np.full(3, np.inf), np.full(3, -np.inf)
    count = 0
    writer = imageio.get_writer(
        path,
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        macro_block_size=1,
        ffmpeg_log_level="error",
        output_params=["-g", "2", "-crf", "18"],
    )
    try:
        for name in names:
            frames = reader.images(name, [key])[key]
            for image in frames:
                writer.append_data(image)
            pixels = frames.reshape(-1, 3).astype(np.float64) / 255.0
            total += pixels.sum(axis=0)
            total_sq += (pixels**2).sum(axis=0)
            low, high = np.minimum(low, pixels.min(axis=0)), np.maximum(high, pixels.max(axis=0))
            count += len(frames)
    finally:
        writer.close()
    n = max(count * int(np.prod(_image_size(reader, key))), 1)
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean**2, 0.0))

    def per_channel(v: np.ndarray) -> list:
        return [[[float(c)]] for c in v]

    return {
        "min": per_channel(low),
        "max": per_channel(high),
        "mean": per_channel(mean),
        "std": per_channel(std),
        "count": [count],
    }


def _video_info(shape: list[int], fps: int) -> dict[str, Any]:
    return {
        "video.height": shape[0],
        "video.width": shape[1],
        "video.codec": VIDEO_CODEC,
        "video.pix_fmt": "yuv420p",
        "video.is_depth_map": False,
        "video.fps": fps,
        "video.channels": 3,
        "has_audio": False,
    }


__all__ = [
    "CODEBASE_VERSION",
    "FORMATS",
    "ExportSummary",
    "LeRobotExportError",
    "export_lerobot",
    "features",
    "fps_of",
    "state_of",
    "task_string",
    "video_key",
]
