"""Reading scene files (YAML or JSON) into validated `Scene`s.

Scene files are untrusted input: a file over `MAX_SCENE_BYTES`, with more than `MAX_OBJECTS`
objects, more than `MAX_YAML_NODES` YAML nodes or nesting deeper than `MAX_YAML_DEPTH`, or
with YAML aliases (``*name``, the "billion laughs" expansion) is refused before it is built,
and every error message is bounded (`SceneError`).
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from skillstack.robot.scene.model import (
    COLORS,
    DEFAULT_FRICTION,
    DEFAULT_MASS,
    MAX_OBJECTS,
    MAX_SCENE_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    NAME_PATTERN,
    OBJECT_KEYS,
    POSE_KEYS,
    REQUIRED_OBJECT_KEYS,
    SCENE_KEYS,
    TABLE_KEYS,
    ReachLimits,
    Scene,
    SceneError,
    SceneObject,
    Table,
    clip,
    short,
)
from skillstack.robot.scene.validate import find_problems

# ----------------------------------------------------------------------------- parsing


def _keys_problem(data: Mapping, valid: frozenset[str], where: str) -> list[str]:
    out = []
    unknown = [k for k in data if k not in valid]
    for key in sorted(unknown[:200], key=str)[:MAX_KEY_HINTS]:
        close = difflib.get_close_matches(str(key)[:100], valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        out.append(f"{where}unknown key {short(key)}{hint}; valid keys: {', '.join(sorted(valid))}")
    if len(unknown) > MAX_KEY_HINTS:
        out.append(f"{where}{len(unknown) - MAX_KEY_HINTS} more unknown keys")
    return out


MAX_KEY_HINTS = 3  # unknown keys of one mapping listed by name


def _num(value: Any) -> float:
    """A number; numeric strings are accepted because YAML 1.1 reads ``1e-3`` as a string."""
    if not isinstance(value, bool) and isinstance(value, (int, float, str)):
        try:
            return float(value)
        except (ValueError, OverflowError):  # OverflowError: an int beyond any float
            pass
    raise SceneError(f"expected a number, got {short(value)}")


def _nums(value: Any, lengths: Sequence[int] | None = None) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or (lengths and len(value) not in lengths):
        want = " or ".join(str(n) for n in lengths) if lengths else "some"
        raise SceneError(f"expected a list of {want} numbers, got {short(value)}")
    return tuple(_num(v) for v in value)


def _color(value: Any) -> tuple[tuple[float, ...], str]:
    if isinstance(value, str):
        key = value.strip().lower()
        if key not in COLORS:
            raise SceneError(
                f"unknown colour {short(value)}; use one of {', '.join(COLORS)} "
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
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, float) and not math.isfinite(value))
        or value != int(value)
        or abs(value) > 2**31
    ):
        raise SceneError(f"expected a whole number of at most 10 digits, got {short(value)}")
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
            f"{', '.join(sorted(OBJECT_KEYS))}, got {short(raw)}"
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
            problems.append(f"{where}: {key} must be a string, got {short(raw[key])}")
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
            f"expected a mapping with keys {', '.join(sorted(TABLE_KEYS))}, got {short(raw)}"
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
    if len(raw_objects) > MAX_OBJECTS:
        raise SceneError(
            f"objects: {len(raw_objects)} objects; a scene holds at most {MAX_OBJECTS}"
        )
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
        raise SceneError(
            f"unsupported file type {short(path.suffix)}; use .yaml, .yml or .json", source
        )
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_SCENE_BYTES + 1)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise SceneError("scene file not found", source) from None
    except UnicodeDecodeError as e:
        raise SceneError(
            f"cannot read scene file: not UTF-8 text (byte {e.start})", source
        ) from None
    except OSError as e:
        raise SceneError(
            f"cannot read scene file: {e.strerror or type(e).__name__}", source
        ) from None
    if len(raw) > MAX_SCENE_BYTES:
        raise SceneError(f"scene file is larger than {MAX_SCENE_BYTES:,} bytes", source)
    data = parse_text(text, suffix == ".json", source)
    if data is None:
        raise SceneError("scene file is empty", source)
    if isinstance(data, Mapping) and "name" not in data:
        data = {**data, "name": path.stem}
    try:
        return scene_from_dict(data, reach)
    except SceneError as e:
        raise SceneError(e.problems, source) from None


# ----------------------------------------------------------------------------- bounded YAML

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed
_NODE_EVENTS = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)
_END_EVENTS = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def _at(mark: Any) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def check_yaml_events(text: str, max_nodes: int = MAX_YAML_NODES) -> None:
    """Refuse YAML that could expand or take long to build: aliases (``*name``, which can
    grow a few hundred bytes into billions of nodes), more than ``max_nodes`` nodes, or
    nesting deeper than `MAX_YAML_DEPTH`. Only parses (no objects are built).

    Raises:
        SceneError: what was refused and where; also for YAML syntax errors.
    """
    nodes = depth = 0
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent):
                raise SceneError(
                    f"YAML aliases (*{clip(str(event.anchor), 30)}){_at(event.start_mark)} are not "
                    "allowed; write the values out"
                )
            if isinstance(event, _NODE_EVENTS):
                nodes += 1
                if nodes > max_nodes:
                    raise SceneError(f"more than {max_nodes:,} YAML values{_at(event.start_mark)}")
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise SceneError(
                        f"lists and mappings nested deeper than {MAX_YAML_DEPTH}"
                        f"{_at(event.start_mark)}"
                    )
            elif isinstance(event, _END_EVENTS):
                depth -= 1
    except yaml.YAMLError as e:
        raise SceneError(_yaml_message(e)) from None


def _yaml_message(e: yaml.YAMLError) -> str:
    problem = getattr(e, "problem", None) or (str(e).splitlines() or ["unreadable"])[0]
    return f"invalid YAML{_at(getattr(e, 'problem_mark', None))}: {clip(str(problem), 120)}"


def load_yaml(text: str, max_nodes: int = MAX_YAML_NODES) -> Any:
    """``yaml.safe_load(text)`` for untrusted text, after `check_yaml_events`: no aliases, at
    most ``max_nodes`` nodes, bounded nesting; every failure a `SceneError` of one short line.
    """
    check_yaml_events(text, max_nodes)
    try:
        return yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as e:
        raise SceneError(_yaml_message(e)) from None
    except (ValueError, OverflowError, RecursionError) as e:  # e.g. an int of 10,000 digits
        raise SceneError(f"invalid YAML value: {clip(str(e), 120)}") from None


def parse_text(text: str, is_json: bool, source: str | None = None) -> Any:
    """The data of a scene file's ``text`` (JSON or bounded YAML, `load_yaml`), or a
    `SceneError` of one short line naming ``source``."""
    if not is_json:
        try:
            return load_yaml(text)
        except SceneError as e:
            raise SceneError(e.problems, source) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        at = f"line {e.lineno}, column {e.colno}"
        raise SceneError(f"invalid JSON at {at}: {e.msg}", source) from None
    except RecursionError:
        raise SceneError("invalid JSON: nested too deeply", source) from None
    except (ValueError, OverflowError) as e:  # an int of more than 4,300 digits
        raise SceneError(f"invalid JSON value: {clip(str(e), 120)}", source) from None
