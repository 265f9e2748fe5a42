"""`skillstack bench parity`: the same skill episodes in MuJoCo and PyBullet, compared.

Every episode of `skills.bench` is seeded (scene, object sizes, masses, friction, poses), so
running the same seeds in both backends compares the simulators, not the scenes. Reported:

* per skill (grasp, place, pour, push): each backend's success rate, the difference
  (PyBullet - MuJoCo, in rate units), and on how many seeds both backends agreed;
* end-effector tracking (mm): the largest and final position errors of the Cartesian tour
  (`hw.sim.tour.run_tour`) in each backend, measured from the joints each engine reached.

The issue's target: each skill's PyBullet success rate within 5 points of MuJoCo's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from skillstack.hw.sim.backends import BACKENDS
from skillstack.skills.bench import EpisodeOutcome, episode_seeds, run_episode, summarise
from skillstack.skills.episodes import EPISODE_SKILLS
from skillstack.skills.parallel import ExecutorConfig, ordered_map

PARITY_SKILLS = ("grasp", "place", "pour", "push")
TARGET_POINTS = 5.0  # percentage points, the parity target


def tracking(backend: str) -> dict:
    """Tour tracking errors (mm) in ``backend`` on the default scene (in a worker process)."""
    from skillstack.hw.sim.backends import make_sim
    from skillstack.hw.sim.tour import run_tour
    from skillstack.robot.scene import default_scene

    with make_sim(backend, default_scene()) as robot:
        legs = run_tour(robot)
    return {
        "max_mm": round(max(leg.tracking.max_position_error for leg in legs) * 1e3, 3),
        "final_mm": round(max(leg.tracking.final_position_error for leg in legs) * 1e3, 4),
        "legs": len(legs),
    }


def _item(kind: str, *args: Any) -> Any:
    """One work item: a seeded episode in one backend, or one backend's tracking tour."""
    return run_episode(*args) if kind == "episode" else tracking(*args)


def run(
    episodes: int = 20,
    seed: int = 0,
    skills: list[str] | None = None,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Run ``episodes`` seeded episodes per skill in every backend; JSON-ready result.
    ``jobs`` worker processes (None: every core; `skills.parallel`)."""
    skills = list(skills or PARITY_SKILLS)
    unknown = [s for s in skills if s not in EPISODE_SKILLS]
    if unknown:
        raise ValueError(
            f"unknown skills {unknown}; benchmarked skills: {', '.join(PARITY_SKILLS)}"
        )
    args = [(s, sd, b) for s, sd in episode_seeds(skills, episodes, seed) for b in BACKENDS]
    items: list[tuple] = [("episode", s, sd, "panda", b) for s, sd, b in args]
    items += [("tracking", b) for b in BACKENDS]
    outcomes = list(ordered_map(_item, items, ExecutorConfig(workers=jobs), progress=progress))
    runs: dict[tuple[str, int, str], EpisodeOutcome] = dict(zip(args, outcomes))
    tracking_mm = dict(zip(BACKENDS, outcomes[len(args) :]))
    out_skills = {}
    for s in skills:
        seeds = sorted({sd for (k, sd, _) in runs if k == s})
        per = {b: summarise(s, [runs[(s, sd, b)] for sd in seeds]) for b in BACKENDS}
        both = [sd for sd in seeds if not any(runs[(s, sd, b)].setup_failed for b in BACKENDS)]
        agree = sum(len({runs[(s, sd, b)].success for b in BACKENDS}) == 1 for sd in both)
        mj, pb = per["mujoco"]["success_rate"], per["pybullet"]["success_rate"]
        out_skills[s] = {
            "mujoco": mj,
            "pybullet": pb,
            "difference": round(pb - mj, 4),
            "within_target": abs(pb - mj) * 100 <= TARGET_POINTS,
            "episodes": {b: per[b]["episodes"] for b in BACKENDS},
            "agreement": round(agree / len(both), 4) if both else None,
            "failures": {b: per[b]["failures"] for b in BACKENDS},
            "failure_examples": {b: per[b].get("failure_examples", []) for b in BACKENDS},
        }
        if s == "pour":
            out_skills[s]["particles_in_target"] = {
                b: per[b]["particles_in_target"] for b in BACKENDS
            }
    return {
        "benchmark": "parity",
        "seed": seed,
        "episodes_per_skill": episodes,
        "target_points": TARGET_POINTS,
        "skills": out_skills,
        "all_within_target": all(v["within_target"] for v in out_skills.values()),
        "tracking_mm": tracking_mm,
        "mean_difference_points": round(
            float(np.mean([abs(v["difference"]) for v in out_skills.values()])) * 100, 2
        ),
    }
