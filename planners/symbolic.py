"""The offline planner: grammar → goal predicates → search over skill preconditions/effects.

No network and no model. `planners.language` turns the instruction into goals, one clause
at a time; an A* search over symbolic worlds, whose actions are the registered skills
grounded on the scene's objects (their `preconditions` and `effects`), finds the shortest
sequence of calls reaching each clause's goals; finally the geometric parameters the
symbols leave open (where on the table, where in a bowl) are filled in.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time

from skillstack.planners.language import InstructionError, parse_instruction
from skillstack.planners.types import (
    Plan,
    Planner,
    PlanningError,
    PlanningRequest,
    SkillCall,
    StepRecord,
)
from skillstack.planners.validator import SymbolicWorld
from skillstack.robot.scene.model import CONTAINER_WALL
from skillstack.skills.base import Skill
from skillstack.skills.library.geometry import GRIPPER_MARGIN, top_grasp
from skillstack.skills.world import Predicate, WorldState

MAX_EXPANSIONS = 20_000  # search nodes per clause before giving up
GRASPABLE = ("box", "cylinder", "cup")
TABLE_RING = (0.36, 0.62)  # m, radii searched for free table spots
SPOT_CLEARANCE = 0.03  # m, between a table spot and its neighbours
CONTAINER_MARGIN = 0.006  # m, kept between an object and a container's wall
ACTION_GOALS = ("poured", "pushed", "home")


class SymbolicPlanner(Planner):
    """The default planner: see the module docstring."""

    name = "symbolic"

    def plan(self, request: PlanningRequest) -> Plan:
        """A plan for the instruction from the current world, or `PlanningError`."""
        t0 = time.perf_counter()
        try:
            clauses = parse_instruction(request.instruction, request.world)
        except InstructionError as exc:
            raise PlanningError(str(exc)) from exc
        state = SymbolicWorld.from_world(request.world)
        calls: list[SkillCall] = []
        for clause in clauses:
            for goal in clause.goals:
                if goal[0] in ACTION_GOALS:
                    if action_done(goal, request.history):
                        continue
                    new, state = self._action_goal(goal, state, request.skills)
                else:
                    new, state = self._search([goal], state, request.skills, clause.text)
                calls += new
        calls = _fill_geometry(calls, request.world)
        return Plan(calls, self.name, (time.perf_counter() - t0) * 1e3)

    def goals(self, instruction: str, world: WorldState) -> list[Predicate]:
        """The state goals of an instruction (those that can be checked by looking)."""
        clauses = parse_instruction(instruction, world)
        return [g for c in clauses for g in c.goals if g[0] not in ACTION_GOALS]

    # -- search ---------------------------------------------------------------------------
    def _search(
        self, goals: list[Predicate], start: SymbolicWorld, skills: dict[str, Skill], text: str
    ) -> tuple[list[SkillCall], SymbolicWorld]:
        """A* (weighted) from ``start`` to a world where every goal holds."""
        counter = itertools.count()
        frontier: list[tuple[float, int, SymbolicWorld, list[SkillCall]]] = [
            (0.0, next(counter), start, [])
        ]
        seen = {start.predicates}
        expansions = 0
        while frontier:
            _, _, state, path = heapq.heappop(frontier)
            unmet = [g for g in goals if not goal_holds(g, state)]
            if not unmet:
                return path, state
            expansions += 1
            if expansions > MAX_EXPANSIONS:
                break
            for call, nxt in self._successors(state, skills):
                if nxt.predicates in seen:
                    continue
                seen.add(nxt.predicates)
                h = sum(not goal_holds(g, nxt) for g in goals)
                heapq.heappush(
                    frontier, (len(path) + 1 + 2.0 * h, next(counter), nxt, [*path, call])
                )
        raise PlanningError(
            f"no sequence of skills achieves {text!r} from here "
            f"(goals: {', '.join(_fmt(g) for g in goals)})"
        )

    def _successors(self, state: SymbolicWorld, skills: dict[str, Skill]):
        """Applicable grounded skill calls and the worlds they lead to."""
        for name, params in _candidate_calls(state):
            skill = skills.get(name)
            if skill is None:
                continue
            parsed = skill.parse(params)
            if not all(state.holds(*p) for p in skill.preconditions(parsed)):
                continue
            add, delete = skill.effects(state, parsed)
            yield SkillCall(name, params), state.apply(add, delete)

    def _action_goal(self, goal: Predicate, state: SymbolicWorld, skills: dict[str, Skill]):
        """Calls that perform an action goal (pour, push, home), after any set-up."""
        calls: list[SkillCall] = []
        if goal[0] == "poured":
            source, target = goal[1], goal[2]
            if not state.holds("holding", source):
                calls, state = self._search(
                    [("holding", source)], state, skills, f"pick up {source}"
                )
            call = SkillCall("pour", {"source": source, "target": target})
        elif goal[0] == "pushed":
            obj, direction, distance = goal[1], goal[2], goal[3]
            if state.held is not None:
                calls, state = self._search(
                    [("on_table", state.held)], state, skills, "free the gripper"
                )
            call = SkillCall("push", {"object": obj, "direction": direction, "distance": distance})
        else:
            call = SkillCall("home", {})
        skill = skills[call.skill]
        parsed = skill.parse(call.params)
        unmet = [p for p in skill.preconditions(parsed) if not state.holds(*p)]
        if unmet:
            raise PlanningError(f"cannot {call}: needs {', '.join(_fmt(p) for p in unmet)}")
        add, delete = skill.effects(state, parsed)
        return [*calls, call], state.apply(add, delete)


def _candidate_calls(state: SymbolicWorld):
    """Grounded calls worth trying: grasps when empty-handed, places and pours when holding."""
    objects = state.objects
    if state.held is None:
        for o in objects.values():
            if o.kind in GRASPABLE and top_grasp(o)[0] <= 0.08 - 2 * GRIPPER_MARGIN:
                yield "grasp", {"object": o.name}
        return
    held = objects[state.held]
    yield "place", {"object": held.name, "target": "table"}
    for o in objects.values():
        if o.name == held.name:
            continue
        if o.is_surface and state.holds("clear", o.name):
            yield "place", {"object": held.name, "target": o.name}
        elif o.is_container and held.radius < o.size[0] / 2 - 0.01:
            yield "place", {"object": held.name, "target": o.name}
        if held.kind == "cup" and o.is_container and state.contents.get(held.name, 0) > 0:
            yield "pour", {"source": held.name, "target": o.name}


def goal_holds(goal: Predicate, state: SymbolicWorld) -> bool:
    """Whether a state goal holds (``cleared(y)``: nothing on or in y)."""
    if goal[0] == "cleared":
        return not any(p[0] in ("on", "in") and p[2] == goal[1] for p in state.predicates)
    return state.holds(*goal)


def action_done(goal: Predicate, history: list[StepRecord]) -> bool:
    """An action goal already carried out successfully (so a replan does not repeat it)."""
    for step in history:
        if not step.success:
            continue
        p = step.call.params
        if (
            goal[0] == "poured"
            and step.call.skill == "pour"
            and (p.get("source"), p.get("target")) == goal[1:]
        ):
            return True
        if goal[0] == "pushed" and step.call.skill == "push" and p.get("object") == goal[1]:
            return True
        if goal[0] == "home" and step.call.skill == "home":
            return True
    return False


def _fill_geometry(calls: list[SkillCall], world: WorldState) -> list[SkillCall]:
    """Choose table spots and places in containers, tracking where things will end up.

    Several objects going into one container are spread on a ring inside it (by the number
    that will end up there), so that none lands on another.
    """
    where = {name: (o.position[0], o.position[1]) for name, o in world.objects.items()}
    radius = {name: o.radius for name, o in world.objects.items()}
    incoming: dict[str, list[str]] = {}
    for call in calls:
        if call.skill != "place":
            continue
        target = call.params["target"]
        if target != "table" and world.objects[target].is_container:
            incoming.setdefault(target, []).append(call.params["object"])
    out, slot = [], dict.fromkeys(incoming, 0)
    for call in calls:
        params = dict(call.params)
        if call.skill == "place":
            obj, target = params["object"], params["target"]
            if target == "table":
                spot = _free_spot(obj, where, radius)
                params["position"] = [round(spot[0], 3), round(spot[1], 3)]
                where[obj] = spot
            else:
                if target in incoming and len(incoming[target]) > 1:
                    params["offset"] = _ring_offset(
                        world.objects[target], incoming[target], slot[target], radius
                    )
                    slot[target] += 1
                where[obj] = where[target]
        out.append(SkillCall(call.skill, params))
    return out


def _ring_offset(container, items: list[str], k: int, radius: dict[str, float]) -> list[float]:
    """Offset of the k-th of ``items`` on a ring inside ``container``."""
    inner = container.size[0] / 2 - CONTAINER_WALL
    ring = max(0.0, inner - max(radius[i] for i in items) - CONTAINER_MARGIN)
    a = 2 * math.pi * k / len(items)
    return [round(ring * math.cos(a), 3), round(ring * math.sin(a), 3)]


def _free_spot(obj: str, where: dict[str, tuple], radius: dict[str, float]) -> tuple[float, float]:
    """The table spot farthest from every other object (deterministic grid search)."""
    best, best_score = (0.45, 0.0), -math.inf
    for r in (TABLE_RING[0], (TABLE_RING[0] + TABLE_RING[1]) / 2, TABLE_RING[1]):
        for k in range(-6, 7):
            a = k * 0.15
            p = (r * math.cos(a), r * math.sin(a))
            gaps = [math.dist(p, q) - radius[n] - radius[obj] for n, q in where.items() if n != obj]
            score = min(gaps, default=1.0) - 0.02 * abs(a)  # prefer the front, all else equal
            if score > best_score:
                best, best_score = p, score
    if best_score < SPOT_CLEARANCE:
        raise PlanningError(f"no free spot on the table for {obj}")
    return best


def _fmt(p: Predicate) -> str:
    return f"{p[0]}({', '.join(map(str, p[1:]))})" if len(p) > 1 else p[0]
