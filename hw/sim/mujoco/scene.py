"""Compile a backend-agnostic `Scene` and an `Arm` into one MuJoCo model.

The world frame has the robot base at the origin and the table top at z = 0. Every object
becomes a free body; cups and bowls are hollow (a floor plus a ring of wall boxes) so that
particles can sit inside them, and a cup's ``contents`` become small free spheres.

Physics options are chosen for grasping: an elliptic friction cone with a raised
``impratio`` (MuJoCo's recommendation against slip in pinch grasps), the implicit-fast
integrator (stable with stiff position servos at 1 ms), and automatic reset on divergence
disabled so that a diverging simulation is reported instead of silently restarted.

Objects at rest *sleep* (MuJoCo's island sleeping, at its default velocity tolerance): a
box resting on the table, or beads settled in a cup, cost no collision or constraint work
until something awake touches them (the arm never sleeps; actuated trees cannot). It
halves the physics step of the benchmark scenes (grasp 25 → 15 µs, a cup of beads at rest
90 → 13 µs) with the same outcome on every benchmark episode checked (`SLEEP`).
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from skillstack.hw.sim.geometry import (
    CUP_SEGMENTS,
    CUP_WALL,
    FLOOR_THICKNESS,
    box_inertia,
    cylinder_inertia,
)
from skillstack.hw.sim.mujoco.cameras import add_cameras
from skillstack.hw.sim.particles import PARTICLE_MASS, particle_layout
from skillstack.hw.sim.timing import PHYSICS_DT
from skillstack.hw.sim.truth import PARTICLE_PREFIX
from skillstack.robot.arms import Arm
from skillstack.robot.arms.common import COLLIDE_ROBOT, COLLIDE_SCENE
from skillstack.robot.camera import DEFAULT_CAMERAS
from skillstack.robot.scene import PARTICLE_RADIUS, Scene, SceneObject

IMPRATIO = 10.0  # friction-to-normal impedance ratio; >1 reduces slip in grasps
PARTICLE_SOLREF_TIMECONST = 0.002  # s
OBJECT_CONDIM = 4  # sliding + torsional friction on objects
SLEEP = True  # objects at rest sleep (see the module docstring)
SCENE_ALL = COLLIDE_SCENE | COLLIDE_ROBOT  # scene geoms touch the robot and each other


def build_model(scene: Scene, arm: Arm) -> mujoco.MjModel:
    """Compile ``scene`` with ``arm`` mounted at the origin into a `mujoco.MjModel`."""
    return build_spec(scene, arm).compile()


def build_spec(scene: Scene, arm: Arm) -> mujoco.MjSpec:
    """The `mujoco.MjSpec` of the arm on its table with the scene's objects."""
    spec = arm.build_spec(with_actuators=True)
    spec.modelname = f"{arm.name}_{scene.name}".replace(" ", "_")
    opt = spec.option
    opt.timestep = PHYSICS_DT
    opt.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    opt.impratio = IMPRATIO
    opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_AUTORESET
    if SLEEP:
        opt.enableflags |= mujoco.mjtEnableBit.mjENBL_SLEEP
    spec.visual.global_.offwidth = 1280
    spec.visual.global_.offheight = 960
    _add_environment(spec, scene)
    add_cameras(spec, DEFAULT_CAMERAS, arm.ee_site)  # RGB-D cameras (hw.sim.mujoco.cameras)
    for obj in scene.objects:
        _add_object(spec, obj)
    return spec


def _add_environment(spec: mujoco.MjSpec, scene: Scene) -> None:
    world = spec.worldbody
    table = scene.table
    world.add_light(pos=[0.4, 0.0, 2.0], dir=[0.0, 0.0, -1.0], diffuse=[0.8, 0.8, 0.8])
    world.add_light(pos=[1.5, 1.0, 1.5], dir=[-1.0, -0.7, -1.0], diffuse=[0.3, 0.3, 0.3])
    world.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[3.0, 3.0, 0.05],
        pos=[0.0, 0.0, -table.height],
        rgba=[0.55, 0.6, 0.65, 1.0],
        contype=COLLIDE_SCENE,
        conaffinity=SCENE_ALL,
    )
    half = [table.size[0] / 2, table.size[1] / 2, 0.025]
    world.add_geom(
        name="table",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=half,
        pos=[table.center[0], table.center[1], -half[2]],
        rgba=[0.62, 0.48, 0.33, 1.0],
        friction=[table.friction, 0.005, 0.0001],
        contype=COLLIDE_SCENE,
        conaffinity=SCENE_ALL,
    )
    leg_h = (table.height - 2 * half[2]) / 2
    for sx in (-1, 1):
        for sy in (-1, 1):
            world.add_geom(
                type=mujoco.mjtGeom.mjGEOM_BOX,
                size=[0.03, 0.03, leg_h],
                pos=[
                    table.center[0] + sx * (half[0] - 0.05),
                    table.center[1] + sy * (half[1] - 0.05),
                    -2 * half[2] - leg_h,
                ],
                rgba=[0.45, 0.35, 0.25, 1.0],
                contype=0,
                conaffinity=0,
            )


