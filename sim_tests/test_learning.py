"""Behaviour cloning end to end on a tiny real dataset: torch batches, training, checkpoints,
their refusals, a learned grasp in the registry and executor, and `skillstack eval --json`."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
h5py = pytest.importorskip("h5py")

from typer.testing import CliRunner  # noqa: E402

from skillstack.planners.cli import app  # noqa: E402
from skillstack.skills.training.dataset import DatasetError, write_dataset  # noqa: E402
from skillstack.skills.training.dataset_reader import open_dataset  # noqa: E402
from skillstack.skills.training.policy import PolicyError, load_policy, save_checkpoint  # noqa: E402

DEMOS = 3
CHUNK = 4
SHORT_HORIZON_S = 1.0  # the learned test policy gives up after 1.5 s of simulated time


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """Three real scripted grasp demonstrations (collected in this process)."""
    from skillstack.skills.training.collect import collect

    out = tmp_path_factory.mktemp("demos")
    return collect("grasp", DEMOS, seed=3, out_dir=out, jobs=1)


@pytest.fixture(scope="module")
def trained(demos, tmp_path_factory):
    """A small policy trained for a few epochs on the demonstrations."""
    from skillstack.skills.training.train import train

    out = tmp_path_factory.mktemp("ckpt") / "grasp.pt"
    report = train(demos, out, "grasp", epochs=30, batch_size=64, chunk=CHUNK, hidden=64, seed=1)
    model = load_policy(report.checkpoint, "grasp")
    model.config.max_duration_s = SHORT_HORIZON_S
    quick = save_checkpoint(out.with_name("quick.pt"), model, model.history)
    return report, quick


@pytest.fixture
def scripted_after():
    """Put the scripted skills back into the registry after a test that swaps them."""
    yield
    from skillstack.skills.training.learned import apply_skill_impls

    apply_skill_impls(["grasp=scripted"])


def test_torch_batches_carry_features_chunks_and_episode_end_padding(demos):
    from skillstack.skills.training.features import FEATURE_DIM
    from skillstack.skills.training.torch_data import ChunkDataset, loader

    reader = open_dataset(demos, "grasp")
    data = ChunkDataset.from_reader(reader, chunk=CHUNK)
    lengths = [e.num_samples for e in reader.episodes()]
    assert len(data) == sum(lengths)
    batches = list(loader(data, batch_size=32, seed=0))
    feats, actions, pad = batches[0]
    assert feats.shape == (32, FEATURE_DIM) and feats.dtype == torch.float32
    assert actions.shape == (32, CHUNK, 7) and pad.shape == (32, CHUNK) and pad.dtype == torch.bool
    assert sum(len(b[0]) for b in batches) == len(data)
    again = next(iter(loader(data, batch_size=32, seed=0)))
    assert torch.equal(again[0], feats)  # same seed, same order
    # The last sample of the first episode: only its own action is real, the rest padding.
    _, a, p = data[[lengths[0] - 1]]
    assert p[0].tolist() == [False] + [True] * (CHUNK - 1)
    assert torch.allclose(a[0, 1:], a[0, :1].expand(CHUNK - 1, 7))
    # Sample 0's chunk is the first CHUNK recorded actions.
    first = torch.as_tensor(reader.episodes()[0].actions[:CHUNK], dtype=torch.float32)
    assert torch.allclose(data[[0]][1][0], first)


def test_a_tiny_training_run_lowers_the_loss_and_writes_a_curve(trained):
    report, _ = trained
    assert report.train_loss[-1] < 0.6 * report.train_loss[0]
    assert report.val_loss[report.best_epoch - 1] < 0.95 * report.val_loss[0]  # 1 held-out demo
    assert report.curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.train_episodes == DEMOS - 1 and report.val_episodes == 1


def test_checkpoint_round_trip_keeps_config_normalisation_and_outputs(trained, demos):
    from skillstack.skills.training.torch_data import ChunkDataset

    report, _ = trained
    model = load_policy(report.checkpoint, "grasp")
    cfg = model.config
    assert (cfg.skill, cfg.chunk, cfg.rate_hz, cfg.hidden) == ("grasp", CHUNK, 20.0, 64)
    assert cfg.data_path == str(demos) and len(cfg.train_seeds) == DEMOS and cfg.seed == 1
    assert cfg.obs_keys["object"] == 7 and cfg.action_layout[-1] == "gripper_width"
    feats = ChunkDataset.from_reader(open_dataset(demos), CHUNK).features[0].numpy()
    out = model.predict(feats)
    assert out.shape == (CHUNK, 7) and np.isfinite(out).all()
    np.testing.assert_array_equal(load_policy(report.checkpoint).predict(feats), out)
    assert torch.count_nonzero(model.feature_std != 1.0) > 10  # statistics were stored


def test_bad_datasets_are_refused_with_the_reason(demos, tmp_path):
    from skillstack.skills.training.train import train

    reader = open_dataset(demos)
    other = write_dataset(tmp_path / "place.hdf5", "place", reader.episodes(), rate_hz=20)
    with pytest.raises(DatasetError, match="a dataset of skill 'place', not 'grasp'"):
        train(other, tmp_path / "x.pt", "grasp", epochs=1)
    missing = tmp_path / "missing.hdf5"
    missing.write_bytes(demos.read_bytes())
    with h5py.File(missing, "a") as h5:
        del h5["data/demo_0/obs/object"]
    with pytest.raises(DatasetError, match="demo_0 lacks obs/object"):
        train(missing, tmp_path / "x.pt", "grasp", epochs=1)
    assert not (tmp_path / "x.pt").exists()


def test_bad_checkpoints_are_refused_with_the_reason(trained, tmp_path):
    report, _ = trained
    with pytest.raises(PolicyError, match="for skill 'grasp', not 'place'"):
        load_policy(report.checkpoint, "place")
    with pytest.raises(PolicyError, match="no such checkpoint"):
        load_policy(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(report.checkpoint.read_bytes()[:300])
    with pytest.raises(PolicyError, match="corrupt"):
        load_policy(corrupt)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(PolicyError, match="corrupt"):
        load_policy(garbage)
    blob = torch.load(report.checkpoint, weights_only=True)
    blob["config"]["feature_names"] = blob["config"]["feature_names"][:-2]
    torch.save(blob, tmp_path / "narrow.pt")
    n = len(blob["config"]["feature_names"])
    with pytest.raises(PolicyError, match=f"expects {n} inputs, the environment gives {n + 2}"):
        load_policy(tmp_path / "narrow.pt")
    blob = torch.load(report.checkpoint, weights_only=True)
    blob["config"]["obs_keys"]["object"] = 3
    torch.save(blob, tmp_path / "obs.pt")
    with pytest.raises(PolicyError, match="trained on observations"):
        load_policy(tmp_path / "obs.pt")


def test_bad_skill_impl_specs_exit_2_and_change_nothing(trained, tmp_path):
    from skillstack.skills.registry import get_skill

    report, _ = trained
    before = get_skill("grasp")
    runner = CliRunner()
    cases = {
        f"grasp=learned:{tmp_path / 'missing.pt'}": "no such checkpoint",
        f"fly=learned:{report.checkpoint}": "unknown skill 'fly'",
        f"place=learned:{report.checkpoint}": "a policy for skill 'grasp', not 'place'",
        f"push=learned:{report.checkpoint}": "no learned implementation of 'push'",
        "grasp=neural": "write SKILL=learned:CHECKPOINT or SKILL=scripted",
    }
    for spec, reason in cases.items():
        result = runner.invoke(app, ["do", "grasp object=cube", "--skill-impl", spec, "--json"])
        assert result.exit_code == 2, (spec, result.output)
        assert reason in result.output and '"steps"' not in result.output
    assert get_skill("grasp") is before


def test_a_learned_grasp_runs_through_the_registry_and_executor(trained, scripted_after):
    from skillstack.hw.sim.mujoco.robot import MujocoRobot
    from skillstack.robot.scene import default_scene
    from skillstack.skills.executor import execute
    from skillstack.skills.library.grasp import GraspParams
    from skillstack.skills.registry import get_skill
    from skillstack.skills.training.learned import apply_skill_impls

    _, quick = trained
    runner = CliRunner()
    refused = runner.invoke(
        app, ["do", "grasp object=bowl", "--skill-impl", f"grasp=learned:{quick}", "--json"]
    )
    # Refused before anything moves by the scripted skill's check, which the learned one keeps.
    assert refused.exit_code == 2, refused.output
    assert "grasp would refuse it: bowl is" in refused.output and "nothing moved" in refused.output
    learned = get_skill("grasp")
    assert type(learned).__name__ == "LearnedGrasp" and learned.Params is GraspParams
    with MujocoRobot(default_scene()) as robot:
        q0 = robot.read().q.copy()
        lift = execute(learned, {"object": "cube", "lift": 0.2}, robot)
        assert lift.failure.value == "invalid_parameters" and not lift.moved
        assert np.array_equal(robot.read().q, q0)
        result = execute(learned, {"object": "cube"}, robot)
        assert result.moved and result.template == "top" and result.duration_s > 0.5
        assert result.success or result.failure is not None
        assert np.linalg.norm(robot.read().q - q0) > 1e-3  # the policy drove the arm
    apply_skill_impls(["grasp=scripted"])
    assert type(get_skill("grasp")).__name__ == "Grasp"


def test_eval_json_reports_both_implementations_on_held_out_seeds(trained):
    from skillstack.skills.training.collect import SEED_STRIDE
    from skillstack.skills.training.evaluate import EVAL_SEED_BASE, eval_seeds

    _, quick = trained
    runner = CliRunner()
    result = runner.invoke(
        app, ["eval", "grasp", "--policy", str(quick), "--episodes", "2", "--jobs", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["episodes"] == 2 and 0.0 <= out["success_rate"] <= 1.0
    assert out["ci95"][0] <= out["success_rate"] <= out["ci95"][1]
    assert out["scripted_success_rate"] == 1.0  # the scripted grasp on the same two scenes
    assert out["seeds"]["first"] >= EVAL_SEED_BASE and out["seeds"]["disjoint_from_training"]
    largest_collection_seed = (10**6 - 1) * SEED_STRIDE + SEED_STRIDE - 1
    assert min(eval_seeds(5, 0)) > largest_collection_seed
    bad = runner.invoke(app, ["eval", "place", "--policy", str(quick), "--episodes", "1"])
    assert bad.exit_code == 2 and "not 'place'" in bad.output


def test_train_cli_refuses_cuda_without_it_and_other_skills(demos, tmp_path):
    runner = CliRunner()
    args = ["train", "grasp", "--data", str(demos.parent), "--out", str(tmp_path / "g.pt")]
    if not torch.cuda.is_available():
        result = runner.invoke(app, [*args, "--device", "cuda"])
        assert result.exit_code == 2 and "no CUDA device" in result.output
    result = runner.invoke(app, ["train", "push", "--data", str(demos), "--out", "x.pt"])
    assert result.exit_code == 2 and "learnable skills: grasp, place, pour" in result.output
    assert not (tmp_path / "g.pt").exists()


def test_corrective_augmentation_matches_the_features_of_a_moved_hand(demos):
    from scipy.spatial.transform import Rotation

    from skillstack.skills.training.augment import SPREAD_STEPS, Corrective
    from skillstack.skills.training.features import FEATURE_NAMES, context_from_episode, features

    episode = open_dataset(demos).episodes()[0]
    context = context_from_episode("grasp", episode)
    commands = np.full(episode.num_samples, 0.08)
    base = features(episode.obs, commands, context, 0.08)
    delta, eps = np.array([0.01, -0.02, 0.005]), 0.2
    moved = {k: v.astype(float).copy() for k, v in episode.obs.items()}
    moved["robot0_eef_pos"] += delta
    turned = Rotation.from_rotvec([0, 0, eps]) * Rotation.from_quat(
        moved["robot0_eef_quat"][:, [1, 2, 3, 0]]
    )
    moved["robot0_eef_quat"] = turned.as_quat()[:, [3, 0, 1, 2]]
    want = features(moved, commands, context, 0.08)
    n = len(base)
    actions = torch.zeros(n, CHUNK + 2, 7)
    got, corrected = Corrective(list(FEATURE_NAMES)).shift(
        torch.as_tensor(base, dtype=torch.float32),
        actions,
        torch.as_tensor(delta, dtype=torch.float32).expand(n, 3),
        torch.full((n,), eps),
    )
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)
    # The corrections add up to the offset, spread over the first steps of the chunk.
    np.testing.assert_allclose(corrected[0, :, :3].sum(0).numpy(), -delta, atol=1e-6)
    assert corrected[0, :, 5].sum().item() == pytest.approx(-eps, abs=1e-6)
    assert torch.count_nonzero(corrected[0, :, 0]) == min(SPREAD_STEPS, CHUNK + 2)


def test_receding_execution_runs_a_chunk_before_predicting_again():
    from skillstack.skills.training.policy import ChunkExecutor

    calls = []

    def predict():
        calls.append(1)
        return np.arange(4.0)[:, None].repeat(7, axis=1) + 10 * len(calls)

    receding = ChunkExecutor(4, "receding")
    got = [receding.action(predict)[0] for _ in range(6)]
    assert got == [10, 11, 12, 13, 20, 21] and len(calls) == 2
    calls.clear()
    ensemble = ChunkExecutor(4, "ensemble", decay=0.0)
    got = [ensemble.action(predict)[0] for _ in range(2)]
    assert len(calls) == 2 and got == [10, (11 + 20) / 2]  # every step, averaged
    with pytest.raises(ValueError, match="unknown execution"):
        ChunkExecutor(4, "random")


def test_benchmark_workers_run_the_learned_implementation(trained):
    from skillstack.hw.sim.backends import make_sim
    from skillstack.planners import bench
    from skillstack.skills.registry import get_skill

    _, quick = trained
    before = type(get_skill("grasp")).__name__
    out = bench.run(
        1, tasks=["pick_cube"], jobs=1, skill_impls=[f"grasp=learned:{quick}"], make_sim=make_sim
    )
    assert out["skill_impls"] == [f"grasp=learned:{quick}"]
    # The 1.5 s test policy cannot pick anything up; the scripted grasp always does.
    task = out["tasks"]["pick_cube"]
    assert task["success_rate"] == 0.0 and "policy" in task["failures"][0]
    assert type(get_skill("grasp")).__name__ == before  # the parent's registry is untouched


def test_random_starts_add_an_unrecorded_move_to_a_seeded_hand_pose():
    from skillstack.skills.training.collect import START_BOX, demonstration_setup

    plain = demonstration_setup("grasp", 5)
    moved = demonstration_setup("grasp", 5, random_starts=1.0)
    assert plain[1] == [] and plain[2] == moved[2]  # same scene and call
    (name, params), *_ = moved[1]
    assert name == "move_to" and all(
        lo <= v <= hi for v, (lo, hi) in zip(params["position"], START_BOX)
    )
    assert demonstration_setup("grasp", 5, random_starts=1.0)[1] == moved[1]  # seeded


def test_square_boxes_are_grasped_the_same_way_whatever_the_yaw_jitter():
    from types import SimpleNamespace

    from skillstack.skills.library.geometry import box_top_grasp, top_grasp
    from skillstack.skills.training.features import FEATURE_NAMES, CallContext, features

    # A cube at yaw ±0.1 mrad: the hand keeps its home yaw instead of turning ±90°.
    yaws = [box_top_grasp(0.05, 0.05, j)[1] for j in (-1e-4, 1e-4)]
    assert all(abs(y) < 1e-3 for y in yaws)
    assert box_top_grasp(0.05, 0.05, 1.5)[1] == pytest.approx(1.5 - np.pi / 2)
    assert box_top_grasp(0.04, 0.06, 0.0) == pytest.approx((0.04, -np.pi / 2))  # narrow side
    cube = SimpleNamespace(kind="box", size=(0.05, 0.05, 0.05), yaw=1e-4, position=(0.5, 0, 0.025))
    cube.top, cube.bottom, cube.height = 0.05, 0.0, 0.05
    assert top_grasp(cube)[2] == pytest.approx(1e-4)
    # The yaw feature is measured from the grasp the expert takes: 0 when the hand is there.
    obs = {
        "robot0_eef_pos": np.array([[0.5, 0.0, 0.2]]),
        "robot0_eef_quat": np.array([[0.0, 1.0, 0.0, 0.0]]),  # pointing down, yaw 0
        "robot0_gripper_width": np.array([[0.08]]),
        "object": np.array([[0.5, 0.0, 0.025, 1.0, 0.0, 0.0, 0.0]]),
    }
    row = features(obs, np.array([0.08]), CallContext("box", (0.05, 0.05, 0.05), "top"), 0.08)
    names = list(FEATURE_NAMES)
    assert row[0, names.index("grasp_rel_yaw_sin2")] == pytest.approx(0.0, abs=1e-6)
    assert row[0, names.index("grasp_rel_yaw_cos2")] == pytest.approx(1.0)


def test_mixed_scenes_put_the_grasped_block_on_plates_in_bowls_and_on_blocks(tmp_path):
    from skillstack.robot.scene import validate_scene
    from skillstack.skills.training.collect import collect
    from skillstack.skills.training.scenes import MIXED_VARIANTS, scene_set_episode, variant

    seen = {}
    for seed in range(60):
        scene, setup, params = scene_set_episode("grasp", seed, "mixed")
        validate_scene(scene)
        seen.setdefault(variant(seed), (scene, params))
        assert setup == [] and params["object"] in scene.names
    assert set(seen) == set(MIXED_VARIANTS)
    for kind, support in (("plate", "plate"), ("bowl", "bowl"), ("stacked", "base")):
        scene, params = seen[kind]
        target, under = scene.object("target"), scene.object(support)
        assert params["approach"] == "top" and target.position[2] > 0.01
        assert np.hypot(*np.subtract(target.position[:2], under.position[:2])) < under.size[0] / 2
    seven = scene_set_episode("grasp", 7, "mixed")
    assert scene_set_episode("grasp", 7, "mixed") == seven  # seeded
    with pytest.raises(ValueError, match="grasp and place only"):
        scene_set_episode("pour", 0, "mixed")
    with pytest.raises(ValueError, match="unknown scene set"):
        collect("grasp", 1, 0, tmp_path, scenes="tasks")
    result = CliRunner().invoke(app, ["collect", "pour", "--scenes", "mixed", "--out", "x"])
    assert result.exit_code == 2 and "grasp and place only" in result.output

    # A real demonstration of the scripted expert lifting a block off another block
    # (collection seed 5 * 10^6 is a "stacked" scene), with its call context stored.
    assert variant(5_000_000) == "stacked"
    path = collect("grasp", 1, seed=5, out_dir=tmp_path, jobs=1, scenes="mixed")
    reader = open_dataset(path, "grasp")
    (episode,) = reader.episodes(successful_only=False)
    # The file says which scene set it came from, so a replay rebuilds this very scene.
    assert reader.env_args["scenes"] == "mixed"
    block = scene_set_episode("grasp", episode.seed, reader.env_args["scenes"])[0].object("target")
    assert episode.success and episode.context["kind"] == "box"
    assert episode.context["extents"] == pytest.approx(list(block.size))
    assert episode.obs["object"][0, 2] > block.size[2] / 2 + 0.03  # started on the lower block
    assert episode.obs["object"][-1, 2] > episode.obs["object"][0, 2] + 0.05  # lifted
