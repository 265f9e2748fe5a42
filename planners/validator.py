"""Check a proposed plan before anything moves.

Every call must name a registered skill, carry parameters that match its schema and ranges,
and reference objects that exist; and a symbolic roll-out of the skills' preconditions and
effects over the world state must hold for the whole plan. The problems come back as a list
of sentences, each naming the step, for a person to read or a language model to repair.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, fields, replace
from typing import Any

from skillstack.planners.types import Plan
from skillstack.skills.base import Failure, Skill
from skillstack.skills.params import ObjectName, ParameterError
from skillstack.skills.world import ObjectState, Predicate, WorldState

MAX_CALLS = 40  # a plan longer than this is refused outright
# Refusals the symbolic roll-out already decides (on predicted predicates, which a check on
# the observed geometry would get wrong for later steps).
SYMBOLIC_FAILURES = (Failure.PRECONDITION_FAILED, Failure.UNKNOWN_OBJECT)


@dataclass(frozen=True)
class SymbolicWorld:
    """A world of predicates: what the roll-out tracks between steps (no geometry)."""

    objects: dict[str, ObjectState]
    predicates: frozenset[Predicate]
    contents: dict[str, int]
    held: str | None

    @staticmethod
    def from_world(world: WorldState) -> SymbolicWorld:
        """The symbolic view of an observed world."""
        return SymbolicWorld(
            dict(world.objects), world.predicates, dict(world.contents), world.held
        )

    def holds(self, *predicate) -> bool:
        """Whether ``predicate`` holds."""
        return tuple(predicate) in self.predicates

    def object(self, name: str) -> ObjectState:
        """The object called ``name`` (`KeyError` listing the objects)."""
        try:
            return self.objects[name]
        except KeyError:
            raise KeyError(f"no object {name!r}; objects: {', '.join(self.objects)}") from None

    def apply(self, add: set[Predicate], delete: set[Predicate]) -> SymbolicWorld:
        """The world after an action with these effects."""
        preds = (self.predicates - delete) | add
        held = next((p[1] for p in preds if p[0] == "holding"), None)
        contents = {p[1]: p[2] for p in preds if p[0] == "contains"}
        return replace(self, predicates=frozenset(preds), held=held, contents=contents)


def object_references(skill: Skill, params: Any) -> list[str]:
    """Values of a parsed parameter set that name objects (plus place's target)."""
    hints = typing.get_type_hints(type(params))
    refs = [getattr(params, f.name) for f in fields(params) if hints[f.name] is ObjectName]
    if skill.name == "place" and params.target != "table":
        refs.append(params.target)
    return refs


def validate_plan(plan: Plan, world: WorldState, skills: dict[str, Skill]) -> list[str]:
    """Every problem with ``plan``; an empty list means it may be executed."""
    if not plan.calls:
        return ["the plan is empty"]
    if len(plan.calls) > MAX_CALLS:
        return [f"the plan has {len(plan.calls)} steps; at most {MAX_CALLS} are allowed"]
    problems: list[str] = []
    state = SymbolicWorld.from_world(world)
    for i, call in enumerate(plan.calls, 1):
        where = f"step {i} ({call.skill})"
        skill = skills.get(call.skill)
        if skill is None:
            problems.append(
                f"{where}: unknown skill {call.skill!r}; skills: {', '.join(sorted(skills))}"
            )
            continue
        try:
            params = skill.parse(call.params)
        except ParameterError as exc:
            problems.extend(f"{where}: {p}" for p in exc.problems)
            continue
        missing = [r for r in object_references(skill, params) if r not in world.objects]
        if missing:
            problems.extend(
                f"{where}: no object named {m!r}; objects: {', '.join(world.objects)}"
                for m in missing
            )
            continue
        unmet = [p for p in skill.preconditions(params) if not state.holds(*p)]
        if unmet:
            text = ", ".join(_fmt(p) for p in unmet)
            problems.append(f"{where}: needs {text}, which will not hold at that point")
            continue
        # The skill's own pre-motion checks (reach, workspace, table, fit) on the predicted
        # world: what it would refuse at execution is refused here, before anything moves.
        predicted = replace(world, held=state.held, contents=dict(state.contents))
        refusal = skill.check(predicted, params)
        if refusal is not None and refusal.failure not in SYMBOLIC_FAILURES:
            problems.append(f"{where}: {skill.name} would refuse it: {refusal.message}")
            continue
        add, delete = skill.effects(state, params)
        state = state.apply(add, delete)
    return problems


def rollout(plan: Plan, world: WorldState, skills: dict[str, Skill]) -> SymbolicWorld:
    """The symbolic world after a (valid) plan."""
    state = SymbolicWorld.from_world(world)
    for call in plan.calls:
        skill = skills[call.skill]
        params = skill.parse(call.params)
        add, delete = skill.effects(state, params)
        state = state.apply(add, delete)
    return state


def _fmt(p: Predicate) -> str:
    return f"{p[0]}({', '.join(map(str, p[1:]))})" if len(p) > 1 else p[0]
