"""Scene sets for demonstrations: the benchmark's scenes, or those mixed with task-like ones.

``bench`` is `skills.episodes.episode_setup` alone: every object stands on the table, boxes
have a random yaw. The task suite also asks for grasps the benchmark never shows, so a
policy cloned from it alone fails there (73 % of the suite): a block on another block
(``unstack``), in a bowl (``clear_bowl``), on a plate (``clear_plate``), and square blocks
at yaw near 0 (most tasks). ``mixed`` replaces part of the benchmark episodes of ``grasp``
by such scenes, built from the same object makers and validated like every scene; the
scripted grasp stays the expert, always with the top approach (what the planners ask for).
For ``place`` the mixed set adds what the benchmark's places (a block or can onto a plate,
into a bowl, onto the table) never show and the task suite asks for: a block put on
another block, sometimes on top of a two-block tower (``stack``), and a cup put on a
plate or the table (``cup``).

The variant of an episode is drawn from its seed, so a seed always gives the same scene.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from skillstack.robot.scene import Scene, SceneObject, validate_scene
from skillstack.robot.scene.model import CONTAINER_FLOOR
from skillstack.skills.episodes import (
    container_maker,
    cup_maker,
    episode_setup,
    graspable_maker,
    place_objects,
    random_color,
)
from skillstack.skills.world import vec3

SCENE_SETS = ("bench", "mixed")
# Share of each variant in the "mixed" set (the rest of the episodes are "bench").
MIXED_VARIANTS = {"bench": 0.4, "square": 0.2, "plate": 0.15, "bowl": 0.1, "stacked": 0.15}
PLACE_VARIANTS = {"bench": 0.5, "stack": 0.3, "cup": 0.2}
MIXED_SKILLS = ("grasp", "place")
SQUARE_YAW = 0.35  # rad: square blocks are turned at most this much (tasks: ±0.3 rad)
TRIES = 50


def variant(seed: int, skill: str = "grasp") -> str:
    """The kind of scene of ``seed`` in the "mixed" set of ``skill``."""
    rng = np.random.default_rng([seed, 23])
    shares = PLACE_VARIANTS if skill == "place" else MIXED_VARIANTS
    names = list(shares)
    return names[int(rng.choice(len(names), p=list(shares.values())))]


def scene_set_episode(skill: str, seed: int, scenes: str = "bench") -> tuple:
    """The scene, set-up calls and parameters of the episode of ``seed`` in set ``scenes``.

    Raises:
        ValueError: an unknown set, or "mixed" for another skill than grasp.
    """
    if scenes not in SCENE_SETS:
        raise ValueError(f"unknown scene set {scenes!r}; sets: {', '.join(SCENE_SETS)}")
    if scenes == "mixed" and skill not in MIXED_SKILLS:
        raise ValueError(
            f"the mixed scene set is for {' and '.join(MIXED_SKILLS)} only, not {skill!r}"
        )
    kind = variant(seed, skill) if scenes == "mixed" else "bench"
    if kind == "bench":
        return episode_setup(skill, seed)
    rng = np.random.default_rng([seed, 29])
    for _ in range(TRIES):
        scene = _BUILDERS[kind](rng)
        try:
            validate_scene(scene)
        except ValueError:
            continue
        if skill == "place":
            return scene, [("grasp", {"object": "item"})], _place_params(kind, scene, rng)
        return scene, [], {"object": "target", "approach": "top"}
    raise RuntimeError(f"could not build a valid {kind!r} scene for seed {seed}")


def _place_params(kind: str, scene: Scene, rng) -> dict:
    """Put the item on the goal block (stack), or the cup on the plate or the table (cup)."""
    if any(o.name == "goal" for o in scene.objects):
        return {"object": "item", "target": "goal"}
    item = scene.object("item").position
    for _ in range(TRIES):
        a = float(rng.uniform(-1.0, 1.0))
        spot = (0.45 * math.cos(a), 0.45 * math.sin(a))
        if math.dist(spot, item[:2]) >= 0.15:
            break
    return {"object": "item", "target": "table", "position": [round(v, 3) for v in spot]}


def _box(rng, name: str, pos, side=(0.035, 0.06), square: bool = True, yaw=None) -> SceneObject:
    """A box of random size (square footprint when ``square``) at ``pos``."""
    sx = float(rng.uniform(*side))
    sy = sx if square else float(rng.uniform(*side))
    h = float(rng.uniform(0.035, 0.07))
    if yaw is None:
        yaw = float(rng.uniform(-SQUARE_YAW, SQUARE_YAW)) if rng.random() < 0.7 else 0.0
    return SceneObject(
        name,
        "box",
        (sx, sy, h),
        vec3(pos),
        yaw=float(yaw),
        color=random_color(rng),
        mass=float(rng.uniform(0.05, 0.3)),
        friction=float(rng.uniform(0.6, 1.0)),
    )


def _on(support: SceneObject, obj: SceneObject, z: float, rng, slack: float) -> SceneObject:
    """``obj`` moved onto ``support`` at height ``z``, up to ``slack`` m off its centre."""
    r, a = float(rng.uniform(0.0, max(slack, 0.0))), float(rng.uniform(-math.pi, math.pi))
    x, y = support.position[0] + r * math.cos(a), support.position[1] + r * math.sin(a)
    return replace(obj, position=(x, y, z))


def _square(rng) -> Scene:
    """A square block at yaw near 0 (small ones too) beside another block."""
    return place_objects(
        rng, [lambda r, p: _box(r, "target", p), graspable_maker("other", ("box",))]
    )


def _plate(rng) -> Scene:
    """A block (or can) on a plate, sometimes with a second block on it."""
    scene = place_objects(
        rng, [container_maker("plate", "plate"), graspable_maker("other", ("box",))]
    )
    plate = scene.object("plate")
    if rng.random() < 0.2:
        size = (float(rng.uniform(0.04, 0.06)), float(rng.uniform(0.05, 0.1)))
        item = SceneObject(
            "target", "cylinder", size, (0, 0, 0), color=random_color(rng), mass=0.15
        )
    else:
        item = _box(rng, "target", (0, 0, 0), side=(0.035, 0.055), square=rng.random() < 0.7)
    room = plate.size[0] / 2 - item.footprint_radius() - 0.005
    scene = scene.with_object(_on(plate, item, plate.top(), rng, room))
    if rng.random() < 0.4:  # a second block on the plate, clear of the first
        extra = _box(rng, "extra", (0, 0, 0), side=(0.035, 0.045))
        extra = _on(plate, extra, plate.top(), rng, plate.size[0] / 2 - extra.footprint_radius())
        scene = scene.with_object(extra)
    return scene


def _bowl(rng) -> Scene:
    """A small block inside a bowl."""
    scene = place_objects(
        rng, [container_maker("bowl", "bowl"), graspable_maker("other", ("box",))]
    )
    bowl = scene.object("bowl")
    item = _box(rng, "target", (0, 0, 0), side=(0.035, 0.045), square=rng.random() < 0.8)
    room = bowl.size[0] / 2 - 0.004 - item.footprint_radius() - 0.002
    return scene.with_object(_on(bowl, item, bowl.position[2] + CONTAINER_FLOOR, rng, room))


def _stacked(rng) -> Scene:
    """A block standing on another block."""
    base = lambda r, p: _box(r, "base", p, side=(0.045, 0.06))  # noqa: E731
    scene = place_objects(rng, [base, graspable_maker("other", ("box",))])
    under = scene.object("base")
    item = _box(rng, "target", (0, 0, 0), side=(0.035, 0.06), square=rng.random() < 0.8)
    return scene.with_object(_on(under, item, under.top(), rng, 0.008))


def _stack(rng) -> Scene:
    """A block to put on another, wider block; half the time that one stands on a third
    (a tower, as the task suite builds them)."""
    item = lambda r, p: _box(r, "item", p, side=(0.035, 0.05), square=r.random() < 0.6)  # noqa: E731
    goal = lambda r, p: _box(r, "goal", p, side=(0.05, 0.065), square=r.random() < 0.6)  # noqa: E731
    if rng.random() < 0.5:
        return place_objects(rng, [item, goal])
    base = lambda r, p: _box(r, "base", p, side=(0.055, 0.07), square=r.random() < 0.6)  # noqa: E731
    scene = place_objects(rng, [item, base])
    under = scene.object("base")
    top = _box(rng, "goal", (0, 0, 0), side=(0.05, 0.06), square=rng.random() < 0.6)
    return scene.with_object(_on(under, top, under.top(), rng, 0.005))


def _cup(rng) -> Scene:
    """A cup to put on a plate (or, without one, on the table)."""
    if rng.random() < 0.6:
        return place_objects(rng, [cup_maker("item", 0), container_maker("goal", "plate")])
    return place_objects(rng, [cup_maker("item", 0)])


_BUILDERS = {
    "square": _square,
    "plate": _plate,
    "bowl": _bowl,
    "stacked": _stacked,
    "stack": _stack,
    "cup": _cup,
}
