"""The executive: plan, validate, execute call by call, watch outcomes, replan on failure.

One `run_instruction` call is one `skillstack run`: the planner proposes a plan for the
world as observed now; the validator checks it (a rejected plan goes back to the planner
with the reasons, a bounded number of times, and nothing moves meanwhile); the calls run
one by one; when one fails, the planner is asked again from the new world state with the
failure in the history. Optional language corrections between steps go into the history.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from skillstack.planners.goals import UNVERIFIED, Goal, instruction_goal, parse_goal
from skillstack.planners.types import Plan, Planner, PlanningError, PlanningRequest, StepRecord
from skillstack.planners.validator import validate_plan
from skillstack.skills.arm import SkillRunner, as_arm
from skillstack.skills.params import ParameterError
from skillstack.skills.registry import all_skills
from skillstack.skills.world import WorldState

MAX_REPLANS = 2  # after a failed step
MAX_REPAIRS = 2  # rounds of validation feedback for one proposal


@dataclass
class RunReport:
    """The outcome of one instruction; `to_dict` is the `skillstack run --json` contract."""

    instruction: str
    success: bool = False
    plan: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    replans: int = 0
    error: str | None = None
    planning_ms: list[float] = field(default_factory=list)
    rejected_plans: int = 0
    # The facts success was judged on (`planners.goals`), "task" for a caller's own check,
    # or "unverified" where the instruction's goal could not be read (never a success).
    goal: list[str] | str = UNVERIFIED
    # Who stated the goal: "instruction" (the grammar), "planner" (stated with the plan and
    # validated), "task" (a caller's check), or "unverified".
    goal_source: str = UNVERIFIED
    rejected: list[dict[str, Any]] = field(default_factory=list)  # proposals and their reasons
    repair_rounds: int = 0  # times a rejected proposal went back with the reasons
    proposed_calls: int = 0  # calls in every proposal, accepted or not
    schema_valid_calls: int = 0  # ... naming a skill, with parameters its schema accepts
    llm: dict[str, Any] | None = None  # model, llm_latency_s, tokens (language-model planners)

    def to_dict(self) -> dict[str, Any]:
        """``{"success", "instruction", "plan", "steps", "replans", "error"}`` plus extras."""
        return {
            "success": self.success,
            "instruction": self.instruction,
            "plan": self.plan,
            "steps": self.steps,
            "replans": self.replans,
            "error": self.error,
            "goal": self.goal,
            "goal_source": self.goal_source,
            "planning_ms": [round(t, 3) for t in self.planning_ms],
            "rejected_plans": self.rejected_plans,
            "rejected": self.rejected,
            "repair_rounds": self.repair_rounds,
            "proposed_calls": self.proposed_calls,
            "schema_valid_calls": self.schema_valid_calls,
            **(self.llm or {}),
        }


def propose(
    planner: Planner,
    request: PlanningRequest,
    report: RunReport,
    max_repairs: int = MAX_REPAIRS,
    goal: Goal | None = None,
) -> tuple[Plan, Goal | None]:
    """A validated plan and the goal it is judged on, repairing with validation feedback;
    `PlanningError` if none.

    ``goal`` is the instruction's (from the grammar); without one, a goal the planner states
    with its plan is read and validated like its calls. Either way the plan must achieve
    the goal on the predicted world, or it goes back with the facts it would leave unmet.
    """
    rejected: list[dict[str, Any]] | None = None
    for attempt in range(max_repairs + 1):
        plan = planner.plan(request)
        report.planning_ms.append(plan.planning_ms)
        report.proposed_calls += len(plan.calls)
        report.schema_valid_calls += sum(_schema_valid(c, request.skills) for c in plan.calls)
        problems = validate_plan(plan, request.world, request.skills) if plan.calls else []
        plan_goal = goal
        if not problems:
            plan_goal, problems = _check_goal(plan, request, goal)
        if not problems:
            return plan, plan_goal
        report.rejected_plans += 1
        proposal = [c.to_dict() for c in plan.calls]
        entry: dict[str, Any] = {"plan": proposal, "problems": list(problems)}
        if plan.goal is not None:
            entry["goal"] = plan.goal
            proposal = [*proposal, {"goal": plan.goal}]  # the same calls for a new goal differ
        report.rejected.append(entry)
        if proposal == rejected:  # told what was wrong, it said the same: asking again is futile
            raise PlanningError(
                "the planner proposed the same rejected plan again: " + "; ".join(problems),
                problems=problems,
            )
        if attempt == max_repairs:
            raise PlanningError(
                "the planner's plan was rejected: " + "; ".join(problems), problems=problems
            )
        rejected = proposal
        request.feedback = problems
        report.repair_rounds += 1
    raise AssertionError("unreachable")


def _check_goal(
    plan: Plan, request: PlanningRequest, goal: Goal | None
) -> tuple[Goal | None, list[str]]:
    """The goal ``plan`` is judged on and the problems with it (empty: none)."""
    if goal is None and request.state_goal and plan.goal is not None:
        goal, problems = parse_goal(plan.goal, request.world)
        if problems:
            return None, problems
    if goal is None:
        return None, []
    missing = goal.missing_after(plan, request.world, request.skills, request.history)
    if missing:
        whose = "the instruction's goal" if goal.source == "instruction" else "its stated goal"
        return goal, [
            f"the plan does not achieve {whose}: {', '.join(missing)} would not hold after it"
        ]
    return goal, []


def run_instruction(
    instruction: str,
    robot: SkillRunner | Any,
    planner: Planner,
    *,
    max_replans: int = MAX_REPLANS,
    goal_check: Callable[[WorldState], bool] | None = None,
    corrections: Callable[[StepRecord], str | None] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    stopped: Callable[[], str | None] | None = None,
) -> RunReport:
    """Carry out ``instruction`` on ``robot``; see the module docstring.

    Success means the goal holds in the final world: ``goal_check`` where the caller has
    one (a benchmark task's), else the instruction's own goal (`planners.goals`), read
    before anything moves; with neither, the run is ``"unverified"`` and never a success.
    ``corrections`` is asked after each step for a person's correction ("a bit more to the
    left"); any text triggers a replan with it. ``stopped`` is asked after each step: a
    reason (someone pressed stop) ends the run there, with no replan.
    """
    report = RunReport(instruction)
    llm_calls_before = len(getattr(planner, "calls_log", []))
    try:
        return _run(
            instruction, robot, planner, report, max_replans, goal_check, corrections, on_step,
            stopped,
        )  # fmt: skip
    finally:
        report.llm = llm_usage(planner, llm_calls_before)


def _run(
    instruction: str,
    robot: SkillRunner | Any,
    planner: Planner,
    report: RunReport,
    max_replans: int,
    goal_check: Callable[[WorldState], bool] | None,
    corrections: Callable[[StepRecord], str | None] | None,
    on_step: Callable[[dict[str, Any]], None] | None,
    stopped: Callable[[], str | None] | None,
) -> RunReport:
    arm = as_arm(robot)
    skills = all_skills()
    history: list[StepRecord] = []
    notes: list[str] = []
    start = arm.observe()
    goal = None if goal_check is not None else instruction_goal(instruction, start)
    report.goal = "task" if goal_check is not None else goal.describe() if goal else UNVERIFIED
    report.goal_source = "task" if goal_check is not None else goal.source if goal else UNVERIFIED
    world: WorldState | None = start
    while True:
        if world is None:
            world = arm.observe()
        request = PlanningRequest(instruction, world, skills, history, notes)
        request.state_goal = goal is None and goal_check is None
        world = None  # observed afresh before the next proposal
        try:
            plan, goal = propose(planner, request, report, goal=goal)
            if goal is not None and goal.source == "planner":
                report.goal, report.goal_source = goal.describe(), goal.source
        except PlanningError as exc:
            report.error = str(exc)
            if exc.reply is not None and not exc.problems:  # a reply that was not a plan
                report.rejected.append({"reply": str(exc.reply)[:2000], "problems": [str(exc)]})
            return report
        if not report.plan:
            report.plan = [c.to_dict() for c in plan.calls]
        failed = corrected = False
        for call in plan.calls:
            t0 = time.perf_counter()
            result = arm.execute(call.skill, call.params)
            step = {
                "skill": call.skill,
                "params": call.params,
                "outcome": "success"
                if result.success
                else (result.failure.value if result.failure else "failure"),
                "duration_s": round(result.duration_s, 3),
                "message": result.message,
                "template": result.template,
                "metrics": {k: round(float(v), 6) for k, v in result.metrics.items()},
                "wall_s": round(time.perf_counter() - t0, 3),
            }
            report.steps.append(step)
            if on_step:
                on_step(step)
            record = StepRecord(
                call,
                result.success,
                result.failure.value if result.failure else None,
                result.message,
            )
            history.append(record)
            reason = stopped() if stopped is not None else None
            if reason:
                report.error = f"stopped after {call}: {reason}"
                return report
            if not result.success:
                failed = True
                break
            if corrections is not None:
                text = corrections(record)
                if text:
                    notes.append(text)
                    corrected = True
                    break
        if not failed and not corrected:
            _judge(report, arm.observe(), history, goal, goal_check)
            return report
        if failed and report.replans >= max_replans:
            last = history[-1]
            report.error = (
                f"gave up after {report.replans} replans: {last.call} failed "
                f"({last.failure}): {last.message}"
            )
            return report
        report.replans += 1


def _schema_valid(call: Any, skills: dict[str, Any]) -> bool:
    skill = skills.get(call.skill)
    if skill is None:
        return False
    try:
        skill.parse(call.params)
    except ParameterError:
        return False
    return True


def llm_usage(planner: Planner, since: int) -> dict[str, Any] | None:
    """Model, time waiting on it and tokens over the requests after the ``since``-th
    (LLM planners only: None for a planner without a ``calls_log``)."""
    log = getattr(planner, "calls_log", None)
    if log is None:
        return None
    entries = log[since:]
    prompt = sum(e.get("prompt_tokens") or 0 for e in entries)
    completion = sum(e.get("completion_tokens") or 0 for e in entries)
    return {
        "model": getattr(planner, "model", None),
        "llm_requests": sum(e.get("attempts", 0) for e in entries),
        "llm_latency_s": round(sum(e.get("latency_s", 0.0) for e in entries), 3),
        "llm_latencies_s": [e.get("latency_s", 0.0) for e in entries],  # one per proposal
        "tokens": {"prompt": prompt, "completion": completion, "total": prompt + completion},
    }


def _judge(
    report: RunReport,
    world: WorldState,
    history: list[StepRecord],
    goal: Goal | None,
    goal_check: Callable[[WorldState], bool] | None,
) -> None:
    """Success, or the error saying why not, once every step has succeeded."""
    if goal_check is not None:
        report.success = goal_check(world)
        if not report.success:
            report.error = "every step succeeded but the goal does not hold in the world"
        return
    if goal is None:
        report.error = (
            "every step succeeded, but success is unverified: the instruction's goal could "
            "not be read (phrase it like 'put the red cube on the plate') and the planner "
            "stated none"
        )
        return
    unmet = goal.unmet(world, history)
    report.success = not unmet
    if unmet:
        report.error = "every step succeeded but the goal does not hold: " + ", ".join(unmet)
