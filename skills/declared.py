"""The ``declared`` world model: a workcell file, tracked through the skills, confirmed by the arm.

On a real arm no simulator knows where the objects are. A person declares the workcell in a
scene file (the same format as simulated scenes); from then on `DeclaredWorld` keeps the
objects where the skills put them and checks that against the signals the arm really has:

* **grip** — a closing grip that stops on something (the gripper's measured width) attaches
  the object to the hand, at the offset it had from the hand at that moment; a grip that
  closes on nothing means the object is not where the world says: it is taken out of the
  world (and reported) rather than believed;
* **carry** — the held object's pose is the hand's pose (forward kinematics of the measured
  joints) composed with that offset; fingers found closed on nothing mid-carry mean it fell;
* **release** — an opening grip sets the object down on the highest support under it (a
  box or plate top, a container's floor, the table);
* **push** — an object slid by the fingers moves as far as the measured hand travelled
  past first contact (`note_moved`);
* **pour** — a held cup tilted past `POUR_TILT` empties its contents into the container
  under its rim (or onto the table). Contents are book-kept, not measured;
* **contact** — the arm's estimated external force where the driver reports one
  (`robot.types.RobotState.wrench`, e.g. the Franka's O_F_ext_hat_K), and the MuJoCo twin
  (`skills.twin.Twin`): the arm at its measured joints inside a declared object or the
  table.

The twin also answers planning's clearance queries. Everything here runs in the thread that
runs the skills (the robot server's control thread).
"""

from __future__ import annotations

import math
from collections.abc import Set as AbstractSet

import numpy as np

from skillstack.hw.robot import Robot, RobotError
from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.rotations import quat_conj, quat_mul, quat_rotate, quat_yaw, yaw_quat
from skillstack.robot.scene import Scene
from skillstack.robot.scene.model import CONTAINER_FLOOR, CONTAINER_WALL
from skillstack.robot.types import Pose, RobotState
from skillstack.skills.twin import Twin
from skillstack.skills.world import ObjectState, WorldState, quat4, vec3
from skillstack.skills.world_model import WorldSource

LOST_WIDTH = 0.004  # m, fingers closed narrower than this hold nothing
SUPPORT_TOLERANCE = 0.01  # m, a support may be this far above a released object's bottom
POUR_TILT = math.radians(80)  # a held cup tilted further than this has poured
POUR_REACH = 0.02  # m, a cup's rim this far outside a container's opening still pours in
CONTACT_FORCE = 20.0  # N, estimated external force on the hand that counts as a collision
PENETRATION = 0.01  # m, the twin's arm this deep inside an object or the table: a collision


