"""Seeded episodes: the random scene, set-up calls and call parameters of every episode.

One seed always gives the same episode. `episode_setup` is the episode of a skill that
`skillstack bench skills` measures, collects demonstrations from and evaluates learned
policies on (`skills.bench`, `skills.training`); the object makers and `place_objects` build
other scene sets from the same pieces (`skills.training.scenes`).

Every object stands on the table within reach of the arm; sizes, masses, friction, colours
and poses are drawn from the seed. Skills that need something in hand first (place, pour)
get the grasp as an unmeasured set-up call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from skillstack.robot.scene import COLORS, Scene, SceneObject, Table, validate_scene

EPISODE_SKILLS = ("grasp", "place", "pour", "push", "move_to", "home", "release")
ObjectMaker = Callable[[np.random.Generator, tuple], SceneObject]
"""Builds one object from the random generator at a position (x, y, z) on the table."""


# -- object makers -------------------------------------------------------------------------
def place_objects(
    rng: np.random.Generator,
    makers: list[ObjectMaker],
    tries: int = 500,
) -> Scene:
    """Draw positions in reach for each object until the scene validates."""
    for _ in range(tries):
        objects = []
        for make in makers:
            r, a = rng.uniform(0.38, 0.62), rng.uniform(-1.0, 1.0)
            objects.append(make(rng, (r * math.cos(a), r * math.sin(a), 0.0)))
        scene = Scene(Table(friction=float(rng.uniform(0.6, 1.0))), tuple(objects), name="bench")
        try:
            validate_scene(scene)
        except ValueError:
            continue
        if all(
            math.dist(o.position[:2], p.position[:2])
            > o.footprint_radius() + p.footprint_radius() + 0.06
            for i, o in enumerate(objects)
            for p in objects[i + 1 :]
        ):
            return scene
    raise RuntimeError("could not place the benchmark objects")


def random_color(rng: np.random.Generator) -> tuple:
    """One of the named `COLORS`, drawn from ``rng``."""
    return COLORS[list(COLORS)[int(rng.integers(len(COLORS)))]]


def graspable_maker(name: str, kinds: tuple[str, ...] = ("box", "cylinder", "cup")) -> ObjectMaker:
    """Makes ``name``: a random box, cylinder or empty cup (one of ``kinds``) the gripper takes."""

    def make(rng: np.random.Generator, pos: tuple) -> SceneObject:
        kind = kinds[int(rng.integers(len(kinds)))]
        friction = float(rng.uniform(0.6, 1.0))
        if kind == "box":
            size: tuple[float, ...] = (
                rng.uniform(0.035, 0.06),
                rng.uniform(0.035, 0.06),
                rng.uniform(0.035, 0.08),
            )
            return SceneObject(
                name,
                "box",
                tuple(map(float, size)),
                pos,
                yaw=float(rng.uniform(-math.pi, math.pi)),
                color=random_color(rng),
                mass=float(rng.uniform(0.05, 0.3)),
                friction=friction,
            )
        if kind == "cylinder":
            size = (rng.uniform(0.04, 0.065), rng.uniform(0.05, 0.12))
            return SceneObject(
                name,
                "cylinder",
                tuple(map(float, size)),
                pos,
                color=random_color(rng),
                mass=float(rng.uniform(0.05, 0.3)),
                friction=friction,
            )
        return cup_maker(name, contents=0)(rng, pos)

    return make


def cup_maker(name: str, contents: int | None = None) -> ObjectMaker:
    """Makes the cup ``name`` holding ``contents`` particles (None: a random 12 to 25)."""

    def make(rng: np.random.Generator, pos: tuple) -> SceneObject:
        n = int(rng.integers(12, 26)) if contents is None else contents
        size = (float(rng.uniform(0.065, 0.071)), float(rng.uniform(0.08, 0.10)))
        return SceneObject(
            name,
            "cup",
            size,
            pos,
            color=COLORS["blue"],
            mass=float(rng.uniform(0.1, 0.2)),
            friction=float(rng.uniform(0.7, 1.0)),
            contents=n,
        )

    return make


def container_maker(name: str, kind: Literal["plate", "bowl"]) -> ObjectMaker:
    """Makes ``name``, a random plate or bowl (``kind``)."""

    def make(rng: np.random.Generator, pos: tuple) -> SceneObject:
        if kind == "plate":
            size = (float(rng.uniform(0.14, 0.2)), float(rng.uniform(0.012, 0.02)))
        else:
            size = (float(rng.uniform(0.14, 0.18)), float(rng.uniform(0.05, 0.07)))
        return SceneObject(
            name, kind, size, pos, color=COLORS["white"], mass=float(rng.uniform(0.2, 0.4))
        )

    return make


# -- episodes -----------------------------------------------------------------------------
def episode_setup(skill: str, seed: int) -> tuple[Scene, list[tuple[str, dict]], dict]:
    """The seeded random scene of an episode of ``skill``, the unmeasured set-up calls that
    come first (a grasp before a place, ...), and the parameters of the call under test."""
    rng = np.random.default_rng(seed)
    setup: list[tuple[str, dict]] = []
    params: dict[str, Any]
    if skill == "grasp":
        scene = place_objects(rng, [graspable_maker("target"), graspable_maker("other", ("box",))])
        target = scene.object("target")
        side_ok = (
            target.kind != "cup"
            and target.height() >= 0.05
            and math.hypot(*target.position[:2]) >= 0.45
        )
        params = {
            "object": "target",
            "approach": "side" if side_ok and rng.random() < 0.25 else "top",
        }
    elif skill == "place":
        kinds: tuple[Literal["plate", "bowl", "table"], ...] = ("plate", "bowl", "table")
        kind = kinds[int(rng.integers(3))]
        makers = [graspable_maker("item", ("box", "cylinder"))]
        if kind != "table":
            makers.append(container_maker("goal", kind))
        scene = place_objects(rng, makers)
        setup = [("grasp", {"object": "item"})]
        if kind == "table":
            a = float(rng.uniform(-0.9, 0.9))
            item = scene.object("item").position
            spot = (0.45 * math.cos(a), 0.45 * math.sin(a))
            if math.dist(spot, item[:2]) < 0.12:
                spot = (0.45 * math.cos(-a), 0.45 * math.sin(-a))
            params = {
                "object": "item",
                "target": "table",
                "position": [round(spot[0], 3), round(spot[1], 3)],
            }
        else:
            params = {"object": "item", "target": "goal"}
    elif skill == "pour":
        scene = place_objects(rng, [cup_maker("cup"), container_maker("bowl", "bowl")])
        setup = [("grasp", {"object": "cup"})]
        params = {"source": "cup", "target": "bowl"}
    elif skill == "push":
        scene = place_objects(rng, [graspable_maker("block", ("box", "cylinder"))])
        block = np.array(scene.object("block").position[:2])
        for _ in range(100):  # a direction and distance that end within reach
            direction = float(rng.uniform(-180.0, 180.0))
            distance = float(rng.uniform(0.05, 0.15))
            a = math.radians(direction)
            if (
                0.3
                <= float(np.hypot(*(block + distance * np.array([math.cos(a), math.sin(a)]))))
                <= 0.75
            ):
                break
        params = {
            "object": "block",
            "direction": round(direction, 1),
            "distance": round(distance, 3),
        }
    elif skill == "move_to":
        scene = place_objects(rng, [graspable_maker("thing", ("box",))])
        r, a = rng.uniform(0.3, 0.7), rng.uniform(-1.0, 1.0)
        params = {
            "position": [
                round(r * math.cos(a), 3),
                round(r * math.sin(a), 3),
                round(float(rng.uniform(0.15, 0.5)), 3),
            ]
        }
    else:  # home, release
        scene = place_objects(rng, [graspable_maker("thing", ("box",))])
        setup = [("move_to", {"position": [0.45, 0.1, 0.25]})]
        params = {}
    return scene, setup, params
