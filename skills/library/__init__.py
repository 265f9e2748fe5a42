"""The scripted skill library; importing it registers every skill."""

from skills.library import grasp  # noqa: F401
