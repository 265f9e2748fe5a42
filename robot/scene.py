"""Backend-agnostic description of a tabletop scene: a table and the objects on it.

People write scenes as YAML or JSON files (passed with ``--scene FILE``)::

    name: pour demo
    table: {size: [1.0, 1.2], center: [0.45, 0.0], height: 0.75}   # optional
    objects:
      - {name: cup, kind: cup, color: blue, size: [0.07, 0.09], pose: [0.45, 0.2], contents: 20}
      - {name: bowl, kind: bowl, color: white, size: [0.16, 0.06], pose: {xyz: [0.45, -0.2]}}

Conventions follow `robot.types`: SI units, world origin at the robot base, z up, table top at
z = 0. An object's ``position`` is its BOTTOM centre, so z = 0 means resting on the table.
Loaders validate, and problems are reported as a `SceneError` a person can act on.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

ObjectKind = Literal["box", "cylinder", "cup", "bowl", "plate"]
KINDS: tuple[str, ...] = ("box", "bowl", "cup", "cylinder", "plate")
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
CONTAINER_WALL = 0.004  # m, assumed wall and bottom thickness of cups (for capacity)
PARTICLE_RADIUS = 0.006  # m, radius of one `contents` particle
PACKING_FRACTION = 0.55  # fraction of a container's inner volume that particles can fill
MAX_NAME_LENGTH = 64  # characters in an object name
MAX_SCENE_NAME_LENGTH = 80  # characters in a scene name
DEFAULT_MASS = {"box": 0.1, "cylinder": 0.1, "cup": 0.15, "bowl": 0.3, "plate": 0.25}  # kg
DEFAULT_FRICTION = 0.9  # sliding friction coefficient of objects
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


class SceneError(ValueError):
    """An invalid scene; ``problems`` holds one human-readable line per problem found."""

    def __init__(self, problems: str | Sequence[str], source: str | None = None):
        single = isinstance(problems, str)
        self.problems: tuple[str, ...] = (problems,) if single else tuple(problems)
        self.source = source
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
        valid = ", ".join(self.names) or "(none)"
        raise UnknownObjectError(
            f"no object named {name!r} in scene {self.name!r}; objects: {valid}"
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


# ----------------------------------------------------------------------------- geometry


def _axes(yaw: float) -> np.ndarray:
    """Rows are the box's local x and y axes in the world xy plane."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, s], [-s, c]])


def xy_gap(a: SceneObject, b: SceneObject) -> float:
    """Signed clearance (m) between the xy footprints: > 0 apart, < 0 overlapping.

    Round kinds are circles, boxes oriented rectangles (separating-axis test, which yields the
    exact gap along the best axis: a lower bound on the distance, the depth when overlapping).
    """
    if a.kind != "box":
        a, b = b, a
    pa, pb = np.array(a.position[:2]), np.array(b.position[:2])
    if a.kind != "box":
        return float(np.linalg.norm(pa - pb)) - 0.5 * (a.size[0] + b.size[0])
    half_a, axes_a = 0.5 * np.array(a.size[:2]), _axes(a.yaw)
    if b.kind != "box":
        q = np.abs(axes_a @ (pb - pa)) - half_a
        outside = float(np.linalg.norm(np.maximum(q, 0.0)))
        return (outside if outside > 0 else float(q.max())) - 0.5 * b.size[0]
    half_b, axes_b = 0.5 * np.array(b.size[:2]), _axes(b.yaw)
    return max(
        float(abs(u @ (pb - pa)) - np.abs(axes_a @ u) @ half_a - np.abs(axes_b @ u) @ half_b)
        for u in (*axes_a, *axes_b)
    )


def objects_overlap(a: SceneObject, b: SceneObject, tol: float = OVERLAP_TOLERANCE) -> bool:
    """True when the z-intervals AND the xy footprints of ``a`` and ``b`` intersect by > ``tol``."""
    z_apart = a.position[2] >= b.top() - tol or b.position[2] >= a.top() - tol
    return not z_apart and xy_gap(a, b) < -tol


def _xy_half_extent(o: SceneObject) -> tuple[float, float]:
    if o.kind != "box":
        return (0.5 * o.size[0],) * 2
    c, s = abs(math.cos(o.yaw)), abs(math.sin(o.yaw))
    hx, hy = 0.5 * o.size[0], 0.5 * o.size[1]
    return (c * hx + s * hy, s * hx + c * hy)