def _add_object(spec: mujoco.MjSpec, obj: SceneObject) -> None:
    cx, cy, cz = obj.position[0], obj.position[1], obj.position[2] + obj.half_height()
    body = spec.worldbody.add_body(
        name=obj.name, pos=[cx, cy, cz], quat=[math.cos(obj.yaw / 2), 0, 0, math.sin(obj.yaw / 2)]
    )
    body.add_freejoint(name=f"{obj.name}_joint")
    geom_defaults = dict(
        rgba=list(obj.color),
        friction=[obj.friction, 0.01, 0.0001],
        condim=OBJECT_CONDIM,
        contype=COLLIDE_SCENE,
        conaffinity=SCENE_ALL,
    )
    h = obj.half_height()
    if obj.kind == "box":
        body.add_geom(
            name=obj.name,
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[s / 2 for s in obj.size],
            **geom_defaults,
        )
        inertia = box_inertia(obj.mass, obj.size)
    elif obj.kind in ("cylinder", "plate"):
        r = obj.size[0] / 2
        body.add_geom(
            name=obj.name, type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[r, h, 0], **geom_defaults
        )
        inertia = cylinder_inertia(obj.mass, r, 2 * h)
    else:  # cup, bowl: hollow
        r = obj.size[0] / 2
        _add_hollow(body, obj.name, r, h, geom_defaults)
        inertia = cylinder_inertia(obj.mass, r, 2 * h)
        if obj.contents:
            _add_particles(spec, obj)
    body.explicitinertial = True
    body.ipos = [0.0, 0.0, 0.0]
    body.iquat = [1.0, 0.0, 0.0, 0.0]
    body.mass = obj.mass
    body.inertia = inertia
    body.fullinertia = [np.nan, 0, 0, 0, 0, 0]


def _add_hollow(body: mujoco.MjsBody, name: str, r: float, h: float, defaults: dict) -> None:
    """A floor disc and a ring of wall boxes approximating an open cylinder."""
    # A thick floor: a bead falling fast must not reach the floor's mid-plane in one step,
    # or the contact would push it down through the floor and out under the wall.
    body.add_geom(
        name=f"{name}_floor",
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[r, FLOOR_THICKNESS / 2, 0],
        pos=[0, 0, -h + FLOOR_THICKNESS / 2],
        **defaults,
    )
    # Each wall box spans one chord of the polygon, slightly widened to close the gaps.
    half_chord = r * math.tan(math.pi / CUP_SEGMENTS) * 1.08
    wall_h = h - FLOOR_THICKNESS / 2
    for i in range(CUP_SEGMENTS):
        a = 2 * math.pi * i / CUP_SEGMENTS
        rc = r - CUP_WALL / 2
        body.add_geom(
            name=f"{name}_wall{i}",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[CUP_WALL / 2, half_chord, wall_h],
            pos=[rc * math.cos(a), rc * math.sin(a), FLOOR_THICKNESS / 2],
            quat=[math.cos(a / 2), 0, 0, math.sin(a / 2)],
            **defaults,
        )


def _add_particles(spec: mujoco.MjSpec, cup: SceneObject) -> None:
    """The cup's contents as free spheres."""
    for i, pos in enumerate(particle_layout(cup)):
        body = spec.worldbody.add_body(name=f"{PARTICLE_PREFIX}{cup.name}_{i}", pos=list(pos))
        body.add_freejoint()
        body.add_geom(
            type=mujoco.mjtGeom.mjGEOM_SPHERE,
            size=[PARTICLE_RADIUS, 0, 0],
            mass=PARTICLE_MASS,
            rgba=[0.45, 0.25, 0.1, 1.0],
            # Rolling resistance so that beads settle where they land instead of rolling on.
            friction=[0.5, 0.005, 0.002],
            condim=6,
            # Stiff contacts (2 ms time constant, the smallest stable at 1 ms steps): with
            # MuJoCo's default 20 ms a bead falling at 2 m/s sinks through a 12 mm floor.
            solref=[PARTICLE_SOLREF_TIMECONST, 1.0],
            contype=COLLIDE_SCENE,
            conaffinity=SCENE_ALL,
        )
