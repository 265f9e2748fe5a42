"""UFACTORY xArm 6 with the xArm Gripper: constants and a MuJoCo model from an installed package.

What this is: the xArm 6 (6-DoF, 5 kg payload, 700 mm reach) and UFACTORY's own two-finger
xArm Gripper, both from ``xarm/xarm6_with_gripper.urdf`` in ``pybullet_data`` (a xacro
export of UFACTORY's ``xarm_ros`` description: kinematics, collision meshes, link masses and
inertias). Nothing is copied into this repository. The gripper is a linkage, not a slide:
each finger hangs from an outer and an inner knuckle that form a parallelogram, so the
finger stays parallel while its tip swings on an arc (it reaches 12 mm further out when
closed than when open). The URDF states the parallelogram as five ``<mimic>`` joints that
follow ``drive_joint``; MuJoCo's URDF importer ignores ``<mimic>``, so this module adds
them back as joint equality constraints. On top of the URDF it adds, in code:

* joint armature and damping, gravity compensation (the xArm controller compensates
  gravity itself in servo mode, so a held position does not droop);
* a position servo per joint, limited to the URDF's joint efforts, and one force-limited
  servo on ``drive_joint`` whose gear is the knuckle's lever arm, so that its force is in
  newtons at the fingertips like the Panda's;
* rubber pads (box geoms) on the inner faces of the fingertips, the only arm geoms that
  touch objects;
* the ``ee`` site at the pad centres, with the axes of the Panda's (z out of the hand,
  fingers opening along y), so the same Cartesian skills apply.

Because the fingers swing, the finger-joint angle is not the opening: `finger_opening`
and `finger_angle` convert between ``drive_joint`` (rad) and the opening of one finger (m,
from the grasp axis to the pad face), tabulated once from the model's own kinematics.

Limits, with their sources:

* joint ranges and efforts (torques): the URDF, the same ranges as the xArm 6 datasheet
  (J1, J4, J6 ±360°; J2 −118°…120°; J3 −225°…11°; J5 −97°…180°) and as
  `hw.drivers.xarm.MODELS` ``"xarm6"``;
* joint speed: 180°/s, the datasheet's maximum joint speed (``velocity="3.14"`` in the URDF);
* joint acceleration: 20 rad/s², the upper bound of the xArm SDK's ``set_joint_maxacc``;
* control rate: 250 Hz, the most UFACTORY suggests for servo mode (``set_servo_angle_j``),
  see `hw.drivers.xarm.MAX_CONTROL_RATE_HZ`;
* gripper: 86 mm stroke (xArm Gripper datasheet; the model's pads open to 88 mm),
  30 N nominal gripping force, 0.1 m/s nominal finger speed (as `hw.drivers.xarm.GRIPPER`).
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
from skillstack.robot.types import Capabilities, GripperSpec

NAME = "xarm6"
DOF = 6
JOINT_NAMES = tuple(f"joint{i}" for i in range(1, 7))
DRIVE_JOINT = "drive_joint"  # the gripper's one motor turns the left outer knuckle
# The joints that follow drive_joint one for one (URDF <mimic multiplier="1">).
MIMIC_JOINTS = (
    "left_finger_joint",
    "left_inner_knuckle_joint",
    "right_outer_knuckle_joint",
    "right_finger_joint",
    "right_inner_knuckle_joint",
)
FINGER_JOINTS = (DRIVE_JOINT, "right_outer_knuckle_joint")  # one knuckle per finger
FINGER_BODIES = ("left_finger", "right_finger")
KNUCKLE_BODIES = (
    "left_outer_knuckle",
    "left_inner_knuckle",
    "right_outer_knuckle",
    "right_inner_knuckle",
)
HAND_BODY = "link6"  # the gripper base fuses into the flange link
EE_SITE = "ee"
PAD_GEOMS = (f"{FINGER_BODIES[0]}_pad", f"{FINGER_BODIES[1]}_pad")

_TURN = 2.0 * np.pi
JOINT_LOWER = np.array([-_TURN, -2.059, -3.927, -_TURN, -1.69297, -_TURN])  # rad
JOINT_UPPER = np.array([_TURN, 2.0944, 0.19198, _TURN, np.pi, _TURN])  # rad
VELOCITY_LIMIT = np.full(DOF, np.radians(180.0))  # rad/s
ACCELERATION_LIMIT = np.full(DOF, 20.0)  # rad/s^2
TORQUE_LIMIT = np.array([50.0, 50.0, 32.0, 32.0, 32.0, 20.0])  # N m
CONTROL_RATE_HZ = 250.0

GRIPPER = GripperSpec(max_width=0.086, max_force=30.0, max_speed=0.1)
FINGER_TRAVEL = GRIPPER.max_width / 2  # m of opening per finger
DRIVE_RANGE = (0.0, 0.85)  # rad, drive_joint: 0 = open, 0.85 = closed (URDF)

# Folded over the table, the hand pointing straight down, fingers opening along world y,
# the fingertips about 0.30 m in front of the base and 0.40 m above the table (found with
# `robot.ik_solve.solve_ik`, elbow up, wrist joint 5 well inside its range).
HOME_Q = np.array([0.0, -0.56, -1.13, 0.0, 1.69, 0.0])

# Joint servo of the simulated arm: stiff enough to track the IK target within millimetres.
SERVO_KP = np.array([3000.0, 3000.0, 2500.0, 1500.0, 1500.0, 1000.0])  # N m/rad
SERVO_DAMPRATIO = 1.0
JOINT_ARMATURE = np.array([0.1, 0.1, 0.08, 0.04, 0.04, 0.02])  # kg m^2, reflected rotor inertia
JOINT_DAMPING = 0.5  # N m s/rad, viscous friction

# Gripper servo. Its gear is the knuckle's lever arm: actuator force (N) times the lever is
# the drive-joint torque, so forces read like a slide gripper's.
GRIPPER_GEAR = 0.05  # m
GRIPPER_KP = 2000.0  # N per m of gear-scaled travel

# Pads on the fingertips' inner faces (finger frame: the left face is at y = -0.026 m, the
# fingertip spans z = 0.016..0.060 m; the right finger mirrors y). Proud of the face by
# PAD_PROUD so that the pads, not the meshes, meet.
PAD_HALF_SIZE = (0.012, 0.003, 0.011)  # m
PAD_FACE_Y = 0.026  # m, the fingertip's inner face from the finger frame
PAD_PROUD = 0.0005  # m
PAD_CENTER_Z = 0.047  # m, in the finger frame
PAD_FRICTION = (1.5, 0.02, 0.002)  # sliding, torsional, rolling
EE_REFERENCE_WIDTH = 0.05  # m: the ee site is at the pad centres when they are this far apart


def urdf_path() -> Path:
    """Path of the xArm 6 + gripper URDF installed with pybullet_data."""
    return pybullet_data_file("xarm/xarm6_with_gripper.urdf", "xArm 6")


def capabilities(control_rate_hz: float = CONTROL_RATE_HZ) -> Capabilities:
    """The xArm 6's declared limits and interfaces (no joint torque command, as the SDK)."""
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
        command_modes=("joint_position", "joint_velocity"),
        gripper=GRIPPER,
    )


