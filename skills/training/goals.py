"""Goals of the skill environments as vectors, and their vectorised success tests.

The environments follow the gymnasium-robotics ``GoalEnv`` convention: an *achieved goal*
measured every step, a *desired goal* fixed by the skill's parameters, and a reward that is
a function of the two (so hindsight relabelling can ask "what if this had been the goal?").
The tests below restate each skill's own ``verify`` on those vectors:

* grasp and place — goal ``[x, y, z, held]``: the object's centre (m, world frame) and 1.0
  if the gripper holds it. A goal is reached when ``held`` matches and the centre lies in a
  vertical cylinder around the desired centre: horizontal distance ≤ ``radius`` and height
  within ``[z - below, z + above]``. The cylinder, ``region = [radius, below, above]``,
  depends on the episode (the sizes of the object and the container) and travels in the
  step's ``info["goal_region"]``.
* pour — goal ``[fraction, held]``: the fraction of the cup's particles that landed in the
  target since the start, and whether the cup is still held. Reached when ``held`` matches
  and the fraction is at least the desired one.

Every function takes arrays of shape ``(..., dim)`` and returns shape ``(...)``.
"""

from __future__ import annotations

import math

import numpy as np

from skillstack.skills.world import CUP_WALL, ON_TOLERANCE, ObjectState
from skillstack.skills.world import TABLE_TOLERANCE as ON_TABLE_TOLERANCE

POSITION_GOAL_DIM = 4  # x, y, z, held
POUR_GOAL_DIM = 2  # fraction in target, held
HELD_MATCH = 0.5  # |held - desired held| below this counts as a match
HELD_WEIGHT = 0.1  # m of dense penalty for holding when one should not (or the reverse)
BOWL_BOTTOM_SLACK = 0.005  # m, as `skills.world._inside`: bottoms this far below still count


def position_goal(position, held: bool) -> np.ndarray:
    """``[x, y, z, held]``."""
    return np.array([*np.asarray(position, dtype=float)[:3], float(held)])


def region_reached(achieved, desired, region) -> np.ndarray:
    """Is each achieved ``[x, y, z, held]`` inside its desired cylinder (see module doc)?"""
    a, d, r = _broadcast(achieved, desired, region)
    horizontal = np.hypot(a[..., 0] - d[..., 0], a[..., 1] - d[..., 1])
    dz = a[..., 2] - d[..., 2]
    return (
        (np.abs(a[..., 3] - d[..., 3]) < HELD_MATCH)
        & (horizontal <= r[..., 0])
        & (dz >= -r[..., 1])
        & (dz <= r[..., 2])
    )


def region_distance(achieved, desired, region) -> np.ndarray:
    """How far (m) each achieved goal is from its desired cylinder; 0 inside."""
    a, d, r = _broadcast(achieved, desired, region)
    horizontal = np.hypot(a[..., 0] - d[..., 0], a[..., 1] - d[..., 1])
    outside_xy = np.maximum(0.0, horizontal - r[..., 0])
    dz = a[..., 2] - d[..., 2]
    outside_z = np.maximum(0.0, -r[..., 1] - dz) + np.maximum(0.0, dz - r[..., 2])
    return outside_xy + outside_z + HELD_WEIGHT * np.abs(a[..., 3] - d[..., 3])


def fraction_reached(achieved, desired) -> np.ndarray:
    """Pour: is the held flag right and the poured fraction at least the desired one?"""
    a, d = np.asarray(achieved, dtype=float), np.asarray(desired, dtype=float)
    return (np.abs(a[..., 1] - d[..., 1]) < HELD_MATCH) & (a[..., 0] >= d[..., 0])


def fraction_distance(achieved, desired) -> np.ndarray:
    """Pour: missing fraction plus the held penalty (unitless)."""
    a, d = np.asarray(achieved, dtype=float), np.asarray(desired, dtype=float)
    return np.maximum(0.0, d[..., 0] - a[..., 0]) + np.abs(a[..., 1] - d[..., 1])


def grasp_region(lift: float) -> np.ndarray:
    """Grasp succeeds when the object is held and rose at least half of ``lift`` (as
    `skills.library.grasp.Grasp.verify`): anywhere horizontally, no upper bound."""
    return np.array([math.inf, 0.5 * lift, math.inf])


def place_goal(obj: ObjectState, target: ObjectState | None, position=None):
    """Desired centre ``[x, y, z, 0]`` and region of placing ``obj`` (as
    `skills.library.place.Place.verify` and the predicates of `skills.world`).

    ``target`` is the surface or container, or None for the table at ``position`` (x, y).
    """
    from skillstack.skills.library.place import TABLE_TOLERANCE

    half = obj.height / 2
    if target is None:  # on_table(obj) and within TABLE_TOLERANCE of the asked spot
        centre = (position[0], position[1], half)
        region = (TABLE_TOLERANCE, ON_TABLE_TOLERANCE, ON_TABLE_TOLERANCE)
    elif target.is_container:  # in(obj, target): see skills.world._inside
        inner = target.size[0] / 2 - CUP_WALL
        radius = inner - 0.5 * min(obj.radius, inner)
        centre = (target.position[0], target.position[1], target.bottom + half)
        region = (radius, BOWL_BOTTOM_SLACK, target.height)
    else:  # on(obj, target); a box's footprint is taken as its inscribed circle
        radius = min(target.size[:2]) / 2 if target.kind == "box" else target.size[0] / 2
        centre = (target.position[0], target.position[1], target.top + half)
        region = (radius, ON_TOLERANCE, ON_TOLERANCE)
    return position_goal(centre, held=False), np.array(region, dtype=float)


def _broadcast(achieved, desired, region):
    a = np.asarray(achieved, dtype=float)
    d = np.asarray(desired, dtype=float)
    r = np.asarray(region, dtype=float)
    if a.shape[-1] != POSITION_GOAL_DIM or d.shape[-1] != POSITION_GOAL_DIM:
        raise ValueError(
            f"goals have {POSITION_GOAL_DIM} numbers (x, y, z, held), not "
            f"{a.shape[-1]} and {d.shape[-1]}"
        )
    if r.shape[-1] != 3:
        raise ValueError(f"a goal region has 3 numbers (radius, below, above), not {r.shape}")
    return a, d, r