class DeclaredWorld:
    """World model of a declared workcell (see the module docstring).

    Args:
        robot: the robot the skills run on; must have an arm model (``robot.arm``).
        scene: the declared workcell: objects with kinds, sizes, poses and cup contents.
        twin: build the MuJoCo twin for clearance and contact queries (off: clearance is
            never limiting and contact comes from the wrench alone).
    """

    source: WorldSource = "declared"

    def __init__(self, robot: Robot, scene: Scene, *, twin: bool = True):
        if robot.arm is None:
            raise RobotError(
                f"{robot.capabilities.name} has no kinematic model in robot/arms: a declared "
                "world tracks objects through the hand's pose"
            )
        self.robot = robot
        self.kin = KinematicModel(robot.arm)
        self.objects: dict[str, ObjectState] = {o.name: _declared(o) for o in scene.objects}
        self.contents = {
            o.name: int(o.contents) for o in scene.objects if o.kind in ("cup", "bowl")
        }
        self.spilled = 0
        self.held: str | None = None
        self.missing: dict[str, str] = {}  # objects not found where declared, and why
        self.events: list[str] = []  # what tracking did, in order (a few per skill call)
        self._grip_offset: Pose | None = None  # the held object in the hand's frame
        self._state: RobotState | None = None
        self._twin = Twin(WorldState(self._snapshot()), robot.arm) if twin else None

    # -- the WorldModel protocol ------------------------------------------------------------
    def observe(self) -> WorldState:
        """The tracked world, with the hand and the held object where the joints put them."""
        state = self.robot.read()
        self._confirm_grip(state)
        ee = self._fk(state.q)
        return WorldState(
            objects=self._snapshot(ee),
            held=self.held,
            gripper_width=float(state.gripper_width),
            ee_position=vec3(ee.position),
            contents=dict(self.contents),
            spilled=self.spilled,
            time=float(state.time),
        )

    def object_pose(self, name: str) -> Pose:
        """Tracked pose of ``name`` (the held one follows the hand)."""
        if name not in self.objects:
            raise KeyError(f"no object {name!r}; objects: {', '.join(self.objects) or '(none)'}")
        if name == self.held:
            return self._held_pose(self.ee_pose())
        o = self.objects[name]
        return Pose(np.array(o.position), np.array(o.quat))

    def ee_pose(self) -> Pose:
        """Forward kinematics of the measured joints."""
        return self._fk(self.robot.read().q)

    def clearance(
        self, q: np.ndarray, ignore: AbstractSet[str] = frozenset(), within: float = 0.1
    ) -> float:
        """The twin's distance from the arm at ``q`` to the table and the declared objects
        other than ``ignore`` and the held one."""
        if self._twin is None:
            return within
        self._twin.sync(WorldState(self._snapshot()), park=self._with_held(ignore))
        return self._twin.clearance(q, within=within)

    def unexpected_contacts(self, allowed: set[str]) -> list[tuple[str, str]]:
        """Contact as of the last `track`: an external force on the hand above
        `CONTACT_FORCE` where the arm estimates one, or the twin's arm (at the measured
        joints) inside a declared object or the table. Both are checked: the force sees what
        nobody declared, the twin sees a declared object before it pushes back."""
        state = self._state
        if state is None:
            return []
        if state.wrench is not None:
            force = float(np.linalg.norm(state.wrench[:3]))
            if force > CONTACT_FORCE:
                return [("hand", f"something: an unexpected {force:.0f} N external force")]
        if self._twin is None:
            return []
        self._twin.sync(WorldState(self._snapshot()), park=self._with_held(allowed))
        depth = -self._twin.clearance(state.q, within=PENETRATION)
        if depth >= PENETRATION:
            return [("arm", f"the declared workcell (the twin is {depth * 1e3:.0f} mm inside it)")]
        return []

    def track(self, state: RobotState) -> None:
        """Follow a running skill: notice a dropped object and a pouring cup."""
        self._state = state
        self._confirm_grip(state)
        cup = self.held
        if cup is None or not self.contents.get(cup):
            return
        pose = self._held_pose(self._fk(state.q))
        axis = quat_rotate(pose.quat, np.array([0.0, 0.0, 1.0]))
        if math.acos(max(-1.0, min(1.0, axis[2]))) > POUR_TILT:
            rim = pose.position + axis * self.objects[cup].height / 2
            self._pour(cup, rim)

    def note_grip(self, closing: bool, target: str | None, state: RobotState, ok: bool) -> None:
        """Attach, detach, or give up on an object after a gripper motion."""
        self._state = state
        if closing and target is not None and target in self.objects:
            if ok:
                ee = self._fk(state.q)
                obj = self.object_pose(target)
                self._grip_offset = _relative(ee, obj)
                self.held = target
                self._event(f"holding {target} (fingers at {state.gripper_width * 1e3:.0f} mm)")
            else:
                self._lose(
                    target,
                    f"the fingers closed on nothing where {target} was declared "
                    f"({state.gripper_width * 1e3:.1f} mm)",
                )
        elif not closing and self.held is not None:
            self._set_down(self.held, self._held_pose(self._fk(state.q)))

    def note_moved(self, name: str, position: np.ndarray) -> None:
        """A pushed object slid to ``position`` (x, y; its height and yaw are kept)."""
        obj = self.objects.get(name)
        if obj is None:
            return
        x, y = float(position[0]), float(position[1])
        self.objects[name] = _at(obj, x, y)
        self._event(f"{name} pushed to ({x:.3f}, {y:.3f}) m")

    # -- tracking ---------------------------------------------------------------------------
    def _confirm_grip(self, state: RobotState) -> None:
        if self.held is not None and state.gripper_width < LOST_WIDTH:
            name = self.held
            self._set_down(name, self._held_pose(self._fk(state.q)))
            self._event(
                f"{name} left the gripper (fingers closed to {state.gripper_width * 1e3:.1f} mm); "
                "assumed to have fallen below the hand"
            )

    def _set_down(self, name: str, pose: Pose) -> None:
        """Release ``name`` at ``pose``: it comes to rest upright on the support under it."""
        obj = self.objects[name]
        x, y = float(pose.position[0]), float(pose.position[1])
        bottom = float(pose.position[2]) - obj.height / 2
        support, on = 0.0, "the table"
        for other in self.objects.values():
            if other.name == name:
                continue
            if other.is_container and other.xy_distance(_at(obj, x, y)) <= (
                other.size[0] / 2 - CONTAINER_WALL
            ):
                top = other.bottom + CONTAINER_FLOOR
            elif other.is_surface and other.footprint_contains(x, y):
                top = other.top
            else:
                continue
            if support < top <= bottom + SUPPORT_TOLERANCE:
                support, on = top, other.name
        yaw = quat_yaw(pose.quat)
        self.objects[name] = ObjectState(
            obj.name,
            obj.kind,
            obj.color,
            obj.size,
            (x, y, support + obj.height / 2),
            (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)),
        )
        self.held = None
        self._grip_offset = None
        self._event(f"{name} set down on {on} at ({x:.3f}, {y:.3f}, {support:.3f}) m")

    def _pour(self, cup: str, rim: np.ndarray) -> None:
        n = self.contents[cup]
        self.contents[cup] = 0
        for other in self.objects.values():
            if other.name == cup or not other.is_container:
                continue
            reach = math.hypot(rim[0] - other.position[0], rim[1] - other.position[1])
            if reach <= other.size[0] / 2 - CONTAINER_WALL + POUR_REACH:
                self.contents[other.name] = self.contents.get(other.name, 0) + n
                self._event(f"{cup} poured {n} particles into {other.name} (book-kept)")
                return
        self.spilled += n
        self._event(f"{cup} poured {n} particles onto the table (book-kept)")

    def _lose(self, name: str, reason: str) -> None:
        """Take ``name`` out of the world: it is not where it was declared."""
        self.objects.pop(name, None)
        self.contents.pop(name, None)
        self.missing[name] = reason
        self._event(f"{reason}: {name} removed from the declared world; declare it again")

    # -- helpers ------------------------------------------------------------------------------
    def _fk(self, q: np.ndarray) -> Pose:
        self.kin.update(np.asarray(q, dtype=float))
        return self.kin.ee_pose()

    def _held_pose(self, ee: Pose) -> Pose:
        offset = self._grip_offset
        assert offset is not None  # set whenever something is held
        return _compose(ee, offset)

    def _snapshot(self, ee: Pose | None = None) -> dict[str, ObjectState]:
        """Every object, the held one at the hand's pose ``ee`` (when given)."""
        objects = dict(self.objects)
        if self.held is not None and ee is not None:
            o, pose = objects[self.held], self._held_pose(ee)
            objects[self.held] = ObjectState(
                o.name,
                o.kind,
                o.color,
                o.size,
                vec3(pose.position),
                quat4(pose.quat),
            )
        return objects

    def _with_held(self, names: AbstractSet[str]) -> set[str]:
        """``names`` and the held object, if any (what the twin must not count)."""
        return set(names) | ({self.held} if self.held is not None else set())

    def _event(self, message: str) -> None:
        self.events.append(message)


