"""A learned place end to end on a tiny real dataset: the recorded call context, its features
and their augmentation, training, the policy primitive's grip, the executor and `eval`."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("h5py")

from typer.testing import CliRunner  # noqa: E402

from skillstack.planners.cli import app  # noqa: E402
from skillstack.skills.training.dataset_reader import open_dataset  # noqa: E402

DEMOS = 3
CHUNK = 4


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """Three real scripted place demonstrations (each after an unrecorded grasp)."""
    from skillstack.skills.training.collect import collect

    return collect("place", DEMOS, seed=5, out_dir=tmp_path_factory.mktemp("place"), jobs=1)


@pytest.fixture(scope="module")
def policy(demos, tmp_path_factory):
    """A small place policy trained for a few epochs on them."""
    from skillstack.skills.training.train import train

    out = tmp_path_factory.mktemp("ckpt") / "place.pt"
    return train(demos, out, "place", epochs=20, batch_size=64, chunk=CHUNK, hidden=64, seed=1)


def test_place_demos_store_the_spot_and_features_lead_the_object_there(demos):
    from skillstack.skills.training.features import (
        PLACE_FEATURE_NAMES,
        context_from_episode,
        episode_features,
    )

    for episode in open_dataset(demos, "place").episodes():
        context = context_from_episode("place", episode)
        assert context.template in ("on", "in", "table")
        assert context.carry_bottom > context.release_bottom >= 0.0
        assert 0.0 < context.release_width <= 0.08
        rows = episode_features("place", episode, 0.08)
        names = list(PLACE_FEATURE_NAMES)
        goal = rows[:, [names.index(f"goal_rel_{a}") for a in "xy"]]
        opened = rows[:, names.index("gripper_open_cmd")]
        assert opened[0] == 0.0 and opened[-1] == 1.0  # starts holding, ends let go
        assert np.linalg.norm(goal[0]) > 0.05  # the spot is elsewhere at the start ...
        assert np.linalg.norm(goal[-1]) < 0.02  # ... and under the object at the end
        assert int(np.argmax(opened)) > 0 and opened[int(np.argmax(opened)) :].all()


def test_place_augmentation_moves_the_held_object_with_the_hand(demos):
    from scipy.spatial.transform import Rotation

    from skillstack.skills.training.augment import Corrective
    from skillstack.skills.training.features import (
        PLACE_FEATURE_NAMES,
        context_from_episode,
        place_features,
    )

    episode = open_dataset(demos, "place").episodes()[0]
    context = context_from_episode("place", episode)
    commands = np.zeros(episode.num_samples)
    base = place_features(episode.obs, commands, context)
    delta, eps = np.array([0.01, -0.02, 0.005]), 0.2
    moved = {k: v.astype(float).copy() for k, v in episode.obs.items()}
    moved["robot0_eef_pos"] += delta
    moved["object"][:, :3] += delta  # the object is in the hand
    turned = Rotation.from_rotvec([0, 0, eps]) * Rotation.from_quat(
        moved["robot0_eef_quat"][:, [1, 2, 3, 0]]
    )
    moved["robot0_eef_quat"] = turned.as_quat()[:, [3, 0, 1, 2]]
    want = place_features(moved, commands, context)
    n = len(base)
    got, _ = Corrective(list(PLACE_FEATURE_NAMES)).shift(
        torch.as_tensor(base, dtype=torch.float32),
        torch.zeros(n, CHUNK, 7),
        torch.as_tensor(delta, dtype=torch.float32).expand(n, 3),
        torch.full((n,), eps),
    )
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)


def test_a_learned_place_lets_go_once_and_never_grips_again(policy):
    from skillstack.hw.sim.mujoco.robot import MujocoRobot
    from skillstack.robot.scene import default_scene
    from skillstack.skills.context import Context
    from skillstack.skills.executor import execute
    from skillstack.skills.registry import get_skill
    from skillstack.skills.training.learned import learned_skill
    from skillstack.skills.training.policy_primitives import PlacePolicy
    from skillstack.skills.world import observe

    learned = learned_skill(policy.checkpoint, "place")
    with MujocoRobot(default_scene()) as robot:
        # Refused before anything moves, as the scripted place refuses it: nothing is held.
        q0 = robot.read().q.copy()
        refused = execute(learned, {"object": "cube", "target": "bowl"}, robot)
        assert not refused.success and not refused.moved
        assert np.array_equal(robot.read().q, q0)
        assert execute(get_skill("grasp"), {"object": "cube"}, robot).success
        world = observe(robot)
        program = learned.plan(
            world, learned.Params(object="cube", target="bowl"), Context.for_robot(robot)
        )
        (step,) = program.primitives
        assert isinstance(step, PlacePolicy) and program.template == "in"
        width = step.context.release_width
        step.last_ee = np.zeros(3)
        got = [step.gripper_command(v) for v in (0.0, 0.01, 0.9 * width, 0.0, 0.0)]
        assert got == [0.0, 0.0, width, width, width]  # once open, it stays open

        result = execute(learned, {"object": "cube", "target": "bowl"}, robot)
        assert result.moved and result.template == "in" and result.duration_s > 0.5
        assert result.success or result.failure is not None


def test_a_place_policy_that_presses_the_object_down_lets_go_on_touchdown(policy):
    """The reflex: a policy that only ever lowers the closed hand still puts the object down,
    because the fingers open when the object is pushed up into the hand."""
    from skillstack.hw.sim.mujoco.robot import MujocoRobot
    from skillstack.robot.scene import default_scene
    from skillstack.skills.executor import execute
    from skillstack.skills.registry import get_skill
    from skillstack.skills.training.features import PLACE_FEATURE_NAMES
    from skillstack.skills.training.learned import learned_skill

    opened = list(PLACE_FEATURE_NAMES).index("gripper_open_cmd")

    def lower_then_rise(x):
        chunk = np.zeros((CHUNK, 7))
        chunk[:, 2] = 0.01 if x[opened] else -0.004  # 8 cm/s down while closed, then up
        return chunk

    learned = learned_skill(policy.checkpoint, "place")
    learned.policy.predict = lower_then_rise
    with MujocoRobot(default_scene()) as robot:
        assert execute(get_skill("grasp"), {"object": "cube"}, robot).success
        above = {"position": [0.65, 0.0, 0.2]}  # over the plate: the safety filter keeps the
        assert execute(get_skill("move_to"), above, robot).success  # hand off the table itself
        result = execute(learned, {"object": "cube", "target": "plate"}, robot)
        assert result.success, result.message
        assert robot.read().gripper_width > 0.03  # it let go of the cube, which is on the plate


def test_train_and_eval_place_from_the_command_line(demos, policy, tmp_path):
    runner = CliRunner()
    out = tmp_path / "p.pt"
    args = ["train", "place", "--data", str(demos.parent), "--out", str(out), "--epochs", "2"]
    trained = runner.invoke(app, [*args, "--hidden", "32", "--json"])
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.stdout)["train_episodes"] >= 2 and out.is_file()
    args = ["eval", "place", "--policy", str(policy.checkpoint), "--episodes", "1"]
    result = runner.invoke(app, [*args, "--jobs", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["episodes"] == 1 and report["scripted_success_rate"] == 1.0
    wrong = runner.invoke(app, ["eval", "grasp", "--policy", str(out), "--episodes", "1"])
    assert wrong.exit_code == 2 and "not 'grasp'" in wrong.output
