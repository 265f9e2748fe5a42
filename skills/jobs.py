"""Skills over the robot server, on both of its sides.

Server side, `SkillJobs`: what the robot server (``hw/server``, which knows no skills) is
handed to run skill calls and observe the world::

    jobs = SkillJobs()
    RobotServer(robot, config, run_skill=jobs.run, observe=jobs.observe)

Client side, `RemoteArm`: a `skills.arm.SkillRunner` on a robot server, so the executive runs
unchanged against a remote robot; it turns the server's plain dicts into `SkillResult` and
`WorldState`, and the server's refusals of a call into failed results.

The seam for the world model: ``SkillJobs(world_for=...)`` takes the factory of the
`skills.world_model.WorldModel` the skills read (``world_for(robot) -> WorldModel``), built
once per robot on first use and kept (a declared world tracks grips across calls). The
default is `skills.world_model.default_world`: the simulator's ground truth, which only a
simulated robot has (any other robot gets a `RobotError` saying to declare a workcell).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from skillstack.hw.robot import Robot
from skillstack.hw.server.client import RemoteError, RobotClient
from skillstack.hw.server.jobs import JobHooks, UnknownSkill
from skillstack.skills.base import Failure, SkillResult, result_from_dict
from skillstack.skills.executor import execute
from skillstack.skills.program import Program
from skillstack.skills.registry import get_skill
from skillstack.skills.world import WorldState
from skillstack.skills.world_model import WorldModel, default_world

log = logging.getLogger("skillstack.jobs")


class SkillJobs:
    """Runs skill calls and observes the world for a robot server (see the module docstring).

    ``world_for(robot)`` builds the world model the skills check, plan, guard and verify
    against and the server's ``observe`` reads; it is called once per robot (on first use)
    and the model kept. Default: `skills.world_model.default_world` (simulator truth).
    """

    def __init__(self, world_for: Callable[[Robot], WorldModel] | None = None):
        self.world_for = world_for or default_world
        self._robot: Robot | None = None
        self._world: WorldModel | None = None

    def world(self, robot: Robot) -> WorldModel:
        """The world model for ``robot`` (built on first use; a failure is not kept)."""
        if self._world is None or self._robot is not robot:
            self._world, self._robot = self.world_for(robot), robot
        return self._world

    def run(
        self, robot: Robot, skill: str, params: dict[str, Any], hooks: JobHooks
    ) -> dict[str, Any]:
        """Run one skill call on ``robot`` (in the server's control thread); its result dict.

        Raises `UnknownSkill` for a name the registry does not know; any other exception
        (a driver error, a bug) propagates to the server, which holds the arm and reports it.
        """
        try:
            chosen = get_skill(skill)
        except KeyError as exc:
            raise UnknownSkill(exc.args[0] if exc.args else f"unknown skill {skill!r}") from None
        progress = _Progress(hooks)
        world = self.world(robot)
        seen = len(getattr(world, "events", ()))
        result = execute(
            chosen,
            params,
            robot,
            realtime=hooks.realtime,
            on_tick=progress.on_tick,
            abort=hooks.abort,
            on_program=progress.start,
            world=world,
        )
        for event in list(getattr(world, "events", ()))[seen:]:  # a declared world's tracking
            log.info("world: %s", event)
        return result.to_dict()

    def observe(self, robot: Robot) -> dict[str, Any]:
        """The world state now, as a dict (`WorldState.to_dict()`)."""
        return self.world(robot).observe().to_dict()


class _Progress:
    """Reports a running `Program`'s step and fraction done whenever its step changes."""

    def __init__(self, hooks: JobHooks):
        self.hooks = hooks
        self.program: Program | None = None
        self.index = -1

    def start(self, program: Program) -> None:
        """Follow ``program`` (about to run) and report its first step."""
        self.program, self.index = program, -1
        self._report(program)

    def on_tick(self, state, sent) -> None:
        """Pass the tick on; report progress when the program moved to another step."""
        self.hooks.on_tick(state, sent)
        if self.program is not None and self.program.index != self.index:
            self._report(self.program)

    def _report(self, program: Program) -> None:
        self.index = program.index
        n = len(program.primitives)
        self.hooks.on_progress(program.label, min(program.index, n) / n)


# The server's refusals of a call that the executive treats as a failed step (it replans,
# or gives up with the message); anything else (no control, a wrong token) is raised.
_FAILURES = {
    "unknown_skill": Failure.INVALID_PARAMETERS,
    "bad_request": Failure.INVALID_PARAMETERS,
    "skill_error": Failure.SAFETY_STOP,
    "driver_error": Failure.SAFETY_STOP,
    "robot_fault": Failure.SAFETY_STOP,
    "protective_stop": Failure.SAFETY_STOP,
    "estop": Failure.SAFETY_STOP,
    "control_timeout": Failure.SAFETY_STOP,
}


class RemoteArm:
    """A `skills.arm.SkillRunner` on a robot server: the executive runs unchanged against it.

    A call the server cannot carry out comes back as a failed `SkillResult` whose failure
    maps the server's code (``unknown_skill`` and ``bad_request``: invalid parameters; a
    runner or driver error, a fault, a stop: safety stop) and whose message is the server's
    one-line reason. A server that stops answering raises `ServerLost`.
    """

    def __init__(self, client: RobotClient):
        self.client = client

    def observe(self) -> WorldState:
        """The remote world state."""
        return WorldState.from_dict(self.client.observe())

    def execute(self, skill: str, params: dict[str, Any]) -> SkillResult:
        """Run the skill remotely."""
        try:
            return result_from_dict(self.client.execute(skill, params))
        except RemoteError as exc:
            failure = _FAILURES.get(exc.code or "")
            if failure is None:
                raise
            started = exc.code in ("skill_error", "driver_error")  # it may have moved the arm
            return SkillResult(skill, dict(params), False, failure, str(exc), moved=started)
