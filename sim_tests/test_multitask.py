"""One policy for grasp and place: trained through `skillstack train multi`, loaded per skill,
each skill fed its own features and normalised with its own statistics, run by `eval`."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("h5py")

from typer.testing import CliRunner  # noqa: E402

from skillstack.planners.cli import app  # noqa: E402
from skillstack.skills.training.policy import PolicyError, load_policy  # noqa: E402


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    """Grasp and place demonstrations in one folder, and a multi-task policy on both."""
    from skillstack.skills.training.collect import collect

    folder = tmp_path_factory.mktemp("multi")
    collect("grasp", 3, seed=3, out_dir=folder, jobs=1)
    collect("place", 3, seed=3, out_dir=folder, jobs=1)
    out = folder / "multi.pt"
    args = ["train", "multi", "--skills", "grasp,place", "--data", str(folder), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--epochs", "3", "--chunk", "4", "--json"])
    assert result.exit_code == 0, result.output
    return folder, out, json.loads(result.output)


def test_each_skill_of_a_multi_task_policy_takes_its_own_features(multi):
    from skillstack.skills.training.dataset_reader import open_dataset
    from skillstack.skills.training.features import episode_features, feature_names
    from skillstack.skills.training.multitask import multi_input

    folder, path, report = multi
    assert report["skills"] == ["grasp", "place"] and report["train_episodes"] >= 4
    for skill in ("grasp", "place"):
        view = load_policy(path, skill)
        assert view.config.skill == skill
        assert view.config.feature_names == list(feature_names(skill))
        episode = open_dataset(folder / f"{skill}.hdf5").episodes()[0]
        rows = episode_features(skill, episode, view.config.gripper_open_width)
        out = view.predict(rows[0])
        assert out.shape == (4, 7) and np.isfinite(out).all()
        x = torch.as_tensor(multi_input(["grasp", "place"], skill, rows), dtype=torch.float32)
        normalised = view.model.normalise_features(x)[:, 2:].numpy()
        # normalised with this skill's own statistics: this skill's rows come out centred
        n = len(feature_names(skill))
        spread = rows.std(0) > 1e-3
        assert np.abs(normalised[:, :n].mean(0)[spread]).max() < 1.5
    # The same numbers with the other skill's flag give another chunk: the flag conditions it.
    grasp, place = load_policy(path, "grasp"), load_policy(path, "place")
    x = np.zeros(len(place.config.feature_names))
    assert not np.allclose(
        place.predict(x), grasp.model.predict(multi_input(["grasp", "place"], "grasp", x[:25])[0])
    )


def test_a_multi_task_policy_is_refused_without_a_skill_it_learned(multi):
    _, path, _ = multi
    with pytest.raises(PolicyError, match="a multi-task policy of grasp, place; no skill"):
        load_policy(path)
    with pytest.raises(PolicyError, match="not 'pour'"):
        load_policy(path, "pour")
    result = CliRunner().invoke(app, ["eval", "pour", "--policy", str(path), "--episodes", "1"])
    assert result.exit_code == 2 and "not 'pour'" in result.output


def test_multi_training_refuses_bad_skill_lists(multi, tmp_path):
    folder, _, _ = multi
    base = ["train", "multi", "--data", str(folder), "--out", str(tmp_path / "x.pt")]
    result = CliRunner().invoke(app, [*base, "--skills", "grasp"])
    assert result.exit_code == 2 and "two or more" in result.output
    result = CliRunner().invoke(app, [*base, "--skills", "grasp,pour"])  # no pour.hdf5 there
    assert result.exit_code == 2 and "pour.hdf5" in result.output
    result = CliRunner().invoke(app, [*base, "--head", "diffusion"])
    assert result.exit_code == 2 and "mlp head" in result.output
    assert not (tmp_path / "x.pt").exists()


def test_each_skill_of_a_multi_task_policy_runs_through_eval(multi):
    _, path, _ = multi
    for skill in ("grasp", "place"):
        args = ["eval", skill, "--policy", str(path), "--episodes", "1", "--jobs", "1", "--json"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["skill"] == skill and report["training"]["skills"] == ["grasp", "place"]
