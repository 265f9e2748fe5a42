"""Simulated back ends of the hardware layer: MuJoCo and PyBullet behind the `Robot` interface.

The folder holds what both simulators share (the clock, `timing`; the ground-truth interface,
`truth`; `divergence`; object `geometry` and `particles`; mp4 `video` recording; the scripted
`tour`; `calibration_boards`) and one package per engine, `mujoco` and `pybullet`, which never
import each other. `backends.make_sim` builds either by name.

Importing this package picks MuJoCo's offscreen OpenGL backend (``MUJOCO_GL``, see
`hw.sim.gl`) if the root package has not already: mujoco reads that variable once, during
``import mujoco``.
"""

from skillstack.hw.sim.gl import select_backend as _select_backend

_select_backend()
