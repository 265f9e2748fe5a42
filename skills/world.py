"""The symbolic world state the planner and the skills reason over.

A `WorldState` is a snapshot: every object with its kind, colour, size and pose, what the
gripper holds, and the predicates derived from geometry:

* ``holding(x)``, ``gripper_empty``
* ``on(x, y)`` — x rests on the top of surface y (a box or a plate); ``on_table(x)``
* ``in(x, y)`` — x is inside container y (a cup or a bowl)
* ``clear(x)`` — nothing rests on x
* ``contains(c, n)`` — container c holds n particles

Today the state is built from the simulator's ground truth (`observe`, through the
backend-neutral `hw.sim.truth.SimTruth` queries that MuJoCo and PyBullet both answer);
perception will produce the same type from camera images.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import mujoco
import numpy as np

from skillstack.hw.sim.truth import SimTruth
from skillstack.robot.scene import PARTICLE_RADIUS, ObjectKind, Scene
from skillstack.robot.scene.model import CONTAINER_WALL as CUP_WALL
from skillstack.robot.types import RobotState

ON_TOLERANCE = 0.015  # m, gap between x's bottom and y's top still counted as "on"
TABLE_TOLERANCE = 0.01  # m, bottom this close to z = 0 counts as "on the table"
UPRIGHT_COS = math.cos(math.radians(20))  # an object tilted less than this is upright

Predicate = tuple  # ("on", "cube", "plate"), ("gripper_empty",), ("contains", "cup", 20)


def vec3(values: Iterable[float]) -> tuple[float, float, float]:
    """A position (m) as three Python floats; `ValueError` unless there are exactly three."""
    x, y, z = values
    return float(x), float(y), float(z)


def quat4(values: Iterable[float]) -> tuple[float, float, float, float]:
    """A quaternion (w, x, y, z) as four Python floats; `ValueError` unless exactly four."""
    w, x, y, z = values
    return float(w), float(x), float(y), float(z)


@dataclass(frozen=True)
class ObjectState:
    """One object as observed: ``position`` is the geometric centre, ``size`` as in the scene."""

    name: str
    kind: ObjectKind
    color: str
    size: tuple[float, ...]
    position: tuple[float, float, float]
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)

    @property
    def height(self) -> float:
        """Vertical extent (m) when upright."""
        return self.size[2] if self.kind == "box" else self.size[1]

    @property
    def bottom(self) -> float:
        """World z of the underside (assuming upright)."""
        return self.position[2] - self.height / 2

    @property
    def top(self) -> float:
        """World z of the top."""
        return self.position[2] + self.height / 2

    @property
    def yaw(self) -> float:
        """Rotation about world z (rad)."""
        w, x, y, z = self.quat
        return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))

    @property
    def upright(self) -> bool:
        """True when the object's z axis points (nearly) up."""
        _, x, y, _ = self.quat
        return 1 - 2 * (x * x + y * y) >= UPRIGHT_COS

    @property
    def radius(self) -> float:
        """Radius of the xy footprint's bounding circle."""
        if self.kind == "box":
            return 0.5 * math.hypot(self.size[0], self.size[1])
        return 0.5 * self.size[0]

    @property
    def is_container(self) -> bool:
        """Cups and bowls hold things."""
        return self.kind in ("cup", "bowl")

    @property
    def is_surface(self) -> bool:
        """Boxes and plates have tops to place things on."""
        return self.kind in ("box", "plate")

    def xy_distance(self, other: ObjectState) -> float:
        """Horizontal distance between centres (m)."""
        return math.hypot(
            self.position[0] - other.position[0], self.position[1] - other.position[1]
        )

    def footprint_contains(self, x: float, y: float, margin: float = 0.0) -> bool:
        """Is the point (x, y) over this object's top face (shrunk by ``margin``)?"""
        dx, dy = x - self.position[0], y - self.position[1]
        if self.kind == "box":
            c, s = math.cos(self.yaw), math.sin(self.yaw)
            lx, ly = c * dx + s * dy, -s * dx + c * dy
            return abs(lx) <= self.size[0] / 2 - margin and abs(ly) <= self.size[1] / 2 - margin
        return math.hypot(dx, dy) <= self.size[0] / 2 - margin