def scene_world(scene: Scene) -> WorldState:
    """The world exactly as ``scene`` declares it, with the hand empty and no robot: what a
    planner would be shown before anything has moved."""
    objects = {o.name: _declared(o) for o in scene.objects}
    contents = {o.name: int(o.contents) for o in scene.objects if o.kind in ("cup", "bowl")}
    return WorldState(objects, contents=contents)


def _declared(o) -> ObjectState:
    """A scene object (bottom-centre position, yaw) as an `ObjectState` (geometric centre)."""
    x, y, z = o.position
    return ObjectState(
        o.name,
        o.kind,
        o.color_name,
        tuple(o.size),
        (x, y, z + o.height() / 2),
        quat4(yaw_quat(o.yaw)),
    )


def _at(obj: ObjectState, x: float, y: float) -> ObjectState:
    return ObjectState(obj.name, obj.kind, obj.color, obj.size, (x, y, obj.position[2]), obj.quat)


def _relative(frame: Pose, pose: Pose) -> Pose:
    """``pose`` expressed in ``frame``."""
    inv = quat_conj(frame.quat)
    return Pose(
        quat_rotate(inv, np.asarray(pose.position) - frame.position), quat_mul(inv, pose.quat)
    )


def _compose(frame: Pose, local: Pose) -> Pose:
    """``local`` (expressed in ``frame``) in the world."""
    return Pose(
        frame.position + quat_rotate(frame.quat, local.position),
        quat_mul(frame.quat, local.quat),
    )
