"""MuJoCo simulation back end of the hardware layer.

Importing this package picks MuJoCo's offscreen OpenGL backend (``MUJOCO_GL``)
because mujoco reads that variable once, during ``import mujoco``; doing it
here, before any simulator module imports mujoco, makes rendering work on
headless machines. See :func:`hw.sim.render.configure_gl`.
"""

try:
    from skillstack.hw.sim.render import configure_gl as _configure_gl

    _configure_gl()
except Exception:  # pragma: no cover - rendering is optional; never break the import
    pass