@dataclass(frozen=True)
class WorldState:
    """A snapshot of the world; see the module docstring for the predicates."""

    objects: dict[str, ObjectState]
    held: str | None = None
    gripper_width: float = 0.08
    ee_position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    contents: dict[str, int] = field(default_factory=dict)  # particles inside each container
    spilled: int = 0  # particles outside every container, on the table or floor
    time: float = 0.0

    def object(self, name: str) -> ObjectState:
        """The object called ``name``; `KeyError` listing the objects there are."""
        try:
            return self.objects[name]
        except KeyError:
            raise KeyError(
                f"no object {name!r}; objects: {', '.join(self.objects) or '(none)'}"
            ) from None

    @property
    def predicates(self) -> frozenset[Predicate]:
        """Every predicate that holds, as tuples."""
        return derive_predicates(self)

    def holds(self, *predicate) -> bool:
        """``world.holds("on", "cube", "plate")``."""
        return tuple(predicate) in self.predicates

    def to_dict(self) -> dict:
        """A JSON/msgpack-friendly form (the robot server sends world states this way)."""
        return {
            "objects": [
                {
                    "name": o.name,
                    "kind": o.kind,
                    "color": o.color,
                    "size": list(o.size),
                    "position": list(o.position),
                    "quat": list(o.quat),
                }
                for o in self.objects.values()
            ],
            "held": self.held,
            "gripper_width": self.gripper_width,
            "ee_position": list(self.ee_position),
            "contents": dict(self.contents),
            "spilled": self.spilled,
            "time": self.time,
        }

    @staticmethod
    def from_dict(data: dict) -> WorldState:
        """Inverse of `to_dict`."""
        objects = {
            o["name"]: ObjectState(
                o["name"],
                o["kind"],
                o["color"],
                tuple(o["size"]),
                tuple(o["position"]),
                tuple(o["quat"]),
            )
            for o in data["objects"]
        }
        return WorldState(
            objects,
            data.get("held"),
            float(data.get("gripper_width", 0.0)),
            tuple(data.get("ee_position", (0.0, 0.0, 0.0))),
            dict(data.get("contents", {})),
            int(data.get("spilled", 0)),
            float(data.get("time", 0.0)),
        )

    def describe(self) -> str:
        """A compact, human- and LLM-readable description, one object per line."""
        lines = []
        for o in self.objects.values():
            x, y, z = o.position
            extra = (
                f", contains {self.contents[o.name]} particles" if self.contents.get(o.name) else ""
            )
            lines.append(
                f"- {o.name}: {o.color} {o.kind}, "
                f"size {'x'.join(f'{s * 100:.1f}' for s in o.size)} cm, "
                f"at ({x:.3f}, {y:.3f}, {z:.3f}) m{extra}"
            )
        # Facts as predicate(arguments), on lines of their own: a relation is never written
        # where an object name could be read ("clear plate" looks like an object).
        preds = sorted(
            f"{p[0]}({', '.join(map(str, p[1:]))})" for p in self.predicates if p[0] != "contains"
        )
        lines.append("Facts that hold now (predicate(object, ...)):")
        lines += [f"- {p}" for p in preds]
        return "\n".join(lines)


class WorldFacts(Protocol):
    """What symbolic reasoning reads of a world: its objects, the predicates that hold, the
    containers' contents and what is held.

    `WorldState` provides it, and so does the planners' roll-out world
    (`planners.validator.SymbolicWorld`), which `Skill.effects` is applied to.
    """

    @property
    def objects(self) -> dict[str, ObjectState]:
        """Every object by name."""
        ...

    @property
    def predicates(self) -> frozenset[Predicate]:
        """Every predicate that holds."""
        ...

    @property
    def contents(self) -> dict[str, int]:
        """Particles inside each container."""
        ...

    @property
    def held(self) -> str | None:
        """The object in the gripper, if any."""
        ...

    def holds(self, *predicate) -> bool:
        """Whether ``predicate`` holds."""
        ...

    def object(self, name: str) -> ObjectState:
        """The object called ``name``; `KeyError` listing the objects there are."""
        ...