def _reach_problem(o: SceneObject, reach: ReachLimits) -> str | None:
    r = math.hypot(o.position[0], o.position[1])
    if r < reach.min_radius:
        return f"out of reach: {r:.3f} m from the robot base, closer than {reach.min_radius} m"
    if r > reach.max_radius:
        return f"out of reach: {r:.3f} m from the robot base, farther than {reach.max_radius} m"
    if o.top() > reach.max_height:
        return f"out of reach: top at z = {o.top():.3f} m is above {reach.max_height} m"
    return None


def _table_problem(o: SceneObject, table: Table) -> str | None:
    for axis, half in enumerate(_xy_half_extent(o)):
        lo = table.center[axis] - table.size[axis] / 2 - OVERLAP_TOLERANCE
        hi = table.center[axis] + table.size[axis] / 2 + OVERLAP_TOLERANCE
        if o.position[axis] - half < lo or o.position[axis] + half > hi:
            return (
                f"off the table top: spans {'xy'[axis]} in [{o.position[axis] - half:.3f}, "
                f"{o.position[axis] + half:.3f}] m, table spans [{lo:.3f}, {hi:.3f}] m"
            )
    return None


# ----------------------------------------------------------------------------- validation


def _finite(values: Sequence[float]) -> bool:
    return all(math.isfinite(v) for v in values)


def _geometry_ok(o: SceneObject) -> bool:
    """Whether ``o`` is well-formed enough for reach, table, overlap and support checks."""
    return (
        o.kind in KINDS
        and len(o.size) == (3 if o.kind == "box" else 2)
        and _finite(o.size)
        and min(o.size) > 0
        and len(o.position) == 3
        and _finite(o.position)
        and math.isfinite(o.yaw)
    )


def _object_problems(o: SceneObject) -> list[str]:
    """Problems with one object on its own (no neighbours, no reach)."""
    out = []
    if o.kind not in KINDS:
        out.append(f"unknown kind {o.kind!r}; valid kinds: {', '.join(KINDS)}")
    elif len(o.size) != len(SIZE_LAYOUT[o.kind].split(",")):
        out.append(
            f"size {list(o.size)} has {len(o.size)} numbers; a {o.kind} needs "
            f"{SIZE_LAYOUT[o.kind]} in metres"
        )
    if not _finite(o.size):
        out.append(f"size {list(o.size)} contains NaN or infinity")
    elif o.size and min(o.size) <= 0:
        out.append(f"size {list(o.size)} must be positive")
    elif o.size and max(o.size) > MAX_OBJECT_SIZE:
        out.append(f"size {list(o.size)} exceeds the {MAX_OBJECT_SIZE} m limit")
    if len(o.position) != 3 or not _finite(o.position) or not math.isfinite(o.yaw):
        out.append(f"pose {[*o.position, o.yaw]} must be finite [x, y, z, yaw]")
    if not (math.isfinite(o.mass) and 0 < o.mass <= MAX_MASS):
        out.append(f"mass {o.mass} kg must be positive and at most {MAX_MASS} kg")
    if not (math.isfinite(o.friction) and o.friction > 0):
        out.append(f"friction {o.friction} must be positive")
    if len(o.color) != 4 or not all(0 <= c <= 1 for c in o.color):
        out.append(f"color {list(o.color)} must be rgba numbers in [0, 1]")
    if o.contents < 0:
        out.append(f"contents {o.contents} must not be negative")
    elif o.contents and o.kind in KINDS and o.kind != "cup":
        out.append(f"contents {o.contents}: only a cup can have contents, this is a {o.kind}")
    elif o.contents and _geometry_ok(o) and o.contents > o.capacity():
        out.append(
            f"contents {o.contents} does not fit: this cup holds about {o.capacity()} "
            f"particles of radius {PARTICLE_RADIUS} m"
        )
    return out


def _label(o: SceneObject, index: int) -> str:
    if isinstance(o.name, str) and NAME_PATTERN.fullmatch(o.name):
        return f"object {o.name!r}"
    return f"objects[{index}]"


