"""A MuJoCo twin of a world state: the arm at given joints, the objects where the world says.

On a real arm nothing answers "how close would the arm come to the table at this
configuration?" — the twin does. It is a `hw.sim.mujoco.robot.MujocoRobot` built once from the
declared objects and never stepped: each query moves the objects to their tracked poses and
asks MuJoCo's distance routines, so planning's clearance checks and the contact guard work
on any backend. `twin_scene` also builds the scene `planners.deploy` rehearses plans in.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet

import mujoco
import numpy as np

from skillstack.hw.sim.mujoco.robot import MujocoRobot
from skillstack.robot.arms import Arm
from skillstack.robot.scene import COLORS, Scene, SceneError, SceneObject, Table, validate_scene
from skillstack.skills.world import WorldState

PARKED = np.array([0.0, 0.0, -100.0])  # m, where objects a query ignores are moved


def twin_scene(world: WorldState, *, contents: bool = True, validate: bool = True) -> Scene:
    """A scene reproducing ``world``: every object at its observed pose and size.

    Refuses (`SceneError`) a world whose hand holds something when ``validate`` is set: a
    simulation starts with every object resting. ``contents=False`` leaves cups empty (no
    particles: lighter, for geometric queries).
    """
    if validate and world.held is not None:
        raise SceneError(f"the robot holds {world.held}: put it down before rehearsing a plan")
    objects = []
    for o in world.objects.values():
        objects.append(
            SceneObject(
                o.name,
                o.kind,
                tuple(o.size),
                (o.position[0], o.position[1], max(0.0, o.bottom)),
                yaw=o.yaw,
                color=COLORS.get(o.color, COLORS["gray"]),
                color_name=o.color,
                contents=world.contents.get(o.name, 0) if o.kind == "cup" and contents else 0,
            )
        )
    scene = Scene(Table(), tuple(objects), name="twin")
    if validate:
        validate_scene(scene)
    return scene


def rehearsal_robot(world: WorldState, q: np.ndarray | None = None):
    """A connected simulated robot of ``world`` (its objects where they are, contents
    included), the arm at ``q`` if given: where a plan is rehearsed before it runs for real.
    Close it when done (it is a context manager)."""
    sim = MujocoRobot(twin_scene(world))
    sim.connect()
    if q is not None:
        sim.reset(q)
    return sim


class Twin:
    """Geometric queries on a MuJoCo copy of the arm and the objects of a world state.

    Build it from the initial world (the set of objects is fixed); `sync` moves every object
    to its pose in a later world before a query.
    """

    def __init__(self, world: WorldState, arm: Arm):
        self.sim = MujocoRobot(twin_scene(world, contents=False, validate=False), arm=arm)
        self.sim.connect()
        m = self.sim.model
        assert m is not None, "connect() builds the model"
        self._qpos = {
            name: int(m.jnt_qposadr[m.body(name).jntadr[0]])
            for name in world.objects
            if m.body(name).jntnum[0] > 0
        }

    def sync(self, world: WorldState, park: AbstractSet[str] = frozenset()) -> None:
        """Put every object where ``world`` says (those in ``park`` far away)."""
        d = self.sim.data
        assert d is not None, "connect() builds the data"
        for name, adr in self._qpos.items():
            obj = world.objects.get(name)
            if obj is None or name in park:
                d.qpos[adr : adr + 3] = PARKED
                continue
            d.qpos[adr : adr + 3] = obj.position
            d.qpos[adr + 3 : adr + 7] = obj.quat
        mujoco.mj_kinematics(self.sim.model, d)

    def clearance(
        self, q: np.ndarray, ignore: AbstractSet[str] = frozenset(), within: float = 0.1
    ) -> float:
        """Smallest arm-to-scene distance with the arm at ``q`` (call `sync` first)."""
        return self.sim.clearance(q, set(ignore), within)

    def close(self) -> None:
        """Release the MuJoCo model."""
        self.sim.disconnect()
