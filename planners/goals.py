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

An instruction the grammar cannot read has no goal here: the run then reports
``"goal": "unverified"`` and never success.
"""

from __future__ import annotations

from dataclasses import dataclass

from skillstack.planners.language import InstructionError, parse_instruction
from skillstack.planners.symbolic import ACTION_GOALS, action_done, goal_holds
from skillstack.planners.types import StepRecord
from skillstack.planners.validator import SymbolicWorld
from skillstack.skills.world import Predicate, WorldState

UNVERIFIED = "unverified"


@dataclass(frozen=True)
class Goal:
    """The facts a run must make true: ``state`` ones by looking, ``actions`` by doing."""

    state: tuple[Predicate, ...] = ()
    actions: tuple[Predicate, ...] = ()
    source: str = "instruction"  # where it came from: "instruction" (the grammar)

    def describe(self) -> list[str]:
        """Each fact as text, e.g. ``on(red_cube, plate)``."""
        return [format_predicate(p) for p in (*self.state, *self.actions)]

    def unmet(self, world: WorldState, history: list[StepRecord]) -> list[str]:
        """The facts that do not hold in ``world`` after ``history`` (empty: achieved)."""
        state = SymbolicWorld.from_world(world)
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


def format_predicate(p: Predicate) -> str:
    """``("on", "cube", "plate")`` -> ``on(cube, plate)``."""
    return f"{p[0]}({', '.join(str(a) for a in p[1:])})"
