"""Rehearse before moving: plan, try the whole plan in a MuJoCo twin, then run it for real.

`deploy` takes the world state from the robot (perception, or whatever the robot server
reports), plans, and replays the plan in a fresh simulation built from that state (the
objects where they are, the arm where it is). Only a plan that succeeds in rehearsal is
shown for confirmation and executed on the robot; a plan that fails there never moves it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skillstack.planners.executive import RunReport, llm_usage, propose
from skillstack.planners.goals import UNVERIFIED, instruction_goal
from skillstack.planners.types import Planner, PlanningError, PlanningRequest, StepRecord
from skillstack.robot.scene import SceneError
from skillstack.skills.arm import LocalArm, SkillRunner
from skillstack.skills.registry import all_skills
from skillstack.skills.twin import rehearsal_robot
from skillstack.skills.world import WorldState


@dataclass
class DeployReport:
    """What happened: the plan, its rehearsal, and (if confirmed) the real execution."""

    instruction: str
    plan: list[dict[str, Any]] = field(default_factory=list)
    rehearsal: list[dict[str, Any]] = field(default_factory=list)
    rehearsed_ok: bool = False
    confirmed: bool = False
    steps: list[dict[str, Any]] = field(default_factory=list)
    success: bool = False
    error: str | None = None
    goal: list[str] | str = UNVERIFIED  # what success is judged on (`planners.goals`)
    goal_source: str = UNVERIFIED  # "instruction" (the grammar), "planner", or "unverified"
    planning_ms: list[float] = field(default_factory=list)
    rejected_plans: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)  # proposals and their reasons
    llm: dict[str, Any] | None = None  # model, llm_latency_s, tokens (language-model planners)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (a language model's figures at the top level, as in ``run --json``)."""
        out = {k: v for k, v in self.__dict__.items() if k != "llm"}
        return {**out, **(self.llm or {})}


def rehearse(calls: list, world: WorldState, q: np.ndarray | None) -> tuple[bool, list[dict]]:
    """Run ``calls`` in a twin of ``world`` with the arm at ``q``; (all succeeded, steps)."""
    steps = []
    with rehearsal_robot(world, q) as twin:
        arm = LocalArm(twin)
        for call in calls:
            result = arm.execute(call.skill, call.params)
            steps.append(result.to_dict())
            if not result.success:
                return False, steps
    return True, steps


def deploy(
    instruction: str,
    arm: SkillRunner,
    planner: Planner,
    confirm: Callable[[DeployReport], bool],
    joints: Callable[[], np.ndarray | None] = lambda: None,
) -> DeployReport:
    """Plan, rehearse in a twin, ask ``confirm``, then execute on ``arm``."""
    report = DeployReport(instruction)
    world = arm.observe()
    goal = instruction_goal(instruction, world)
    report.goal = goal.describe() if goal else UNVERIFIED
    report.goal_source = goal.source if goal else UNVERIFIED
    request = PlanningRequest(instruction, world, all_skills(), state_goal=goal is None)
    planning = RunReport(instruction)
    calls_before = len(getattr(planner, "calls_log", []))
    try:
        plan, goal = propose(planner, request, planning, goal=goal)
    except PlanningError as exc:
        report.error = str(exc)
        return report
    finally:
        report.planning_ms, report.rejected = planning.planning_ms, planning.rejected
        report.rejected_plans = planning.rejected_plans
        report.llm = llm_usage(planner, calls_before)
    report.goal = goal.describe() if goal else UNVERIFIED
    report.goal_source = goal.source if goal else UNVERIFIED
    report.plan = [c.to_dict() for c in plan.calls]
    try:
        report.rehearsed_ok, report.rehearsal = rehearse(plan.calls, world, joints())
    except SceneError as exc:
        report.error = f"cannot build the rehearsal twin: {exc}"
        return report
    if not report.rehearsed_ok:
        last = report.rehearsal[-1]
        report.error = (
            f"the plan failed in rehearsal at {last['skill']}: {last['message']}; not executed"
        )
        return report
    report.confirmed = confirm(report)
    if not report.confirmed:
        report.error = "not confirmed; nothing moved"
        return report
    history: list[StepRecord] = []
    for call in plan.calls:
        result = arm.execute(call.skill, call.params)
        report.steps.append(result.to_dict())
        failure = result.failure.value if result.failure else None
        history.append(StepRecord(call, result.success, failure, result.message))
        if not result.success:
            report.error = f"{call} failed on the robot: {result.message}"
            return report
    if goal is None:
        report.error = (
            "every step succeeded, but success is unverified: the instruction's goal could not "
            "be read and the planner stated none"
        )
        return report
    unmet = goal.unmet(arm.observe(), history)
    report.success = not unmet
    if unmet:
        report.error = "every step succeeded but the goal does not hold: " + ", ".join(unmet)
    return report
