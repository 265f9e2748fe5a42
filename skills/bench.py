"""`skillstack bench skills`: success rates of every skill on randomised, seeded scenes.

Each episode builds a fresh random scene from its own seed (object poses, sizes, masses,
friction: `skills.episodes`), runs the skill through the executor exactly as a planner would,
and records the outcome. Skills that need something in hand first (place, pour) start with a
grasp; an episode whose set-up fails is counted apart (``setup_failures``), not as a failure
of the skill under test. Episodes run on every core, or on a Ray cluster
(`skills.parallel`): the JSON is the same whatever ran them.

A second part checks refusals: each skill is called with its preconditions violated and
must be refused before any motion (the arm and the clock must not move).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from skillstack.skills.episodes import EPISODE_SKILLS, episode_setup

LANDED_ABOVE_RIM = 0.02  # m: a particle higher than this over the target's rim is still falling


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a success rate (scipy's `binomtest`); (0, 1) for n = 0."""
    from scipy.stats import binomtest  # scipy.stats takes ~0.3 s to import: only when asked

    if n == 0:
        return (0.0, 1.0)
    ci = binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


# -- episodes -----------------------------------------------------------------------------
@dataclass
class EpisodeOutcome:
    """What one benchmark episode produced."""

    skill: str
    seed: int
    success: bool
    failure: str | None
    message: str
    duration_s: float
    template: str
    metrics: dict
    setup_failed: bool = False
    sim_s: float = 0.0  # simulated seconds from the first set-up call to the skill's end
    wall_s: float = 0.0  # wall-clock seconds of the same (scene building left out)


def run_episode(
    skill: str,
    seed: int,
    arm: str = "panda",
    backend: str = "mujoco",
    control_rate_hz: float | None = None,
) -> EpisodeOutcome:
    """One seeded episode of ``skill`` on ``arm`` in ``backend`` (in a worker process), at
    ``control_rate_hz`` control ticks per simulated second (None: the arm's own rate; a lower
    rate steps several physics steps per tick, see `hw.sim.timing`)."""
    from skillstack.hw.sim.backends import make_sim
    from skillstack.skills.executor import execute
    from skillstack.skills.registry import get_skill

    scene, setup, params = episode_setup(skill, seed)
    with make_sim(backend, scene, arm=arm, control_rate_hz=control_rate_hz) as robot:
        t_sim, t_wall = robot.read().time, time.perf_counter()
        for name, p in setup:
            pre = execute(get_skill(name), p, robot)
            if not pre.success:
                return EpisodeOutcome(
                    skill,
                    seed,
                    False,
                    pre.failure.value if pre.failure else None,
                    f"set-up {name} failed: {pre.message}",
                    0.0,
                    "",
                    {},
                    setup_failed=True,
                )
        result = execute(get_skill(skill), params, robot)
        sim_s, wall_s = robot.read().time - t_sim, time.perf_counter() - t_wall
        metrics: dict[str, Any] = dict(result.metrics)
        if skill == "pour":
            metrics["particle_landings"] = particle_landings(robot, scene, params["target"])
    return EpisodeOutcome(
        skill,
        seed,
        result.success,
        result.failure.value if result.failure else None,
        result.message,
        result.duration_s,
        result.template,
        metrics,
        sim_s=float(sim_s),
        wall_s=float(wall_s),
    )


def particle_landings(robot: Any, scene: Any, target: str) -> list[list[float]]:
    """Where the poured particles came down, from the simulator's truth: ``[x, y]`` of each
    relative to the target's centre, in target radii (its rim is the unit circle). Particles
    still above the target's rim (in the cup) are left out."""
    obj = scene.object(target)
    radius, height = obj.size[0] / 2.0, obj.size[1]
    centre = np.asarray(robot.object_pose(target).position, dtype=float)
    landed = [
        p for p in robot.particle_positions() if p[2] <= centre[2] + height / 2.0 + LANDED_ABOVE_RIM
    ]
    return [[round(float(v), 3) for v in (p[:2] - centre[:2]) / radius] for p in landed]


def refusal_trial(skill: str, arm: str = "panda", backend: str = "mujoco") -> tuple[bool, str]:
    """Call ``skill`` with a violated precondition; True if refused with no motion at all."""
    from skillstack.hw.sim.backends import make_sim
    from skillstack.robot.scene import default_scene
    from skillstack.skills.executor import execute
    from skillstack.skills.registry import get_skill

    calls: dict[str, tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]] = {
        "grasp": ({"object": "cube"}, [("grasp", {"object": "cube"})]),  # already holding
        "place": ({"object": "cube", "target": "plate"}, []),  # not holding
        "pour": ({"source": "cup", "target": "bowl"}, []),  # not holding the cup
        "push": (
            {"object": "cube", "direction": 0.0, "distance": 0.1},
            [("grasp", {"object": "cube"})],
        ),
        "grasp_bowl": ({"object": "bowl"}, []),  # too large
        "place_on_cube": (
            {"object": "cube", "target": "cup"},
            [("grasp", {"object": "cube"})],
        ),  # too small
    }
    params, setup = calls[skill]
    name = skill.split("_")[0]
    with make_sim(backend, default_scene(), arm=arm) as robot:
        for s, p in setup:
            execute(get_skill(s), p, robot)
        before = robot.read()
        result = execute(get_skill(name), params, robot)
        after = robot.read()
    still = after.time == before.time and np.array_equal(after.q, before.q)
    return (not result.success and not result.moved and still), result.message


