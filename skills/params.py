"""Typed, self-describing skill parameters: units, ranges, JSON Schema, validation.

A skill's parameters are a frozen dataclass whose fields are declared with `param`::

    @dataclass(frozen=True)
    class PushParams:
        object: ObjectName = param(description="the object to push")
        distance: float = param(0.1, unit="m", low=0.02, high=0.25, description="how far")

`schema(PushParams)` exports JSON Schema (what an LLM is offered as a tool), and
`parse(PushParams, {"object": "cube", "distance": 0.1})` validates untrusted input —
unknown keys, missing values, wrong types, NaN, out-of-range values and bad choices are
all reported at once in a `ParameterError` that names the valid options.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from typing import Any, Literal, NewType, get_args, get_origin

ObjectName = NewType("ObjectName", str)  # the name of an object in the world state

_MISSING = dataclasses.MISSING


class ParameterError(ValueError):
    """Parameters that do not match a skill's schema; ``problems`` lists each one."""

    def __init__(self, skill: str, problems: list[str]):
        self.skill = skill
        self.problems = problems
        super().__init__(f"{skill}: " + "; ".join(problems))


def param(
    default: Any = _MISSING,
    *,
    description: str,
    unit: str | None = None,
    low: float | None = None,
    high: float | None = None,
) -> Any:
    """Declare a parameter field with its meaning, unit and inclusive range."""
    meta = {"description": description, "unit": unit, "low": low, "high": high}
    if default is _MISSING:
        return dataclasses.field(metadata=meta)
    if isinstance(default, list | dict):
        raise TypeError("use tuples for vector defaults (parameters are immutable)")
    return dataclasses.field(default=default, metadata=meta)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=False)


def _fields(cls: type) -> list[dataclasses.Field]:
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a parameter dataclass")
    return list(dataclasses.fields(cls))


def schema(cls: type) -> dict[str, Any]:
    """JSON Schema (draft 2020-12 subset) for a parameter dataclass."""
    hints = _hints(cls)
    props: dict[str, Any] = {}
    required = []
    for f in _fields(cls):
        meta = f.metadata
        prop = _type_schema(hints[f.name], meta)
        desc = meta.get("description", "")
        if meta.get("unit"):
            desc += f" [{meta['unit']}]"
        prop["description"] = desc
        if f.default is not _MISSING:
            prop["default"] = list(f.default) if isinstance(f.default, tuple) else f.default
        else:
            required.append(f.name)
        props[f.name] = prop
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


def _type_schema(tp: Any, meta: Mapping[str, Any]) -> dict[str, Any]:
    bounds = {
        k: v
        for k, v in (("minimum", meta.get("low")), ("maximum", meta.get("high")))
        if v is not None
    }
    if tp is ObjectName:
        return {"type": "string", "x-object-reference": True}
    if get_origin(tp) is Literal:
        return {"type": "string", "enum": list(get_args(tp))}
    if tp is float:
        return {"type": "number", **bounds}
    if tp is int:
        return {"type": "integer", **bounds}
    if tp is bool:
        return {"type": "boolean"}
    if tp is str:
        return {"type": "string"}
    if get_origin(tp) is tuple:
        args = get_args(tp)
        return {
            "type": "array",
            "items": {"type": "number", **bounds},
            "minItems": len(args),
            "maxItems": len(args),
        }
    if get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        options = [a for a in get_args(tp) if a is not type(None)]
        return {"anyOf": [_type_schema(a, meta) for a in options] + [{"type": "null"}]}
    raise TypeError(f"unsupported parameter type {tp!r}")


def parse(cls: type, raw: Mapping[str, Any] | None, skill: str = "") -> Any:
    """Validate untrusted ``raw`` values and build ``cls``; `ParameterError` lists every problem."""
    skill = skill or cls.__name__
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ParameterError(skill, [f"parameters must be an object, got {type(raw).__name__}"])
    hints = _hints(cls)
    fields = {f.name: f for f in _fields(cls)}
    problems = []
    for key in raw:
        if key not in fields:
            problems.append(f"unknown parameter {key!r}; valid parameters: {', '.join(fields)}")
    values = {}
    for name, f in fields.items():
        if name not in raw:
            if f.default is _MISSING:
                problems.append(
                    f"missing required parameter {name!r} ({f.metadata.get('description', '')})"
                )
            continue
        try:
            values[name] = _coerce(hints[name], raw[name], f.metadata)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        raise ParameterError(skill, problems)
    return cls(**values)


def _coerce(tp: Any, value: Any, meta: Mapping[str, Any]) -> Any:
    low, high, unit = meta.get("low"), meta.get("high"), meta.get("unit") or ""
    if get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None:
            return None
        options = [a for a in get_args(tp) if a is not type(None)]
        return _coerce(options[0], value, meta)
    if tp is ObjectName or tp is str:
        if not isinstance(value, str) or not value:
            raise ValueError(f"expected a non-empty string, got {value!r}")
        return value
    if get_origin(tp) is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if tp in (float, int):
        return _number(tp, value, low, high, unit)
    if get_origin(tp) is tuple:
        n = len(get_args(tp))
        if not isinstance(value, list | tuple) or len(value) != n:
            raise ValueError(f"expected a list of {n} numbers, got {value!r}")
        return tuple(_number(float, v, low, high, unit) for v in value)
    raise ValueError(f"unsupported type {tp!r}")


def _number(tp: type, value: Any, low: float | None, high: float | None, unit: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    if tp is int and not float(value).is_integer():
        raise ValueError(f"expected an integer, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    u = f" {unit}" if unit else ""
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{value}{u} is out of range [{low}, {high}]{u}")
    return tp(value)
