"""The instruction grammar of the offline planner: plain English to goal predicates.

Sentences (case and articles are ignored; chain them with "then"):

    pick up X                       -> holding(X)
    put | place | move X on|onto Y  -> on(X, Y)       (Y a box or plate)
    put | place | move X in|into Y  -> in(X, Y)       (Y a bowl or cup)
    put X on the table              -> on_table(X)
    stack X on Y                    -> on(X, Y)
    stack [three|all] blocks [largest|smallest at the bottom]
    pour X into Y                   -> poured(X, Y)
    push X left|right|forward|back [by N cm]
    clear Y                         -> everything on or in Y goes on the table
    release | let go                -> gripper_empty
    go home                         -> at home

Noun phrases: "the red cube", "the large bowl", "all green blocks", "both cups", "three
blocks", or an object's own name. Kinds: block/cube/box, cylinder/can, cup/mug, bowl,
plate/dish. Sizes: large/big/largest/biggest, small/smallest. A phrase that matches no
object, or a singular one that matches several, is an error that lists the candidates.

A name never hijacks a description: where an object's name is also a word of the grammar
(a box named ``plate``, a cube named ``red``) and the word read as a description does not
pick out that very object alone, the phrase is ambiguous and refused, naming the
candidates; so is "the table" when an object is named ``table``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from skillstack.robot.scene import COLORS
from skillstack.skills.world import ObjectState, Predicate, WorldState

KIND_WORDS = {
    "block": "box",
    "blocks": "box",
    "cube": "box",
    "cubes": "box",
    "box": "box",
    "boxes": "box",
    "cylinder": "cylinder",
    "cylinders": "cylinder",
    "can": "cylinder",
    "cans": "cylinder",
    "cup": "cup",
    "cups": "cup",
    "mug": "cup",
    "mugs": "cup",
    "bowl": "bowl",
    "bowls": "bowl",
    "plate": "plate",
    "plates": "plate",
    "dish": "plate",
    "object": None,
    "objects": None,
    "thing": None,
    "things": None,
    "item": None,
    "items": None,
}
PLURALS = {w for w in KIND_WORDS if w.endswith("s") and w not in ("box",)} | {"boxes"}
COUNTS = {"two": 2, "three": 3, "four": 4, "five": 5, "both": 2}
LARGE = {"large", "big", "largest", "biggest", "larger", "bigger"}
SMALL = {"small", "little", "smallest", "smaller"}
DIRECTIONS = {
    "left": 90.0,
    "right": -90.0,
    "forward": 0.0,
    "forwards": 0.0,
    "away": 0.0,
    "back": 180.0,
    "backward": 180.0,
    "backwards": 180.0,
    "closer": 180.0,
}
DEFAULT_PUSH = 0.08  # m, when no distance is said
FILLER = {"the", "a", "an", "please", "robot", "of", "top", "some"}
MAX_INSTRUCTION_CHARS = 1000  # longer instructions are refused
MAX_LISTED = 12  # objects listed in one error message


class InstructionError(ValueError):
    """An instruction outside the grammar, or naming objects that are not there."""


@dataclass(frozen=True)
class Clause:
    """One sentence: goal predicates to reach, in order, before the next clause starts."""

    text: str
    goals: tuple[Predicate, ...]


def parse_instruction(instruction: str, world: WorldState) -> list[Clause]:
    """Split on "then" and parse each sentence into goal predicates."""
    if not isinstance(instruction, str):
        raise InstructionError(f"an instruction is text, not {type(instruction).__name__}")
    text = " ".join(instruction.split()).lower()
    if not text:
        raise InstructionError("the instruction is empty")
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise InstructionError(
            f"the instruction has {len(text)} characters; at most {MAX_INSTRUCTION_CHARS}"
        )
    parts = [p.strip(" ,.;") for p in re.split(r"\bthen\b|;", text) if p.strip(" ,.;")]
    parts = [re.sub(r"^(and|,)\s+", "", p) for p in parts]
    return [Clause(p, tuple(_parse_clause(p, world))) for p in parts]


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9_.\-]+", text) if w not in FILLER]


def _parse_clause(text: str, world: WorldState) -> list[Predicate]:
    w = _words(text)
    if not w:
        raise InstructionError(f"cannot read {text!r}")
    verb, rest = w[0], w[1:]
    if verb in ("pick", "grasp", "grab", "take", "lift"):
        rest = rest[1:] if rest and rest[0] == "up" else rest
        return [("holding", o.name) for o in _resolve(rest, world)]
    if verb in ("put", "place", "move", "set", "drop") and rest:
        return _put(rest, world, text)
    if verb == "stack":
        return _stack(rest, world, text)
    if verb == "pour":
        src, _, dst = _split(rest, ("into", "in"), text)
        source, target = _one(src, world), _one(dst, world)
        return [("poured", source.name, target.name)]
    if verb == "push":
        return _push(rest, world, text)
    if verb in ("clear", "empty"):
        # Everything on or in it goes to the table (not just into the hand).
        target = _one(rest, world)
        on_it = sorted(
            p[1] for p in world.predicates if p[0] in ("on", "in") and p[2] == target.name
        )
        return [("on_table", name) for name in on_it] or [("cleared", target.name)]
    if verb in ("release", "open") or (verb == "let" and rest[:1] == ["go"]):
        return [("gripper_empty",)]
    if verb in ("home", "go", "return") and "home" in w:
        return [("home",)]
    raise InstructionError(
        f"cannot read {text!r}: sentences start with pick up, put, place, stack, pour, push, "
        "clear, release or go home (chain them with 'then')"
    )


def _split(words: list[str], separators: tuple[str, ...], text: str) -> tuple[list, str, list]:
    for i, word in enumerate(words):
        if word in separators or (word == "on" and "on" in separators):
            rest = words[i + 1 :]
            if rest and rest[0] in ("to", "onto", "into"):
                rest = rest[1:]
            return words[:i], word, rest
    raise InstructionError(f"cannot read {text!r}: expected one of {', '.join(separators)}")


def _put(rest: list[str], world: WorldState, text: str) -> list[Predicate]:
    what, prep, where = _split(rest, ("on", "onto", "in", "into", "inside"), text)
    objects = _resolve(what, world)
    if (where in (["table"], ["down"]) and "table" not in world.objects) or not where:
        return [("on_table", o.name) for o in objects]
    if where == ["table"] and "table" in world.objects:
        table = world.object("table")
        raise InstructionError(
            f"'table' is ambiguous: the table top or object table (a {table.color} "
            f"{table.kind}); say 'the {table.color} {table.kind}' or rename the object"
        )
    target = _one(where, world)
    relation = "in" if target.is_container else "on"
    if prep in ("in", "into", "inside") and not target.is_container:
        raise InstructionError(f"{target.name} is a {target.kind}, not a container")
    return [(relation, o.name, target.name) for o in objects if o.name != target.name]


def _stack(rest: list[str], world: WorldState, text: str) -> list[Predicate]:
    if any(word in ("on", "onto") for word in rest):
        what, _, where = _split(rest, ("on", "onto"), text)
        return [("on", _one(what, world).name, _one(where, world).name)]
    order = (
        "large"
        if any(word in LARGE for word in rest)
        else "small"
        if any(word in SMALL for word in rest)
        else "large"
    )
    noun = [word for word in rest if word not in LARGE | SMALL | {"at", "bottom", "first", "on"}]
    objects = _resolve(noun, world, plural_default=True)
    if len(objects) < 2:
        raise InstructionError(
            f"stacking needs at least two objects; {text!r} names {len(objects)}"
        )
    objects.sort(key=_volume, reverse=(order == "large"))
    return [("on", upper.name, lower.name) for lower, upper in itertools.pairwise(objects)]


def _push(rest: list[str], world: WorldState, text: str) -> list[Predicate]:
    direction = next((DIRECTIONS[word] for word in rest if word in DIRECTIONS), None)
    if direction is None:
        raise InstructionError(f"cannot read {text!r}: push left, right, forward or back")
    distance = DEFAULT_PUSH
    match = re.search(r"(\d+(?:\.\d+)?)\s*(cm|mm|m)\b", text)
    if match:
        value, unit = float(match.group(1)), match.group(2)
        distance = value * {"cm": 0.01, "mm": 0.001, "m": 1.0}[unit]
    noun = [
        word
        for word in rest
        if word not in DIRECTIONS
        and word not in ("by", "to")
        and not re.fullmatch(r"\d+(\.\d+)?(cm|mm|m)?", word)
        and word not in ("cm", "mm", "m")
    ]
    obj = _one(noun, world)
    return [("pushed", obj.name, direction, round(distance, 4))]


def _volume(o: ObjectState) -> float:
    if o.kind == "box":
        return o.size[0] * o.size[1] * o.size[2]
    return o.size[0] ** 2 * o.size[1]


def _one(words: list[str], world: WorldState) -> ObjectState:
    found = _resolve(words, world)
    if len(found) != 1:
        raise InstructionError(
            f"{_phrase(words)} could be any of {_names(found)}; say which (by colour or size)"
        )
    return found[0]


def _resolve(
    words: list[str], world: WorldState, plural_default: bool = False
) -> list[ObjectState]:
    """Objects a noun phrase refers to (several for 'all ...', plurals and counts)."""
    words = [w for w in words if w not in ("and", ",")]
    if not words:
        raise InstructionError("an object is missing from the instruction")
    names = [w for w in words if w in world.objects]
    if names and len(names) == len(words):
        for name in names:
            check_unambiguous(name, world)
        return [world.object(n) for n in names]
    matches = _describe(words, world, plural_default)
    for name in names:  # a name inside a description ("the red plate", plate a box)
        named = world.object(name)
        if named not in matches and _is_grammar_word(name) and _fits(named, words, name):
            raise InstructionError(
                f"{_phrase(words)} is ambiguous: {name!r} is also the name of object {name} "
                f"(a {named.color} {named.kind}); candidates: {_names([named, *matches])}; "
                "say which by its name alone or by colour and kind"
            )
    return matches


def _fits(o: ObjectState, words: list[str], skip: str) -> bool:
    """Whether ``o`` fits the kind and colour words of ``words`` other than ``skip``."""
    rest = [w for w in words if w != skip]
    kinds = [KIND_WORDS[w] for w in rest if w in KIND_WORDS and KIND_WORDS[w] is not None]
    colors = [w for w in rest if w in COLORS]
    return (not kinds or o.kind == kinds[0]) and (not colors or o.color in colors)


def _is_grammar_word(word: str) -> bool:
    return (
        word in KIND_WORDS
        or word in COLORS
        or word in LARGE | SMALL
        or word in COUNTS
        or word in ("all", "every", "each")
    )


def check_unambiguous(name: str, world: WorldState) -> None:
    """Refuse an object's name that is also a word of the grammar where the word, read as a
    description, would not pick out that object alone (a box named "plate" among plates)."""
    if not _is_grammar_word(name):
        return
    named = world.object(name)
    try:
        described = _describe([name], world)
    except InstructionError:  # several fit the word: all of them are candidates
        try:
            described = _describe([name], world, plural_default=True)
        except InstructionError:
            described = []
    if described == [named]:
        return  # the cup named "cup" is the only cup: both readings agree
    others = [o for o in described if o is not named]
    meaning = (
        f"{_names(others)} {'is' if len(others) == 1 else 'are'} what the word describes"
        if others
        else "nothing here fits the word as a description"
    )
    raise InstructionError(
        f"{name!r} is ambiguous: it is the name of object {name} (a {named.color} "
        f"{named.kind}), and {meaning}; candidates: {_names([named, *others])}; say which "
        "by colour and kind (e.g. 'the " + f"{named.color} {named.kind}')"
    )


def _phrase(words: list[str]) -> str:
    text = " ".join(words)
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _names(objects: list[ObjectState]) -> str:
    shown = ", ".join(o.name for o in objects[:MAX_LISTED])
    return shown + (f" and {len(objects) - MAX_LISTED} more" if len(objects) > MAX_LISTED else "")


def _inventory(objects: list[ObjectState]) -> str:
    shown = ", ".join(f"{o.name} ({o.color} {o.kind})" for o in objects[:MAX_LISTED])
    return shown + (f" and {len(objects) - MAX_LISTED} more" if len(objects) > MAX_LISTED else "")


def _describe(
    words: list[str], world: WorldState, plural_default: bool = False
) -> list[ObjectState]:
    """The objects a description (kinds, colours, sizes, counts; no names) refers to."""
    objects = list(world.objects.values())
    count = next((COUNTS[w] for w in words if w in COUNTS), None)
    every = any(w in ("all", "every", "each") for w in words) or (plural_default and count is None)
    kinds = [KIND_WORDS[w] for w in words if w in KIND_WORDS]
    plural = any(w in PLURALS for w in words)
    colors = [w for w in words if w in COLORS]
    sizes = [w for w in words if w in LARGE | SMALL]
    unknown = [
        w
        for w in words
        if w not in KIND_WORDS
        and w not in COLORS
        and w not in LARGE | SMALL
        and w not in COUNTS
        and w not in ("all", "every", "each")
        and w not in world.objects
    ]
    if unknown:
        raise InstructionError(
            f"do not know {_phrase(unknown)}; objects here: {_inventory(objects)}"
        )
    matches = [
        o
        for o in objects
        if (not kinds or kinds[0] is None or o.kind == kinds[0])
        and (not colors or o.color in colors)
    ]
    if not matches:
        raise InstructionError(f"no {_phrase(words)} here; objects: {_inventory(objects)}")
    if sizes and len(matches) > 1:
        matches.sort(key=_volume, reverse=sizes[0] in LARGE)
        if not (every or plural or count):
            return matches[:1]
    if count is not None:
        if len(matches) < count:
            raise InstructionError(f"asked for {count} but found {len(matches)}: {_names(matches)}")
        return matches[:count]
    if every or plural:
        return matches
    if len(matches) > 1:
        raise InstructionError(
            f"{_phrase(words)} could be any of {_names(matches)}; say which (by colour or size)"
        )
    return matches
