"""Ground-truth queries (`hw.sim.truth.SimTruth`) answered from PyBullet.

A mixin of `hw.sim.pybullet.robot.PybulletRobot`; it reads ``self.client``, ``self.built``
(body ids), ``self.scene`` and the joint indices the robot looked up.

Clearance (`PybulletTruth.clearance`) uses ``getClosestPoints`` in a **shadow client**: a
second DIRECT client holding the same arm and immovable copies of the table and the objects
(no particles). Each query copies the live object poses into it, sets the shadow arm to
``q`` and asks Bullet for the closest points per object. Chosen over the alternatives
because

* distances come from the same collision engine and shapes as the simulated contacts (a
  MuJoCo planning twin would answer for MuJoCo's geometry: its mesh hulls and margins
  differ from Bullet's, so "clear by 5 mm" there need not be clear here), and
* the live simulation is never touched: moving the live arm to ``q`` and back would need a
  save/restore of the whole dynamic state (contact caches, motor targets) at every query.

The shadow is built on the first query (one more URDF load, ~20 ms) and lives as long as
the robot's connection.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

import numpy as np
import pybullet as pb

from skillstack.hw.sim.pybullet.scene import BuiltScene, build_scene
from skillstack.robot.scene import Scene


class PybulletTruth:
    """`SimTruth` for a robot that owns a PyBullet client."""

    # Set by the host robot: its scene, and the joint and link indices it looked up on connect.
    scene: Scene
    _arm_joints: list[int]
    _finger_joints: list[int]
    _link_names: dict[int, str]

    _shadow: BuiltScene | None = None

    if TYPE_CHECKING:

        def _require_scene(self) -> tuple[int, BuiltScene]: ...

    def pad_contacts(self) -> dict[str, set[int]]:
        """Scene objects touched by the finger pads: name -> pad indices (0 left, 1 right)."""
        cid, built = self._require_scene()
        touching: dict[str, set[int]] = {}
        for side, link in enumerate(self._finger_joints):
            for c in pb.getContactPoints(bodyA=built.arm, linkIndexA=link, physicsClientId=cid):
                name = built.objects_by_body.get(c[2])
                if name is not None:
                    touching.setdefault(name, set()).add(side)
        return touching

    def arm_contacts(self) -> list[tuple[str, str]]:
        """Contacts of arm links other than the pads (and the base, which stands on the
        table), as (arm link, other), particles left out."""
        cid, built = self._require_scene()
        pads = self._finger_joints
        out = []
        for c in pb.getContactPoints(bodyA=built.arm, physicsClientId=cid):
            link = c[3]
            if link < 0 or link in pads:
                continue
            other = built.name_of(c[2])
            if other is not None:  # None: a particle (or the arm itself)
                out.append((self._link_names[link], other))
        return out

    def particle_positions(self) -> np.ndarray:
        """World positions of every particle, shape (N, 3)."""
        cid, built = self._require_scene()
        pts = [pb.getBasePositionAndOrientation(b, physicsClientId=cid)[0] for b in built.particles]
        return np.array(pts, dtype=float).reshape(-1, 3)

    def clearance(
        self, q: np.ndarray, ignore: AbstractSet[str] = frozenset(), within: float = 0.1
    ) -> float:
        """Smallest arm-to-scene distance with the arm at ``q`` (see the module docstring)."""
        cid, built = self._require_scene()
        body = built.arm
        shadow = self._shadow_scene()
        sid = shadow.client
        for j, v in zip(self._arm_joints, q, strict=True):
            pb.resetJointState(shadow.arm, j, float(v), physicsClientId=sid)
        fingers = pb.getJointStates(body, self._finger_joints, physicsClientId=cid)
        for j, s in zip(self._finger_joints, fingers, strict=True):
            pb.resetJointState(shadow.arm, j, s[0], physicsClientId=sid)
        best = within
        targets = [(n, b) for n, b in shadow.objects.items() if n not in ignore]
        for name, b in targets:
            pos, orn = pb.getBasePositionAndOrientation(built.objects[name], physicsClientId=cid)
            pb.resetBasePositionAndOrientation(b, pos, orn, physicsClientId=sid)
        for _, b in [*targets, ("table", shadow.table)]:
            for p in pb.getClosestPoints(shadow.arm, b, within, physicsClientId=sid):
                if p[3] >= 0:  # the base stands on the table; MuJoCo leaves it out too
                    best = min(best, p[8])
        return float(best)

    def _shadow_scene(self) -> BuiltScene:
        if self._shadow is None:
            sid = pb.connect(pb.DIRECT)
            self._shadow = build_scene(sid, self.scene, particles=False, static=True)
        return self._shadow

    def _close_shadow(self) -> None:
        if self._shadow is not None:
            pb.disconnect(physicsClientId=self._shadow.client)
            self._shadow = None
