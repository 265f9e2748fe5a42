"""`skillstack bench hil`: pick-and-place tasks on a Franka over the real libfranka protocol.

Hardware in the loop without the hardware: each episode starts franky-sim (a Franka FR3 in
MuJoCo behind libfranka's network protocol, `hw.sim.franky_workcell`) with a seeded layout of
a task's scene, connects the project's Franka driver to it exactly as to a real arm, and runs
the task through the symbolic planner and the executive with a **declared** world model (the
scene file, tracked through the skills and confirmed by the gripper and joints — nothing
reads the simulator). Success is then judged on franky-sim's own MuJoCo state, which the
stack under test never saw: the goal facts must hold in the ground truth.

Episodes run paced to the wall clock (the libfranka loop is real time), one at a time.
The planners build no hardware: the command line hands in the two factories, `HilRig`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skillstack.planners.bench import task_entries
from skillstack.planners.tasks import get_task
from skillstack.skills.world import WorldState, object_at

HIL_TASKS = ("pick_cube", "cube_on_plate", "cube_in_bowl", "stack_two")
HELD_DISTANCE = 0.03  # m, an object whose centre is this close to the fingertips is held
HELD_CLEARANCE = 0.01  # m, ... and whose bottom is at least this far above the table


@dataclass(frozen=True)
class HilRig:
    """What an episode is built from, handed in by the command line.

    ``workcell(scene, host=, realtime=)``: a franky-sim workcell with the scene's objects
    (`skillstack.hw.sim.franky_workcell.FrankySimWorkcell`); ``arm(host, model)``: the Franka
    driver for it, not connected (`skillstack.hw.factory.make_robot` with
    ``realtime_config=ignore``).
    """

    workcell: Callable[..., Any]
    arm: Callable[[str, str], Any]


@dataclass
class HilRun:
    """One episode: the executive's verdict and the ground truth's."""

    task: str
    seed: int
    success: bool  # the goal holds in franky-sim's ground truth
    reported_success: bool  # what the stack itself reported
    replans: int
    skill_calls: int
    planning_ms: list[float]
    wall_s: float
    real_time_factor: float
    error: str | None
    unmet: list = field(default_factory=list)


def truth_world(cell, scene) -> WorldState:
    """The world as franky-sim's MuJoCo state has it (`hw.sim.franky_workcell`), with the
    declared kinds and sizes: what the goal is checked against."""
    tips = np.asarray(cell.fingertip_centre())
    objects, held = {}, None
    for obj in scene.objects:
        if obj.name in cell.omitted:
            continue
        pose = cell.object_pose(obj.name)
        state = objects[obj.name] = object_at(obj, pose)
        near = float(np.linalg.norm(np.asarray(pose.position) - tips)) <= HELD_DISTANCE
        if near and state.bottom >= HELD_CLEARANCE:
            held = obj.name
    return WorldState(objects, held, float(cell.gripper_width()))


def run_episode(
    rig: HilRig,
    name: str,
    seed: int,
    host: str = "127.0.0.1",
    model: str = "fr3",
    realtime: bool | float = True,
) -> HilRun:
    """Run task ``name`` on seed ``seed`` over franky-sim at ``host`` (see the module)."""
    from skillstack.planners.executive import run_instruction
    from skillstack.planners.symbolic import SymbolicPlanner
    from skillstack.skills.arm import LocalArm
    from skillstack.skills.declared import DeclaredWorld

    task = get_task(name)
    scene = task.scene(seed)
    start = time.perf_counter()
    cell = rig.workcell(scene, host=host, realtime=realtime)
    cell.start()
    robot = rig.arm(host, model)
    try:
        robot.connect()
        arm = LocalArm(robot, world=DeclaredWorld(robot, scene))
        report = run_instruction(task.instruction, arm, SymbolicPlanner(), goal_check=task.check)
        robot.stop()
        truth = truth_world(cell, scene)
        rtf = cell.real_time_factor()
    finally:
        # franky-sim first: franky's release joins the thread of any gripper command still
        # waiting for an answer, holding the GIL, and franky-sim, in this process, could
        # then never answer; once it is stopped, the waiting command fails and returns.
        cell.stop()
        with contextlib.suppress(Exception):
            robot.disconnect()
    unmet = task.unmet(truth)
    return HilRun(
        name,
        seed,
        not unmet,
        report.success,
        report.replans,
        len(report.steps),
        report.planning_ms,
        time.perf_counter() - start,
        float(rtf),
        report.error,
        [list(map(str, g)) for g in unmet],
    )


def run(
    rig: HilRig,
    seeds: int = 5,
    tasks: list[str] | None = None,
    host: str = "127.0.0.1",
    model: str = "fr3",
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Run ``tasks`` (default `HIL_TASKS`) on ``seeds`` layouts each; the JSON-ready result
    with the fields of `bench tasks` plus the ground truth's and the stack's verdicts."""
    names = list(tasks or HIL_TASKS)
    for n in names:
        get_task(n)  # unknown names fail before anything starts
    args = [(n, s) for n in names for s in range(seeds)]
    runs: list[HilRun] = []
    for i, (n, s) in enumerate(args, 1):
        runs.append(run_episode(rig, n, s, host, model))
        if progress:
            progress(i, len(args))
    planning = [t for r in runs for t in r.planning_ms]
    per_task = task_entries(runs, names, unmet_label="goal not reached in ground truth")
    return {
        "benchmark": "hil",
        "robot": f"franka-{model} over libfranka (franky-sim)",
        "world": "declared",
        "verified_by": "franky-sim ground truth",
        "planner": "symbolic",
        "seeds": seeds,
        "success_rate": round(sum(r.success for r in runs) / len(runs), 4),
        "reported_success_rate": round(sum(r.reported_success for r in runs) / len(runs), 4),
        # Runs the stack called successful whose goal does not hold in the ground truth.
        "false_successes": sum(r.reported_success and not r.success for r in runs),
        "episodes": len(runs),
        "planning_ms_median": round(float(np.median(planning)), 3) if planning else None,
        "episode_wall_s_median": round(float(np.median([r.wall_s for r in runs])), 2),
        "real_time_factor_median": round(float(np.median([r.real_time_factor for r in runs])), 3),
        "tasks": per_task,
    }
