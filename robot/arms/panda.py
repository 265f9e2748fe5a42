"""Franka Emika Panda: constants and a MuJoCo model built from an installed package.

The kinematic tree, collision meshes and link masses come from the Panda URDF that ships
with ``pybullet_data`` (installed with pybullet); nothing is copied into this repository.
On top of it this module adds, in code, what the URDF lacks for simulation and control:

* inertia tensors computed from the collision meshes and scaled to the URDF link masses
  (the URDF carries a placeholder ``0.1 kg m^2`` on every axis of every link);
* joint armature and damping, gravity compensation (the real Panda compensates gravity
  internally, so a commanded position is held without droop);
* a joint-position servo per joint, a force-limited gripper servo and the finger coupling
  that the URDF's ``<mimic>`` tag expresses but MuJoCo's URDF importer ignores;
* rubber finger pads (box geoms) so grasps have area contacts instead of single points;
* the ``ee`` site at the grasp centre between the fingertips.

Limits are Franka's published figures ("Robot and interface specifications", Franka
Control Interface documentation): velocity, acceleration and torque limits per joint.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import mujoco
import numpy as np

from skillstack.robot.arms.common import (
    COLLIDE_ROBOT,
    COLLIDE_SCENE,
    Arm,
    pybullet_data_file,
    register_arm,
)
from skillstack.robot.rotations import yaw_quat
from skillstack.robot.types import Capabilities, GripperSpec

NAME = "panda"
DOF = 7
JOINT_NAMES = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
LINK_BODIES = tuple(f"panda_link{i}" for i in range(1, 8))
FINGER_BODIES = ("panda_leftfinger", "panda_rightfinger")
EE_SITE = "ee"
HAND_BODY = "panda_link7"  # the URDF's hand, link8 and grasp-target frames fuse into link7

# Franka Control Interface specification, joint space limits.
JOINT_LOWER = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])  # rad
JOINT_UPPER = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])  # rad
VELOCITY_LIMIT = np.array([2.1750, 2.1750, 2.1750, 2.1750, 2.6100, 2.6100, 2.6100])  # rad/s
ACCELERATION_LIMIT = np.array([15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0])  # rad/s^2
TORQUE_LIMIT = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])  # N m

GRIPPER = GripperSpec(max_width=0.08, max_force=70.0, max_speed=0.1)  # Franka Hand datasheet
FINGER_TRAVEL = 0.04  # m per finger

# "Ready" pose used by Franka's examples: elbow up, flange pointing down above the table.
HOME_Q = np.array([0.0, -0.785398, 0.0, -2.356194, 0.0, 1.570796, 0.785398])

CONTROL_RATE_HZ = 1000.0  # FCI real-time interface rate

# Joint servo of the simulated arm. Stiff enough to track a 1 kHz IK target within
# millimetres; damping is chosen per joint for a critically damped response given the
# reflected inertia (set through armature).
SERVO_KP = np.array([4500.0, 4500.0, 3500.0, 3500.0, 2000.0, 2000.0, 2000.0])  # N m/rad
SERVO_DAMPRATIO = 1.0
JOINT_ARMATURE = np.array([0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05])  # kg m^2, rotor inertia
JOINT_DAMPING = 0.5  # N m s/rad, viscous friction

# Finger pads: rubber-like, high friction, a torsional component so that a pinched
# object does not spin about the grasp axis.
PAD_HALF_SIZE = (0.0085, 0.0035, 0.0105)  # m
PAD_CENTER = (0.0, 0.0035, 0.0435)  # m, in the left finger frame; mirrored for the right
PAD_FRICTION = (1.5, 0.02, 0.002)  # sliding, torsional, rolling

# the only arm geoms meant to touch objects
PAD_GEOMS = (f"{FINGER_BODIES[0]}_pad", f"{FINGER_BODIES[1]}_pad")


def urdf_path() -> Path:
    """Path of the Panda URDF installed with pybullet_data."""
    return pybullet_data_file("franka_panda/panda.urdf", "Panda")


def capabilities(control_rate_hz: float = CONTROL_RATE_HZ) -> Capabilities:
    """The Panda's declared limits and interfaces."""
    return Capabilities(
        name=NAME,
        dof=DOF,
        joint_names=JOINT_NAMES,
        joint_lower=JOINT_LOWER.copy(),
        joint_upper=JOINT_UPPER.copy(),
        velocity_limit=VELOCITY_LIMIT.copy(),
        acceleration_limit=ACCELERATION_LIMIT.copy(),
        torque_limit=TORQUE_LIMIT.copy(),
        control_rate_hz=control_rate_hz,
        command_modes=("joint_position", "joint_velocity", "joint_torque"),
        gripper=GRIPPER,
    )


@lru_cache(maxsize=1)
def _urdf_text() -> str:
    path = urdf_path()
    # URDF mesh paths are ROS package URIs; MuJoCo needs file paths.
    return path.read_text().replace("package://", f"{path.parent}/")


def _fused_urdf_spec() -> mujoco.MjSpec:
    """The URDF as a spec, with fixed joints fused (link8, hand and grasp target into link7)."""
    spec = mujoco.MjSpec.from_string(_urdf_text())
    spec.fuse_static()
    return spec


