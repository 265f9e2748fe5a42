"""Run one skill on a robot: validate, check, plan, execute at control rate, verify.

Everything that can be refused is refused before the first command is sent: bad
parameters, unknown objects, unmet preconditions, geometric limits, unreachable poses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skillstack.hw.robot import Robot
from skillstack.hw.sim.divergence import SimulationDiverged
from skillstack.robot.loop import ControlLoop
from skillstack.robot.safety import REFUSAL_CODES as SAFETY_REFUSAL_CODES
from skillstack.skills.base import Failure, Skill, SkillFailure, SkillResult
from skillstack.skills.context import Context
from skillstack.skills.guards import NoCollision
from skillstack.skills.params import ParameterError
from skillstack.skills.program import Program
from skillstack.skills.world_model import WorldModel, default_world

REFUSAL_CODES = SAFETY_REFUSAL_CODES  # the safety filter's codes that stop the arm


def execute(
    skill: Skill,
    raw_params: dict[str, Any] | None,
    robot: Robot,
    ctx: Context | None = None,
    realtime: bool = False,
    on_tick: Callable | None = None,
    abort: Callable[[], str | None] | None = None,
    on_program: Callable[[Program], None] | None = None,
    world: WorldModel | None = None,
) -> SkillResult:
    """Execute ``skill`` with untrusted ``raw_params`` on a connected robot.

    ``abort`` is asked every control tick; a non-empty answer ends the skill at once with
    `Failure.SAFETY_STOP` and that reason (the robot server uses it for supervision).
    ``on_program`` receives the planned `Program` before it starts (to report progress).
    ``world`` is the world model the skill checks, plans, guards and verifies against
    (default: the simulator's ground truth, `skills.world_model.SimWorld`; a declared
    workcell on a real arm, `skills.declared.DeclaredWorld`).
    """
    raw = dict(raw_params or {})
    try:
        params = skill.parse(raw)
    except ParameterError as exc:
        return SkillResult(skill.name, raw, False, Failure.INVALID_PARAMETERS, str(exc))
    if ctx is not None:
        world = ctx.world
    world = world or default_world(robot)
    look = world.observe
    before = look()
    refusal = skill.check(before, params)
    if refusal is not None:
        return SkillResult(skill.name, raw, False, refusal.failure, refusal.message)
    ctx = ctx or Context.for_robot(robot, world)
    try:
        program: Program = skill.plan(before, params, ctx)
    except SkillFailure as exc:
        return SkillResult(skill.name, raw, False, exc.failure, exc.message)
    program.guards.append(NoCollision(program.allowed_contacts))
    program.abort = abort  # checked every tick: supervision (silent client, late ticks)
    if on_program is not None:
        on_program(program)
    refusals_before = sum(robot.safety.counts.get(c, 0) for c in REFUSAL_CODES)
    t0 = robot.read().time
    loop = ControlLoop(robot, realtime=realtime, on_tick=on_tick)
    try:
        loop.run(program, max_seconds=skill.timeout_s)
    except SimulationDiverged as exc:
        return SkillResult(
            skill.name,
            raw,
            False,
            Failure.SIM_DIVERGED,
            str(exc),
            robot.read().time - t0,
            program.template,
            moved=True,
        )
    duration = robot.read().time - t0
    result = SkillResult(skill.name, raw, False, None, "", duration, program.template, moved=True)
    refusals = sum(robot.safety.counts.get(c, 0) for c in REFUSAL_CODES) - refusals_before
    if program.failure is not None and program.failure.failure == Failure.SENSOR_FAULT:
        # bad readings come first: what the safety filter refused was computed from them
        result.failure = Failure.SENSOR_FAULT
        result.message = f"{program.failure.message} (during {program.label!r})"
    elif refusals:  # the root cause of whatever else went wrong
        result.failure = Failure.SAFETY_STOP
        event = robot.safety.events[-1].message if robot.safety.events else ""
        result.message = (
            f"the safety filter refused {refusals} commands ({event}) during {program.label!r}"
        )
    elif program.failure is not None:
        result.failure = program.failure.failure
        result.message = f"{program.failure.message} (during {program.label!r})"
    elif not program.done:
        result.failure = Failure.TIMEOUT
        result.message = (
            f"{skill.name} did not finish within {skill.timeout_s:.0f} s ({program.label})"
        )
    else:
        outcome = skill.verify(before, look(), params, program)
        result.success, result.failure = outcome.success, outcome.failure
        result.message, result.metrics = outcome.message, outcome.metrics
    return result
