"""The simulated backends by name: the one place that knows both.

`make_sim` imports a backend only when it is asked for, so choosing MuJoCo never imports
PyBullet and the other way round.
"""

from __future__ import annotations

BACKENDS = ("mujoco", "pybullet")


def make_sim(backend: str, scene=None, **kwargs):
    """A simulated robot of the named backend (``"mujoco"`` or ``"pybullet"``), not connected.

    Raises `ValueError` naming the choices for an unknown backend.
    """
    if backend == "mujoco":
        from skillstack.hw.sim.mujoco.robot import MujocoRobot

        return MujocoRobot(scene, **kwargs)
    if backend == "pybullet":
        from skillstack.hw.sim.pybullet.robot import PybulletRobot

        return PybulletRobot(scene, **kwargs)
    raise ValueError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
