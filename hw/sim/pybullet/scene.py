"""Build a backend-agnostic `Scene` and the Panda in one PyBullet client.

The same geometry as `hw.sim.mujoco.scene`: the world frame has the robot base at the origin
and the table top at z = 0; boxes, cylinders and plates are single shapes; cups and bowls are
hollow (a floor disc and a ring of `CUP_SEGMENTS` wall boxes, one compound collision shape);
a cup's ``contents`` become small spheres named with `PARTICLE_PREFIX`. Masses, inertias
(about the geometric centre, `hw.sim.geometry`) and particles (`hw.sim.particles`) are the
MuJoCo builder's.

Friction differs by design between the engines. MuJoCo takes the larger of two contacting
geoms' coefficients (and the finger pads win by priority); Bullet multiplies them. To get
the same effective coefficients where it matters:

* the table body's coefficient is 1, and each object gets ``max(own, scene table's)``:
  object-on-table contacts then see MuJoCo's ``max`` exactly (object-on-object contacts see
  the product of two such values, somewhat lower than MuJoCo's ``max``);
* the pads' coefficient `PAD_FRICTION` times an object's (0.6-1) gives 1.2-2, around the
  pads' 1.5 in MuJoCo;
* torsional and rolling coefficients are divided by the typical partner's sliding
  coefficient, because Bullet combines them as ``a.spin * b.friction + b.spin * a.friction``.

The Panda comes from pybullet_data's URDF, rewritten in memory (absolute mesh paths, each
finger's collision mesh replaced by the rubber pad box of `robot.arms.panda`) and loaded from
a temporary file, since PyBullet loads URDFs only from files.
"""

from __future__ import annotations

import math
import re
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pybullet as pb

from skillstack.hw.sim.geometry import (
    CUP_SEGMENTS,
    CUP_WALL,
    FLOOR_THICKNESS,
    box_inertia,
    cylinder_inertia,
)
from skillstack.hw.sim.particles import PARTICLE_MASS, particle_layout
from skillstack.robot.arms import panda
from skillstack.robot.scene import PARTICLE_RADIUS, Scene, SceneObject

TABLE_FRICTION = 1.0  # see the module docstring
PAD_FRICTION = 2.0  # sliding; pad x object (0.6-1) = 1.2-2
PAD_SPINNING = 0.025  # torsional; ~ MuJoCo's 0.02 after Bullet's combination
OBJECT_SPINNING = 0.01
# Particles: tuned on the default scene's pour (tilt 125°), where Bullet's combination of
# the MuJoCo-like values (sliding 1 x partner, rolling 0.0025) left 13 of 20 beads jammed in
# the cup; 0.6 (0.36 bead on bead, ~0.5 bead on cup, as MuJoCo's bead coefficient) with
# rolling 0.002 pours them all.
PARTICLE_FRICTION = 0.6
PARTICLE_ROLLING = 0.002
PARTICLE_COLOR = (0.45, 0.25, 0.1, 1.0)
TABLE_COLOR = (0.62, 0.48, 0.33, 1.0)
FLOOR_COLOR = (0.55, 0.6, 0.65, 1.0)
LEG_COLOR = (0.45, 0.35, 0.25, 1.0)
ARM_COLOR = (0.95, 0.95, 0.95, 1.0)
PAD_COLOR = (0.15, 0.15, 0.15, 1.0)


@dataclass
class BuiltScene:
    """Body ids of what `build_scene` created in one client."""

    client: int
    arm: int
    objects: dict[str, int]  # scene object name -> body id
    particles: list[int] = field(default_factory=list)
    table: int = -1
    floor: int = -1

    def name_of(self, body: int) -> str | None:
        """A body's name: a scene object's name, ``"table"``, ``"floor"``, or None."""
        if body == self.table:
            return "table"
        if body == self.floor:
            return "floor"
        return self.objects_by_body.get(body)

    def __post_init__(self) -> None:
        self.objects_by_body = {b: n for n, b in self.objects.items()}


