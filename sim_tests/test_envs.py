"""The gymnasium skill environments: API conformance, determinism, vector envs, goals that
agree with the skills' own success tests, and clear errors for bad actions.

Place and pour episodes start with a simulated grasp; tests that reset them often use the
``episodes`` option with one seed, so the set-up is simulated once and then restored.
"""

from __future__ import annotations

import pickle
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import skillstack.skills.training.envs  # noqa: F401  (registers skillstack/*)
from skillstack.hw.sim.mujoco.render import rendering_available
from skillstack.skills.training.actuation import ActionError
from skillstack.skills.training.collect import record_episode
from skillstack.skills.training.envs import SKILL_ENVS, GraspEnv, PlaceEnv, PourEnv
from skillstack.skills.training.observation import OBS_DIM
from skillstack.skills.training.skill_env import clear_setup_cache

GRASP_SEED = 3  # a top grasp of a 5.6 cm object; the scripted expert succeeds
PLACE_SEED = 3  # place on the table at (0.45, 0.014)
POUR_SEED = 3


def _make(env_id: str, **kwargs) -> gymnasium.Env:
    return gymnasium.make(env_id, **kwargs).unwrapped  # check_env wants the raw env, with spec


@pytest.mark.parametrize(
    "env_id, kwargs",
    [
        ("skillstack/Grasp-v0", {}),
        ("skillstack/Place-v0", {"episodes": (PLACE_SEED,)}),
        ("skillstack/Pour-v0", {"episodes": (POUR_SEED,)}),
    ],
)
def test_check_env(env_id, kwargs):
    env = _make(env_id, **kwargs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*infinity.*")  # goal spaces are unbounded
        check_env(env, skip_render_check=True)
    assert env.observation_space["observation"].shape == (OBS_DIM,)
    assert len(env.observation_names) == OBS_DIM and env.observation_names[0].endswith("[0]")
    assert gymnasium.spec(env_id).max_episode_steps == env.max_steps  # time-out at 20 Hz
    env.close()
    env.close()  # twice is fine


@pytest.mark.parametrize("env_id", ["skillstack/Grasp-v0", "skillstack/Place-v0"])
def test_stable_baselines3_check_env_has_no_warnings(env_id):
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    env = _make(env_id, episodes=(PLACE_SEED,))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_checker.check_env(env, warn=True)
    assert [str(w.message) for w in caught] == []
    space = env.action_space
    assert space.dtype == np.float32 and (space.low == -1).all() and (space.high == 1).all()
    # The scale round-trips a dataset action.
    up = np.array([0.0, 0.0, 0.01, 0.0, 0.0, 0.0, 0.08])
    np.testing.assert_allclose(env.action_to_dataset(env.action_from_dataset(up)), up, atol=1e-8)
    env.close()


def test_render_rgb_array():
    ok, reason = rendering_available()
    if not ok:
        pytest.skip(reason)
    env = _make("skillstack/Grasp-v0", render_mode="rgb_array", width=160, height=120)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*infinity.*")
        # The render check makes an env in every mode, "human" too, which needs a display:
        # test_viewer.py covers that one under Xvfb.
        check_env(env, skip_render_check=True)
    env.reset(seed=GRASP_SEED)
    frame = env.render()
    assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8 and frame.std() > 5
    env.close()


def test_same_seed_same_episode_and_restored_setup_is_exact():
    """A cached set-up (second reset) continues bit for bit like the simulated one."""
    clear_setup_cache()
    env = PlaceEnv()
    env.action_space.seed(0)
    actions = [env.action_space.sample() * 0.3 for _ in range(8)]
    for a in actions:
        a[6] = 0.0  # keep holding
    runs = []
    for _ in range(2):
        obs, info = env.reset(seed=PLACE_SEED)
        trace = [obs["observation"]]
        for a in actions:
            obs, _, terminated, _, info = env.step(a)
            trace.append(obs["observation"])
        runs.append(np.array(trace))
        assert info["params"] == {"object": "item", "target": "table", "position": [0.45, 0.014]}
        assert not terminated and info["failure"] is None
    np.testing.assert_array_equal(runs[0], runs[1])
    other, _ = env.reset(seed=PLACE_SEED + 1)
    assert not np.allclose(other["observation"], runs[0][0])  # another seed, another scene
    env.close()


def _serial_run(seeds: list[int], action: np.ndarray, steps: int) -> list[list[dict]]:
    """The observations of one env per seed, reset and stepped one after the other."""
    runs = []
    for seed in seeds:
        env = gymnasium.make("skillstack/Grasp-v0")
        run = [env.reset(seed=seed)[0]]
        run += [env.step(action)[0] for _ in range(steps)]
        env.close()
        runs.append(run)
    return runs


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_vector_env_steps_as_the_envs_do_one_by_one(mode):
    seeds = [GRASP_SEED, GRASP_SEED + 1]
    envs = gymnasium.make_vec("skillstack/Grasp-v0", num_envs=2, vectorization_mode=mode)
    obs, info = envs.reset(seed=seeds)
    assert obs["observation"].shape == (2, OBS_DIM)
    assert obs["desired_goal"].shape == (2, 4)
    assert list(info["episode_seed"]) == seeds
    up_open = np.array([0.0, 0.0, 0.01, 0.0, 0.0, 0.0, 0.08])  # dataset units: 1 cm up, open
    one = GraspEnv().action_from_dataset(up_open)
    vector_run = [obs]
    for _ in range(4):
        obs2, reward, terminated, truncated, info = envs.step(np.stack([one] * 2))
        assert reward.shape == (2,) and not terminated.any() and not truncated.any()
        vector_run.append(obs2)
    assert np.all(obs2["observation"][:, 16] > obs["observation"][:, 16] + 0.02)  # hand rose
    envs.close()
    # The same seeds one env at a time: the same observations, bit for bit.
    for i, run in enumerate(_serial_run(seeds, one, 4)):
        for step, serial in enumerate(run):
            for key, value in serial.items():
                np.testing.assert_array_equal(vector_run[step][key][i], value, f"{key} {step}")


def test_replayed_scripted_grasp_succeeds_in_the_env():
    """The dataset's actions, replayed open loop, grasp the object: env and data agree."""
    episode = record_episode("grasp", GRASP_SEED)
    assert episode.success
    env = GraspEnv()
    obs, _ = env.reset(seed=GRASP_SEED)
    first = np.concatenate([episode.obs[k][0] for k in episode.obs])
    np.testing.assert_allclose(obs["observation"], first, atol=1e-3)  # the same scene and arm
    for action in episode.actions:
        obs, reward, terminated, truncated, info = env.step(env.action_from_dataset(action))
        if terminated or truncated:
            break
    assert terminated and not truncated, info["message"]
    assert reward == 1.0 and info["is_success"] and info["failure"] is None
    assert env.compute_reward(obs["achieved_goal"], obs["desired_goal"], info) == 1.0
    assert obs["achieved_goal"][3] == 1.0  # held
    env.close()


def test_a_lower_control_rate_runs_several_physics_steps_per_tick_and_still_grasps():
    """``control_rate_hz=100``: 5 control ticks of 10 physics steps each per 20 Hz action,
    and the scripted grasp's actions, replayed, still grasp (on the simulator's truth)."""
    episode = record_episode("grasp", GRASP_SEED)
    env = GraspEnv(control_rate_hz=100)
    env.reset(seed=GRASP_SEED)
    assert env.actuator.ticks_per_action == 5 and env.robot.substeps == 10
    t0 = env.robot.read().time
    for k, action in enumerate(episode.actions, 1):
        _, reward, terminated, truncated, info = env.step(env.action_from_dataset(action))
        if k == 1:
            assert info["sim_time"] - t0 == pytest.approx(0.05)
        if terminated or truncated:
            break
    assert terminated and reward == 1.0 and info["is_success"], info["message"]
    env.close()
    with pytest.raises(ValueError, match="1000 Hz divided by a whole number"):
        GraspEnv(control_rate_hz=300)
    with pytest.raises(ValueError, match="must divide the 100 Hz control rate"):
        GraspEnv(control_rate_hz=100, rate_hz=30)


def test_replayed_scripted_place_succeeds_in_the_env():
    """Place demonstrations carry fast; replayed open loop they still end on the target."""
    episode = record_episode("place", 4)  # its fast carry once lagged 2.4 cm behind
    assert episode.success
    env = PlaceEnv()
    env.reset(seed=4)
    for action in episode.actions:
        _, reward, terminated, truncated, info = env.step(env.action_from_dataset(action))
        if terminated or truncated:
            break
    assert terminated and reward == 1.0, info["message"]
    env.close()


def test_compute_reward_is_vectorised_and_relabels():
    env = GraspEnv()
    obs, info = env.reset(seed=GRASP_SEED)
    ag, dg = obs["achieved_goal"], obs["desired_goal"]
    assert env.compute_reward(ag, dg, info) == 0.0  # standing on the table, not held
    batch_ag = np.stack([ag, dg, dg + np.array([0.3, 0.3, 0, 0]), dg - np.array([0, 0, 0.06, 0])])
    batch_dg = np.repeat(dg[None], 4, axis=0)
    infos = np.array([info] * 4)  # hindsight replay buffers pass one info per goal
    np.testing.assert_array_equal(env.compute_reward(batch_ag, batch_dg, infos), [0, 1, 1, 0])
    np.testing.assert_array_equal(env.compute_reward(batch_ag, batch_ag, None), [1, 1, 1, 1])
    dense = GraspEnv(reward_type="dense")
    dense.reset(seed=GRASP_SEED)
    assert dense.compute_reward(ag, dg, info) == pytest.approx(-(0.05 + 0.1), abs=1e-6)
    pour = PourEnv(episodes=(POUR_SEED,))
    obs, info = pour.reset()
    np.testing.assert_array_equal(obs["achieved_goal"], [0.0, 1.0])  # nothing poured, held
    np.testing.assert_array_equal(
        pour.compute_reward(
            np.array([[0.6, 1.0], [0.6, 0.0], [0.4, 1.0]]), obs["desired_goal"], None
        ),
        [1, 0, 0],
    )
    for e in (env, dense, pour):
        e.close()


def test_bad_actions_are_refused_before_anything_moves():
    env = GraspEnv()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(7))
    env.reset(seed=GRASP_SEED)
    before = env.robot.read()
    with pytest.raises(ActionError, match="NaN"):
        env.step(np.array([0, 0, np.nan, 0, 0, 0, 0.08]))
    with pytest.raises(ActionError, match="7 numbers"):
        env.step(np.zeros(6))
    after = env.robot.read()
    assert after.time == before.time and np.array_equal(after.q, before.q)
    env.close()
    for bad, match in [
        ({"reward_type": "shaped"}, "reward_type"),
        ({"rate_hz": 7}, "divide"),
        ({"render_mode": "ascii"}, "render_mode"),
        ({"episodes": ()}, "episodes"),
    ]:
        with pytest.raises(ValueError, match=match):
            GraspEnv(**bad)


