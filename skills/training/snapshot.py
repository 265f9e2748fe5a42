"""Save and restore a simulated robot mid-episode, so a set-up need not be simulated twice.

The environments in `skills.training.envs` start place and pour episodes with a scripted
grasp (1–7 s of wall time with a cup of particles). `snapshot` records, after that set-up,
everything the next control tick depends on; `restore` rebuilds an identical robot from it:

* MuJoCo's integration state (``mj_getState(mjSTATE_INTEGRATION)``: time, positions,
  velocities, actuator states, controls, warm start, applied forces) and its warning
  counters (the divergence check compares them);
* the actuator parameters the backend changes at run time (gripper force range, servo
  gains in torque mode);
* the plain Python state of the robot and of its safety filter (numbers, strings, flags,
  lists and dicts of them: the gripper ramp, the command mode, the filter's previous
  command and counters). Arrays are left alone: on a fresh robot they are views into the
  MuJoCo data or constants of the model, both already right.

A restored robot continues bit for bit like the original (`sim_tests/test_envs.py`).
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mujoco
import numpy as np

if TYPE_CHECKING:
    from skillstack.hw.sim.mujoco.robot import MujocoRobot
    from skillstack.robot.arms import Arm
    from skillstack.robot.scene import Scene

_STATE = mujoco.mjtState.mjSTATE_INTEGRATION
_MODEL_ARRAYS = ("actuator_forcerange", "actuator_gainprm", "actuator_biasprm")
_PLAIN = (bool, int, float, str, type(None))


@dataclass(frozen=True)
class Snapshot:
    """A robot's state at one instant (see the module docstring)."""

    scene: Scene
    arm: Arm
    control_rate_hz: float
    physics: np.ndarray
    warnings: tuple[tuple[int, int], ...]
    model_arrays: dict[str, np.ndarray]
    robot_attrs: dict[str, object]
    safety_attrs: dict[str, object]


def snapshot(robot) -> Snapshot:
    """Record a connected `MujocoRobot` (see the module docstring)."""
    m, d = robot.model, robot.data
    physics = np.empty(mujoco.mj_stateSize(m, _STATE))
    mujoco.mj_getState(m, d, physics, _STATE)
    return Snapshot(
        robot.scene,
        robot.arm,
        robot.capabilities.control_rate_hz,
        physics,
        tuple((int(w.lastinfo), int(w.number)) for w in d.warning),
        {name: getattr(m, name).copy() for name in _MODEL_ARRAYS},
        _plain_attrs(robot),
        _plain_attrs(robot.safety),
    )


def restore(snap: Snapshot) -> MujocoRobot:
    """A new, connected `MujocoRobot` in the recorded state (call ``disconnect`` when done)."""
    from skillstack.hw.sim.mujoco.robot import MujocoRobot

    robot = MujocoRobot(snap.scene, snap.arm, control_rate_hz=snap.control_rate_hz)
    robot.connect()
    m, d = robot.model, robot.data
    assert m is not None and d is not None, "connect() builds the model and its data"
    for name, value in snap.model_arrays.items():
        getattr(m, name)[:] = value
    mujoco.mj_setState(m, d, snap.physics, _STATE)
    for w, (lastinfo, number) in zip(d.warning, snap.warnings, strict=True):
        w.lastinfo, w.number = lastinfo, number
    for target, attrs in ((robot, snap.robot_attrs), (robot.safety, snap.safety_attrs)):
        for name, saved in attrs.items():
            setattr(target, name, copy.deepcopy(saved))
    mujoco.mj_forward(m, d)
    robot.read()
    return robot


def _plain_attrs(obj) -> dict[str, object]:
    return {k: copy.deepcopy(v) for k, v in vars(obj).items() if _is_plain(v)}


def _is_plain(value) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, list | tuple | deque):
        return all(_is_plain(v) or _is_dataclass_of_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, _PLAIN) and _is_plain(v) for k, v in value.items())
    return False


def _is_dataclass_of_plain(value) -> bool:
    fields = getattr(value, "__dataclass_fields__", None)
    return fields is not None and all(_is_plain(getattr(value, f)) for f in fields)
