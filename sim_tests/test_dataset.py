"""Demonstration datasets: the HDF5 format, its validation, batches, and real collection."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from skillstack.skills.training.dataset import (  # noqa: E402
    OBS_KEYS,
    DatasetError,
    Episode,
    actions_from_path,
    integrate_actions,
    write_dataset,
)
from skillstack.skills.training.dataset_reader import open_dataset  # noqa: E402
from skillstack.skills.training.images import IMAGE_KEYS  # noqa: E402

POS_TOL_M = 1e-4  # float32 storage of per-step deltas, summed over a few hundred samples
ANGLE_TOL_RAD = 1e-3


def _synthetic(seed: int, n: int, success: bool) -> Episode:
    rng = np.random.default_rng(seed)
    obs = {k: rng.normal(size=(n, d)) for k, d in OBS_KEYS.items()}
    quat = rng.normal(size=(n, 4))
    obs["robot0_eef_quat"] = quat / np.linalg.norm(quat, axis=1, keepdims=True)
    actions = actions_from_path(obs["robot0_eef_pos"], obs["robot0_eef_quat"], rng.random(n))
    rewards, dones = np.zeros(n), np.zeros(n)
    rewards[-1], dones[-1] = float(success), 1
    return Episode(obs, actions, rng.normal(size=(n, 7)), rewards, dones, success, seed, {"i": 1})


@pytest.fixture
def tiny(tmp_path):
    episodes = [_synthetic(0, 5, True), _synthetic(1, 7, False), _synthetic(2, 4, True)]
    return write_dataset(tmp_path / "grasp.hdf5", "grasp", episodes, rate_hz=20), episodes


def test_round_trip_keeps_every_array_and_attribute(tiny):
    path, written = tiny
    reader = open_dataset(path, skill="grasp")
    assert reader.skill == "grasp" and reader.rate_hz == 20 and len(reader) == 3
    assert [e.seed for e in reader.episodes()] == [0, 2]
    for got, want in zip(reader.episodes(successful_only=False), written):
        assert got.success == want.success and got.params == want.params
        assert got.num_samples == want.num_samples
        for key in OBS_KEYS:
            assert got.obs[key].dtype == np.float32
            np.testing.assert_allclose(got.obs[key], want.obs[key], rtol=1e-6)
        for name in ("actions", "joint_targets", "rewards", "dones"):
            np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-6)
    with h5py.File(path) as h5:
        assert h5["data"].attrs["total"] == 16
        assert list(h5["mask/successful"][()]) == [b"demo_0", b"demo_2"]
        assert list(h5["mask/failed"][()]) == [b"demo_1"]
        assert h5["data/demo_1"].attrs["num_samples"] == 7
        assert "stats/robot0_joint_pos/mean" in h5


def test_stats_are_over_successful_demos_and_stored(tiny):
    path, written = tiny
    stats = open_dataset(path).stats()
    ok = np.concatenate([written[0].obs["object"], written[2].obs["object"]])
    np.testing.assert_allclose(stats["object"]["mean"], ok.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["object"]["std"], ok.std(axis=0), rtol=1e-5)
    assert stats["actions"]["mean"].shape == (7,)


def test_batches_are_normalised_shaped_and_deterministic(tiny):
    path, _ = tiny
    reader = open_dataset(path)
    batches = list(reader.batches(batch_size=4, seed=3))
    assert [len(b["actions"]) for b in batches] == [4, 4, 1]  # 9 successful samples
    assert batches[0]["robot0_joint_pos"].shape == (4, 7)
    assert batches[0]["actions"].shape == (4, 7)
    every = np.concatenate([b["robot0_joint_vel"] for b in batches])
    np.testing.assert_allclose(every.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(every.std(axis=0), 1, atol=1e-4)
    again = list(reader.batches(batch_size=4, seed=3))
    other = list(reader.batches(batch_size=4, seed=4))
    assert all(np.array_equal(a["object"], b["object"]) for a, b in zip(batches, again))
    assert not all(np.array_equal(a["object"], b["object"]) for a, b in zip(batches, other))
    only = next(reader.batches(2, seed=0, keys=["object"]))
    assert set(only) == {"object", "actions", "actions_pad"}


def test_action_chunks_follow_the_episode_and_pad_at_its_end(tiny):
    path, _ = tiny
    reader = open_dataset(path)
    first, last = reader.episodes()
    actions = np.concatenate([first.actions, last.actions])
    starts = {0: 5, 5: 9}  # sample index -> one past the end of its episode
    chunk = 3
    for batch in reader.batches(batch_size=9, seed=1, chunk=chunk):
        assert batch["actions"].shape == (9, chunk, 7)
        assert batch["actions_pad"].shape == (9, chunk)
        for acts, pad in zip(batch["actions"], batch["actions_pad"]):
            i = int(np.flatnonzero((actions == acts[0]).all(axis=1))[0])
            end = next(e for s, e in starts.items() if s <= i < e)
            for j in range(chunk):
                assert pad[j] == (i + j >= end)
                np.testing.assert_array_equal(acts[j], actions[min(i + j, end - 1)])


def test_actions_integrate_back_to_the_path():
    ep = _synthetic(5, 30, True)
    pos, quat = integrate_actions(
        ep.obs["robot0_eef_pos"][0], ep.obs["robot0_eef_quat"][0], ep.actions[:-1]
    )
    np.testing.assert_allclose(pos, ep.obs["robot0_eef_pos"], atol=1e-9)
    np.testing.assert_allclose(np.abs((quat * ep.obs["robot0_eef_quat"]).sum(axis=1)), 1, atol=1e-9)


def test_missing_keys_are_named(tiny):
    path, _ = tiny
    with h5py.File(path, "a") as h5:
        del h5["data/demo_2/obs/robot0_eef_pos"]
        del h5["data/demo_2/rewards"]
    with pytest.raises(DatasetError, match=r"demo_2 lacks obs/robot0_eef_pos, rewards"):
        open_dataset(path)


def test_missing_data_group(tmp_path):
    path = tmp_path / "empty.hdf5"
    with h5py.File(path, "w") as h5:
        h5.create_group("something")
    with pytest.raises(DatasetError, match="no 'data' group"):
        open_dataset(path)


def test_another_skill_is_refused_naming_both(tiny):
    path, _ = tiny
    with pytest.raises(DatasetError, match=r"skill 'grasp', not 'place'"):
        open_dataset(path, skill="place")


def test_inconsistent_lengths(tiny):
    path, _ = tiny
    with h5py.File(path, "a") as h5:
        del h5["data/demo_0/joint_targets"]
        h5["data/demo_0/joint_targets"] = np.zeros((4, 7), np.float32)
    with pytest.raises(DatasetError, match=r"demo_0: joint_targets has shape \(4, 7\)"):
        open_dataset(path)


def test_garbage_bytes_and_truncated_files(tiny, tmp_path):
    garbage = tmp_path / "garbage.hdf5"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DatasetError, match="not an HDF5 dataset or corrupt"):
        open_dataset(garbage)
    path, _ = tiny
    truncated = tmp_path / "truncated.hdf5"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DatasetError, match="not an HDF5 dataset or corrupt"):
        open_dataset(truncated)
    with pytest.raises(DatasetError, match="no such file"):
        open_dataset(tmp_path / "absent.hdf5")


def test_collect_grasp_records_the_expert(tmp_path):
    from skillstack.skills.training.collect import collect

    path = collect("grasp", episodes=2, seed=0, out_dir=tmp_path, jobs=1)
    assert path == tmp_path / "grasp.hdf5"
    reader = open_dataset(path, skill="grasp")
    demos = reader.episodes(successful_only=False)
    assert len(demos) == 2 and all(isinstance(e.success, bool) for e in demos)
    assert any(e.success for e in demos)
    for e in demos:
        n = e.num_samples
        assert n > 20  # a grasp takes seconds; 20 samples per second
        assert all(e.obs[k].shape == (n, d) for k, d in OBS_KEYS.items())
        assert e.dones[-1] == 1 and e.dones[:-1].sum() == 0
        assert e.rewards[-1] == float(e.success)
        pos, quat = integrate_actions(
            e.obs["robot0_eef_pos"][0], e.obs["robot0_eef_quat"][0], e.actions[:-1]
        )
        assert np.abs(pos - e.obs["robot0_eef_pos"]).max() < POS_TOL_M
        cos = np.clip(np.abs((quat * e.obs["robot0_eef_quat"]).sum(axis=1)), 0, 1)
        assert (2 * np.arccos(cos)).max() < ANGLE_TOL_RAD
        widths = e.actions[:, 6]
        assert widths[0] > widths[-1]  # the gripper was commanded to close on the object
        assert np.abs(e.joint_targets - e.obs["robot0_joint_pos"]).max() < 0.2
    # The same seed gives the same data.
    again = collect("grasp", episodes=1, seed=0, out_dir=tmp_path / "again", jobs=1)
    np.testing.assert_array_equal(open_dataset(again).episodes(False)[0].actions, demos[0].actions)


def test_cli_collect_summary_and_unknown_skill(tmp_path):
    from typer.testing import CliRunner

    from skillstack.planners.cli import train_cmd  # noqa: F401  (registers the command)
    from skillstack.planners.cli.common import app

    runner = CliRunner()
    bad = runner.invoke(app, ["collect", "push", "--out", str(tmp_path)])
    assert bad.exit_code == 2
    assert "grasp, place, pour" in bad.output
    ok = runner.invoke(
        app, ["collect", "grasp", "--episodes", "1", "--jobs", "1", "--out", str(tmp_path)]
    )
    assert ok.exit_code == 0, ok.output
    assert "collected 1 grasp episodes" in ok.output and "grasp.hdf5" in ok.output


def _with_images(episode: Episode, size: int = 8) -> Episode:
    rng = np.random.default_rng(episode.seed)
    shape = (episode.num_samples, size, size, 3)
    images = {k: rng.integers(0, 256, shape, dtype=np.uint8) for k in IMAGE_KEYS}
    return dataclasses.replace(episode, images=images)


def test_collect_with_images_records_both_cameras(tmp_path):
    from typer.testing import CliRunner

    from skillstack.hw.sim.mujoco.render import rendering_available
    from skillstack.planners.cli import train_cmd  # noqa: F401  (registers the command)
    from skillstack.planners.cli.common import app

    ok, reason = rendering_available()
    if not ok:
        pytest.skip(reason)
    args = ["collect", "grasp", "--episodes", "2", "--jobs", "1", "--images", "--out"]
    result = CliRunner().invoke(app, [*args, str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "84×84 images" in result.output
    reader = open_dataset(tmp_path / "grasp.hdf5", skill="grasp")
    assert reader.image_keys == tuple(IMAGE_KEYS)
    assert set(reader.env_args["cameras"]) == set(IMAGE_KEYS)
    assert "agentview_image" not in reader.stats()
    for name, demo in zip(reader.names, reader.episodes(successful_only=False)):
        images = reader.images(name)
        for key, frames in images.items():
            assert frames.dtype == np.uint8 and frames.shape == (demo.num_samples, 84, 84, 3)
            assert frames.mean() > 40 and frames.std() > 10, f"{key} looks blank"
        scene = images["agentview_image"].astype(float)
        assert np.abs(scene[-1] - scene[0]).mean() > 3.0  # the arm moved in view (about 10)
    batch = next(reader.batches(16, seed=0, keys=["robot0_eef_pos", "agentview_image"]))
    assert batch["agentview_image"].shape == (16, 84, 84, 3)
    assert batch["agentview_image"].dtype == np.uint8


def test_images_round_trip_and_bad_images_are_refused(tmp_path):
    good = [_with_images(_synthetic(0, 5, True)), _with_images(_synthetic(1, 4, True))]
    path = write_dataset(tmp_path / "grasp.hdf5", "grasp", good, rate_hz=20)
    reader = open_dataset(path)
    assert reader.image_keys == tuple(IMAGE_KEYS)
    for name, episode in zip(reader.names, good):
        for key, frames in reader.images(name).items():
            np.testing.assert_array_equal(frames, episode.images[key])
    with h5py.File(path, "r+") as h5:
        del h5["data/demo_1/obs/agentview_image"]
        h5["data/demo_1/obs/agentview_image"] = np.zeros((4, 8, 8, 3), np.float32)
    with pytest.raises(DatasetError, match="agentview_image is float32, expected uint8"):
        open_dataset(path)
    with h5py.File(path, "r+") as h5:
        del h5["data/demo_1/obs/agentview_image"]
        h5["data/demo_1/obs/agentview_image"] = np.zeros((4, 8, 8), np.uint8)
    with pytest.raises(DatasetError, match=r"shape \(4, 8, 8\), expected \(4, H, W, 3\)"):
        open_dataset(path)
    with h5py.File(path, "r+") as h5:
        del h5["data/demo_1/obs/agentview_image"]
    with pytest.raises(DatasetError, match="lacks obs/agentview_image"):
        open_dataset(path)
    with h5py.File(path, "r+") as h5:
        del h5["data/demo_1/obs/robot0_eye_in_hand_image"]
    with pytest.raises(DatasetError, match=r"demo_0 has agentview_image 8×8.*demo_1 has no images"):
        open_dataset(path)
    short = dataclasses.replace(good[0], images={k: v[:3] for k, v in good[0].images.items()})
    with pytest.raises(ValueError, match="3 images but the demo has 5 samples"):
        write_dataset(tmp_path / "short.hdf5", "grasp", [short], rate_hz=20)


# -- robomimic's conventions ---------------------------------------------------------------------
def test_files_follow_robomimics_conventions(tiny):
    import json

    path, written = tiny
    with h5py.File(path) as h5:
        env = json.loads(h5["data"].attrs["env_args"])
        assert env["type"] == 2 and env["env_name"] == "skillstack/Grasp-v0"  # gym type, env id
        demo = h5["data/demo_0"]
        # robomimic's quaternion order in the file: x y z w.
        np.testing.assert_allclose(
            demo["obs/robot0_eef_quat"][()], written[0].obs["robot0_eef_quat"][:, [1, 2, 3, 0]],
            rtol=1e-6,
        )  # fmt: skip
        # next_obs: the following sample, the last one repeated.
        obs, following = demo["obs/robot0_eef_pos"][()], demo["next_obs/robot0_eef_pos"][()]
        np.testing.assert_array_equal(following[:-1], obs[1:])
        np.testing.assert_array_equal(following[-1], obs[-1])
        width = demo["obs/robot0_gripper_width"][()][:, 0]
        np.testing.assert_allclose(demo["obs/robot0_gripper_qpos"][()][:, 0], width / 2)
        # Training splits hold successful demos only.
        train = {n.decode() for n in h5["mask/train"][()]}
        valid = {n.decode() for n in h5["mask/valid"][()]}
        assert train | valid == {"demo_0", "demo_2"} and not train & valid and len(valid) == 1


def test_robomimics_own_sequence_dataset_loads_every_demo(tmp_path):
    """robomimic's loader, where it is installed (it needs torchvision, which has no CPU wheel
    here; the README has the recipe that ran it, and its training script, on this machine)."""
    dataset = pytest.importorskip(
        "robomimic.utils.dataset", reason="robomimic is not installed (pip install robomimic)"
    )
    obs_utils = pytest.importorskip("robomimic.utils.obs_utils")
    path = tmp_path / "grasp.hdf5"
    episodes = [_synthetic(i, 6 + i, i != 1) for i in range(4)]
    write_dataset(path, "grasp", episodes, rate_hz=20)
    keys = ["robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object"]  # its defaults
    obs_utils.initialize_obs_utils_with_obs_specs({"obs": {"low_dim": keys, "rgb": []}})
    loaded = dataset.SequenceDataset(
        hdf5_path=str(path), obs_keys=keys, dataset_keys=("actions", "rewards", "dones")
    )
    assert loaded.n_demos == 4 and len(loaded) == sum(e.num_samples for e in episodes)
    item = loaded[0]
    assert set(item["obs"]) == set(item["next_obs"]) == set(keys)
    train = dataset.SequenceDataset(
        hdf5_path=str(path), obs_keys=keys, dataset_keys=("actions",), filter_by_attribute="train"
    )
    assert train.n_demos == 2  # of the three successful demos, one is held out for validation