# -- the arm ----------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def panda_urdf() -> Path:
    """A rewritten copy of pybullet_data's Panda URDF (see the module docstring)."""
    src = panda.urdf_path()
    text = src.read_text().replace("package://", f"{src.parent}/")
    # Contact stiffness/damping and frictions of the fingers are set in code (`load_arm`).
    text = re.sub(r"\s*<contact>.*?</contact>", "", text, flags=re.S)
    for link, side in zip(panda.FINGER_BODIES, (1.0, -1.0), strict=True):
        start = text.index(f'<link name="{link}">')
        end = text.index("</link>", start)
        block = text[start:end]
        c0 = block.index("<collision>")
        c1 = block.index("</collision>") + len("</collision>")
        hx, hy, hz = (2 * s for s in panda.PAD_HALF_SIZE)
        px, py, pz = panda.PAD_CENTER
        pad = (
            f'<collision><origin rpy="0 0 0" xyz="{px} {side * py} {pz}"/>'
            f'<geometry><box size="{hx} {hy} {hz}"/></geometry></collision>'
        )
        text = text[:start] + block[:c0] + pad + block[c1:] + text[end:]
    out = Path(tempfile.mkdtemp(prefix="skillstack_panda_")) / "panda.urdf"
    out.write_text(text)
    return out


def load_arm(cid: int) -> int:
    """Load the Panda (fixed base at the origin) with pad frictions; returns its body id."""
    arm = pb.loadURDF(str(panda_urdf()), [0, 0, 0], useFixedBase=True, flags=0, physicsClientId=cid)
    for j in range(pb.getNumJoints(arm, physicsClientId=cid)):
        link = pb.getJointInfo(arm, j, physicsClientId=cid)[12].decode()
        color = PAD_COLOR if link in panda.FINGER_BODIES else ARM_COLOR
        pb.changeVisualShape(arm, j, rgbaColor=color, physicsClientId=cid)
        if link in panda.FINGER_BODIES:
            pb.changeDynamics(
                arm,
                j,
                lateralFriction=PAD_FRICTION,
                spinningFriction=PAD_SPINNING,
                frictionAnchor=True,
                physicsClientId=cid,
            )
    return arm


# -- the scene ----------------------------------------------------------------------------------
def build_scene(
    cid: int, scene: Scene, *, particles: bool = True, static: bool = False
) -> BuiltScene:
    """Create the table, floor, arm and objects of ``scene`` in client ``cid``.

    ``static=True`` makes every object immovable and skips particles: the shadow copy used for
    distance queries (`PybulletRobot.clearance`).
    """
    floor, table = _add_environment(cid, scene)
    arm = load_arm(cid)
    objects = {
        obj.name: _add_object(cid, obj, static, scene.table.friction) for obj in scene.objects
    }
    built = BuiltScene(cid, arm, objects, table=table, floor=floor)
    if particles and not static:
        for obj in scene.objects:
            if obj.contents and obj.kind in ("cup", "bowl"):
                built.particles += _add_particles(cid, obj)
    return built


def _add_environment(cid: int, scene: Scene) -> tuple[int, int]:
    t = scene.table
    plane = pb.createCollisionShape(pb.GEOM_PLANE, physicsClientId=cid)
    plane_vis = pb.createVisualShape(
        pb.GEOM_BOX, halfExtents=[3, 3, 0.001], rgbaColor=FLOOR_COLOR, physicsClientId=cid
    )
    floor = pb.createMultiBody(0, plane, plane_vis, [0, 0, -t.height], physicsClientId=cid)
    half = [t.size[0] / 2, t.size[1] / 2, 0.025]
    table = pb.createMultiBody(
        0,
        pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=cid),
        pb.createVisualShape(
            pb.GEOM_BOX, halfExtents=half, rgbaColor=TABLE_COLOR, physicsClientId=cid
        ),
        [t.center[0], t.center[1], -half[2]],
        physicsClientId=cid,
    )
    for b in (floor, table):
        pb.changeDynamics(b, -1, lateralFriction=TABLE_FRICTION, physicsClientId=cid)
    leg_h = (t.height - 2 * half[2]) / 2
    leg = pb.createVisualShape(
        pb.GEOM_BOX, halfExtents=[0.03, 0.03, leg_h], rgbaColor=LEG_COLOR, physicsClientId=cid
    )
    for sx in (-1, 1):
        for sy in (-1, 1):
            pos = [
                t.center[0] + sx * (half[0] - 0.05),
                t.center[1] + sy * (half[1] - 0.05),
                -2 * half[2] - leg_h,
            ]
            pb.createMultiBody(0, -1, leg, pos, physicsClientId=cid)  # looks only
    return floor, table