def _trial(kind: str, *args: Any) -> Any:
    """One work item of the benchmark: a seeded episode or a refusal trial."""
    return run_episode(*args) if kind == "episode" else refusal_trial(*args)


def episode_seeds(skills: list[str], episodes: int, seed: int) -> list[tuple[str, int]]:
    """(skill, episode seed) of every episode of a run with ``seed``: ``episodes`` each of
    grasp, place, pour and push, a tenth of that (at least 3) of the other skills."""
    counts = {
        s: (episodes if s in ("grasp", "place", "pour", "push") else max(3, episodes // 10))
        for s in skills
    }
    return [
        (s, seed * 100_000 + EPISODE_SKILLS.index(s) * 10_000 + i)
        for s in skills
        for i in range(counts[s])
    ]


def summarise(skill: str, runs: list[EpisodeOutcome]) -> dict:
    """The JSON-ready result of ``skill`` over its episodes ``runs``."""
    valid = [e for e in runs if not e.setup_failed]
    wins = [e for e in valid if e.success]
    lo, hi = wilson_interval(len(wins), len(valid))
    out = {
        "success_rate": round(len(wins) / len(valid), 4) if valid else 0.0,
        "episodes": len(valid),
        "ci95": [round(lo, 4), round(hi, 4)],
        "mean_duration_s": round(float(np.mean([e.duration_s for e in valid])), 3)
        if valid
        else 0.0,
        "failures": dict(Counter(e.failure for e in valid if not e.success and e.failure)),
        "setup_failures": len(runs) - len(valid),
        "templates": {
            t: {
                "episodes": sum(e.template == t for e in valid),
                "success_rate": round(
                    sum(e.success for e in valid if e.template == t)
                    / max(1, sum(e.template == t for e in valid)),
                    4,
                ),
            }
            for t in sorted({e.template for e in valid if e.template})
        },
    }
    if skill == "pour":
        out["particle_landings"] = [
            xy for e in valid for xy in e.metrics.get("particle_landings", [])
        ]  # for `bench skills --plot`: where every particle came down, in target radii
        fractions = [e.metrics.get("particles_in_target", 0.0) for e in wins]
        out["particles_in_target"] = round(float(np.mean(fractions)), 4) if fractions else 0.0
        out["particles_in_target_all"] = (
            round(
                float(
                    np.mean([e.metrics.get("particles_in_target", 0.0) for e in valid if e.metrics])
                ),
                4,
            )
            if valid
            else 0.0
        )
    if skill == "push":
        errors = [e.metrics["distance_error_m"] for e in valid if "distance_error_m" in e.metrics]
        out["distance_error_mean_m"] = round(float(np.mean(errors)), 5) if errors else None
    examples = [f"seed {e.seed}: {e.message}" for e in valid if not e.success][:3]
    if examples:
        out["failure_examples"] = examples
    return out


def run(
    episodes: int = 100,
    seed: int = 0,
    skills: list[str] | None = None,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    arm: str = "panda",
    backend: str = "mujoco",
    skill_impls: list[str] | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    control_rate_hz: float | None = None,
) -> dict:
    """Run the benchmark on ``arm`` in ``backend``; returns the JSON-ready result.

    The episodes run on ``jobs`` worker processes (None: every core), or with
    ``executor="ray"`` as Ray tasks on ``ray_address`` (None: a local Ray instance), at
    ``control_rate_hz`` (None: the arm's own rate; see `run_episode`).
    """
    from skillstack.hw.sim.backends import BACKENDS
    from skillstack.robot.arms import get_arm
    from skillstack.skills.parallel import ExecutorConfig, ordered_map
    from skillstack.skills.training.workers import worker_setup

    caps = get_arm(arm).capabilities  # an unknown arm fails (ValueError listing the arms)
    if control_rate_hz is not None:
        from skillstack.hw.sim.timing import check_control_rate

        check_control_rate(control_rate_hz)  # ValueError before any work
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
    skills = list(skills or EPISODE_SKILLS)
    unknown = [s for s in skills if s not in EPISODE_SKILLS]
    if unknown:
        raise ValueError(
            f"unknown skills {unknown}; benchmarked skills: {', '.join(EPISODE_SKILLS)}"
        )
    config = ExecutorConfig(executor, jobs, ray_address)
    args = episode_seeds(skills, episodes, seed)
    refusal_names = ["grasp", "place", "pour", "push", "grasp_bowl", "place_on_cube"]
    items: list[tuple] = [("episode", s, sd, arm, backend, control_rate_hz) for s, sd in args]
    items += [("refusal", name, arm, backend) for name in refusal_names]
    setup = worker_setup(skill_impls)
    outcomes = list(ordered_map(_trial, items, config, setup=setup, progress=progress))
    results: list[EpisodeOutcome] = outcomes[: len(args)]
    refusals: list[tuple[bool, str]] = outcomes[len(args) :]
    by_skill = {s: [e for e in results if e.skill == s] for s in skills}
    return {
        "benchmark": "skills",
        "arm": arm,
        "backend": backend,
        "skill_impls": list(skill_impls or []),
        "seed": seed,
        "control_rate_hz": float(control_rate_hz or caps.control_rate_hz),
        "episodes_per_skill": episodes,
        "skills": {s: summarise(s, runs) for s, runs in by_skill.items()},
        "refusals": {
            "trials": len(refusals),
            "refused_before_motion": sum(ok for ok, _ in refusals),
            "messages": {name: msg for name, (ok, msg) in zip(refusal_names, refusals)},
        },
    }
