"""Scene types: the table, the objects on it, and the constants that bound them."""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

ObjectKind = Literal["box", "cylinder", "cup", "bowl", "plate"]
KINDS: tuple[ObjectKind, ...] = ("box", "bowl", "cup", "cylinder", "plate")
SIZE_LAYOUT = {  # what `SceneObject.size` holds per kind, all in metres
    "box": "[sx, sy, sz]",
    "cylinder": "[diameter, height]",
    "cup": "[outer diameter, height]",
    "bowl": "[outer diameter, height]",
    "plate": "[diameter, thickness]",
}
COLORS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.1, 0.1, 1.0),
    "green": (0.1, 0.7, 0.2, 1.0),
    "blue": (0.1, 0.3, 0.85, 1.0),
    "yellow": (0.95, 0.85, 0.1, 1.0),
    "orange": (1.0, 0.55, 0.05, 1.0),
    "purple": (0.55, 0.2, 0.75, 1.0),
    "white": (0.95, 0.95, 0.95, 1.0),
    "black": (0.05, 0.05, 0.05, 1.0),
    "gray": (0.5, 0.5, 0.5, 1.0),
    "brown": (0.55, 0.35, 0.15, 1.0),
    "pink": (1.0, 0.6, 0.75, 1.0),
    "cyan": (0.1, 0.85, 0.9, 1.0),
}

MAX_OBJECT_SIZE = 0.4  # m, largest allowed extent of any object dimension
MAX_MASS = 5.0  # kg, heaviest allowed object
OVERLAP_TOLERANCE = 1e-3  # m, penetration (or table overhang) tolerated between shapes
REST_TOLERANCE = 5e-3  # m, gap under an object still counted as resting on its support
CONTAINER_WALL = 0.004  # m, wall thickness of cups and bowls
CONTAINER_FLOOR = 0.012  # m, floor thickness of cups and bowls (objects inside rest on it)
PARTICLE_RADIUS = 0.006  # m, radius of one `contents` particle
PACKING_FRACTION = 0.55  # fraction of a container's inner volume that particles can fill
MAX_NAME_LENGTH = 64  # characters in an object name
MAX_SCENE_NAME_LENGTH = 80  # characters in a scene name
DEFAULT_MASS = {"box": 0.1, "cylinder": 0.1, "cup": 0.15, "bowl": 0.3, "plate": 0.25}  # kg
DEFAULT_FRICTION = 0.9  # sliding friction coefficient of objects
# Bounds on untrusted scene input (files and their error messages).
MAX_SCENE_BYTES = 1_000_000  # bytes in a scene file
MAX_OBJECTS = 256  # objects in a scene file
MAX_YAML_NODES = 50_000  # scalars, lists and mappings in a scene file
MAX_YAML_DEPTH = 20  # nesting of lists and mappings in a scene file
MAX_PROBLEMS = 12  # problems listed in one SceneError (the rest are counted)
MAX_PROBLEM_CHARS = 240  # characters of one listed problem
MAX_SOURCE_CHARS = 200  # characters of the file name in a SceneError
NAME_PATTERN = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_NAME_LENGTH}}}")
SCENE_KEYS = frozenset({"name", "table", "objects"})
TABLE_KEYS = frozenset({"size", "center", "height", "friction"})
OBJECT_KEYS = frozenset({"name", "kind", "color", "size", "mass", "pose", "friction", "contents"})
REQUIRED_OBJECT_KEYS = ("name", "kind", "size", "pose")
POSE_KEYS = frozenset({"xyz", "yaw", "yaw_deg"})
# random_scene draws sizes (m, per dimension) and masses (kg) uniformly from these ranges.
RANDOM_SIZE_RANGES = {
    "box": ((0.035, 0.06),) * 3,
    "cylinder": ((0.04, 0.06), (0.05, 0.10)),
    "cup": ((0.06, 0.08), (0.08, 0.10)),
    "bowl": ((0.12, 0.16), (0.05, 0.07)),
    "plate": ((0.15, 0.20), (0.01, 0.02)),
}
RANDOM_MASS_RANGES = {
    "box": (0.05, 0.3),
    "cylinder": (0.05, 0.3),
    "cup": (0.1, 0.2),
    "bowl": (0.15, 0.35),
    "plate": (0.15, 0.35),
}


