"""Conventions every arm model follows, shared with the scene builder and the skills."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from skillstack.robot.types import Capabilities

# Collision bit masks: the arm collides with the scene (table and objects) but not with
# itself (adjacent links overlap in the meshes).
COLLIDE_SCENE = 1
COLLIDE_ROBOT = 2


def pybullet_data_file(relative: str, what: str) -> Path:
    """Path of a robot description installed with pybullet_data (e.g. ``franka_panda/panda.urdf``);
    `RuntimeError` saying how to fix it when missing. ``what`` names the model in messages."""
    try:
        import pybullet_data
    except ImportError as exc:  # pragma: no cover - pybullet is a core dependency
        raise RuntimeError(
            f"the {what} model comes from pybullet_data; install it with `pip install pybullet`"
        ) from exc
    path = Path(pybullet_data.getDataPath()) / relative
    if not path.is_file():
        raise RuntimeError(f"pybullet_data has no {what} model at {path}; reinstall pybullet")
    return path


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


ARMS: dict[str, Arm] = {}  # name -> arm; each arm module registers itself on import


def register_arm(arm: Arm) -> Arm:
    """Add ``arm`` to `ARMS` under its name (the last line of an arm module); returns it.

    A second arm under a taken name is refused (ValueError), so two modules cannot silently
    shadow each other.
    """
    if arm.name in ARMS and ARMS[arm.name] is not arm:
        raise ValueError(f"an arm named {arm.name!r} is already registered")
    ARMS[arm.name] = arm
    return arm


def get_arm(name: str) -> Arm:
    """Look up an arm by name; the error lists the arms that exist."""
    try:
        return ARMS[name]
    except KeyError:
        raise ValueError(
            f"unknown arm {name!r}; available arms: {', '.join(sorted(ARMS))}"
        ) from None
