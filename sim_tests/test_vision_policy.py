"""The image policy: a grasp that finds its object in the cameras, never in the state.

Trained on real demonstrations collected with ``--images`` (rendered offscreen; skipped
where this machine cannot render), it must take no object pose as input, respond to what
the cameras show, refuse what it cannot train on, and run as the grasp skill."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
h5py = pytest.importorskip("h5py")

from typer.testing import CliRunner  # noqa: E402

from skillstack.planners.cli import app  # noqa: E402
from skillstack.skills.training.dataset import DatasetError  # noqa: E402
from skillstack.skills.training.dataset_reader import open_dataset  # noqa: E402
from skillstack.skills.training.policy import load_policy  # noqa: E402

CHUNK = 4


@pytest.fixture(scope="module")
def image_demos(tmp_path_factory):
    """Three scripted grasp demonstrations with both cameras' images."""
    from skillstack.hw.sim.mujoco.render import rendering_available
    from skillstack.skills.training.collect import collect

    ok, reason = rendering_available()
    if not ok:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("image_demos")
    return collect("grasp", 3, seed=3, out_dir=out, jobs=1, image_size=48)


@pytest.fixture(scope="module")
def image_policy(image_demos, tmp_path_factory):
    """An image policy trained for a few epochs through the CLI, and its JSON report."""
    out = tmp_path_factory.mktemp("vision") / "vision.pt"
    args = ["train", "grasp", "--data", str(image_demos), "--out", str(out), "--images"]
    result = CliRunner().invoke(
        app, [*args, "--epochs", "3", "--chunk", str(CHUNK), "--hidden", "32", "--json"]
    )
    assert result.exit_code == 0, result.output
    return out, json.loads(result.output)


def test_the_image_policy_takes_no_object_pose_and_responds_to_the_cameras(
    image_policy, image_demos
):
    from skillstack.skills.training.features import FEATURE_NAMES
    from skillstack.skills.training.vision import VISION_FEATURE_NAMES, vision_features

    path, report = image_policy
    assert report["images"] is True and report["head"] == "mlp"
    model = load_policy(path, "grasp")
    assert type(model).__name__ == "VisionChunkMLP"
    assert model.config.images == ["agentview_image", "robot0_eye_in_hand_image"]
    assert model.config.image_size == 48
    assert model.config.feature_names == list(VISION_FEATURE_NAMES)
    assert not {n for n in FEATURE_NAMES if n.startswith(("obj_rel", "grasp_rel"))} & set(
        model.config.feature_names
    )
    reader = open_dataset(image_demos)
    name, episode = reader.named_episodes(successful_only=False)[0]
    frames = reader.images(name)
    obs = {k: v[:1] for k, v in episode.obs.items() if k != "object"}  # no object pose at all
    from skillstack.skills.training.features import context_from_episode

    context = context_from_episode("grasp", episode)
    color = np.asarray(episode.context["color"])
    x = vision_features(obs, np.array([0.08]), context, color, 0.08)[0]
    first = model.predict(x, {k: v[0] for k, v in frames.items()})
    assert first.shape == (CHUNK, 7) and np.isfinite(first).all()
    np.testing.assert_array_equal(model.predict(x, {k: v[0] for k, v in frames.items()}), first)
    # The same hand, other pictures (the end of the demo: the object lifted): another chunk.
    other = model.predict(x, {k: v[-1] for k, v in frames.items()})
    assert np.abs(other - first).max() > 1e-4
    with pytest.raises(ValueError, match="needs camera images"):
        model.predict(x)


def test_image_training_refuses_what_it_cannot_use(image_demos, tmp_path):
    from skillstack.skills.training.collect import collect
    from skillstack.skills.training.train import train

    plain = collect("grasp", 2, seed=5, out_dir=tmp_path / "plain", jobs=1)
    base = ["train", "grasp", "--out", str(tmp_path / "x.pt"), "--images"]
    result = CliRunner().invoke(app, [*base, "--data", str(plain)])
    assert result.exit_code == 2 and "collect it with --images" in result.output
    result = CliRunner().invoke(app, [*base, "--data", str(image_demos), "--head", "diffusion"])
    assert result.exit_code == 2 and "image policies have the mlp head" in result.output
    with pytest.raises(ValueError, match="train place without --images"):
        train(image_demos, tmp_path / "x.pt", "place", images=True)
    # Demonstrations recorded before grasp contexts stored the object's colour.
    old = tmp_path / "old.hdf5"
    old.write_bytes(image_demos.read_bytes())
    with h5py.File(old, "a") as h5:
        for demo in h5["data"].values():
            context = json.loads(demo.attrs["context"])
            del context["color"]
            demo.attrs["context"] = json.dumps(context)
    with pytest.raises(DatasetError, match="recorded without the object's colour"):
        train(old, tmp_path / "x.pt", "grasp", epochs=1, images=True)
    assert not (tmp_path / "x.pt").exists()


def test_the_image_policy_runs_as_the_grasp_skill(image_policy):
    path, _ = image_policy
    result = CliRunner().invoke(
        app, ["eval", "grasp", "--policy", str(path), "--episodes", "1", "--jobs", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["episodes"] == 1 and report["training"]["images"] is True
    # three epochs on two demos do not grasp; they fail as a grasp fails, not by crashing
    assert report["success_rate"] == 1.0 or set(report["failures"]) <= {
        "timeout",
        "grasp_missed",
        "collision",
        "safety_stop",
    }


def test_dagger_labels_an_image_policy_with_images(image_policy, image_demos, tmp_path):
    from skillstack.skills.training.dagger import dagger

    path, _ = image_policy
    report = dagger(path, image_demos, tmp_path, rollouts=1, every_s=4.0, jobs=1)
    (round_,) = report.rounds
    assert round_.labelled_states >= 1
    merged = open_dataset(round_.dataset)
    assert len(merged) == 3 + round_.labelled_states
    for name in merged.names:  # the demonstrations' images kept, the labels' rendered
        frames = merged.images(name)
        assert all(f.shape[1:] == (48, 48, 3) for f in frames.values())
    retrained = load_policy(round_.checkpoint, "grasp")
    assert type(retrained).__name__ == "VisionChunkMLP" and retrained.config.image_size == 48
