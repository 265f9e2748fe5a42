"""The scripted skill library; importing it registers every skill."""

from skillstack.skills.library import grasp, motion, place, pour, push  # noqa: F401
