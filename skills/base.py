"""The `Skill` interface: typed parameters, preconditions, effects, a policy, a success check.

A skill is a parameterized template. Given the world state and validated parameters it

1. says whether it applies (`check`: symbolic preconditions and geometric limits, before
   anything moves),
2. declares its symbolic `effects` (what a planner may assume afterwards),
3. `plan`s a `Program` — a sequence of control-rate primitives, run by the executor at the
   robot's control rate — reporting which template it chose (top vs side grasp, ...),
4. `verify`s the outcome by measuring the world afterwards.

Failures are typed (`Failure`) and carry a message a person can act on.
"""

from __future__ import annotations

import typing
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, ClassVar

from skillstack.skills.params import ObjectName, parse, schema
from skillstack.skills.world import Predicate, WorldFacts, WorldState


class Failure(str, Enum):
    """Why a skill did not succeed."""

    INVALID_PARAMETERS = "invalid_parameters"  # wrong type, out of range, unknown key
    UNKNOWN_OBJECT = "unknown_object"  # a parameter names an object that does not exist
    PRECONDITION_FAILED = "precondition_failed"  # e.g. grasp while already holding something
    TOO_LARGE = "too_large"  # the object does not fit in the gripper
    INVALID_TARGET = "invalid_target"  # placing on something that is neither surface nor container
    UNREACHABLE = "unreachable"  # no joint configuration reaches a required pose
    GRASP_MISSED = "grasp_missed"  # the fingers closed on nothing
    OBJECT_SLIPPED = "object_slipped"  # the object left the hand while carried
    COLLISION = "collision"  # the arm touched something it should not have
    TIMEOUT = "timeout"
    SAFETY_STOP = "safety_stop"  # the safety filter refused commands
    SIM_DIVERGED = "sim_diverged"  # the physics became unstable; the episode is void
    SENSOR_FAULT = "sensor_fault"  # the arm's readings went stale or invalid; it was stopped
    MISSED_TARGET = "missed_target"  # the motion ran but the goal was not reached


class SkillFailure(Exception):
    """Raised inside the skill machinery to end an execution with a typed failure."""

    def __init__(self, failure: Failure, message: str):
        super().__init__(message)
        self.failure = failure
        self.message = message


@dataclass(frozen=True)
class Refusal:
    """Why a skill will not start: a failure code and a message."""

    failure: Failure
    message: str


@dataclass
class Outcome:
    """What `Skill.verify` measured."""

    success: bool
    failure: Failure | None = None
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class SkillResult:
    """The result of one execution, as reported to planners and benchmarks."""

    skill: str
    params: dict[str, Any]
    success: bool
    failure: Failure | None = None
    message: str = ""
    duration_s: float = 0.0  # simulated (robot) time from start to end of motion
    template: str = ""  # which template ran ("top", "side", ...)
    moved: bool = False  # whether any motion was commanded
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "skill": self.skill,
            "params": self.params,
            "outcome": "success"
            if self.success
            else (self.failure.value if self.failure else "failure"),
            "success": self.success,
            "failure": self.failure.value if self.failure else None,
            "message": self.message,
            "duration_s": round(self.duration_s, 4),
            "template": self.template,
            "moved": self.moved,
            "metrics": {k: round(float(v), 6) for k, v in self.metrics.items()},
        }


def result_from_dict(data: dict[str, Any]) -> SkillResult:
    """Inverse of `SkillResult.to_dict` (for results that crossed the network)."""
    failure = data.get("failure")
    return SkillResult(
        skill=data["skill"],
        params=dict(data.get("params", {})),
        success=bool(data["success"]),
        failure=Failure(failure) if failure else None,
        message=data.get("message", ""),
        duration_s=float(data.get("duration_s", 0.0)),
        template=data.get("template", ""),
        moved=bool(data.get("moved", True)),
        metrics=dict(data.get("metrics", {})),
    )


class Skill(ABC):
    """Base class of every skill (scripted or learned). Subclasses set the class attributes."""

    name: ClassVar[str]
    description: ClassVar[str]  # for people and language models: what it does, when to use it
    Params: ClassVar[type]  # a frozen dataclass declared with `skills.params.param`
    timeout_s: ClassVar[float] = 30.0  # simulated seconds
    templates: ClassVar[tuple[str, ...]] = ()

    def parse(self, raw: dict[str, Any] | None) -> Any:
        """Validate untrusted parameters; `ParameterError` lists every problem."""
        return parse(self.Params, raw, self.name)

    def schema(self) -> dict[str, Any]:
        """Name, description and JSON Schema of the parameters (an LLM tool definition)."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": schema(self.Params),
        }

    def preconditions(self, params: Any) -> list[Predicate]:
        """Symbolic predicates that must hold before the skill runs."""
        return []

    def effects(self, world: WorldFacts, params: Any) -> tuple[set[Predicate], set[Predicate]]:
        """Predicates the skill adds and deletes, for planners' symbolic roll-outs."""
        return set(), set()

    def check(self, world: WorldState, params: Any) -> Refusal | None:
        """Refuse before motion: unknown objects, unmet preconditions, geometric limits."""
        for value in _object_refs(params):
            if value not in world.objects:
                return Refusal(
                    Failure.UNKNOWN_OBJECT,
                    f"no object named {value!r}; objects: {', '.join(world.objects) or '(none)'}",
                )
        for pred in self.preconditions(params):
            if not world.holds(*pred):
                return Refusal(
                    Failure.PRECONDITION_FAILED,
                    f"{self.name} needs {_fmt(pred)}, which does not hold",
                )
        return None

    @abstractmethod
    def plan(self, world: WorldState, params: Any, ctx: Any) -> Any:
        """Return a `skills.program.Program` (raise `SkillFailure` if none exists)."""

    @abstractmethod
    def verify(self, before: WorldState, after: WorldState, params: Any, program: Any) -> Outcome:
        """Measure the outcome in the world after the program ran."""


def _object_refs(params: Any) -> list[str]:
    """The values of a parameter dataclass's `ObjectName` fields."""
    hints = typing.get_type_hints(type(params))
    return [getattr(params, f.name) for f in fields(params) if hints[f.name] is ObjectName]


def _fmt(pred: Predicate) -> str:
    return f"{pred[0]}({', '.join(map(str, pred[1:]))})" if len(pred) > 1 else pred[0]
