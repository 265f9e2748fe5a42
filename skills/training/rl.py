"""Reinforcement learning on the skill environments: SAC with hindsight experience replay.

Optional: needs stable-baselines3 (``pip install -e '.[rl]'``; it uses the installed torch,
the CPU build is enough). A starting point, not a tuned recipe — sparse-reward grasping from
scratch needs far more steps than a test can afford; run it for 10⁵–10⁶ steps::

    python -m skills.training.rl grasp --steps 200000 --envs 2 --out runs/grasp_sac

The environments follow the gymnasium-robotics goal convention, so stable-baselines3's
`HerReplayBuffer` relabels goals with the environment's own `compute_reward` (which agrees
with the skill's ``verify``). ``--episodes K`` trains on the first K episode seeds only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import gymnasium

import skillstack.skills.training.envs as envs

DEFAULT_STEPS = 10_000
N_SAMPLED_GOAL = 4  # relabelled goals per real transition ("future" strategy)


def train_sac_her(
    skill: str,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    num_envs: int = 1,
    episodes: int | None = None,
    time_limit_s: float | None = None,
    learning_starts: int = 1_000,
    out: str | Path | None = None,
    **sac_kwargs,
):
    """Train SAC + HER on ``skillstack/<Skill>-v0`` for ``steps`` environment steps.

    ``time_limit_s`` shortens episodes (HER samples only once an episode has ended, so
    ``learning_starts`` should exceed one episode's steps). Returns the stable-baselines3
    model; saves it to ``<out>.zip`` when ``out`` is given. ``sac_kwargs`` go to `SAC`.

    Raises:
        ValueError: an unknown skill or a non-positive step count.
        ImportError: stable-baselines3 is not installed (the message says how to).
    """
    if skill not in envs.SKILL_ENVS:
        raise ValueError(f"unknown skill {skill!r}; environments: {', '.join(envs.SKILL_ENVS)}")
    if steps < 1 or num_envs < 1:
        raise ValueError(f"steps and num_envs must be positive, not {steps} and {num_envs}")
    try:
        from stable_baselines3 import SAC, HerReplayBuffer
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import SubprocVecEnv
    except ImportError as exc:
        raise ImportError("RL fine-tuning needs stable-baselines3: pip install -e '.[rl]'") from exc
    env_id = envs.SKILL_ENVS[skill].env_id
    kwargs: dict[str, Any] = {"episodes": tuple(range(episodes))} if episodes else {}
    if time_limit_s is not None:
        kwargs["time_limit_s"] = time_limit_s
    vec = make_vec_env(
        lambda: gymnasium.make(env_id, **kwargs),
        n_envs=num_envs,
        seed=seed,
        vec_env_cls=SubprocVecEnv if num_envs > 1 else None,
    )
    model = SAC(
        "MultiInputPolicy",
        vec,
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs={
            "n_sampled_goal": N_SAMPLED_GOAL,
            "goal_selection_strategy": "future",
        },
        learning_starts=learning_starts,
        seed=seed,
        device="cpu",
        verbose=0,
        **sac_kwargs,
    )
    model.learn(total_timesteps=steps)
    if out is not None:
        model.save(str(out))
    vec.close()
    return model


def main(argv: list[str] | None = None) -> None:
    """``python -m skills.training.rl SKILL --steps N``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("skill", choices=sorted(envs.SKILL_ENVS))
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--envs", type=int, default=1)
    parser.add_argument("--episodes", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    train_sac_her(args.skill, args.steps, args.seed, args.envs, args.episodes, out=args.out)


if __name__ == "__main__":
    main()
