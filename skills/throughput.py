"""`skillstack bench throughput`: how fast the simulation runs, for learning at scale.

Four measurements, all taken in one run so their ratios compare like with like:

* ``skills``: scripted skills on their seeded benchmark episodes (`skills.bench.run_episode`),
  one process, at the run's control rate (``control_rate_hz``: the arm's 1 kHz, or a lower
  rate with several physics steps per tick, ``physics_steps_per_tick``): simulated seconds
  per wall-clock second (``real_time_factor``), counted from the first set-up call to the
  end of the skill (`EpisodeOutcome.sim_s` / ``wall_s``: building the scene and compiling
  the model are left out, as a simulator's reset is).
* ``envs``: the gymnasium envs stepped with seeded random actions, one process, at the same
  control rate.
* ``loop``: the bare 1 kHz control loop against a bare ``mj_step`` (`hw.benchmarks.control`).
* ``scaling``: the same grasp episodes with 1, 2, ... local workers (`skills.parallel`),
  and whether their outcomes are identical to the single worker's; with Ray installed,
  ``executors``: the same episodes on the Ray executor (a local Ray instance, as many CPUs as
  the most workers) against the local executor with as many workers. Ray's start-up is
  reported apart (``ray_start_s``), as a running cluster has none. The episodes run twice on
  Ray: first on new Ray workers, which import the simulator and the skills first
  (``ray_cold_episodes_per_s``), then on the same, warm workers (``ray_episodes_per_s`` and
  ``ray_vs_local``), like with like: local workers are forked from this process, which has
  imported everything already.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable
from typing import Any

from skillstack.skills.bench import EpisodeOutcome, episode_seeds, run_episode
from skillstack.skills.parallel import RAY_INSTALL_HINT, ExecutorConfig, ordered_map

THROUGHPUT_SKILLS = ("grasp", "place", "push", "pour")
ENV_IDS = ("skillstack/Grasp-v0", "skillstack/Place-v0", "skillstack/Pour-v0")


def skill_rates(
    episodes: int,
    seed: int,
    progress: Callable[[], None],
    control_rate_hz: float | None = None,
) -> dict[str, dict]:
    """Real-time factor and success rate of each of `THROUGHPUT_SKILLS`, in this process, at
    ``control_rate_hz`` (None: the arm's own rate)."""
    out: dict[str, list[EpisodeOutcome]] = {}
    for skill, s in _seeds(episodes, seed):
        out.setdefault(skill, []).append(run_episode(skill, s, control_rate_hz=control_rate_hz))
        progress()
    return {skill: _rate(runs) for skill, runs in out.items()}


def _rate(runs: list[EpisodeOutcome]) -> dict[str, Any]:
    sim_s, wall_s = sum(r.sim_s for r in runs), sum(r.wall_s for r in runs)
    return {
        "real_time_factor": round(sim_s / wall_s, 2) if wall_s > 0 else 0.0,
        "episodes": len(runs),
        "success_rate": round(sum(r.success for r in runs) / len(runs), 4),
    }


def env_rates(
    steps: int,
    seed: int,
    progress: Callable[[], None],
    control_rate_hz: float | None = None,
) -> dict[str, dict]:
    """Env steps per second of each gymnasium env, seeded random actions, in this process, at
    ``control_rate_hz`` (None: the arm's own rate)."""
    import gymnasium as gym

    import skillstack.skills.training.envs  # noqa: F401  (registers the env ids)

    out: dict[str, dict] = {}
    for env_id in ENV_IDS:
        env = gym.make(env_id, control_rate_hz=control_rate_hz)
        env.action_space.seed(seed)
        env.reset(seed=seed)
        start = time.perf_counter()
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        out[env_id] = {"steps_per_s": round(steps / (time.perf_counter() - start), 1)}
        env.close()
        progress()
    return out


def scaling(
    episodes: int, seed: int, workers: list[int], progress: Callable[[], None], ray: bool = True
) -> dict:
    """Grasp episodes per second with each worker count; outcomes compared with one worker;
    with ``ray`` (and Ray installed) the Ray executor against the local one (``executors``)."""
    items = [("grasp", s) for _, s in episode_seeds(["grasp"], episodes, seed)]
    rates, outcomes = [], []
    for n in workers:
        rate, outcome = _timed(items, ExecutorConfig("local", n))
        rates.append(rate)
        outcomes.append(outcome)
        progress()
    out: dict[str, Any] = {
        "workers": workers,
        "episodes_per_s": rates,
        "speedup": [round(r / rates[0], 3) for r in rates],
        "identical_outcomes": all(o == outcomes[0] for o in outcomes),
    }
    if not ray:
        out["executors"] = {"skipped": "--no-ray"}
        return out
    if importlib.util.find_spec("ray") is None:
        out["executors"] = {"skipped": f"Ray is not installed: {RAY_INSTALL_HINT}"}
        progress()
        return out
    from skillstack.skills.parallel.ray_tasks import ray_session

    n = max(workers)
    config = ExecutorConfig("ray", n)
    start = time.perf_counter()
    with ray_session(config):
        ray_start_s = time.perf_counter() - start
        cold_rate, cold_outcome = _timed(items, config)
        ray_rate, ray_outcome = _timed(items, config)
    progress()
    local_rate = rates[workers.index(n)]
    out["executors"] = {
        "workers": n,
        "local_episodes_per_s": local_rate,
        "ray_episodes_per_s": ray_rate,
        "ray_vs_local": round(ray_rate / local_rate, 3),
        "ray_cold_episodes_per_s": cold_rate,
        "ray_start_s": round(ray_start_s, 2),
        "identical_outcomes": cold_outcome == ray_outcome == outcomes[0],
    }
    return out


def _timed(items: list[tuple], config: ExecutorConfig) -> tuple[float, list]:
    """Episodes per second of ``items`` on ``config``, and their outcomes."""
    start = time.perf_counter()
    runs: list[EpisodeOutcome] = list(ordered_map(run_episode, items, config))
    rate = round(len(items) / (time.perf_counter() - start), 3)
    return rate, [(r.success, r.failure, r.message) for r in runs]


def run(
    episodes: int = 5,
    env_steps: int = 500,
    ticks: int = 10000,
    seed: int = 0,
    workers: list[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
    control_rate_hz: float | None = None,
    ray: bool = True,
) -> dict:
    """Every throughput figure, measured in this one run (see the module); skills and envs
    at ``control_rate_hz`` (None: the arm's own 1 kHz; the loop is always timed at 1 kHz);
    ``ray``: also the Ray executor against the local one, if Ray is installed."""
    from skillstack.hw.benchmarks import control
    from skillstack.hw.sim.timing import control_timing
    from skillstack.robot.arms import get_arm

    workers = workers or sorted({1, min(2, os.cpu_count() or 1), os.cpu_count() or 1})
    total = len(THROUGHPUT_SKILLS) * episodes + len(ENV_IDS) + 1 + len(workers) + int(ray)
    done = [0]

    def step() -> None:
        done[0] += 1
        if progress:
            progress(done[0], total)

    caps, substeps = control_timing(get_arm("panda").capabilities, control_rate_hz)  # or raise
    skills = skill_rates(episodes, seed, step, control_rate_hz)
    envs = env_rates(env_steps, seed, step, control_rate_hz)
    tick = control.run(ticks=ticks, seed=seed)
    step()
    loop = {k: tick[k] for k in ("tick_us_median", "tick_us_p99", "bare_mj_step_us_median")}
    loop["overhead_ratio"] = tick["overhead_ratio"]
    return {
        "benchmark": "throughput",
        "seed": seed,
        "control_rate_hz": caps.control_rate_hz,
        "physics_steps_per_tick": substeps,
        "skills": skills,
        "envs": envs,
        "loop": loop,
        "scaling": scaling(max(4, episodes * 2), seed, workers, step, ray),
        "cpu_count": os.cpu_count(),
    }


def _seeds(episodes: int, seed: int) -> list[tuple[str, int]]:
    """The benchmark's own seeds, ``episodes`` of each of `THROUGHPUT_SKILLS`."""
    pairs = episode_seeds(list(THROUGHPUT_SKILLS), episodes, seed)
    return [(s, sd) for s, sd in pairs if s in THROUGHPUT_SKILLS]
