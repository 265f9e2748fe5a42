"""A learned pour end to end on a tiny real dataset: the cup's fill recorded with every
sample, the pour features, training, and the policy run through the executor."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("h5py")

from skillstack.skills.training.dataset_reader import open_dataset  # noqa: E402

DEMOS = 2


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """Two real scripted pours (each after an unrecorded grasp of the cup)."""
    from skillstack.skills.training.collect import collect

    return collect("pour", DEMOS, seed=2, out_dir=tmp_path_factory.mktemp("pour"), jobs=1)


def test_pour_demos_record_how_full_the_cup_is(demos):
    from skillstack.skills.training.features import context_from_episode, episode_features
    from skillstack.skills.training.pour_features import POUR_FEATURE_NAMES

    names = list(POUR_FEATURE_NAMES)
    for episode in open_dataset(demos, "pour").episodes():
        fill = episode.obs["object_fill"][:, 0]
        assert fill[0] == 1.0 and fill[-1] < 0.5  # full at the start, poured out at the end
        assert np.all(np.diff(fill) <= 1e-6)  # particles only leave
        context = context_from_episode("pour", episode)
        rows = episode_features("pour", episode, 0.08)
        axis_z = rows[:, names.index("cup_axis_z")]
        assert axis_z[0] > 0.99 and axis_z.min() < 0.0 and axis_z[-1] > 0.95  # tilted, back
        target = rows[:, [names.index("target_rel_x"), names.index("target_rel_y")]]
        assert np.linalg.norm(target[-1]) < np.linalg.norm(target[0])  # brought over it
        assert context.target_size[0] > context.cup[0]


def test_a_learned_pour_runs_through_the_executor(demos, tmp_path):
    from skillstack.hw.sim.mujoco.robot import MujocoRobot
    from skillstack.skills.episodes import episode_setup
    from skillstack.skills.executor import execute
    from skillstack.skills.registry import get_skill
    from skillstack.skills.training.learned import learned_skill
    from skillstack.skills.training.policy import load_policy, save_checkpoint
    from skillstack.skills.training.train import train

    report = train(demos, tmp_path / "pour.pt", "pour", epochs=5, batch_size=64, hidden=32)
    model = load_policy(report.checkpoint, "pour")
    model.config.max_duration_s = 2.0  # a 5-epoch policy will not pour: give up after 3 s
    learned = learned_skill(save_checkpoint(tmp_path / "quick.pt", model), "pour")
    scene, setup, params = episode_setup("pour", 7)
    with MujocoRobot(scene) as robot:
        q0 = robot.read().q.copy()
        refused = execute(learned, params, robot)  # the cup is not held yet
        assert not refused.success and not refused.moved
        assert np.array_equal(robot.read().q, q0)
        for name, p in setup:
            assert execute(get_skill(name), p, robot).success
        slow = execute(learned, {**params, "duration": 4.0}, robot)
        assert slow.failure.value == "invalid_parameters" and not slow.moved
        result = execute(learned, params, robot)
        assert result.moved and result.template == "tilt_sideways"
        assert result.success or result.failure is not None
        assert result.duration_s < 5.0 and np.linalg.norm(robot.read().q - q0) > 1e-3


def test_pour_augmentation_moves_and_turns_the_cup_with_the_hand(demos):
    from scipy.spatial.transform import Rotation

    from skillstack.skills.training.augment import Corrective
    from skillstack.skills.training.features import context_from_episode
    from skillstack.skills.training.pour_features import POUR_FEATURE_NAMES, pour_features

    episode = open_dataset(demos, "pour").episodes()[0]
    context = context_from_episode("pour", episode)
    base = pour_features(episode.obs, context)
    delta, eps = np.array([0.01, -0.02, 0.005]), 0.2
    turn = Rotation.from_rotvec([0, 0, eps])
    moved = {k: v.astype(float).copy() for k, v in episode.obs.items()}
    eef = moved["robot0_eef_pos"].copy()
    moved["robot0_eef_pos"] = eef + delta
    moved["object"][:, :3] = eef + delta + turn.apply(moved["object"][:, :3] - eef)
    for key, cols in (("robot0_eef_quat", slice(None)), ("object", slice(3, 7))):
        wxyz = moved[key][:, cols]
        turned = turn * Rotation.from_quat(wxyz[:, [1, 2, 3, 0]])
        moved[key][:, cols] = turned.as_quat()[:, [3, 0, 1, 2]]
    want = pour_features(moved, context)
    n = len(base)
    got, _ = Corrective(list(POUR_FEATURE_NAMES)).shift(
        torch.as_tensor(base, dtype=torch.float32),
        torch.zeros(n, 4, 7),
        torch.as_tensor(delta, dtype=torch.float32).expand(n, 3),
        torch.full((n,), eps),
    )
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)