@lru_cache(maxsize=1)
def _mesh_inertias() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per-body (inertia diagonal, ipos, iquat) from the collision meshes, scaled to URDF mass."""
    spec = _fused_urdf_spec()
    urdf_mass = {b.name: b.mass for b in spec.bodies if b.name != "world"}
    spec.compiler.inertiafromgeom = mujoco.mjtInertiaFromGeom.mjINERTIAFROMGEOM_TRUE
    model = spec.compile()
    out = {}
    for name, mass in urdf_mass.items():
        bid = model.body(name).id
        scale = mass / model.body_mass[bid]
        out[name] = (
            model.body_inertia[bid] * scale,
            model.body_ipos[bid].copy(),
            model.body_iquat[bid].copy(),
        )
    return out


def build_spec(*, with_actuators: bool = True) -> mujoco.MjSpec:
    """Return a fresh `mujoco.MjSpec` of the Panda with its hand, mounted at the world origin.

    ``with_actuators=False`` gives a purely kinematic model (used by `robot.kinematics`).
    """
    spec = _fused_urdf_spec()
    spec.modelname = NAME
    spec.compiler.discardvisual = False  # keep the finger meshes, drawn but not colliding
    inertias = _mesh_inertias()
    for body in spec.bodies:
        if body.name in inertias:
            diag, ipos, iquat = inertias[body.name]
            body.explicitinertial = True
            body.fullinertia = [np.nan, 0, 0, 0, 0, 0]  # unset: use the diagonal below
            body.inertia = diag
            body.ipos = ipos
            body.iquat = iquat
            body.gravcomp = 1.0

    for geom in spec.geoms:
        geom.contype = COLLIDE_ROBOT
        geom.conaffinity = COLLIDE_SCENE
        geom.rgba = [0.95, 0.95, 0.95, 1.0]

    for name, armature in zip(JOINT_NAMES, JOINT_ARMATURE, strict=True):
        joint = spec.joint(name)
        joint.armature = armature
        joint.damping = [JOINT_DAMPING, 0.0, 0.0]
        joint.range = [JOINT_LOWER[JOINT_NAMES.index(name)], JOINT_UPPER[JOINT_NAMES.index(name)]]
    for name in FINGER_JOINTS:
        joint = spec.joint(name)
        joint.armature = 0.01
        joint.damping = [5.0, 0.0, 0.0]
        joint.range = [0.0, FINGER_TRAVEL]

    _add_finger_pads(spec)
    hand = spec.body(HAND_BODY)
    # The URDF's grasp target: 0.107 m flange offset + 0.105 m to the fingertip centre.
    hand.add_site(
        name=EE_SITE,
        pos=[0.0, 0.0, 0.107 + 0.105],
        quat=yaw_quat(-np.pi / 4).tolist(),  # hand frame: fingers open along its y axis
        size=[0.005, 0.005, 0.005],
        rgba=[1.0, 0.2, 0.2, 0.5],
        group=4,
    )
    # Mimic joint: finger 2 follows finger 1.
    spec.add_equality(
        type=mujoco.mjtEq.mjEQ_JOINT,
        name1=FINGER_JOINTS[1],
        name2=FINGER_JOINTS[0],
        data=np.array([0.0, 1.0] + [0.0] * 10),
        solref=[0.005, 1.0],
    )
    if with_actuators:
        _add_actuators(spec)
    spec.add_key(name="home", qpos=np.concatenate([HOME_Q, [FINGER_TRAVEL, FINGER_TRAVEL]]))
    return spec


def _add_finger_pads(spec: mujoco.MjSpec) -> None:
    for body_name, side in zip(FINGER_BODIES, (1.0, -1.0), strict=True):
        body = spec.body(body_name)
        for geom in body.geoms:  # the finger mesh is for looks; the pad makes contact
            geom.contype = 0
            geom.conaffinity = 0
        body.add_geom(
            name=f"{body_name}_pad",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=list(PAD_HALF_SIZE),
            pos=[PAD_CENTER[0], side * PAD_CENTER[1], PAD_CENTER[2]],
            friction=list(PAD_FRICTION),
            condim=6,
            priority=1,  # pad friction wins over the object's
            contype=COLLIDE_ROBOT,
            conaffinity=COLLIDE_SCENE,
            solref=[0.002, 1.0],
            solimp=[0.95, 0.99, 0.001, 0.5, 2.0],
            rgba=[0.15, 0.15, 0.15, 1.0],
            mass=0.0,
        )


def _add_actuators(spec: mujoco.MjSpec) -> None:
    for name, kp, tau in zip(JOINT_NAMES, SERVO_KP, TORQUE_LIMIT, strict=True):
        act = spec.add_actuator(name=f"{name}_servo", target=name)
        act.trntype = mujoco.mjtTrn.mjTRN_JOINT
        act.set_to_position(kp=float(kp), dampratio=SERVO_DAMPRATIO)
        act.forcelimited = True
        act.forcerange = [-tau, tau]
        act.ctrllimited = False
    # One servo drives finger 1; the equality makes finger 2 follow. ctrl is the target
    # opening of ONE finger (m); the force range is changed at run time to the grasp force.
    act = spec.add_actuator(name="gripper_servo", target=FINGER_JOINTS[0])
    act.trntype = mujoco.mjtTrn.mjTRN_JOINT
    act.set_to_position(kp=2000.0, kv=40.0)
    act.forcelimited = True
    act.forcerange = [-GRIPPER.max_force, GRIPPER.max_force]
    act.ctrllimited = True
    act.ctrlrange = [0.0, FINGER_TRAVEL]


ARM = register_arm(
    Arm(
        name=NAME,
        build_spec=build_spec,
        capabilities=capabilities(),
        home_q=HOME_Q,
        ee_site=EE_SITE,
        finger_joints=FINGER_JOINTS,
        gripper_actuator="gripper_servo",
        finger_travel=FINGER_TRAVEL,
        pad_geoms=PAD_GEOMS,
    )
)
