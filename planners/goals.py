"""What a run must achieve, stated before anything moves and checked on the final world.

A run's success is never "every step succeeded": it is that the instruction's goal holds in
the world model at the end. The goal comes from the instruction itself, through the
grammar (`planners.language.parse_instruction`), whichever planner proposed the calls, so a
plan from a language model that only sends the arm home does not "succeed" at "put the red
cube on the plate". Two kinds of goal facts:

* **state goals** (``on(red_cube, plate)``, ``in(...)``, ``cleared(plate)``): checked by
  looking at the final world (`goal_holds` on the world model's predicates);
* **action goals** (``poured(cup, bowl)``, ``pushed(cube, ...)``, ``home()``): done when a
  step of that skill with those objects succeeded, the skill having verified its own effect
  on the world (particles in the target, the distance pushed, the posture reached).

Where the grammar cannot read the instruction, a planner that understands language (an
LLM) states the goal with its plan, as facts in the same vocabulary (`GOAL_PREDICATES`);
`parse_goal` validates them like any call (known predicate, right arity, objects that
exist) and the run is then judged on them (``goal_source`` "planner"). With no goal at
all the run reports ``"goal": "unverified"`` and never success.

Before anything moves, `Goal.missing_after` rolls the plan out over the predicted world:
a plan that would not achieve the goal is refused with the facts it leaves unmet, so a
"go home" plan for "put the cube on the plate" goes back to the planner as feedback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from skillstack.planners.language import InstructionError, check_unambiguous, parse_instruction
from skillstack.planners.symbolic import ACTION_GOALS, action_done, goal_holds
from skillstack.planners.types import Plan, StepRecord
from skillstack.planners.validator import SymbolicWorld, rollout
from skillstack.skills.base import Skill
from skillstack.skills.world import Predicate, WorldState

UNVERIFIED = "unverified"

# The facts a stated goal may use: name -> (argument roles, meaning). Objects are named as in
# the world state; the grammar's goals use the same vocabulary.
GOAL_PREDICATES: dict[str, tuple[tuple[str, ...], str]] = {
    "holding": (("object",), "the gripper holds the object"),
    "gripper_empty": ((), "the gripper holds nothing"),
    "on": (("object", "surface"), "the object rests on the surface (a box or a plate)"),
    "in": (("object", "container"), "the object is inside the container (a cup or a bowl)"),
    "on_table": (("object",), "the object stands on the table"),
    "clear": (("object",), "nothing rests on the object"),
    "cleared": (("surface",), "nothing is on or in it"),
    "poured": (("source", "target"), "the source's contents were poured into the target"),
    "pushed": (("object",), "the object was pushed"),
    "home": ((), "the arm went to its home posture"),
}
MAX_GOAL_FACTS = 12  # a stated goal longer than this is refused outright
FACT_CHARS = 200  # how much of one unreadable fact goes into a message
_FACT = re.compile(r"^\s*([A-Za-z_]+)\s*(?:\((.*)\))?\s*$", re.DOTALL)


@dataclass(frozen=True)
class Goal:
    """The facts a run must make true: ``state`` ones by looking, ``actions`` by doing."""

    state: tuple[Predicate, ...] = ()
    actions: tuple[Predicate, ...] = ()
    source: str = "instruction"  # where it came from: "instruction" (the grammar), "planner"

    def describe(self) -> list[str]:
        """Each fact as text, e.g. ``on(red_cube, plate)``."""
        return [format_predicate(p) for p in (*self.state, *self.actions)]

    def unmet(self, world: WorldState, history: list[StepRecord]) -> list[str]:
        """The facts that do not hold in ``world`` after ``history`` (empty: achieved)."""
        return self.unmet_in(SymbolicWorld.from_world(world), history)

    def missing_after(
        self, plan: Plan, world: WorldState, skills: dict[str, Skill], history: list[StepRecord]
    ) -> list[str]:
        """The facts a (valid) ``plan`` would leave unmet, by the skills' predicted effects:
        state facts on the rolled-out world, action facts by the calls it makes."""
        done = [*history, *(StepRecord(call, True) for call in plan.calls)]
        return self.unmet_in(rollout(plan, world, skills), done)

    def unmet_in(self, state: SymbolicWorld, history: list[StepRecord]) -> list[str]:
        """The facts that do not hold in a symbolic ``state`` after ``history``."""
        missing = [p for p in self.state if not goal_holds(p, state)]
        missing += [p for p in self.actions if not action_done(p, history)]
        return [format_predicate(p) for p in missing]


def instruction_goal(instruction: str, world: WorldState) -> Goal | None:
    """The goal the grammar reads in ``instruction`` about ``world``; None where it cannot."""
    try:
        clauses = parse_instruction(instruction, world)
    except InstructionError:
        return None
    facts = [g for c in clauses for g in c.goals]
    if not facts:
        return None
    return Goal(
        state=tuple(g for g in facts if g[0] not in ACTION_GOALS),
        actions=tuple(g for g in facts if g[0] in ACTION_GOALS),
    )


def parse_goal(facts: object, world: WorldState) -> tuple[Goal | None, list[str]]:
    """A planner's stated goal (a list of facts like ``"on(red_cube, plate)"``) checked
    against the vocabulary and the world: ``(goal, [])``, or ``(None, problems)``."""
    if isinstance(facts, str):
        facts = [facts]
    if not isinstance(facts, list) or not facts:
        return None, ['the goal must be a non-empty list of facts like "on(red_cube, plate)"']
    if len(facts) > MAX_GOAL_FACTS:
        return None, [f"the goal has {len(facts)} facts; at most {MAX_GOAL_FACTS} are allowed"]
    parsed: list[Predicate] = []
    problems: list[str] = []
    for i, fact in enumerate(facts, 1):
        predicate, problem = _parse_fact(fact, world)
        if problem:
            problems.append(f"goal fact {i}: {problem}")
        elif predicate is not None:
            parsed.append(predicate)
    if problems:
        return None, problems
    unique = tuple(dict.fromkeys(parsed))
    goal = Goal(
        state=tuple(p for p in unique if p[0] not in ACTION_GOALS),
        actions=tuple(p for p in unique if p[0] in ACTION_GOALS),
        source="planner",
    )
    return goal, []


def goal_vocabulary() -> str:
    """The facts a goal may state, one per line, for a prompt or a tool description."""
    lines = []
    for name, (roles, meaning) in GOAL_PREDICATES.items():
        lines.append(f"{name}({', '.join(roles)}): {meaning}")
    return "\n".join(lines)


def _parse_fact(fact: object, world: WorldState) -> tuple[Predicate | None, str | None]:
    if not isinstance(fact, str):
        return None, f'expected text like "on(red_cube, plate)", got {type(fact).__name__}'
    shown = fact[:FACT_CHARS] + ("..." if len(fact) > FACT_CHARS else "")
    match = _FACT.match(fact) if len(fact) <= FACT_CHARS else None
    if match is None:
        return None, f"cannot read {shown!r}; write facts like on(red_cube, plate)"
    name, inner = match.group(1), match.group(2)
    if name not in GOAL_PREDICATES:
        return None, f"unknown fact {name!r}; facts: {', '.join(GOAL_PREDICATES)}"
    args = [a.strip().strip("'\"") for a in inner.split(",")] if inner and inner.strip() else []
    roles = GOAL_PREDICATES[name][0]
    if len(args) != len(roles):
        return None, f"{name} takes {len(roles)} argument(s) ({', '.join(roles)}), got {shown!r}"
    unknown = [a for a in args if a not in world.objects]
    if unknown:
        names = ", ".join(repr(a[:40]) for a in unknown)
        return None, f"no object named {names}; objects: {', '.join(world.objects)}"
    for arg in args:  # a box named "plate" among plates: which did the model mean?
        try:
            check_unambiguous(arg, world)
        except InstructionError as exc:
            return None, f"in {shown!r}: {exc}"
    return (name, *args), None


def format_predicate(p: Predicate) -> str:
    """``("on", "cube", "plate")`` -> ``on(cube, plate)``."""
    return f"{p[0]}({', '.join(str(a) for a in p[1:])})"
