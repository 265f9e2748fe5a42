"""Where skills run: something that can observe the world and execute skill calls.

The executive talks to a `SkillRunner`, not to a robot, so the same plan runs on a simulated arm in
this process (`LocalArm`) or on a robot server across the network (`skills.jobs.RemoteArm`):
the control loop always stays next to the robot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from skillstack.hw.robot import Robot
from skillstack.skills.base import SkillResult
from skillstack.skills.executor import execute
from skillstack.skills.registry import get_skill
from skillstack.skills.world import WorldState
from skillstack.skills.world_model import WorldModel, default_world


class SkillRunner(Protocol):
    """What the executive needs: something that observes the world and runs skill calls."""

    def observe(self) -> WorldState:
        """The world state now."""
        ...

    def execute(self, skill: str, params: dict[str, Any]) -> SkillResult:
        """Run one skill call to its end."""
        ...


OUTCOME_HOLD_S = 0.8  # seconds of video showing a skill's outcome before the next call


class LocalArm:
    """A robot in this process and the world model its skills read (default: the
    simulator's ground truth; a `skills.declared.DeclaredWorld` for a real arm)."""

    def __init__(
        self,
        robot: Robot,
        on_tick: Callable | None = None,
        world: WorldModel | None = None,
        abort: Callable[[], str | None] | None = None,
    ):
        self.robot = robot
        self.on_tick = on_tick
        self.world = world or default_world(robot)
        self.abort = abort  # asked every tick; a reason stops the skill (`executor.execute`)

    def observe(self) -> WorldState:
        """The world model's current state."""
        return self.world.observe()

    def execute(self, skill: str, params: dict[str, Any]) -> SkillResult:
        """Execute through `skills.executor.execute`, captioning a video being recorded: the
        call while it runs, then its outcome and key metrics, held on screen for a moment."""
        recorder = getattr(self.robot, "recorder", None)
        if recorder is None or not hasattr(recorder, "set_caption"):
            recorder = None
        call = f"{skill}({', '.join(f'{k}={v}' for k, v in params.items())})"
        if recorder is not None:
            recorder.set_caption(call)
        result = execute(
            get_skill(skill),
            params,
            self.robot,
            on_tick=self.on_tick,
            world=self.world,
            abort=self.abort,
        )
        if recorder is not None:
            recorder.set_caption(outcome_caption(call, result))
            if hasattr(recorder, "hold"):
                recorder.hold(OUTCOME_HOLD_S)
        return result


def outcome_caption(call: str, result: SkillResult, metrics: int = 2) -> str:
    """A video caption: the call on one line, its outcome and a few metrics on the next
    (``grasp(object=cup)`` / ``success  lifted_m=0.051``)."""
    outcome = (
        "success" if result.success else (result.failure.value if result.failure else "failed")
    )
    shown = list(result.metrics.items())[:metrics]
    figures = "  ".join(f"{k}={float(v):.3g}" for k, v in shown)
    return f"{call}\n{outcome}" + (f"  {figures}" if figures else "")


def as_arm(target: Any) -> SkillRunner:
    """``target`` if it is a `SkillRunner` already, else a `LocalArm` around a robot."""
    if hasattr(target, "observe") and hasattr(target, "execute") and not isinstance(target, Robot):
        return target
    return LocalArm(target)
