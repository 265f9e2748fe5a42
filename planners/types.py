"""Data that flows through the planning layer: skill calls, plans, history, requests."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from skillstack.skills.base import Skill
from skillstack.skills.world import WorldState


@dataclass(frozen=True)
class SkillCall:
    """One call of a skill with (untrusted, not yet validated) parameters."""

    skill: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"skill": ..., "params": {...}}``."""
        return {"skill": self.skill, "params": dict(self.params)}

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.skill}({args})"


@dataclass
class Plan:
    """An ordered list of skill calls proposed by a planner."""

    calls: list[SkillCall]
    planner: str = ""
    planning_ms: float = 0.0  # wall time spent planning, excluding any model's own latency
    notes: str = ""  # the planner's explanation, if any
    # The facts the planner says the plan achieves (e.g. ["on(red_cube, plate)"]), untrusted
    # until `planners.goals.parse_goal` has read them; asked for by `PlanningRequest.state_goal`.
    goal: list[str] | None = None


@dataclass(frozen=True)
class StepRecord:
    """What ran and how it ended: the history a planner sees when it replans."""

    call: SkillCall
    success: bool
    failure: str | None = None
    message: str = ""


@dataclass
class PlanningRequest:
    """Everything a planner gets: the instruction, the world, the skills, what happened."""

    instruction: str
    world: WorldState
    skills: dict[str, Skill]
    history: list[StepRecord] = field(default_factory=list)
    corrections: list[str] = field(default_factory=list)  # language corrections from a person
    feedback: list[str] = field(default_factory=list)  # why the previous proposal was rejected
    # True where the instruction's goal could not be read: the planner should state the goal
    # with its plan (`Plan.goal`), or the run stays unverified.
    state_goal: bool = False


class PlanningError(Exception):
    """No valid plan: carries the evidence (for an LLM: the prompt and the raw reply)."""

    def __init__(
        self,
        message: str,
        *,
        prompt: Any = None,
        reply: Any = None,
        problems: list[str] | None = None,
    ):
        super().__init__(message)
        self.prompt = prompt
        self.reply = reply
        self.problems = problems or []


class Planner(ABC):
    """Turns a request into a `Plan`. Implementations: symbolic (offline, default) and LLM."""

    name: str = "planner"

    @abstractmethod
    def plan(self, request: PlanningRequest) -> Plan:
        """Propose a plan, or raise `PlanningError` with the evidence."""
