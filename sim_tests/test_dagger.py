"""DAgger end to end on a tiny real dataset: a policy is rolled out, the scripted expert
labels states it reached, and a policy is retrained on demonstrations and labels together."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("h5py")

from typer.testing import CliRunner  # noqa: E402

from skillstack.planners.cli import app  # noqa: E402
from skillstack.skills.training.dataset_reader import open_dataset  # noqa: E402
from skillstack.skills.training.policy import load_policy  # noqa: E402


@pytest.fixture(scope="module")
def bc(tmp_path_factory):
    """Three scripted grasp demonstrations and a policy barely trained on them."""
    from skillstack.skills.training.collect import collect
    from skillstack.skills.training.train import train

    folder = tmp_path_factory.mktemp("bc")
    data = collect("grasp", 3, seed=3, out_dir=folder, jobs=1)
    report = train(data, folder / "grasp.pt", "grasp", epochs=3, chunk=4, hidden=32, seed=1)
    return data, report.checkpoint


def test_dagger_adds_expert_labels_from_states_the_policy_reached(bc, tmp_path):
    from skillstack.skills.training.evaluate import eval_seeds

    data, policy = bc
    args = ["dagger", "grasp", "--policy", str(policy), "--data", str(data), "--out"]
    result = CliRunner().invoke(
        app, [*args, str(tmp_path), "--rollouts", "2", "--every", "3", "--jobs", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    (round_,) = report["rounds"]
    assert round_["rollouts"] == 2 and round_["labelled_states"] >= 2
    demos = open_dataset(data).episodes(successful_only=False)
    merged = open_dataset(round_["dataset"]).episodes(successful_only=False)
    labels = merged[len(demos) :]
    assert len(labels) == round_["labelled_states"]
    assert sum(e.success for e in labels) == round_["added_demos"]
    for old, new in zip(demos, merged):  # the demonstrations are kept as they were
        np.testing.assert_array_equal(old.actions, new.actions)
    # Labels start where the policy had taken the hand (≥ 3 s into a rollout), not at home.
    home = np.array([e.obs["robot0_eef_pos"][0] for e in demos])
    for label in labels:
        assert np.linalg.norm(home - label.obs["robot0_eef_pos"][0], axis=1).min() > 0.01
        assert 0 < label.seed < eval_seeds(1)[0]  # disjoint from every evaluation scene
    retrained = load_policy(report["checkpoint"], "grasp")
    old = load_policy(policy).config
    cfg = retrained.config
    assert (cfg.head, cfg.chunk, cfg.hidden, cfg.epochs) == (old.head, 4, 32, 3)
    assert set(e.seed for e in labels) <= set(cfg.train_seeds)


def test_dagger_refuses_before_rolling_anything_out(bc, tmp_path):
    data, policy = bc
    base = ["--data", str(data), "--out", str(tmp_path)]
    result = CliRunner().invoke(app, ["dagger", "place", "--policy", str(policy), *base])
    assert result.exit_code == 2 and "a policy for skill 'grasp', not 'place'" in result.output
    result = CliRunner().invoke(
        app, ["dagger", "grasp", "--policy", str(tmp_path / "none.pt"), *base]
    )
    assert result.exit_code == 2 and "no such checkpoint" in result.output
    result = CliRunner().invoke(
        app, ["dagger", "grasp", "--policy", str(policy), *base, "--rollouts", "0"]
    )
    assert result.exit_code == 2
    assert not list(tmp_path.iterdir())  # nothing written
