"""The policy heads beside the MLP: an ACT-style transformer and a diffusion head.

Each head must learn a mapping (fitted on synthetic chunks whose answer is known), train
through `skillstack train --head`, round-trip through its checkpoint, predict the same
chunk for the same input, and run as a learned grasp through `skillstack eval`."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("h5py")

from typer.testing import CliRunner  # noqa: E402

from skillstack.planners.cli import app  # noqa: E402
from skillstack.skills.training.heads import HEADS, masked_l1  # noqa: E402
from skillstack.skills.training.policy import (  # noqa: E402
    PolicyConfig,
    PolicyError,
    build_policy,
    load_policy,
)

FEATURES = 6
CHUNK = 5


def _synthetic(n: int, seed: int):
    """Features and the chunk they determine: each step a fixed linear map, growing with the
    step index, then a tanh (smooth but not linear)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, FEATURES, generator=gen)
    w = torch.linspace(-1, 1, FEATURES * 7).view(FEATURES, 7)
    steps = torch.arange(1, CHUNK + 1).view(1, CHUNK, 1) / CHUNK
    return x, torch.tanh((x @ w).unsqueeze(1) * steps)


@pytest.mark.parametrize("head", HEADS)
def test_every_head_learns_a_mapping_from_features_to_chunks(head):
    names = [f"f{i}" for i in range(FEATURES)]
    config = PolicyConfig(skill="grasp", feature_names=names, chunk=CHUNK, head=head, seed=0)
    config.hidden, config.layers = (64, 1) if head == "transformer" else (128, 2)
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the model is small: more threads only wait on each other
    model = build_policy(config)
    x, y = _synthetic(2048, 0)
    pad = torch.zeros(len(x), CHUNK, dtype=torch.bool)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(400):
        i = torch.randint(0, len(x), (64,), generator=gen)
        loss = model.training_loss(x[i], y[i], pad[i], gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    xt, yt = _synthetic(256, 1)  # unseen inputs
    with torch.no_grad():
        error = masked_l1(model(xt), yt, torch.zeros(256, CHUNK, dtype=torch.bool)).item()
        guess = (yt - y.mean(0)).abs().mean().item()  # always predicting the mean chunk
    torch.set_num_threads(threads)
    assert error < 0.3 * guess, f"{head}: L1 {error:.3f} against {guess:.3f} for the mean"


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """Three real scripted grasp demonstrations."""
    from skillstack.skills.training.collect import collect

    return collect("grasp", 3, seed=3, out_dir=tmp_path_factory.mktemp("demos"), jobs=1)


@pytest.mark.parametrize("head", ["transformer", "diffusion"])
def test_train_eval_round_trip_with_a_head(head, demos, tmp_path):
    from skillstack.skills.training.dataset_reader import open_dataset
    from skillstack.skills.training.torch_data import ChunkDataset

    out = tmp_path / f"{head}.pt"
    args = ["train", "grasp", "--data", str(demos), "--out", str(out), "--head", head]
    result = CliRunner().invoke(
        app, [*args, "--epochs", "3", "--chunk", str(CHUNK), "--hidden", "32", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["head"] == head and report["epochs"] == 3
    model = load_policy(out, "grasp")
    assert model.config.head == head and type(model).__name__ != "ChunkMLP"
    feats = ChunkDataset.from_reader(open_dataset(demos), CHUNK).features[:1].numpy()[0]
    first = model.predict(feats)
    assert first.shape == (CHUNK, 7) and np.isfinite(first).all()
    np.testing.assert_array_equal(load_policy(out).predict(feats), first)  # deterministic
    # It runs as the grasp skill; success is not expected after 3 epochs on 2 demos.
    result = CliRunner().invoke(
        app, ["eval", "grasp", "--policy", str(out), "--episodes", "1", "--jobs", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["episodes"] == 1


def test_unknown_heads_are_refused_before_training_or_loading(demos, tmp_path):
    result = CliRunner().invoke(
        app,
        ["train", "grasp", "--data", str(demos), "--out", str(tmp_path / "x.pt"), "--head", "rnn"],
    )
    assert result.exit_code == 2 and "unknown head 'rnn'" in result.output
    assert not (tmp_path / "x.pt").exists()
    from skillstack.skills.training.policy import save_checkpoint

    config = PolicyConfig(skill="grasp", chunk=CHUNK, head="diffusion", hidden=32, layers=1)
    path = save_checkpoint(tmp_path / "d.pt", build_policy(config))
    blob = torch.load(path, weights_only=True)
    blob["config"]["head"] = "x" * 500
    torch.save(blob, tmp_path / "bad.pt")
    with pytest.raises(PolicyError, match="unknown head") as info:
        load_policy(tmp_path / "bad.pt")
    assert len(str(info.value)) < 300  # the hostile name is not echoed whole