_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxtuple = 40, 40, 6, 6
_REPR.maxdict, _REPR.maxset, _REPR.maxlevel, _REPR.maxlong = 4, 4, 3, 30


def short(value: Any, limit: int = 60) -> str:
    """A ``repr`` of untrusted ``value`` of at most ``limit`` characters (nested containers,
    long strings and huge numbers abbreviated), safe to put in an error message."""
    try:
        text = _REPR.repr(value)
    except (ValueError, RecursionError, OverflowError):  # an int too long to print, ...
        text = f"<{type(value).__name__}>"
    text = " ".join(text.split()) if not text.isprintable() else text
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(line: str, limit: int) -> str:
    """``line`` on one line (whitespace runs collapsed), cut to ``limit`` characters."""
    line = " ".join(str(line).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class SceneError(ValueError):
    """An invalid scene; ``problems`` holds one human-readable line per problem found.

    The message is bounded whatever the input: at most `MAX_PROBLEMS` problems are listed
    (a last line counts the rest), each cut at `MAX_PROBLEM_CHARS` characters.
    """

    def __init__(self, problems: str | Sequence[str], source: str | None = None):
        listed = [problems] if isinstance(problems, str) else list(problems)
        extra = len(listed) - MAX_PROBLEMS
        listed = [clip(p, MAX_PROBLEM_CHARS) for p in listed[: MAX_PROBLEMS if extra > 0 else None]]
        if extra > 0:
            listed.append(f"... and {extra} more problems")
        self.problems: tuple[str, ...] = tuple(listed)
        self.source = None if source is None else clip(source, MAX_SOURCE_CHARS)
        source = self.source
        body = "\n".join(self.problems)
        super().__init__(f"{source}:\n{body}" if source else body)

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownObjectError(SceneError, KeyError):
    """`Scene.object` was asked for a name that is not in the scene (also a `KeyError`)."""


def nearest_color(rgba: Sequence[float]) -> str:
    """The name in `COLORS` whose rgb is closest (Euclidean) to ``rgba``."""
    rgb = np.asarray(rgba[:3], dtype=float)
    return min(COLORS, key=lambda n: float(np.sum((np.asarray(COLORS[n][:3]) - rgb) ** 2)))


@dataclass(frozen=True)
class Table:
    """The table the robot is mounted on; its top is the world plane z = 0."""

    size: tuple[float, float] = (1.0, 1.2)  # m, x and y extent of the table top
    center: tuple[float, float] = (0.45, 0.0)  # m, centre of the top in the world frame
    height: float = 0.75  # m, table top above the floor (visual only)
    friction: float = 0.8

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", tuple(float(v) for v in self.size))
        object.__setattr__(self, "center", tuple(float(v) for v in self.center))


@dataclass(frozen=True)
class SceneObject:
    """One rigid object on the table. ``size`` layout per kind is given by `SIZE_LAYOUT`.

    ``position`` is the world position of the object's bottom centre (a 2-tuple gets z = 0);
    ``color_name`` is filled with `nearest_color` when left empty; ``contents`` is the number of
    particles inside (cups only).
    """

    name: str
    kind: ObjectKind
    size: tuple[float, ...]
    position: tuple[float, float, float]
    yaw: float = 0.0  # rad about world z
    color: tuple[float, float, float, float] = COLORS["gray"]  # rgba in [0, 1]
    color_name: str = ""
    mass: float = 0.1  # kg
    friction: float = DEFAULT_FRICTION
    contents: int = 0

    def __post_init__(self) -> None:
        position = tuple(float(v) for v in self.position)
        color = tuple(float(v) for v in self.color)
        object.__setattr__(self, "size", tuple(float(v) for v in self.size))
        object.__setattr__(self, "position", position + (0.0,) * (len(position) == 2))
        object.__setattr__(self, "color", color + (1.0,) * (len(color) == 3))
        object.__setattr__(self, "yaw", float(self.yaw))
        if not self.color_name:
            object.__setattr__(self, "color_name", nearest_color(self.color))

    def height(self) -> float:
        """Vertical extent in metres."""
        return self.size[2] if self.kind == "box" else self.size[1]

    def half_height(self) -> float:
        """Half the vertical extent in metres."""
        return 0.5 * self.height()

    def top(self) -> float:
        """World z of the object's top face."""
        return self.position[2] + self.height()

    def center(self) -> tuple[float, float, float]:
        """World position of the geometric centre (where backends place the body)."""
        x, y, z = self.position
        return (x, y, z + self.half_height())

    def footprint_radius(self) -> float:
        """Radius of the circle about ``position`` that bounds the xy footprint."""
        if self.kind == "box":
            return 0.5 * math.hypot(self.size[0], self.size[1])
        return 0.5 * self.size[0]

    def is_container(self) -> bool:
        """True for kinds that can hold things (cup, bowl)."""
        return self.kind in ("cup", "bowl")

    def is_surface(self) -> bool:
        """True for kinds with a flat top meant for placing things on (box, plate)."""
        return self.kind in ("box", "plate")

    def capacity(self) -> int:
        """Rough number of particles that fit inside (0 for anything but a cup)."""
        if self.kind != "cup":
            return 0
        inner_r, inner_h = self.size[0] / 2 - CONTAINER_WALL, self.size[1] - CONTAINER_WALL
        if inner_r <= 0 or inner_h <= 0:
            return 0
        particle = 4.0 / 3.0 * math.pi * PARTICLE_RADIUS**3
        return int(math.pi * inner_r**2 * inner_h * PACKING_FRACTION / particle)

    def to_dict(self) -> dict[str, Any]:
        """The file-format mapping for this object (colour by name when it is a named colour)."""
        named = COLORS.get(self.color_name) == self.color
        out = {
            "name": self.name,
            "kind": self.kind,
            "color": self.color_name if named else list(self.color),
            "size": list(self.size),
            "mass": self.mass,
            "pose": [*self.position, self.yaw],
            "friction": self.friction,
        }
        if self.kind == "cup" or self.contents:
            out["contents"] = self.contents
        return out


def list_names(names: Sequence[str], limit: int = 20) -> str:
    """``names`` comma-separated, the first ``limit`` of them and a count of the rest."""
    if not names:
        return "(none)"
    shown = ", ".join(str(n)[:80] for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


@dataclass(frozen=True)
class ReachLimits:
    """Where the arm can usefully reach, relative to its base axis (world z axis)."""

    min_radius: float = 0.25  # m, horizontal distance from the base axis
    max_radius: float = 0.80  # m
    max_height: float = 0.6  # m above the table top


@dataclass(frozen=True)
class Scene:
    """A table and the objects on it. Build with `scene_from_dict` / `load_scene` to validate."""

    table: Table
    objects: tuple[SceneObject, ...]
    name: str = "scene"

    def __post_init__(self) -> None:
        object.__setattr__(self, "objects", tuple(self.objects))

    @property
    def names(self) -> tuple[str, ...]:
        """Object names in scene order."""
        return tuple(o.name for o in self.objects)

    def object(self, name: str) -> SceneObject:
        """The object called ``name``; else `UnknownObjectError` (a SceneError and a KeyError)."""
        for o in self.objects:
            if o.name == name:
                return o
        raise UnknownObjectError(
            f"no object named {short(name)} in scene {short(self.name, 90)}; "
            f"objects: {list_names(self.names)}"
        )

    def with_object(self, obj: SceneObject) -> Scene:
        """A copy with ``obj`` added; SceneError if its name is taken. Not validated."""
        if obj.name in self.names:
            raise SceneError(f"object {obj.name!r}: duplicate name; the scene already has one")
        return replace(self, objects=(*self.objects, obj))

    def replace_object(self, name: str, **changes: Any) -> Scene:
        """A copy with the fields ``changes`` of object ``name`` replaced. Not validated."""
        self.object(name)
        return replace(
            self,
            objects=tuple(replace(o, **changes) if o.name == name else o for o in self.objects),
        )

    def to_dict(self) -> dict[str, Any]:
        """The file-format mapping; `scene_from_dict` turns it back into an equal Scene."""
        t = self.table
        return {
            "name": self.name,
            "objects": [o.to_dict() for o in self.objects],
            "table": {
                "size": list(t.size),
                "center": list(t.center),
                "height": t.height,
                "friction": t.friction,
            },
        }
