"""Simulated back ends of the hardware layer: MuJoCo and PyBullet behind the `Robot` interface.

The folder holds what both simulators share (the clock, `timing`; the ground-truth interface,
`truth`; `divergence`; object `geometry` and `particles`; mp4 `video` recording; the scripted
`tour`; `calibration_boards`) and one package per engine, `mujoco` and `pybullet`, which never
import each other. `backends.make_sim` builds either by name.

Importing this package picks MuJoCo's offscreen OpenGL backend (``MUJOCO_GL``)
because mujoco reads that variable once, during ``import mujoco``; doing it
here, before any simulator module imports mujoco, makes rendering work on
headless machines. See :func:`hw.sim.mujoco.render.configure_gl`.
"""

try:
    from skillstack.hw.sim.mujoco.render import configure_gl as _configure_gl

    _configure_gl()
except Exception:  # pragma: no cover - rendering is optional; never break the import
    pass
