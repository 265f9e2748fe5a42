"""The skill registry: skills register themselves; planners enumerate it.

    @register
    class Grasp(Skill): ...

`get_skill("grasp")` returns the registered instance; an unknown name raises `KeyError`
listing the skills there are. Nothing is imported by string.
"""

from __future__ import annotations

from typing import Any

from skillstack.skills.base import Skill

_SKILLS: dict[str, Skill] = {}


def register(cls: type[Skill]) -> type[Skill]:
    """Class decorator: instantiate and register a skill under its ``name``."""
    name = getattr(cls, "name", None)
    if not name or not isinstance(name, str):
        raise TypeError(f"{cls.__name__} must define a string class attribute `name`")
    if name in _SKILLS and type(_SKILLS[name]) is not cls:
        raise ValueError(
            f"a skill named {name!r} is already registered ({type(_SKILLS[name]).__name__})"
        )
    _SKILLS[name] = cls()
    return cls


def replace(skill: Skill) -> Skill | None:
    """Swap in another implementation of a skill (e.g. a learned one); returns the old one."""
    old = _SKILLS.get(skill.name)
    _SKILLS[skill.name] = skill
    return old


def get_skill(name: str) -> Skill:
    """The skill called ``name``."""
    _load_library()
    try:
        return _SKILLS[name]
    except KeyError:
        raise KeyError(
            f"unknown skill {name!r}; available skills: {', '.join(sorted(_SKILLS))}"
        ) from None


def all_skills() -> dict[str, Skill]:
    """Every registered skill by name."""
    _load_library()
    return dict(_SKILLS)


def schemas() -> list[dict[str, Any]]:
    """Name, description and parameter JSON Schema of every skill."""
    return [s.schema() for s in all_skills().values()]


def _load_library() -> None:
    import skillstack.skills.library  # noqa: F401  (registers the scripted skills)
