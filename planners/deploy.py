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

from skillstack.planners.executive import RunReport, propose
from skillstack.planners.types import Planner, PlanningError, PlanningRequest
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

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return dict(self.__dict__)


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
    try:
        plan = propose(planner, PlanningRequest(instruction, world, all_skills()), RunReport(""))
    except PlanningError as exc:
        report.error = str(exc)
        return report
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
    for call in plan.calls:
        result = arm.execute(call.skill, call.params)
        report.steps.append(result.to_dict())
        if not result.success:
            report.error = f"{call} failed on the robot: {result.message}"
            return report
    report.success = True
    return report
