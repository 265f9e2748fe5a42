"""`skillstack dataset export|show|replay`: LeRobotDataset v3 export of collected demonstrations,
checked by its structure (pyarrow) and, where installed, by LeRobot's own reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from run_cli import skillstack

from skillstack.skills.training.dataset import write_dataset
from skillstack.skills.training.dataset_reader import open_dataset
from skillstack.skills.training.images import IMAGE_KEYS
from skillstack.skills.training.lerobot_export import export_lerobot, state_of, task_string

IMAGE_SIDE = 32


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> Path:
    """Two expert grasps, as `skillstack collect` records them."""
    from skillstack.skills.training.collect import collect

    return collect("grasp", episodes=2, seed=0, out_dir=tmp_path_factory.mktemp("grasp"), jobs=1)


@pytest.fixture(scope="module")
def mixed(collected, tmp_path_factory) -> Path:
    """The collected demos with the second marked failed and smooth synthetic camera images."""
    reader = open_dataset(collected)
    episodes = reader.episodes(successful_only=False)
    episodes[1].success = False
    for e in episodes:
        t = np.arange(e.num_samples)[:, None, None, None]
        y = np.arange(IMAGE_SIDE)[None, :, None, None]
        x = np.arange(IMAGE_SIDE)[None, None, :, None]
        c = np.arange(3)[None, None, None, :]
        frames = ((4 * x + 3 * y + 2 * t + 60 * c) % 256).astype(np.uint8)
        e.images = {key: frames for key in IMAGE_KEYS}
    path = tmp_path_factory.mktemp("mixed") / "grasp.hdf5"
    return write_dataset(path, "grasp", episodes, reader.rate_hz)


def _expected(path: Path, include_failed: bool = False):
    reader = open_dataset(path)
    return reader, [e for e in reader.episodes(False) if e.success or include_failed]


def test_export_writes_lerobot_v3_layout_with_the_hdf5_values(collected, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="writing parquet needs pyarrow")
    _, episodes = _expected(collected)
    out = tmp_path / "lerobot"
    summary = export_lerobot(collected, out)
    assert (summary.episodes, summary.frames, summary.fps) == (
        len(episodes),
        sum(e.num_samples for e in episodes),
        20,
    )
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert info["fps"] == 20 and info["total_episodes"] == len(episodes)
    assert info["total_frames"] == summary.frames
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] is None  # no images in this file
    feats = info["features"]
    assert feats["observation.state"]["shape"] == [22]
    assert len(feats["observation.state"]["names"]) == 22
    assert feats["action"]["shape"] == [7] and feats["joint_targets"]["shape"] == [7]
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert feats[key]["shape"] == [1]

    data = pq.read_table(out / "data/chunk-000/file-000.parquet").to_pydict()
    assert len(data["index"]) == summary.frames
    assert data["index"] == list(range(summary.frames))
    start = 0
    for i, e in enumerate(episodes):
        rows = slice(start, start + e.num_samples)
        np.testing.assert_array_equal(
            np.array(data["observation.state"][rows], np.float32), state_of(e)
        )
        np.testing.assert_array_equal(
            np.array(data["action"][rows], np.float32), e.actions.astype(np.float32)
        )
        np.testing.assert_array_equal(
            np.array(data["joint_targets"][rows], np.float32), e.joint_targets.astype(np.float32)
        )
        assert data["episode_index"][rows] == [i] * e.num_samples
        assert data["frame_index"][rows] == list(range(e.num_samples))
        np.testing.assert_allclose(
            data["timestamp"][rows], np.arange(e.num_samples) / 20, atol=1e-6
        )
        start += e.num_samples

    meta = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pydict()
    assert meta["length"] == [e.num_samples for e in episodes]
    assert meta["dataset_to_index"][-1] == summary.frames
    assert meta["tasks"] == [[task_string("grasp", e.params)] for e in episodes]
    tasks = pq.read_table(out / "meta/tasks.parquet").to_pydict()
    assert sorted(tasks["task"]) == sorted({task_string("grasp", e.params) for e in episodes})
    stats = json.loads((out / "meta/stats.json").read_text())
    assert set(stats["action"]) >= {"min", "max", "mean", "std", "count"}
    assert stats["action"]["count"] == [summary.frames]


def test_failed_demos_are_left_out_by_default_and_images_become_videos(mixed, tmp_path):
    pytest.importorskip("pyarrow", reason="writing parquet needs pyarrow")
    import imageio.v2 as imageio

    out = tmp_path / "default"
    proc = skillstack("dataset", "export", str(mixed), "--format", "lerobot", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (
        "exported 1 episodes" in proc.stdout and "1 failed demonstrations left out" in proc.stdout
    )

    out_all = tmp_path / "all"
    summary = export_lerobot(mixed, out_all, include_failed=True)
    assert summary.episodes == 2 and summary.excluded_failed == 0
    info = json.loads((out_all / "meta/info.json").read_text())
    for key, camera in IMAGE_KEYS.items():
        vkey = f"observation.images.{camera}"
        assert info["features"][vkey]["dtype"] == "video"
        assert info["features"][vkey]["shape"] == [IMAGE_SIDE, IMAGE_SIDE, 3]
        video = out_all / f"videos/{vkey}/chunk-000/file-000.mp4"
        frames = [f for f in imageio.get_reader(video)]  # list() asks len(): inf
        assert len(frames) == summary.frames
        first = open_dataset(mixed).images("demo_0", [key])[key][0]
        assert np.abs(frames[0].astype(float) - first).mean() < 8  # H.264 is lossy


def test_lerobot_reader_loads_the_export(mixed, tmp_path):
    try:  # the standalone reader imports torchvision, which has no CPU-only wheel here
        from ledataset.datasets.lerobot_dataset import LeRobotDataset
    except ImportError as exc:
        pytest.skip(f"LeRobot's reader (pip install lerobot-dataset) cannot be imported: {exc}")

    _, episodes = _expected(mixed, include_failed=True)
    out = tmp_path / "lerobot"
    export_lerobot(mixed, out, include_failed=True)
    ds = LeRobotDataset("local/skillstack", root=out)
    assert ds.fps == 20 and ds.num_episodes == len(episodes)
    assert len(ds) == sum(e.num_samples for e in episodes)
    start = 0
    for i, e in enumerate(episodes):
        row = ds.meta.episodes[i]
        assert row["length"] == e.num_samples and row["dataset_from_index"] == start
        frames = ds.hf_dataset.select(range(start, start + e.num_samples))
        state = np.stack([np.asarray(v) for v in frames["observation.state"]])
        np.testing.assert_array_equal(state, state_of(e))
        action = np.stack([np.asarray(v) for v in frames["action"]])
        np.testing.assert_array_equal(action, e.actions.astype(np.float32))
        task = ds.meta.tasks.iloc[int(frames["task_index"][0])].name
        assert task == task_string("grasp", e.params)
        start += e.num_samples


def test_show_prints_a_table_and_one_json_object(mixed):
    proc = skillstack("dataset", "show", str(mixed))
    assert proc.returncode == 0, proc.stderr
    for text in ("grasp", "2 (1 successful, 1 failed)", "obs/agentview_image", "T×32×32×3"):
        assert text in proc.stdout
    info = json.loads(skillstack("dataset", "show", str(mixed), "--json").stdout)
    assert (info["episodes"], info["successful"], info["failed"]) == (2, 1, 1)
    assert info["fps"] == 20 and info["skill"] == "grasp"
    assert info["keys"]["actions"] == [7]
    assert info["images"]["agentview_image"] == [IMAGE_SIDE, IMAGE_SIDE, 3]


def test_replay_writes_an_mp4_of_the_episode(mixed, collected, tmp_path):
    import imageio.v2 as imageio

    from skillstack.hw.sim.mujoco.render import rendering_available
    from skillstack.skills.training.dataset_view import replay

    reader = open_dataset(mixed)
    path = replay(reader, 1, tmp_path / "images.mp4", camera="wrist")
    assert sum(1 for _ in imageio.get_reader(path)) == reader.episodes(False)[1].num_samples
    ok, reason = rendering_available()
    if not ok:
        pytest.skip(reason)
    out = tmp_path / "sim.mp4"
    proc = skillstack("dataset", "replay", str(collected), "--episode", "0", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(out)
    n = open_dataset(collected).episodes(False)[0].num_samples
    assert sum(1 for _ in imageio.get_reader(out)) == n


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("export", "{missing}", "--out", "{tmp}/x"), "no such file"),
        (("export", "{garbage}", "--out", "{tmp}/x"), "not an HDF5 dataset"),
        (("export", "{data}", "--format", "rlds", "--out", "{tmp}/x"), "unknown format 'rlds'"),
        (("replay", "{data}", "--episode", "5", "--out", "{tmp}/r.mp4"), "out of range"),
    ],
)
def test_bad_input_is_a_one_line_error(mixed, tmp_path, args, message):
    garbage = tmp_path / "garbage.hdf5"
    garbage.write_bytes(b"not hdf5 at all")
    values = {"missing": tmp_path / "none.hdf5", "garbage": garbage, "data": mixed, "tmp": tmp_path}
    proc = skillstack("dataset", *(a.format(**values) for a in args))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
