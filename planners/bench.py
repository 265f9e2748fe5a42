"""`skillstack bench tasks`: the task suite end to end, through a planner and the executive.

Every task runs on ``seeds`` jittered versions of its scene, on every core or on a Ray
cluster (`skills.parallel`). A run
succeeds when the task's goal facts hold in the simulated world at the end. Reported per
task: success rate, episodes, replans and skill calls; overall: success rate and the
median planning time (the planner's own wall time, excluding any model's latency).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import numpy as np

from skillstack.planners.tasks import TASKS, get_task
from skillstack.planners.types import Planner


class SimFactory(Protocol):
    """Builds a simulated robot, not connected: ``make_sim(backend, scene, arm=arm)``.

    The planners never build robots themselves; the command line hands them this (it is
    `skillstack.hw.sim.backends.make_sim`). A module-level function, so that worker
    processes receive it.
    """

    def __call__(self, backend: str, scene: Any, *, arm: str) -> Any:
        """A simulated robot of ``backend`` (``mujoco``, ``pybullet``) on ``scene``."""
        ...


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
    llm: dict = field(default_factory=dict)  # a language-model planner's figures for the run


def run_task(
    name: str,
    seed: int,
    planner: str = "symbolic",
    arm: str = "panda",
    perception: str = "ground_truth",
    backend: str = "mujoco",
    calibrations: dict | None = None,
    *,
    make_sim: SimFactory,
) -> TaskRun:
    """Run one task episode on ``arm`` in the ``backend`` simulator (in a worker process).

    With ``perception="camera"`` the executive and the skills see the world through the
    cameras (`skills.perceive.PerceivingArm`, with ``calibrations``: camera name ->
    `CameraCalibration`, if given); with ``perception="declared"`` through the task's scene
    file tracked by `skills.declared.DeclaredWorld`, as on a real arm. Success still needs
    the goal to hold in the simulator's ground truth.
    """
    from skillstack.planners.executive import run_instruction
    from skillstack.planners.symbolic import SymbolicPlanner
    from skillstack.skills.world import observe

    task = get_task(name)
    chosen: Planner
    if planner == "symbolic":
        chosen = SymbolicPlanner()
    else:
        from skillstack.planners.llm import LLMPlanner

        chosen = LLMPlanner.from_env()
    with make_sim(backend, task.scene(seed), arm=arm) as robot:
        target = robot
        if perception == "declared":
            from skillstack.skills.arm import LocalArm
            from skillstack.skills.declared import DeclaredWorld

            target = LocalArm(robot, world=DeclaredWorld(robot, task.scene(seed)))
        elif perception == "camera":
            from skillstack.skills.perceive import CameraPerception, PerceivingArm

            target = PerceivingArm(
                robot, perception=CameraPerception(robot, calibrations=calibrations)
            )
        report = run_instruction(task.instruction, target, chosen, goal_check=task.check)
        unmet = task.unmet(observe(robot))
        if unmet:
            report.success = False
    return TaskRun(
        name,
        seed,
        report.success,
        report.replans,
        len(report.steps),
        report.planning_ms,
        report.error,
        [list(map(str, g)) for g in unmet],
        {
            **(report.llm or {}),
            "rejected_plans": report.rejected_plans,
            "repair_rounds": report.repair_rounds,
            "proposed_calls": report.proposed_calls,
            "schema_valid_calls": report.schema_valid_calls,
        }
        if report.llm
        else {},
    )


def llm_figures(runs: list[TaskRun]) -> dict:
    """Over a language-model run of the suite: how well-formed its proposals were, how often
    they were rejected and repaired, how long the model took, and the tokens per task."""
    figures = [r.llm for r in runs if r.llm]
    if not figures:
        return {}
    proposed = sum(f["proposed_calls"] for f in figures)
    latencies = [t for f in figures for t in f["llm_latencies_s"]]
    tokens = [f["tokens"]["total"] for f in figures]
    return {
        "model": figures[0]["model"],
        "schema_valid_call_rate": round(sum(f["schema_valid_calls"] for f in figures) / proposed, 4)
        if proposed
        else None,
        "proposed_calls": proposed,
        "rejected_proposals": sum(f["rejected_plans"] for f in figures),
        "repair_rounds": sum(f["repair_rounds"] for f in figures),
        "requests": sum(f["llm_requests"] for f in figures),
        "llm_latency_s_median": round(float(np.median(latencies)), 3) if latencies else None,
        "llm_latency_s_p95": round(float(np.percentile(latencies, 95)), 3) if latencies else None,
        "tokens_per_task": round(float(np.mean(tokens)), 1),
    }


def task_entries(runs, names: list[str], unmet_label: str = "goal not reached") -> dict:
    """Per task: success rate, episodes, replans, mean skill calls, the instruction and the
    first three failures (``runs``: episodes with ``task``, ``seed``, ``success``,
    ``replans``, ``skill_calls``, ``error`` and ``unmet``)."""
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
            f"seed {r.seed}: {r.error or f'{unmet_label}: {r.unmet}'}" for r in rs if not r.success
        ]
        if failures:
            entry["failures"] = failures[:3]
        per_task[n] = entry
    return per_task


def run(
    seeds: int = 3,
    planner: str = "symbolic",
    tasks: list[str] | None = None,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    arm: str = "panda",
    perception: str = "ground_truth",
    backend: str = "mujoco",
    skill_impls: list[str] | None = None,
    calibrations: dict | None = None,
    *,
    make_sim: SimFactory,
    executor: str = "local",
    ray_address: str | None = None,
) -> dict:
    """Run the suite on ``arm`` in ``backend``; returns the JSON-ready result (``calibrations``:
    camera calibrations for ``perception="camera"``; ``make_sim`` builds each episode's
    simulated robot and rejects an unknown ``backend``). The episodes run on ``jobs`` worker
    processes (None: every core), or with ``executor="ray"`` as Ray tasks on ``ray_address``
    (None: a local Ray instance)."""
    from skillstack.robot.arms import get_arm
    from skillstack.skills.parallel import ExecutorConfig, ordered_map
    from skillstack.skills.training.workers import worker_setup

    get_arm(arm)  # an unknown arm fails (ValueError listing the arms) before any work
    names = list(tasks or [t.name for t in TASKS])
    for n in names:
        get_task(n)  # unknown names fail before any work starts
    config = ExecutorConfig(executor, jobs, ray_address)
    items = [
        (n, s, planner, arm, perception, backend, calibrations) for n in names for s in range(seeds)
    ]
    # Rendering in a forked child that inherited the parent's OpenGL state can hang.
    setup = worker_setup(skill_impls, spawn=perception == "camera")
    episode = partial(run_task, make_sim=make_sim)
    runs: list[TaskRun] = list(ordered_map(episode, items, config, setup=setup, progress=progress))
    planning = [t for r in runs for t in r.planning_ms]
    per_task = task_entries(runs, names)
    return {
        "benchmark": "tasks",
        "arm": arm,
        "backend": backend,
        "skill_impls": list(skill_impls or []),
        "planner": planner,
        "perception": perception,
        "calibrated_cameras": sorted(calibrations or {}),
        "seeds": seeds,
        "success_rate": round(sum(r.success for r in runs) / len(runs), 4),
        "episodes": len(runs),
        "planning_ms_median": round(float(np.median(planning)), 3) if planning else None,
        "planning_ms_max": round(float(np.max(planning)), 3) if planning else None,
        **({"llm": llm_figures(runs)} if planner == "llm" else {}),
        "tasks": per_task,
    }
