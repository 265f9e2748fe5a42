"""`skillstack eval`: a learned skill's success rate on held-out scenes, next to the scripted one.

Every evaluation episode is a random scene of `skills.episodes.episode_setup`, built from an
*evaluation seed*. Collection seeds are ``seed * SEED_STRIDE + index * SETUP_TRIES + try``
(`skills.training.collect`), all below `EVAL_SEED_BASE` for any collection seed under
10⁶; evaluation seeds are ``EVAL_SEED_BASE + seed * SEED_STRIDE + index``, so the two never
meet, and the checkpoint's recorded training seeds are checked against them anyway.

On each scene the learned and the scripted implementation run on fresh, identical
simulations, in the same worker, so the comparison is paired: same scenes, same run. The
scenes run on every core, or on a Ray cluster (`skills.parallel`), with the same results.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from skillstack.skills.bench import wilson_interval
from skillstack.skills.parallel import ExecutorConfig, WorkerSetup, ordered_map
from skillstack.skills.training.collect import SEED_STRIDE

EVAL_SEED_BASE = 10**12  # above every collection seed (collection seeds < 10**6 * SEED_STRIDE)
MAX_EPISODES = SEED_STRIDE

_LEARNED = None  # the learned skill of this worker process


def eval_seeds(episodes: int, seed: int = 0) -> list[int]:
    """The scene seeds of an evaluation: disjoint from every collection seed."""
    if not 1 <= episodes <= MAX_EPISODES:
        raise ValueError(f"episodes must be in [1, {MAX_EPISODES}], not {episodes}")
    if seed < 0:
        raise ValueError(f"the seed must be ≥ 0, not {seed}")
    return [EVAL_SEED_BASE + seed * SEED_STRIDE + i for i in range(episodes)]


def _init_worker(policy: str, skill: str) -> None:
    import torch

    from skillstack.skills.training.learned import learned_skill

    global _LEARNED
    torch.set_num_threads(1)  # a tiny MLP per step: threads only contend with the physics
    _LEARNED = learned_skill(policy, skill)


def _run(skill_impl, name: str, seed: int) -> dict:
    """One episode of ``skill_impl`` on the scene of ``seed`` (set-up by the registry's skills)."""
    from skillstack.hw.sim.mujoco.robot import MujocoRobot
    from skillstack.skills.episodes import episode_setup
    from skillstack.skills.executor import execute
    from skillstack.skills.registry import get_skill

    scene, setup, params = episode_setup(name, seed)
    with MujocoRobot(scene) as robot:
        for step, p in setup:
            if not execute(get_skill(step), p, robot).success:
                return {"seed": seed, "setup_failed": True}
        poured = _particles(robot, params) if name == "pour" else None
        result = execute(skill_impl, params, robot)
        extra = {}
        if poured is not None:  # counted here from the simulator, not by the skill
            in_cup, in_target = poured
            landed = _particles(robot, params)[1] - in_target
            extra["particles_in_target"] = round(landed / in_cup, 4) if in_cup else 0.0
    return {
        "seed": seed,
        "setup_failed": False,
        "success": result.success,
        "failure": result.failure.value if result.failure else None,
        "message": result.message,
        "duration_s": result.duration_s,
        "template": result.template,
        **extra,
    }


def _particles(robot, params: dict) -> tuple[int, int]:
    """(particles in the pour's source, in its target) now."""
    from skillstack.skills.world import observe

    contents = observe(robot).contents
    return contents.get(params["source"], 0), contents.get(params["target"], 0)


def _pair(name: str, seed: int) -> tuple[dict, dict]:
    """The learned and the scripted skill on the same scene."""
    from skillstack.skills.training.learned import scripted_skill

    return _run(_LEARNED, name, seed), _run(scripted_skill(name), name, seed)


def _summary(runs: list[dict]) -> dict:
    valid = [r for r in runs if not r["setup_failed"]]
    wins = sum(r["success"] for r in valid)
    lo, hi = wilson_interval(wins, len(valid))
    out = {
        "success_rate": round(wins / len(valid), 4) if valid else 0.0,
        "episodes": len(valid),
        "ci95": [round(lo, 4), round(hi, 4)],
        "failures": dict(Counter(r["failure"] for r in valid if not r["success"])),
        "mean_duration_s": round(float(np.mean([r["duration_s"] for r in valid])), 3)
        if valid
        else 0.0,
    }
    landed = [r["particles_in_target"] for r in valid if "particles_in_target" in r]
    if landed:  # pour: what reached the target, every episode counted (failures too)
        out["mean_particles_in_target"] = round(float(np.mean(landed)), 4)
        out["share_with_80pct_in_target"] = round(float(np.mean(np.array(landed) >= 0.8)), 4)
    return out


def evaluate(
    policy: str | Path,
    skill: str,
    episodes: int = 100,
    seed: int = 0,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    executor: str = "local",
    ray_address: str | None = None,
) -> dict:
    """Evaluate the checkpoint ``policy`` against the scripted ``skill``; JSON-ready result.

    The scenes run on ``jobs`` worker processes (None: every core), or with
    ``executor="ray"`` as Ray tasks on ``ray_address`` (None: a local Ray instance).

    Raises:
        PolicyError: the checkpoint cannot be loaded or is for another skill.
        ValueError: bad episode count or seed, or seeds that overlap the training seeds.
        skills.parallel.ExecutorUnavailable: Ray asked for and not installed or not reachable.
    """
    from skillstack.skills.training.learned import learned_skill

    start = time.perf_counter()
    model = learned_skill(policy, skill).policy  # validates before any worker starts
    seeds = eval_seeds(episodes, seed)
    overlap = set(seeds) & set(model.config.train_seeds)
    if overlap:
        raise ValueError(f"evaluation seeds {sorted(overlap)[:5]} were used for training")
    config = ExecutorConfig(executor, jobs, ray_address)
    # Workers load the policy once; spawned, as torch + fork can deadlock in its pools.
    setup = WorkerSetup(_init_worker, (str(policy), skill), spawn=True)
    items = [(skill, s) for s in seeds]
    pairs = list(ordered_map(_pair, items, config, setup=setup, progress=progress))
    learned = _summary([p[0] for p in pairs])
    scripted = _summary([p[1] for p in pairs])
    templates = {}
    for t in sorted({p[1].get("template", "") for p in pairs} - {""}):
        both = [p for p in pairs if p[1].get("template") == t and not p[0]["setup_failed"]]
        templates[t] = {
            "episodes": len(both),
            "success_rate": round(sum(p[0]["success"] for p in both) / max(1, len(both)), 4),
            "scripted_success_rate": round(
                sum(p[1]["success"] for p in both) / max(1, len(both)), 4
            ),
        }
    examples = [
        f"seed {p[0]['seed']}: {p[0]['message']}"
        for p in pairs
        if not p[0]["setup_failed"] and not p[0]["success"]
    ]
    return {
        "benchmark": "eval",
        "skill": skill,
        "policy": str(policy),
        **learned,
        "scripted_success_rate": scripted["success_rate"],
        "scripted_ci95": scripted["ci95"],
        "scripted_failures": scripted["failures"],
        "scripted_mean_duration_s": scripted["mean_duration_s"],
        **{f"scripted_{k}": v for k, v in scripted.items() if "particles" in k or "80pct" in k},
        "setup_failures": sum(p[0]["setup_failed"] for p in pairs),
        "templates": templates,
        "seeds": {
            "first": seeds[0],
            "last": seeds[-1],
            "rule": "EVAL_SEED_BASE + seed * SEED_STRIDE + index (collection seeds stay below)",
            "disjoint_from_training": True,
        },
        "training": {
            "data": model.config.data_path,
            "episodes": len(model.config.train_seeds),
            "epochs": model.config.epochs,
            "head": model.config.head,
            "images": bool(model.config.images),
            "skills": list(model.config.skills) or [skill],
        },
        "failure_examples": examples[:3],
        "seconds": round(time.perf_counter() - start, 1),
    }
