"""The table of skills by name, and the `@register` decorator that fills it.

    @register
    class Grasp(Skill): ...

The scripted library (`skills.library`) registers its skills here as it is imported; this
module imports nothing of the library, so the library never imports itself back. Look skills
up through `skills.registry`, which loads the library first.
"""

from __future__ import annotations

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


def registered() -> dict[str, Skill]:
    """Every skill registered so far, by name (the library's only once it is imported)."""
    return dict(_SKILLS)
