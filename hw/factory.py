"""One robot factory for every kind: simulators, vendor drivers, and robot servers.

=====================  ===============================================  ====================
kind                   what it builds                                   needs
=====================  ===============================================  ====================
``mujoco``             `MujocoRobot`: the arm simulated in MuJoCo       a scene (or default)
``pybullet``           `PybulletRobot`: the arm simulated in PyBullet   a scene (or default)
``franka``             `FrankaRobot` (franky-control)                   ``host``
``ur``                 `URRobot` (ur_rtde)                              ``host``
``xarm``               `XArmRobot` (xarm-python-sdk)                    ``host``
``tcp://HOST:PORT``    `RemoteRobot`: a ``skillstack serve`` elsewhere  the server running
=====================  ===============================================  ====================

Use::

    from skillstack.hw.factory import make_robot

    with make_robot("mujoco", scene="pour") as robot:            # a bundled scene by name
        state = robot.read()
    arm = make_robot("franka", host="172.16.0.2", options={"model": "fr3"})

Every builder is imported only when its kind is asked for, so no simulator or vendor SDK is
loaded for another kind. Bad input raises `RobotSpecError` (a ValueError) with one line a
person can act on; a vendor SDK that is not installed raises `DriverUnavailable` with the
pip command. The command line (`skillstack.planners.cli`) is the one caller that turns
options into robots; the rest of the stack receives robots, or factories, from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from skillstack.hw.robot import Robot
from skillstack.hw.sim.backends import BACKENDS, make_sim
from skillstack.robot.scene import Scene, load_scene
from skillstack.robot.scene.bundled import find_scene

DRIVER_KINDS = ("franka", "ur", "xarm")
REMOTE_PREFIX = "tcp://"
ROBOT_KINDS = (*BACKENDS, *DRIVER_KINDS, f"{REMOTE_PREFIX}HOST:PORT")


class RobotSpecError(ValueError):
    """A robot kind, option, host or scene the factory cannot build from (one line)."""


def make_robot(
    kind: str,
    *,
    scene: Scene | str | Path | None = None,
    arm: str = "panda",
    host: str | None = None,
    options: Mapping[str, Any] | None = None,
    token: str | None = None,
) -> Robot:
    """The robot of ``kind`` (see the module's table), not yet connected.

    Args:
        kind: ``mujoco``, ``pybullet``, ``franka``, ``ur``, ``xarm`` or ``tcp://HOST:PORT``.
        scene: simulators only: a `Scene`, a scene file, or a bundled scene's name
            (``"pour"``); None is the default scene.
        arm: simulators only: the arm model (`skillstack.robot.arms`), ``panda`` or ``xarm6``.
        host: drivers only: the arm's address.
        options: drivers only: driver options, as text (``{"model": "fr3"}``, what
            ``--robot-option`` gives) or typed (``{"control_rate_hz": 250.0}``).
        token: robot servers only: the control token, where the server wants one.

    A robot server is asked to describe itself when built, so ``tcp://`` kinds connect here;
    the others connect on ``connect()`` or ``with``.
    """
    options = dict(options or {})
    if kind.startswith(REMOTE_PREFIX):
        _refuse_extras(kind, options=options, scene=scene, host=host)
        from skillstack.hw.server.client import RemoteRobot

        return RemoteRobot(kind, token=token)
    if kind in BACKENDS:
        _refuse_extras(kind, options=options, host=host)
        from skillstack.robot.arms import get_arm

        try:
            arm_name = get_arm(arm).name
        except ValueError as exc:
            raise RobotSpecError(str(exc)) from None
        return make_sim(kind, _scene(scene), arm=arm_name)
    if kind in DRIVER_KINDS:
        if scene is not None:
            raise RobotSpecError(
                f"a {kind} arm's world is declared to the skills (--scene with --perception "
                "declared), not built into the robot: drop scene="
            )
        if not host:
            raise RobotSpecError(f"--robot {kind} needs --host (the arm's IP address)")
        from skillstack.hw.drivers import make_driver, parse_driver_options

        text = {k: v for k, v in options.items() if isinstance(v, str)}
        typed = {k: v for k, v in options.items() if not isinstance(v, str)}
        try:
            typed.update(parse_driver_options(kind, text))
        except ValueError as exc:
            raise RobotSpecError(" ".join(str(exc).split())) from None
        return make_driver(kind, host, **typed)
    raise RobotSpecError(f"unknown robot {kind[:100]!r}; available: {', '.join(ROBOT_KINDS)}")


def _scene(scene: Scene | str | Path | None) -> Scene | None:
    if scene is None or isinstance(scene, Scene):
        return scene
    try:
        return load_scene(find_scene(scene))
    except FileNotFoundError as exc:
        raise RobotSpecError(str(exc)) from None


def _refuse_extras(kind: str, *, options=None, scene=None, host=None) -> None:
    if options:
        given = ", ".join(f"{k}={v}" for k, v in options.items())
        raise RobotSpecError(
            f"--robot-option is for real arms (franka, ur, xarm); --robot {kind[:100]} takes "
            f"none (got {given[:200]})"
        )
    if host is not None:
        raise RobotSpecError(f"--host is for real arms (franka, ur, xarm), not {kind[:100]}")
    if scene is not None:
        raise RobotSpecError(f"a scene is for simulators (mujoco, pybullet), not {kind[:100]}")
