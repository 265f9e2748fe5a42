"""The task suite: long-horizon tabletop tasks as data (scene + instruction + goal check).

Each task lists its objects in the scene-file format, the instruction a person would give,
and the facts that must hold in the world at the end. A seed jitters the object poses
(±1.5 cm, ±0.3 rad) so one task gives many episodes. `skillstack bench tasks` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skillstack.robot.scene import Scene, SceneError, scene_from_dict
from skillstack.skills.world import WorldState

JITTER = 0.015  # m
YAW_JITTER = 0.3  # rad


def _box(name, color, x, y, size=0.05, z=0.0, h=None):
    return {
        "name": name,
        "kind": "box",
        "color": color,
        "size": [size, size, h or size],
        "pose": [x, y, z],
        "mass": 0.12,
    }


def _cup(name="cup", x=0.45, y=0.22, contents=20, color="blue"):
    return {
        "name": name,
        "kind": "cup",
        "color": color,
        "size": [0.07, 0.09],
        "pose": [x, y],
        "contents": contents,
        "mass": 0.15,
    }


def _bowl(name="bowl", x=0.45, y=-0.22, d=0.16, color="white"):
    return {
        "name": name,
        "kind": "bowl",
        "color": color,
        "size": [d, 0.06],
        "pose": [x, y],
        "mass": 0.3,
    }


def _plate(name="plate", x=0.62, y=0.05, color="yellow"):
    return {
        "name": name,
        "kind": "plate",
        "color": color,
        "size": [0.18, 0.015],
        "pose": [x, y],
        "mass": 0.25,
    }


def _can(name="can", x=0.5, y=0.25, color="green"):
    return {
        "name": name,
        "kind": "cylinder",
        "color": color,
        "size": [0.055, 0.08],
        "pose": [x, y],
        "mass": 0.15,
    }


@dataclass(frozen=True)
class Task:
    """One task: objects (scene-file entries), an instruction, and the goal facts."""

    name: str
    instruction: str
    objects: tuple[dict, ...]
    goal: tuple[tuple, ...]

    def scene(self, seed: int) -> Scene:
        """The task's scene, jittered by ``seed`` (seed 0 is the scene as written)."""
        rng = np.random.default_rng(seed)
        for _ in range(50):
            objects = []
            for o in self.objects:
                o = dict(o)
                if seed and o["pose"][2:3] in ([], [0.0]):
                    x, y = o["pose"][0], o["pose"][1]
                    o["pose"] = [
                        x + rng.uniform(-JITTER, JITTER),
                        y + rng.uniform(-JITTER, JITTER),
                        0.0,
                        rng.uniform(-YAW_JITTER, YAW_JITTER) if o["kind"] == "box" else 0.0,
                    ]
                objects.append(o)
            try:
                return scene_from_dict({"name": self.name, "objects": objects})
            except SceneError:
                continue
        raise SceneError(f"task {self.name}: no valid jittered scene for seed {seed}")

    def check(self, world: WorldState) -> bool:
        """Whether every goal fact holds in ``world``."""
        return all(_holds(g, world) for g in self.goal)

    def unmet(self, world: WorldState) -> list[tuple]:
        """The goal facts that do not hold."""
        return [g for g in self.goal if not _holds(g, world)]


def _holds(goal: tuple, world: WorldState) -> bool:
    if goal[0] == "not":
        return not _holds(goal[1], world)
    if goal[0] == "contains_at_least":
        return world.contents.get(goal[1], 0) >= goal[2]
    if goal[0] == "nothing_on":
        return not any(p[0] in ("on", "in") and p[2] == goal[1] for p in world.predicates)
    if goal[0] == "moved":  # ("moved", obj, axis, at_least_m, from_value)
        _, obj, axis, at_least, start = goal
        return world.object(obj).position[axis] - start >= at_least
    return world.holds(*goal)