def find_problems(scene: Scene, reach: ReachLimits = ReachLimits()) -> list[str]:
    """Every problem with ``scene``, one line each naming the object; empty when valid."""
    out, t = [], scene.table
    if (
        not isinstance(scene.name, str)
        or not scene.name.isprintable()
        or not (0 < len(scene.name) <= MAX_SCENE_NAME_LENGTH)
    ):
        out.append(f"scene name must be 1-{MAX_SCENE_NAME_LENGTH} printable characters on one line")
    table_ok = (
        len(t.size) == 2
        and _finite(t.size)
        and min(t.size) > 0
        and len(t.center) == 2
        and (_finite(t.center) and math.isfinite(t.height) and t.height > 0 and t.friction > 0)
    )
    if not table_ok:
        out.append(
            f"table: size {list(t.size)} and height {t.height} must be positive, center "
            f"{list(t.center)} two finite numbers, friction {t.friction} positive"
        )
    counts = Counter(o.name for o in scene.objects)
    reported, good = set(), []
    for i, o in enumerate(scene.objects):
        label = _label(o, i)
        if label.startswith("objects["):
            shown = repr(o.name)[:40]
            out.append(
                f"{label}: invalid name {shown}: use 1-{MAX_NAME_LENGTH} letters, digits, "
                "'_' or '-' (no spaces)"
            )
        elif counts[o.name] > 1 and o.name not in reported:
            reported.add(o.name)
            out.append(f"{label}: duplicate name, used by {counts[o.name]} objects")
        out += [f"{label}: {p}" for p in _object_problems(o)]
        if _geometry_ok(o):
            good.append((label, o))
    for label, o in good:
        on_table = _table_problem(o, t) if table_ok else None
        out += [f"{label}: {p}" for p in (_reach_problem(o, reach), on_table) if p]
        if o.position[2] < -OVERLAP_TOLERANCE:
            out.append(f"{label}: below the table top (bottom at z = {o.position[2]:.3f} m)")
        elif o.position[2] > REST_TOLERANCE and not any(
            p is not o and abs(o.position[2] - p.top()) <= REST_TOLERANCE and xy_gap(o, p) < 0
            for _, p in good
        ):
            out.append(
                f"{label}: floating: bottom at z = {o.position[2]:.3f} m is neither on the "
                f"table (z = 0) nor within {REST_TOLERANCE} m of another object's top"
            )
    for (la, a), (lb, b) in combinations(good, 2):
        if objects_overlap(a, b):
            out.append(
                f"{la} and {lb} overlap by {-xy_gap(a, b) * 1000:.1f} mm in xy; "
                "move them apart or stack one on the other"
            )
    return out


def validate_scene(scene: Scene, reach: ReachLimits = ReachLimits()) -> None:
    """Raise `SceneError` listing ALL problems with ``scene`` (one per line); None if valid."""
    problems = find_problems(scene, reach)
    if problems:
        raise SceneError(problems)


# ----------------------------------------------------------------------------- parsing


