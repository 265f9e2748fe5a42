"""Arm descriptions: everything the stack needs to know about one arm model.

An `Arm` bundles the model builder (a `mujoco.MjSpec` used both for simulation and as
the kinematics engine), the declared `Capabilities`, the home posture and the names of
the end-effector site and gripper parts.

**Adding an arm is one new file**: a module in this folder, like `panda` (a slide gripper)
or `xarm6` (a linkage gripper whose finger joints turn), that ends with
``ARM = register_arm(Arm(...))``. Every module here is imported when the package is, so the
new arm is then known everywhere by its name (``--arm NAME``, `get_arm`).
"""

from __future__ import annotations

import importlib
import pkgutil

from skillstack.robot.arms.common import ARMS, Arm, get_arm, register_arm

_NOT_ARMS = {"common"}  # modules of this package that describe no arm

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _NOT_ARMS and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["ARMS", "Arm", "get_arm", "register_arm"]