TASKS: tuple[Task, ...] = (
    Task(
        "pick_cube",
        "pick up the red cube",
        (_box("cube", "red", 0.5, 0.0), _bowl()),
        (("holding", "cube"),),
    ),
    Task(
        "cube_on_plate",
        "put the red cube on the plate",
        (_box("cube", "red", 0.45, 0.15), _plate()),
        (("on", "cube", "plate"),),
    ),
    Task(
        "cube_in_bowl",
        "put the blue block in the bowl",
        (_box("blue1", "blue", 0.5, 0.15), _box("red1", "red", 0.38, 0.1), _bowl()),
        (("in", "blue1", "bowl"), ("not", ("in", "red1", "bowl"))),
    ),
    Task(
        "all_red_in_bowl",
        "put all red blocks in the bowl",
        (
            _box("red1", "red", 0.5, 0.18),
            _box("red2", "red", 0.38, 0.12),
            _box("green1", "green", 0.6, -0.05),
            _bowl(),
        ),
        (("in", "red1", "bowl"), ("in", "red2", "bowl"), ("not", ("in", "green1", "bowl"))),
    ),
    Task(
        "pour",
        "pour the cup into the bowl",
        (_cup(), _bowl()),
        (("contains_at_least", "bowl", 14),),
    ),
    Task(
        "pour_then_plate",
        "pour the cup into the bowl then put the cup on the plate",
        (_cup(), _bowl(), _plate(x=0.62, y=0.0)),
        (("contains_at_least", "bowl", 14), ("on", "cup", "plate")),
    ),
    Task(
        "stack_two",
        "stack the green block on the red block",
        (_box("red1", "red", 0.5, 0.1), _box("green1", "green", 0.42, -0.12)),
        (("on", "green1", "red1"),),
    ),
    Task(
        "stack_three_largest_bottom",
        "stack three blocks largest at the bottom",
        (
            _box("big", "red", 0.5, 0.15, 0.06),
            _box("mid", "green", 0.4, -0.15, 0.05),
            _box("small", "blue", 0.58, -0.08, 0.04),
        ),
        (("on", "mid", "big"), ("on", "small", "mid")),
    ),
    Task(
        "clear_plate",
        "clear the plate",
        (
            _plate(x=0.5, y=0.0),
            _box("a", "red", 0.47, -0.03, z=0.015),
            _box("b", "blue", 0.54, 0.04, 0.04, z=0.015),
        ),
        (("nothing_on", "plate"),),
    ),
    Task(
        "push_left",
        "push the cube left by 10 cm",
        (_box("cube", "red", 0.5, -0.1),),
        (("moved", "cube", 1, 0.08, -0.1),),
    ),
    Task(
        "push_forward",
        "push the red block forward by 8 cm",
        (_box("red1", "red", 0.42, 0.05), _box("blue1", "blue", 0.42, -0.2)),
        (("moved", "red1", 0, 0.06, 0.42),),
    ),
    Task(
        "two_sentences",
        "put the red block on the plate then put the blue block in the bowl",
        (
            _box("red1", "red", 0.4, 0.15),
            _box("blue1", "blue", 0.38, -0.05),
            _plate(),
            _bowl(y=-0.25),
        ),
        (("on", "red1", "plate"), ("in", "blue1", "bowl")),
    ),
    Task(
        "can_on_box",
        "put the can on the big green box",
        (_can(), _box("gbox", "green", 0.45, -0.15, 0.07)),
        (("on", "can", "gbox"),),
    ),
    Task(
        "cube_to_table",
        "put the cube on the table",
        (_plate(x=0.5, y=0.0), _box("cube", "red", 0.5, 0.0, z=0.015)),
        (("on_table", "cube"), ("not", ("on", "cube", "plate"))),
    ),
    Task(
        "unstack",
        "put the blue block on the table",
        (_box("red1", "red", 0.5, 0.0), _box("blue1", "blue", 0.5, 0.0, z=0.05)),
        (("on_table", "blue1"), ("clear", "red1")),
    ),
    Task(
        "all_blocks_in_bowl",
        "put all blocks in the bowl",
        (
            _box("a", "red", 0.52, 0.18, 0.04),
            _box("b", "green", 0.38, 0.15, 0.04),
            _box("c", "blue", 0.6, -0.02, 0.04),
            _bowl(x=0.42, y=-0.22, d=0.18),
        ),
        (("in", "a", "bowl"), ("in", "b", "bowl"), ("in", "c", "bowl")),
    ),
    Task(
        "pour_into_large_bowl",
        "pour the cup into the large bowl",
        (
            _cup(y=0.0, x=0.4),
            _bowl("small_bowl", 0.55, 0.25, 0.14, "green"),
            _bowl("large_bowl", 0.45, -0.25, 0.18),
        ),
        (("contains_at_least", "large_bowl", 14), ("contains_at_least", "small_bowl", 0)),
    ),
    Task(
        "pick_largest",
        "pick up the largest block",
        (_box("small", "red", 0.45, 0.15, 0.04), _box("large", "red", 0.5, -0.12, 0.06)),
        (("holding", "large"),),
    ),
    Task(
        "can_on_plate",
        "put the can on the plate",
        (_can(x=0.42, y=0.2), _plate(x=0.6, y=-0.1)),
        (("on", "can", "plate"),),
    ),
    Task(
        "bowl_then_home",
        "put the cube in the bowl then go home",
        (_box("cube", "red", 0.5, 0.1), _bowl(x=0.42, y=-0.2)),
        (("in", "cube", "bowl"), ("gripper_empty",)),
    ),
    Task(
        "stack_sequence",
        "put the green block on the red block then put the blue block on the green block",
        (
            _box("red1", "red", 0.5, 0.12, 0.06),
            _box("green1", "green", 0.4, -0.12),
            _box("blue1", "blue", 0.58, -0.1, 0.04),
        ),
        (("on", "green1", "red1"), ("on", "blue1", "green1")),
    ),
    Task(
        "clear_bowl",
        "clear the bowl",
        (_bowl(x=0.5, y=0.0), _box("cube", "red", 0.5, 0.0, 0.04, z=0.012)),
        (("nothing_on", "bowl"),),
    ),
)


def get_task(name: str) -> Task:
    """The task called ``name``; `KeyError` listing the tasks."""
    for task in TASKS:
        if task.name == name:
            return task
    raise KeyError(f"unknown task {name!r}; tasks: {', '.join(t.name for t in TASKS)}")
