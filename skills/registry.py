"""The skill registry: skills register themselves; planners enumerate it.

    @register
    class Grasp(Skill): ...

`get_skill("grasp")` returns the registered instance; an unknown name raises `KeyError`
listing the skills there are. Every lookup loads the scripted library (`skills.library`)
first. The table and `register` live in `skills.registration`, which the library imports
(not this module: the library would import itself back). Nothing is imported by string.
"""

from __future__ import annotations

from typing import Any

from skillstack.skills.base import Skill
from skillstack.skills.registration import register, registered, replace

__all__ = ["all_skills", "get_skill", "register", "replace", "schemas"]


def get_skill(name: str) -> Skill:
    """The skill called ``name``."""
    skills = all_skills()
    try:
        return skills[name]
    except KeyError:
        raise KeyError(
            f"unknown skill {name!r}; available skills: {', '.join(sorted(skills))}"
        ) from None


def all_skills() -> dict[str, Skill]:
    """Every registered skill by name."""
    _load_library()
    return registered()


def schemas() -> list[dict[str, Any]]:
    """Name, description and parameter JSON Schema of every skill."""
    return [s.schema() for s in all_skills().values()]


def _load_library() -> None:
    import skillstack.skills.library  # noqa: F401  (registers the scripted skills)
