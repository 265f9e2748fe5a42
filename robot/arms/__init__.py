"""Arm descriptions: everything the stack needs to know about one arm model.

An `Arm` bundles the model builder (a `mujoco.MjSpec` used both for simulation and as
the kinematics engine), the declared `Capabilities`, the home posture and the names of
the end-effector site and gripper parts. Add an arm by writing a module like
`robot.arms.panda` (a slide gripper) or `robot.arms.xarm6` (a linkage gripper whose finger
joints turn) and registering it in `ARMS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np

from skillstack.robot.arms import panda, xarm6
from skillstack.robot.types import Capabilities


def _same(value: float) -> float:
    return value


@dataclass(frozen=True)
class Arm:
    """One arm model with its gripper.

    The finger conversions default to a slide gripper whose finger joints are the openings
    (m); a linkage gripper supplies its own (its finger joints are angles).
    """

    name: str
    build_spec: Callable[..., mujoco.MjSpec]
    capabilities: Capabilities
    home_q: np.ndarray
    ee_site: str
    finger_joints: tuple[str, ...]
    gripper_actuator: str
    finger_travel: float  # m of opening per finger
    pad_geoms: tuple[str, str]  # left and right finger pads: the geoms that grip
    finger_opening: Callable[[float], float] = _same  # finger joint position -> opening (m)
    finger_joint_position: Callable[[float], float] = _same  # opening (m) -> joint position
    gripper_ctrl: Callable[[float], float] = _same  # opening of one finger -> servo target


ARMS: dict[str, Arm] = {
    "panda": Arm(
        name=panda.NAME,
        build_spec=panda.build_spec,
        capabilities=panda.capabilities(),
        home_q=panda.HOME_Q,
        ee_site=panda.EE_SITE,
        finger_joints=panda.FINGER_JOINTS,
        gripper_actuator="gripper_servo",
        finger_travel=panda.FINGER_TRAVEL,
        pad_geoms=panda.PAD_GEOMS,
    ),
    "xarm6": Arm(
        name=xarm6.NAME,
        build_spec=xarm6.build_spec,
        capabilities=xarm6.capabilities(),
        home_q=xarm6.HOME_Q,
        ee_site=xarm6.EE_SITE,
        finger_joints=xarm6.FINGER_JOINTS,
        gripper_actuator="gripper_servo",
        finger_travel=xarm6.FINGER_TRAVEL,
        pad_geoms=xarm6.PAD_GEOMS,
        finger_opening=xarm6.finger_opening,
        finger_joint_position=xarm6.finger_angle,
        gripper_ctrl=xarm6.gripper_ctrl,
    ),
}


def get_arm(name: str) -> Arm:
    """Look up an arm by name; the error lists the arms that exist."""
    try:
        return ARMS[name]
    except KeyError:
        raise ValueError(
            f"unknown arm {name!r}; available arms: {', '.join(sorted(ARMS))}"
        ) from None