@lru_cache(maxsize=1)
def _urdf_text() -> str:
    path = urdf_path()
    # Mesh paths are ROS package URIs (package://xarm_description/...); MuJoCo needs files.
    return path.read_text().replace("package://", f"{path.parent}/")


def _bare_spec() -> mujoco.MjSpec:
    """The URDF as a spec, fixed joints fused (the gripper base into link6)."""
    spec = mujoco.MjSpec.from_string(_urdf_text())
    # link2's URDF inertia violates the triangle inequality by a hair; nudge it valid.
    spec.compiler.balanceinertia = True
    spec.compiler.discardvisual = False
    spec.fuse_static()
    return spec


def build_spec(*, with_actuators: bool = True) -> mujoco.MjSpec:
    """Return a fresh `mujoco.MjSpec` of the xArm 6 with its gripper, based at the origin.

    ``with_actuators=False`` gives a purely kinematic model (used by `robot.kinematics`).
    """
    spec = _bare_spec()
    spec.modelname = NAME
    for body in spec.bodies:
        if body.name != "world":
            body.gravcomp = 1.0
    for geom in spec.geoms:
        geom.contype = COLLIDE_ROBOT
        geom.conaffinity = COLLIDE_SCENE
        geom.rgba = [0.95, 0.95, 0.95, 1.0]
    for i, name in enumerate(JOINT_NAMES):
        joint = spec.joint(name)
        joint.armature = JOINT_ARMATURE[i]
        joint.damping = [JOINT_DAMPING, 0.0, 0.0]
        joint.frictionloss = 0.0
        joint.range = [JOINT_LOWER[i], JOINT_UPPER[i]]
    for name in (DRIVE_JOINT, *MIMIC_JOINTS):
        joint = spec.joint(name)
        joint.armature = 0.001
        joint.damping = [0.05, 0.0, 0.0]
        joint.frictionloss = 0.0
        joint.range = list(DRIVE_RANGE)
    for name in (*FINGER_BODIES, *KNUCKLE_BODIES):  # linkage meshes are drawn, not touched
        for geom in spec.body(name).geoms:
            geom.contype = 0
            geom.conaffinity = 0
            geom.rgba = [0.75, 0.75, 0.75, 1.0]
    _add_pads(spec)
    _couple_linkage(spec)
    spec.body(HAND_BODY).add_site(
        name=EE_SITE,
        pos=[0.0, 0.0, _pad_centre_height(EE_REFERENCE_WIDTH / 2)],
        size=[0.005, 0.005, 0.005],
        rgba=[1.0, 0.2, 0.2, 0.5],
        group=4,
    )
    if with_actuators:
        _add_actuators(spec)
    spec.add_key(name="home", qpos=np.concatenate([HOME_Q, np.zeros(1 + len(MIMIC_JOINTS))]))
    return spec