def derive_predicates(world: WorldState) -> frozenset[Predicate]:
    """Predicates from geometry (see the module docstring)."""
    out: set[Predicate] = set()
    objs = world.objects
    if world.held is None:
        out.add(("gripper_empty",))
    else:
        out.add(("holding", world.held))
    supported: set[str] = set()
    for x in objs.values():
        if x.name == world.held:
            continue
        for y in objs.values():
            if y is x:
                continue
            if (
                y.is_surface
                and abs(x.bottom - y.top) <= ON_TOLERANCE
                and y.footprint_contains(x.position[0], x.position[1])
            ):
                out.add(("on", x.name, y.name))
                supported.add(y.name)
            elif y.is_container and _inside(x, y):
                out.add(("in", x.name, y.name))
        if abs(x.bottom) <= TABLE_TOLERANCE:
            out.add(("on_table", x.name))
    for name in objs:
        if name not in supported:
            out.add(("clear", name))
    for name, n in world.contents.items():
        out.add(("contains", name, n))
    return frozenset(out)


def _inside(x: ObjectState, container: ObjectState) -> bool:
    inner = container.size[0] / 2 - CUP_WALL
    return (
        x.xy_distance(container) + min(x.radius, inner) * 0.5 <= inner
        and container.bottom - 0.005 <= x.bottom <= container.top
    )


def object_at(obj, pose) -> ObjectState:
    """Scene object ``obj`` (its kind, colour and size) at ``pose`` (its geometric centre)."""
    return ObjectState(
        obj.name,
        obj.kind,
        obj.color_name,
        tuple(obj.size),
        vec3(pose.position),
        quat4(pose.quat),
    )


class ObservableSim(SimTruth, Protocol):
    """A simulated robot as `observe` reads it: the ground-truth queries (`SimTruth`), the
    scene it simulates and its joint state (`hw.sim.mujoco.robot.MujocoRobot`,
    `hw.sim.pybullet.robot.PybulletRobot`)."""

    @property
    def scene(self) -> Scene:
        """The scene the simulator was built from (its objects' names, kinds and sizes)."""
        ...

    def read(self) -> RobotState:
        """The arm's current state."""
        ...


def observe(robot: ObservableSim) -> WorldState:
    """The world state from the simulator's ground truth (any `SimTruth` backend)."""
    objects = {o.name: object_at(o, robot.object_pose(o.name)) for o in robot.scene.objects}
    held = _held_object(robot, objects)
    contents, spilled = _count_particles(robot, objects)
    state = robot.read()
    return WorldState(
        objects=objects,
        held=held,
        gripper_width=float(state.gripper_width),
        ee_position=vec3(robot.ee_pose().position),
        contents=contents,
        spilled=spilled,
        time=float(robot.sim_time),
    )


def _held_object(robot: SimTruth, objects: dict[str, ObjectState]) -> str | None:
    """The object both finger pads touch, if any."""
    touching = robot.pad_contacts()
    both = [name for name, sides in touching.items() if len(sides) == 2 and name in objects]
    return both[0] if both else None


def _count_particles(
    robot: SimTruth, objects: dict[str, ObjectState]
) -> tuple[dict[str, int], int]:
    containers = [o for o in objects.values() if o.is_container]
    contents = {o.name: 0 for o in containers}
    spilled = 0
    for p in robot.particle_positions():
        for c in containers:
            if _particle_inside(p, c):
                contents[c.name] += 1
                break
        else:
            spilled += 1
    return contents, spilled


def _particle_inside(p: np.ndarray, c: ObjectState) -> bool:
    """Inside the container's cylinder, in its own (possibly tilted) frame."""
    rel = np.asarray(p) - np.asarray(c.position)
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, np.asarray(c.quat, dtype=float))
    local = rot.reshape(3, 3).T @ rel
    inner = c.size[0] / 2 - CUP_WALL + PARTICLE_RADIUS * 0.5
    return (
        math.hypot(local[0], local[1]) <= inner
        and -c.height / 2 - PARTICLE_RADIUS <= local[2] <= c.height / 2
    )
