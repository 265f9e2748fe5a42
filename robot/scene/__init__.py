"""Backend-agnostic description of a tabletop scene: a table and the objects on it.

People write scenes as YAML or JSON files (passed with ``--scene FILE``)::

    name: pour demo
    table: {size: [1.0, 1.2], center: [0.45, 0.0], height: 0.75}   # optional
    objects:
      - {name: cup, kind: cup, color: blue, size: [0.07, 0.09], pose: [0.45, 0.2], contents: 20}
      - {name: bowl, kind: bowl, color: white, size: [0.16, 0.06], pose: {xyz: [0.45, -0.2]}}

Conventions follow `robot.types`: SI units, world origin at the robot base, z up, table top at
z = 0. An object's ``position`` is its BOTTOM centre, so z = 0 means resting on the table.
Loaders validate, and problems are reported as a `SceneError` a person can act on.

Modules: `model` (types and limits), `validate` (geometry checks), `io` (files),
`builders` (random and default scenes).
"""

from skillstack.robot.scene.builders import DEFAULT_SCENE, default_scene, random_scene
from skillstack.robot.scene.io import load_scene, scene_from_dict
from skillstack.robot.scene.model import (
    COLORS,
    DEFAULT_FRICTION,
    DEFAULT_MASS,
    KINDS,
    MAX_MASS,
    MAX_OBJECT_SIZE,
    PARTICLE_RADIUS,
    SIZE_LAYOUT,
    ObjectKind,
    ReachLimits,
    Scene,
    SceneError,
    SceneObject,
    Table,
    UnknownObjectError,
    nearest_color,
)
from skillstack.robot.scene.validate import find_problems, objects_overlap, validate_scene, xy_gap

__all__ = [
    "COLORS",
    "DEFAULT_FRICTION",
    "DEFAULT_MASS",
    "DEFAULT_SCENE",
    "KINDS",
    "MAX_MASS",
    "MAX_OBJECT_SIZE",
    "PARTICLE_RADIUS",
    "SIZE_LAYOUT",
    "ObjectKind",
    "ReachLimits",
    "Scene",
    "SceneError",
    "SceneObject",
    "Table",
    "UnknownObjectError",
    "default_scene",
    "find_problems",
    "load_scene",
    "nearest_color",
    "objects_overlap",
    "random_scene",
    "scene_from_dict",
    "validate_scene",
    "xy_gap",
]
