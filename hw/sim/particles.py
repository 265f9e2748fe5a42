"""A cup's ``contents``: the small free spheres (beads) both simulators pour.

`particle_layout` is where the beads start, the same in both engines; each bead weighs
`PARTICLE_MASS` and has the scene's `robot.scene.PARTICLE_RADIUS`. Their bodies are named
with `hw.sim.truth.PARTICLE_PREFIX`.
"""

from __future__ import annotations

import math

from skillstack.hw.sim.geometry import CUP_WALL, FLOOR_THICKNESS
from skillstack.robot.scene import PARTICLE_RADIUS, SceneObject

PARTICLE_MASS = 0.002  # kg per particle (about a coffee bean)


def particle_layout(cup: SceneObject) -> list[tuple[float, float, float]]:
    """Where ``cup.contents`` beads start: rings in layers on the cup's floor, centred on its
    axis (both simulators build the same layout)."""
    inner = cup.size[0] / 2 - CUP_WALL - PARTICLE_RADIUS * 1.05
    spacing = 2.05 * PARTICLE_RADIUS
    ring: list[tuple[float, float]] = [(0.0, 0.0)]
    rad = spacing
    while rad <= inner:
        n = max(1, int(2 * math.pi * rad / spacing))
        ring += [
            (rad * math.cos(2 * math.pi * k / n), rad * math.sin(2 * math.pi * k / n))
            for k in range(n)
        ]
        rad += spacing
    z0 = cup.position[2] + FLOOR_THICKNESS + PARTICLE_RADIUS * 1.05
    out = []
    for i in range(cup.contents):
        layer, slot = divmod(i, len(ring))
        dx, dy = ring[slot]
        out.append((cup.position[0] + dx, cup.position[1] + dy, z0 + layer * spacing))
    return out