def test_opening_the_hand_over_nothing_ends_a_place_as_dropped():
    env = PlaceEnv(episodes=(PLACE_SEED,))
    obs, info = env.reset()
    assert obs["achieved_goal"][3] == 1.0  # the set-up grasp holds the item
    open_hand = np.zeros(7, np.float32)
    open_hand[6] = 1.0  # normalised: the widest opening
    for _ in range(40):
        obs, reward, terminated, _, info = env.step(open_hand)
        if terminated:
            break
    assert terminated and reward == 0.0 and not info["is_success"]
    assert info["failure"] == "missed_target" and "dropped" in info["message"]
    env.close()


def test_time_limit_truncates():
    env = GraspEnv(time_limit_s=0.2)  # 4 steps at 20 Hz
    env.reset(seed=GRASP_SEED)
    still = np.zeros(7, np.float32)
    still[6] = 1.0
    flags = [env.step(still)[3] for _ in range(4)]
    assert flags == [False, False, False, True]
    env.close()


def test_envs_pickle_as_their_arguments():
    env = pickle.loads(pickle.dumps(PlaceEnv(reward_type="dense", episodes=(5,))))
    assert env.reward_type == "dense" and env.episodes == (5,)
    assert set(SKILL_ENVS) == {"grasp", "place", "pour"}


def test_the_readme_example_runs(capsys):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(
        b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "Grasp-v0" in b
    )
    exec(compile(block, "README.md", "exec"), {})
    assert "'object': 'target'" in capsys.readouterr().out


def test_sac_with_hindsight_replay_runs_on_the_grasp_env():
    """The optional RL extra: SAC + HER trains (a few steps) and relabels goals."""
    pytest.importorskip("stable_baselines3")
    from skillstack.skills.training.rl import train_sac_her

    model = train_sac_her(
        "grasp",
        steps=60,
        learning_starts=40,
        episodes=1,
        time_limit_s=1.0,
        batch_size=32,
        buffer_size=1_000,
        policy_kwargs={"net_arch": [32, 32]},
    )
    assert model.num_timesteps == 60
    batch = model.replay_buffer.sample(32)
    assert set(np.unique(batch.rewards.numpy())) <= {0.0, 1.0}