def _couple_linkage(spec: mujoco.MjSpec) -> None:
    """The parallelogram: every knuckle and finger joint turns with the drive, one for one.

    Recent MuJoCo (4.0 here) turns the URDF's ``<mimic>`` tags into joint equalities (older
    versions ignore them); either way each mimic joint ends up with exactly one, stiffened.
    """
    coupled = {eq.name1 for eq in spec.equalities if eq.type == mujoco.mjtEq.mjEQ_JOINT}
    for name in MIMIC_JOINTS:
        if name not in coupled:
            spec.add_equality(
                type=mujoco.mjtEq.mjEQ_JOINT,
                name1=name,
                name2=DRIVE_JOINT,
                data=np.array([0.0, 1.0] + [0.0] * 10),
            )
    for eq in spec.equalities:
        eq.solref = [0.005, 1.0]


def _add_pads(spec: mujoco.MjSpec) -> None:
    for body_name, side in zip(FINGER_BODIES, (-1.0, 1.0), strict=True):
        spec.body(body_name).add_geom(
            name=f"{body_name}_pad",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=list(PAD_HALF_SIZE),
            pos=[0.0, side * (PAD_FACE_Y + PAD_PROUD - PAD_HALF_SIZE[1]), PAD_CENTER_Z],
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
    # ctrl is GRIPPER_GEAR * drive angle (see `gripper_ctrl`); the force range is changed at
    # run time to the commanded grasp force.
    act = spec.add_actuator(name="gripper_servo", target=DRIVE_JOINT)
    act.trntype = mujoco.mjtTrn.mjTRN_JOINT
    act.gear[0] = GRIPPER_GEAR
    act.set_to_position(kp=GRIPPER_KP, dampratio=1.0)
    act.forcelimited = True
    act.forcerange = [-GRIPPER.max_force, GRIPPER.max_force]
    act.ctrllimited = True
    act.ctrlrange = [GRIPPER_GEAR * DRIVE_RANGE[0], GRIPPER_GEAR * DRIVE_RANGE[1]]


# -- the linkage: drive angle <-> finger opening -------------------------------------------
@lru_cache(maxsize=1)
def _linkage_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(drive angles, opening of one finger, pad-centre height in the hand frame), sampled
    over the drive's range from the model's kinematics; opening decreases with the angle."""
    spec = _bare_spec()
    _add_pads(spec)
    model = spec.compile()
    data = mujoco.MjData(model)
    hand = model.body(HAND_BODY).id
    pad = model.geom(PAD_GEOMS[0]).id
    gripper_adr = [model.joint(n).qposadr[0] for n in (DRIVE_JOINT, *MIMIC_JOINTS)]
    angles = np.linspace(*DRIVE_RANGE, 86)
    opening, height = np.zeros_like(angles), np.zeros_like(angles)
    for i, angle in enumerate(angles):
        data.qpos[gripper_adr] = angle
        mujoco.mj_kinematics(model, data)
        rot = data.xmat[hand].reshape(3, 3)
        local = rot.T @ (data.geom_xpos[pad] - data.xpos[hand])
        opening[i] = local[1] - PAD_HALF_SIZE[1]  # the pad's inner face, from the grasp axis
        height[i] = local[2]
    return angles, opening, height


def finger_opening(angle: float) -> float:
    """Opening of one finger (m, grasp axis to pad face) at drive angle ``angle`` (rad)."""
    angles, opening, _ = _linkage_table()
    return float(np.interp(angle, angles, opening))


def finger_angle(opening: float) -> float:
    """The drive angle (rad) that opens one finger by ``opening`` (m); clipped to the range."""
    angles, openings, _ = _linkage_table()
    return float(np.interp(opening, openings[::-1], angles[::-1]))


def gripper_ctrl(opening: float) -> float:
    """The gripper servo's target for one finger's ``opening`` (m)."""
    return GRIPPER_GEAR * finger_angle(opening)


def _pad_centre_height(opening: float) -> float:
    """Height of the pad centres along the hand's z axis when each finger opens ``opening``."""
    angles, _, height = _linkage_table()
    return float(np.interp(finger_angle(opening), angles, height))


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
        finger_opening=finger_opening,
        finger_joint_position=finger_angle,
        gripper_ctrl=gripper_ctrl,
    )
)