def _add_object(cid: int, obj: SceneObject, static: bool, table_friction: float) -> int:
    h = obj.half_height()
    color = list(obj.color)
    if obj.kind == "box":
        half = [s / 2 for s in obj.size]
        col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=cid)
        vis = pb.createVisualShape(
            pb.GEOM_BOX, halfExtents=half, rgbaColor=color, physicsClientId=cid
        )
        inertia = box_inertia(obj.mass, obj.size)
    elif obj.kind in ("cylinder", "plate"):
        r = obj.size[0] / 2
        col = pb.createCollisionShape(pb.GEOM_CYLINDER, radius=r, height=2 * h, physicsClientId=cid)
        vis = pb.createVisualShape(
            pb.GEOM_CYLINDER, radius=r, length=2 * h, rgbaColor=color, physicsClientId=cid
        )
        inertia = cylinder_inertia(obj.mass, r, 2 * h)
    else:  # cup, bowl: hollow
        r = obj.size[0] / 2
        col, vis = _hollow_shapes(cid, r, h, color)
        inertia = cylinder_inertia(obj.mass, r, 2 * h)
    yaw = obj.yaw
    body = pb.createMultiBody(
        0.0 if static else obj.mass,
        col,
        vis,
        [obj.position[0], obj.position[1], obj.position[2] + h],
        [0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)],  # Bullet: (x, y, z, w)
        physicsClientId=cid,
    )
    dyn: dict[str, float | list[float]] = dict(
        lateralFriction=max(obj.friction, table_friction),
        spinningFriction=OBJECT_SPINNING,
        physicsClientId=cid,
    )
    if not static:
        dyn["localInertiaDiagonal"] = inertia
    pb.changeDynamics(body, -1, **dyn)
    return body


def _hollow_shapes(cid: int, r: float, h: float, color: list[float]) -> tuple[int, int]:
    """A floor disc and a ring of wall boxes, as one compound collision and visual shape."""
    half_chord = r * math.tan(math.pi / CUP_SEGMENTS) * 1.08
    wall_h = h - FLOOR_THICKNESS / 2
    types = [pb.GEOM_CYLINDER]
    radii = [r]
    halves: list[list[float]] = [[0, 0, 0]]
    lengths = [FLOOR_THICKNESS]
    positions = [[0, 0, -h + FLOOR_THICKNESS / 2]]
    orientations: list[list[float]] = [[0, 0, 0, 1]]
    rc = r - CUP_WALL / 2
    for i in range(CUP_SEGMENTS):
        a = 2 * math.pi * i / CUP_SEGMENTS
        types.append(pb.GEOM_BOX)
        radii.append(0.0)
        halves.append([CUP_WALL / 2, half_chord, wall_h])
        lengths.append(0.0)
        positions.append([rc * math.cos(a), rc * math.sin(a), FLOOR_THICKNESS / 2])
        orientations.append([0, 0, math.sin(a / 2), math.cos(a / 2)])
    col = pb.createCollisionShapeArray(
        types,
        radii=radii,
        halfExtents=halves,
        lengths=lengths,
        collisionFramePositions=positions,
        collisionFrameOrientations=orientations,
        physicsClientId=cid,
    )
    vis = pb.createVisualShapeArray(
        types,
        radii=radii,
        halfExtents=halves,
        lengths=lengths,
        rgbaColors=[color] * len(types),
        visualFramePositions=positions,
        visualFrameOrientations=orientations,
        physicsClientId=cid,
    )
    return col, vis


def _add_particles(cid: int, cup: SceneObject) -> list[int]:
    """The cup's contents as free spheres, laid out as the MuJoCo builder does."""
    col = pb.createCollisionShape(pb.GEOM_SPHERE, radius=PARTICLE_RADIUS, physicsClientId=cid)
    vis = pb.createVisualShape(
        pb.GEOM_SPHERE, radius=PARTICLE_RADIUS, rgbaColor=PARTICLE_COLOR, physicsClientId=cid
    )
    out = []
    for pos in particle_layout(cup):
        body = pb.createMultiBody(PARTICLE_MASS, col, vis, list(pos), physicsClientId=cid)
        pb.changeDynamics(
            body,
            -1,
            lateralFriction=PARTICLE_FRICTION,
            rollingFriction=PARTICLE_ROLLING,
            physicsClientId=cid,
        )
        out.append(body)
    return out
