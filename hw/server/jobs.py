"""What the robot server needs from the layers above it, as injected callables.

The server (``hw/``) keeps threads, lease, heartbeats, e-stop, streaming and telemetry; it
does not know what a skill or a world model is. Whoever builds the server (the CLI, a test,
a benchmark) hands it two callables, typically the methods of `skills.jobs.SkillJobs`:

- a `SkillRunner` runs one skill call on the robot, in the server's control thread, and
  returns its result as a plain dict (the shape of `skills.base.SkillResult.to_dict()`:
  ``skill, params, outcome, success, failure, message, duration_s, template, moved,
  metrics``); it reports through the `JobHooks` the server fills in;
- a `WorldObserver` returns the world state as a plain dict (the shape of
  `skills.world.WorldState.to_dict()`).

Both may raise: the server catches everything in its control thread, holds the arm and
answers the client with a typed error (see `hw.server.protocol.ERROR_CODES`). A runner
raises `UnknownSkill` for a name it does not know, so the client is told so precisely.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from skillstack.hw.robot import Robot
from skillstack.robot.types import JointCommand, RobotState


class UnknownSkill(LookupError):
    """The runner has no skill of that name (the message lists what there is)."""


@dataclass
class JobHooks:
    """What the server gives a running skill call.

    ``realtime``: pace the loop to the wall clock. ``on_tick(state, sent)``: call after every
    control tick (the server's supervision, mailbox and telemetry snapshot run there).
    ``abort()``: ask every tick; a non-empty reason ends the skill at once (silent client,
    stop, e-stop, late ticks). ``on_progress(label, fraction)``: what the skill does now and
    how far along it is (0..1), reported whenever it changes (the telemetry's ``step`` and
    ``progress``).
    """

    realtime: bool
    on_tick: Callable[[RobotState, JointCommand], None]
    abort: Callable[[], str | None]
    on_progress: Callable[[str, float], None]


SkillRunner = Callable[[Robot, str, dict[str, Any], JobHooks], dict[str, Any]]
"""``run(robot, skill, params, hooks) -> result dict``; runs in the control thread."""

WorldObserver = Callable[[Robot], dict[str, Any]]
"""``observe(robot) -> world dict``; runs in the control thread, between two ticks."""
