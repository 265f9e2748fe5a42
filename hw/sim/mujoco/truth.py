"""Ground-truth queries (`hw.sim.truth.SimTruth`) answered from MuJoCo's model and data.

A mixin of `hw.sim.mujoco.robot.MujocoRobot`; it reads ``self.model``, ``self.data``,
``self.arm`` and ``self.scene``. Geom and body ids are looked up once per compiled model, so
`arm_contacts` (run by the `NoCollision` guard every few control ticks) only walks the
current contact list.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

import mujoco
import numpy as np

from skillstack.hw.sim.truth import PARTICLE_PREFIX
from skillstack.robot.arms import Arm
from skillstack.robot.arms.common import COLLIDE_ROBOT
from skillstack.robot.scene import Scene


class _Ids:
    """Ids of one compiled model that the queries need."""

    def __init__(self, m: mujoco.MjModel, arm, scene_names: tuple[str, ...]):
        self.model = m
        self.pads = {m.geom(name).id: i for i, name in enumerate(arm.pad_geoms)}
        names = set(scene_names)
        self.body_names = [m.body(b).name for b in range(m.nbody)]
        # Which scene object each body is (None: arm, world or particle).
        self.object_of_body = [n if n in names else None for n in self.body_names]
        self.particle_bodies = np.array(
            [b for b, n in enumerate(self.body_names) if n.startswith(PARTICLE_PREFIX)], dtype=int
        )
        self.is_particle_body = np.zeros(m.nbody, dtype=bool)
        self.is_particle_body[self.particle_bodies] = True
        robot = m.geom_contype == COLLIDE_ROBOT
        self.offending = robot.copy()  # arm geoms that must not touch anything
        self.offending[list(self.pads)] = False
        # Moving arm geoms only: the base (fused into the world body) always touches the table.
        self.arm_geoms = [g for g in range(m.ngeom) if robot[g] and m.geom_bodyid[g]]
        self.scene_geoms = [
            g
            for g in range(m.ngeom)
            if not robot[g]
            and m.geom_contype[g] != 0
            and not self.is_particle_body[m.geom_bodyid[g]]
            and m.geom(g).name != "floor"
        ]


class MujocoTruth:
    """`SimTruth` for a robot that owns a MuJoCo ``model`` and ``data``."""

    # Set by the host robot; ``model`` and ``data`` are None until it connects.
    model: mujoco.MjModel | None
    data: mujoco.MjData | None
    arm: Arm
    scene: Scene

    _truth_ids: _Ids | None = None
    _clearance_data: mujoco.MjData | None = None

    if TYPE_CHECKING:

        def _require(self) -> tuple[mujoco.MjModel, mujoco.MjData]: ...

    def _ids(self) -> _Ids:
        ids = self._truth_ids
        if ids is None or ids.model is not self.model:
            m, _ = self._require()
            ids = self._truth_ids = _Ids(m, self.arm, self.scene.names)
            self._clearance_data = None
        return ids

    @property
    def sim_time(self) -> float:
        """Simulated seconds since the last reset."""
        return float(self._require()[1].time)

    def pad_contacts(self) -> dict[str, set[int]]:
        """Scene objects touched by the finger pads: name -> pad indices (0 left, 1 right)."""
        ids, (m, d) = self._ids(), self._require()
        touching: dict[str, set[int]] = {}
        for i in range(d.ncon):
            c = d.contact[i]
            for pad_geom, other in ((c.geom1, c.geom2), (c.geom2, c.geom1)):
                side = ids.pads.get(pad_geom)
                if side is not None:
                    name = ids.object_of_body[m.geom_bodyid[other]]
                    if name is not None:
                        touching.setdefault(name, set()).add(side)
        return touching

    def arm_contacts(self) -> list[tuple[str, str]]:
        """Contacts of arm geoms other than the pads, as (arm body, other), particles left out."""
        ids, (m, d) = self._ids(), self._require()
        out = []
        for i in range(d.ncon):
            c = d.contact[i]
            for g, other in ((c.geom1, c.geom2), (c.geom2, c.geom1)):
                if not ids.offending[g]:
                    continue
                body = m.geom_bodyid[other]
                if ids.is_particle_body[body]:
                    continue
                what = ids.body_names[body]
                if what == "world":
                    what = m.geom(other).name or "table"
                out.append((ids.body_names[m.geom_bodyid[g]], what))
        return out

    def particle_positions(self) -> np.ndarray:
        """World positions of every particle, shape (N, 3)."""
        ids, (_, d) = self._ids(), self._require()
        return d.xpos[ids.particle_bodies].copy()

    def clearance(
        self, q: np.ndarray, ignore: AbstractSet[str] = frozenset(), within: float = 0.1
    ) -> float:
        """Smallest arm-to-scene distance with the arm at ``q`` (see `SimTruth.clearance`).

        Computed with ``mj_geomDistance`` on a scratch `mujoco.MjData` holding the current
        object poses and the arm at ``q``; the live simulation is not touched.
        """
        ids, (m, live) = self._ids(), self._require()
        if self._clearance_data is None:
            self._clearance_data = mujoco.MjData(m)
        d = self._clearance_data
        d.qpos[:] = live.qpos
        d.qpos[: len(q)] = q
        mujoco.mj_kinematics(m, d)
        scene = [g for g in ids.scene_geoms if ids.body_names[m.geom_bodyid[g]] not in ignore]
        best = within
        for a in ids.arm_geoms:
            for b in scene:
                best = min(best, mujoco.mj_geomDistance(m, d, a, b, within, None))
        return best
