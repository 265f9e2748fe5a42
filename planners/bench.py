"""`skillstack bench tasks`: the task suite end to end, through a planner and the executive.

Every task runs on ``seeds`` jittered versions of its scene, in worker processes. A run
succeeds when the task's goal facts hold in the simulated world at the end. Reported per
task: success rate, episodes, replans and skill calls; overall: success rate and the
median planning time (the planner's own wall time, excluding any model's latency).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from planners.tasks import TASKS, get_task


@dataclass
class TaskRun:
    """One episode of one task."""

    task: str
    seed: int
    success: bool
    replans: int
    skill_calls: int
    planning_ms: list[float]
    error: str | None
    unmet: list


def run_task(name: str, seed: int, planner: str = "symbolic") -> TaskRun:
    """Run one task episode (in a worker process)."""
    from hw.sim.mujoco_robot import MujocoRobot
    from planners.executive import run_instruction
    from planners.symbolic import SymbolicPlanner
    from skills.world import observe

    task = get_task(name)
    if planner == "symbolic":
        chosen = SymbolicPlanner()
    else:
        from planners.llm import LLMPlanner

        chosen = LLMPlanner.from_env()
    with MujocoRobot(task.scene(seed)) as robot:
        report = run_instruction(task.instruction, robot, chosen, goal_check=task.check)
        unmet = task.unmet(observe(robot))
    return TaskRun(
        name,
        seed,
        report.success,
        report.replans,
        len(report.steps),
        report.planning_ms,
        report.error,
        [list(map(str, g)) for g in unmet],
    )


def run(
    seeds: int = 3,
    planner: str = "symbolic",
    tasks: list[str] | None = None,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Run the suite; returns the JSON-ready result."""
    names = list(tasks or [t.name for t in TASKS])
    for n in names:
        get_task(n)  # unknown names fail before any work starts
    args = [(n, s) for n in names for s in range(seeds)]
    jobs = jobs or min(os.cpu_count() or 1, 2)
    runs: list[TaskRun] = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_task, n, s, planner) for n, s in args]
        for i, fut in enumerate(futures, 1):
            runs.append(fut.result())
            if progress:
                progress(i, len(futures))
    planning = [t for r in runs for t in r.planning_ms]
    per_task = {}
    for n in names:
        rs = [r for r in runs if r.task == n]
        entry = {
            "success_rate": round(sum(r.success for r in rs) / len(rs), 4),
            "episodes": len(rs),
            "replans": sum(r.replans for r in rs),
            "skill_calls": round(float(np.mean([r.skill_calls for r in rs])), 2),
            "instruction": get_task(n).instruction,
        }
        failures = [
            f"seed {r.seed}: {r.error or 'goal not reached: ' + str(r.unmet)}"
            for r in rs
            if not r.success
        ]
        if failures:
            entry["failures"] = failures[:3]
        per_task[n] = entry
    return {
        "benchmark": "tasks",
        "planner": planner,
        "seeds": seeds,
        "success_rate": round(sum(r.success for r in runs) / len(runs), 4),
        "episodes": len(runs),
        "planning_ms_median": round(float(np.median(planning)), 3) if planning else None,
        "planning_ms_max": round(float(np.max(planning)), 3) if planning else None,
        "tasks": per_task,
    }
