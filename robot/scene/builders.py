"""Scenes made in code: seeded random scenes and the default demo scene."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from skillstack.robot.scene.io import scene_from_dict
from skillstack.robot.scene.model import (
    COLORS,
    KINDS,
    RANDOM_MASS_RANGES,
    RANDOM_SIZE_RANGES,
    ReachLimits,
    Scene,
    SceneError,
    SceneObject,
    Table,
)
from skillstack.robot.scene.validate import reach_problem, table_problem, validate_scene, xy_gap

# ----------------------------------------------------------------------------- builders


def random_scene(
    seed: int,
    n_objects: int = 3,
    kinds: Sequence[str] = ("box",),
    reach: ReachLimits = ReachLimits(),
    table: Table = Table(),
    clearance: float = 0.01,
    max_tries: int = 2000,
) -> Scene:
    """A valid random scene, the same for the same arguments (numpy ``default_rng(seed)``).

    Objects rest on the table, inside the reach limits, at least ``clearance`` m apart; sizes
    and masses come from `RANDOM_SIZE_RANGES` / `RANDOM_MASS_RANGES`, colours are distinct while
    `COLORS` lasts, boxes get a random yaw. `SceneError` if an object cannot be placed in
    ``max_tries`` draws.
    """
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds or n_objects < 0:
        raise SceneError(
            f"random_scene: need n_objects >= 0 (got {n_objects}) and kinds from "
            f"{', '.join(KINDS)} (got {list(kinds)})"
        )
    valid = [k for k in kinds if k in KINDS]  # all of them, typed as `ObjectKind`s
    rng = np.random.default_rng(seed)
    colors = [str(c) for c in rng.permutation(list(COLORS))]
    placed: list[SceneObject] = []
    for i in range(n_objects):
        kind = valid[int(rng.integers(len(valid)))]
        size = tuple(float(rng.uniform(lo, hi)) for lo, hi in RANDOM_SIZE_RANGES[kind])
        color = colors[i % len(colors)]
        base = SceneObject(
            name=f"{kind}{sum(o.kind == kind for o in placed)}",
            kind=kind,
            size=size,
            position=(0.0, 0.0, 0.0),
            color=COLORS[color],
            color_name=color,
            mass=float(rng.uniform(*RANDOM_MASS_RANGES[kind])),
        )
        r = base.footprint_radius()
        lo = [c - s / 2 + r for c, s in zip(table.center, table.size, strict=True)]
        hi = [c + s / 2 - r for c, s in zip(table.center, table.size, strict=True)]
        for _ in range(max_tries):
            x, y = (float(rng.uniform(a, b)) for a, b in zip(lo, hi, strict=True))
            yaw = float(rng.uniform(-math.pi, math.pi)) if kind == "box" else 0.0
            obj = replace(base, position=(x, y, 0.0), yaw=yaw)
            if not (reach_problem(obj, reach) or table_problem(obj, table)) and all(
                xy_gap(obj, p) >= clearance for p in placed
            ):
                placed.append(obj)
                break
        else:
            raise SceneError(
                f"random_scene(seed={seed}): placed only {i} of {n_objects} objects; "
                f"no free spot for a {kind} after {max_tries} tries; ask for fewer or "
                "smaller objects or wider reach limits"
            )
    scene = Scene(table=table, objects=tuple(placed), name=f"random-{seed}")
    validate_scene(scene, reach)
    return scene


DEFAULT_SCENE: dict[str, Any] = {
    "name": "panda tabletop",
    "objects": [
        {
            "name": "cube",
            "kind": "box",
            "color": "red",
            "size": [0.05, 0.05, 0.05],
            "mass": 0.1,
            "pose": [0.5, 0.0, 0.0],
        },
        {
            "name": "cup",
            "kind": "cup",
            "color": "blue",
            "size": [0.07, 0.09],
            "mass": 0.15,
            "pose": [0.45, 0.2, 0.0],
            "contents": 20,
        },
        {
            "name": "bowl",
            "kind": "bowl",
            "color": "white",
            "size": [0.16, 0.06],
            "mass": 0.3,
            "pose": [0.45, -0.2, 0.0],
        },
        {
            "name": "plate",
            "kind": "plate",
            "color": "yellow",
            "size": [0.18, 0.015],
            "mass": 0.25,
            "pose": [0.65, 0.0, 0.0],
        },
    ],
}


def default_scene() -> Scene:
    """The Panda tabletop scene: red 5 cm cube, blue cup with 20 particles, white bowl, plate."""
    return scene_from_dict(DEFAULT_SCENE)