def _keys_problem(data: Mapping, valid: frozenset[str], where: str) -> list[str]:
    out = []
    for key in sorted(set(data) - valid, key=str):
        close = difflib.get_close_matches(str(key), valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        out.append(f"{where}unknown key {key!r}{hint}; valid keys: {', '.join(sorted(valid))}")
    return out


def _num(value: Any) -> float:
    """A number; numeric strings are accepted because YAML 1.1 reads ``1e-3`` as a string."""
    if not isinstance(value, bool) and isinstance(value, (int, float, str)):
        try:
            return float(value)
        except ValueError:
            pass
    raise SceneError(f"expected a number, got {value!r}")


def _nums(value: Any, lengths: Sequence[int] | None = None) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or (lengths and len(value) not in lengths):
        want = " or ".join(str(n) for n in lengths) if lengths else "some"
        raise SceneError(f"expected a list of {want} numbers, got {value!r}")
    return tuple(_num(v) for v in value)


def _color(value: Any) -> tuple[tuple[float, ...], str]:
    if isinstance(value, str):
        key = value.strip().lower()
        if key not in COLORS:
            raise SceneError(
                f"unknown colour {value!r}; use one of {', '.join(COLORS)} "
                "or [r, g, b] / [r, g, b, a] numbers in 0..1"
            )
        return COLORS[key], key
    return _nums(value, (3, 4)), ""


def _pose(value: Any) -> tuple[tuple[float, ...], float]:
    if isinstance(value, Mapping):
        bad = _keys_problem(value, POSE_KEYS, "")
        if bad or "xyz" not in value or ("yaw" in value and "yaw_deg" in value):
            raise SceneError(bad or ["needs 'xyz' and at most one of 'yaw' (rad), 'yaw_deg'"])
        deg = "yaw_deg" in value
        yaw = math.radians(_num(value["yaw_deg"])) if deg else _num(value.get("yaw", 0.0))
        return _nums(value["xyz"], (2, 3)), yaw
    xyzw = _nums(value, (2, 3, 4))
    return xyzw[:3], xyzw[3] if len(xyzw) == 4 else 0.0


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise SceneError(f"expected a whole number, got {value!r}")
    return int(value)


def _field(problems: list[str], where: str, parse: Callable[[Any], Any], value: Any) -> Any:
    """``parse(value)``, or None with the problem appended under ``where``."""
    try:
        return parse(value)
    except SceneError as e:
        problems.extend(f"{where}: {p}" for p in e.problems)
        return None


def _parse_object(index: int, raw: Any, problems: list[str]) -> SceneObject | None:
    if not isinstance(raw, Mapping):
        problems.append(
            f"objects[{index}]: expected a mapping with keys "
            f"{', '.join(sorted(OBJECT_KEYS))}, got {raw!r}"
        )
        return None
    name = raw.get("name")
    where = (
        f"object {name!r}"
        if isinstance(name, str) and NAME_PATTERN.fullmatch(name)
        else (f"objects[{index}]")
    )
    problems += _keys_problem(raw, OBJECT_KEYS, f"{where}: ")  # reported, but not fatal
    before = len(problems)
    missing = [k for k in REQUIRED_OBJECT_KEYS if k not in raw]
    if missing:
        problems.append(f"{where}: missing required key(s) {', '.join(missing)}")
        return None
    for key in ("name", "kind"):
        if not isinstance(raw[key], str):
            problems.append(f"{where}: {key} must be a string, got {raw[key]!r}")
    size = _field(problems, f"{where}: size", _nums, raw["size"])
    pose = _field(problems, f"{where}: pose", _pose, raw["pose"])
    color = _field(problems, f"{where}: color", _color, raw.get("color", "gray"))
    default_mass = DEFAULT_MASS.get(raw["kind"], 0.1) if isinstance(raw["kind"], str) else 0.1
    mass = _field(problems, f"{where}: mass", _num, raw.get("mass", default_mass))
    friction = _field(problems, f"{where}: friction", _num, raw.get("friction", DEFAULT_FRICTION))
    contents = _field(problems, f"{where}: contents", _int, raw.get("contents", 0))
    if len(problems) > before:
        return None
    return SceneObject(
        name=raw["name"],
        kind=raw["kind"],
        size=size,
        position=pose[0],
        yaw=pose[1],
        color=color[0],
        color_name=color[1],
        mass=mass,
        friction=friction,
        contents=contents,
    )


def _parse_table(raw: Any) -> Table:
    if not isinstance(raw, Mapping):
        raise SceneError(
            f"expected a mapping with keys {', '.join(sorted(TABLE_KEYS))}, got {raw!r}"
        )
    problems = _keys_problem(raw, TABLE_KEYS, "")
    fields = {
        "size": lambda v: _nums(v, (2,)),
        "center": lambda v: _nums(v, (2,)),
        "height": _num,
        "friction": _num,
    }
    values = {k: _field(problems, k, fields[k], raw[k]) for k in fields if k in raw}
    if problems:
        raise SceneError(problems)
    return Table(**values)


def scene_from_dict(data: Mapping[str, Any], reach: ReachLimits = ReachLimits()) -> Scene:
    """Build and validate a Scene from the file-format mapping; `SceneError` lists all problems."""
    if not isinstance(data, Mapping):
        raise SceneError(
            f"a scene must be a mapping with keys {', '.join(sorted(SCENE_KEYS))}, "
            f"got {type(data).__name__}"
        )
    problems = _keys_problem(data, SCENE_KEYS, "scene: ")
    table = _field(problems, "table", _parse_table, data["table"]) if "table" in data else Table()
    raw_objects = data.get("objects") or []
    if not isinstance(raw_objects, list):
        problems.append(f"objects: expected a list of objects, got {type(raw_objects).__name__}")
        raw_objects = []
    objects = [_parse_object(i, raw, problems) for i, raw in enumerate(raw_objects)]
    scene = Scene(
        table=table or Table(),
        objects=tuple(o for o in objects if o is not None),
        name=data.get("name", "scene"),
    )
    problems += find_problems(scene, reach)
    if problems:
        raise SceneError(problems)
    return scene


def load_scene(path: str | Path, reach: ReachLimits = ReachLimits()) -> Scene:
    """Read a ``.yaml``/``.yml``/``.json`` scene file and validate it.

    A missing ``name`` defaults to the file stem. Every failure (missing file, bad syntax, wrong
    types, invalid scene) is a `SceneError` whose message starts with the path.
    """
    path, source = Path(path), str(path)
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise SceneError(f"unsupported file type {path.suffix!r}; use .yaml, .yml or .json", source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SceneError("scene file not found", source) from None
    except (OSError, UnicodeDecodeError) as e:
        raise SceneError(f"cannot read scene file: {e}", source) from None
    try:
        data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as e:
        at = f"line {e.lineno}, column {e.colno}"
        raise SceneError(f"invalid JSON at {at}: {e.msg}", source) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SceneError(f"invalid YAML{at}: {getattr(e, 'problem', None) or e}", source) from None
    if data is None:
        raise SceneError("scene file is empty", source)
    if isinstance(data, Mapping) and "name" not in data:
        data = {**data, "name": path.stem}
    try:
        return scene_from_dict(data, reach)
    except SceneError as e:
        raise SceneError(e.problems, source) from None


# ----------------------------------------------------------------------------- builders


def random_scene(
    seed: int,
    n_objects: int = 3,
    kinds: Sequence[str] = ("box",),
    reach: ReachLimits = ReachLimits(),
    table: Table = Table(),
    clearance: float = 0.01,
    max_tries: int = 2000,
) -> Scene:
    """A valid random scene, the same for the same arguments (numpy ``default_rng(seed)``).

    Objects rest on the table, inside the reach limits, at least ``clearance`` m apart; sizes
    and masses come from `RANDOM_SIZE_RANGES` / `RANDOM_MASS_RANGES`, colours are distinct while
    `COLORS` lasts, boxes get a random yaw. `SceneError` if an object cannot be placed in
    ``max_tries`` draws.
    """
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds or n_objects < 0:
        raise SceneError(
            f"random_scene: need n_objects >= 0 (got {n_objects}) and kinds from "
            f"{', '.join(KINDS)} (got {list(kinds)})"
        )
    rng = np.random.default_rng(seed)
    colors = [str(c) for c in rng.permutation(list(COLORS))]
    placed: list[SceneObject] = []
    for i in range(n_objects):
        kind = kinds[int(rng.integers(len(kinds)))]
        size = tuple(float(rng.uniform(lo, hi)) for lo, hi in RANDOM_SIZE_RANGES[kind])
        color = colors[i % len(colors)]
        base = SceneObject(
            name=f"{kind}{sum(o.kind == kind for o in placed)}",
            kind=kind,
            size=size,
            position=(0.0, 0.0, 0.0),
            color=COLORS[color],
            color_name=color,
            mass=float(rng.uniform(*RANDOM_MASS_RANGES[kind])),
        )
        r = base.footprint_radius()
        lo = [c - s / 2 + r for c, s in zip(table.center, table.size, strict=True)]
        hi = [c + s / 2 - r for c, s in zip(table.center, table.size, strict=True)]
        for _ in range(max_tries):
            x, y = (float(rng.uniform(a, b)) for a, b in zip(lo, hi, strict=True))
            yaw = float(rng.uniform(-math.pi, math.pi)) if kind == "box" else 0.0
            obj = replace(base, position=(x, y, 0.0), yaw=yaw)
            if not (_reach_problem(obj, reach) or _table_problem(obj, table)) and all(
                xy_gap(obj, p) >= clearance for p in placed
            ):
                placed.append(obj)
                break
        else:
            raise SceneError(
                f"random_scene(seed={seed}): placed only {i} of {n_objects} objects; "
                f"no free spot for a {kind} after {max_tries} tries; ask for fewer or "
                "smaller objects or wider reach limits"
            )
    scene = Scene(table=table, objects=tuple(placed), name=f"random-{seed}")
    validate_scene(scene, reach)
    return scene


DEFAULT_SCENE: dict[str, Any] = {
    "name": "panda tabletop",
    "objects": [
        {
            "name": "cube",
            "kind": "box",
            "color": "red",
            "size": [0.05, 0.05, 0.05],
            "mass": 0.1,
            "pose": [0.5, 0.0, 0.0],
        },
        {
            "name": "cup",
            "kind": "cup",
            "color": "blue",
            "size": [0.07, 0.09],
            "mass": 0.15,
            "pose": [0.45, 0.2, 0.0],
            "contents": 20,
        },
        {
            "name": "bowl",
            "kind": "bowl",
            "color": "white",
            "size": [0.16, 0.06],
            "mass": 0.3,
            "pose": [0.45, -0.2, 0.0],
        },
        {
            "name": "plate",
            "kind": "plate",
            "color": "yellow",
            "size": [0.18, 0.015],
            "mass": 0.25,
            "pose": [0.65, 0.0, 0.0],
        },
    ],
}


def default_scene() -> Scene:
    """The Panda tabletop scene: red 5 cm cube, blue cup with 20 particles, white bowl, plate."""
    return scene_from_dict(DEFAULT_SCENE)
