# Over 400 lines: lifecycle, thread-safe ground truth and fault injection belong together.
"""A hardware-in-the-loop workcell: franky-sim's Franka FR3 with a skillstack scene's objects.

franky-sim (``pip install franky-sim franky-control``) simulates a Franka Research 3 in
MuJoCo behind the real libfranka network protocol, so ``franky.Robot(host)`` and
``franky.Gripper(host)`` talk to it as they would to a real arm (and so should
`hw.drivers.franka.FrankaRobot`, which drives a Franka through franky). `FrankySimWorkcell`
puts the objects of a `Scene` into that MuJoCo world and runs the simulation server in this
process, in a background thread at 1 kHz, so a test or a newcomer has a complete Franka
workcell on a loopback address:

    with FrankySimWorkcell(load_scene("assets/scenes/workcell.yaml"), host="127.0.0.3") as cell:
        robot = franky.Robot(cell.host, realtime_config=franky.RealtimeConfig.Ignore)
        ...
        cell.object_pose("red_cube")   # ground truth, read from franky-sim's own MjData

Conventions are skillstack's: world origin at the robot base, the ground plane is the table
top (z = 0), an object's pose is its geometric centre with a (w, x, y, z) quaternion.

How the objects are built: `hw.sim.mujoco.scene`'s own object builder (`_add_object`,
the one the MuJoCo backend uses) fills an otherwise empty `mujoco.MjSpec`; its MJCF
(`MjSpec.to_xml`) is parsed and its sections (bodies, assets, …) are grafted into
franky-sim's scene tree before the model is compiled. Sizes, masses, inertias, friction,
condim, hollow cups and bowls and a cup's particles are therefore the same as in
skillstack's simulator. The physics options follow skillstack's simulator too (elliptic
friction cone, ``impratio`` 10) and the ground plane gets the scene table's friction.
franky-sim's finger pads (five boxes per finger, default friction 1, condim 3) grip the
objects (condim 4, friction 0.9): MuJoCo takes the larger of both, friction 1 and condim 4.

Measured against franky-sim 1.0.4 (sim_tests/test_franky_workcell.py):

* Kinematics: skillstack's Panda model (`robot.arms.panda`, whose ``ee`` site is the grasp
  centre) agrees with franky-sim's FR3 at the same joint positions to 0.02 mm across the
  workspace, except along the tool axis: the ``ee`` site lies 2.1 mm beyond franky-sim's
  fingertip-pad centre (`fingertip_centre`) and 1.6 mm beyond libfranka's end effector
  (``O_T_EE``, `tcp_pose`); the orientations are identical (``ee`` frame = hand frame).
* Gripper: franky-sim's Franka Hand is a PD servo to the commanded width (1000 N/m per
  finger) whose force is capped at the ``force`` argument, so a grasp squeezes with
  min(force, 1000 N/m x (object width - commanded width) / 2) per finger, and ``grasp``
  succeeds when the settled width is within the epsilons of the commanded one. A real hand
  squeezes with ``force`` whatever the width. ``grasp(0.04, 0.05, 40, 0.04, 0.04)`` on a
  5 cm cube squeezes 5 N per finger and carries a 100 g cube; ``grasp(0.0, …, 0.08, 0.08)``
  squeezes with ``force`` itself (up to 25 N per finger for 5 cm).
* The arm's joint servo holds targets within about 2 mrad (gravity is compensated with
  franky-sim's Pinocchio model, not the MuJoCo one).

Threads: franky-sim steps ``MjData`` in its server thread. After every step a callback
there copies ``qpos``/``qvel`` and the time into an immutable snapshot, which every read
here uses, so reads are consistent and never race the stepping. Changes to the world while
it runs (`remove_object`, `move_object`) are queued and applied by the server thread
between two steps.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import mujoco
import numpy as np

from skillstack.hw.sim.mujoco import scene as mujoco_scene
from skillstack.hw.sim.truth import PARTICLE_PREFIX
from skillstack.robot.arms import panda
from skillstack.robot.scene import Scene, SceneObject, Table
from skillstack.robot.types import Pose

INSTALL_HINT = "pip install franky-sim franky-control"
DEFAULT_HOST = "127.0.0.1"
ROBOT_PREFIX = "robot0_"  # franky-sim's name prefix for its first (only) robot
ARM_JOINTS = tuple(f"{ROBOT_PREFIX}fr3_joint{i}" for i in range(1, 8))
FINGER_JOINTS = (f"{ROBOT_PREFIX}finger_joint1", f"{ROBOT_PREFIX}finger_joint2")
HAND_BODY = f"{ROBOT_PREFIX}hand"
FINGER_BODIES = (f"{ROBOT_PREFIX}left_finger", f"{ROBOT_PREFIX}right_finger")
# franky-sim's fr3.xml: the fingertip pad (fingertip_pad_collision_1) centre lies this far
# along the hand's z axis from the finger body origin; the finger origins are 0.0584 m
# from the hand origin, so the fingertip centre is 0.1029 m from the hand (the flange is
# 0.107 m behind the hand origin).
FINGER_PAD_Z = 0.0445  # m
# libfranka's default end effector (NE_T_EE of the Franka Hand): 0.1034 m along the hand z.
FRANKA_TCP_Z = 0.1034  # m
PARK_XY = (3.0, 3.0)  # m: where `remove_object` puts an object, far out of the arm's reach
PARK_SPACING = 0.5  # m between parked objects
MUTATION_TIMEOUT_S = 5.0  # s to wait for the server thread to apply a world change
# Sections of the exported objects' MJCF that are not grafted: franky-sim sets its own.
_SKIPPED_SECTIONS = ("compiler", "option", "size", "visual", "statistic")


class FrankySimUnavailable(RuntimeError):
    """franky-sim (or its dependencies) cannot be imported; the message says how to install."""


def _franky_sim():
    """(MujocoSimulator, SimulationServer) from franky-sim, or `FrankySimUnavailable`."""
    try:
        from franky_sim.mujoco_simulator import MujocoSimulator
        from franky_sim.simulation_server import SimulationServer
    except ImportError as exc:
        raise FrankySimUnavailable(f"franky-sim is not installed ({exc}); {INSTALL_HINT}") from exc
    return MujocoSimulator, SimulationServer


def franky_sim_available() -> bool:
    """Whether franky-sim can be imported here."""
    try:
        _franky_sim()
    except FrankySimUnavailable:
        return False
    return True


def objects_mjcf(scene: Scene) -> ET.Element:
    """The scene's objects (and a cup's particles) alone as an MJCF tree, built by
    `hw.sim.mujoco.scene`'s object builder — the same bodies skillstack's MuJoCo backend has."""
    spec = mujoco.MjSpec()
    for obj in scene.objects:
        mujoco_scene._add_object(spec, obj)
    return ET.fromstring(spec.to_xml())


def graft_mjcf(target: ET.Element, source: ET.Element) -> None:
    """Append the content of every section of ``source`` (worldbody, asset, contact, …) to the
    same section of ``target``, creating it where missing. Defaults cannot be merged safely,
    so a ``source`` that declares any is refused (`ValueError`), as is a name clash."""
    taken = {e.get("name") for e in target.iter() if e.get("name")}
    for section in source:
        if section.tag in _SKIPPED_SECTIONS:
            continue
        if section.tag == "default":
            if len(section) or any(k != "class" for k in section.attrib):
                raise ValueError("cannot graft MJCF defaults into franky-sim's scene")
            continue
        for element in section.iter():
            name = element.get("name")
            if name and name in taken and element is not section:
                raise ValueError(
                    f"scene name {name!r} is already used in franky-sim's model; rename it"
                )
        into = target.find(section.tag)
        if into is None:
            into = ET.SubElement(target, section.tag)
        into.extend(list(section))


@dataclasses.dataclass(frozen=True)
class _Snapshot:
    """State copied by the server thread after a step."""

    time: float
    qpos: np.ndarray
    qvel: np.ndarray


class FrankySimWorkcell:
    """franky-sim (a Franka FR3 behind the libfranka protocol) with the objects of a
    skillstack scene in its MuJoCo world, run in this process.

    Args:
        scene: the declared workcell; None gives an empty table.
        host: the loopback (or local) address the libfranka server binds (ports 1337 TCP
            for the arm, 1338 for the gripper); clients connect to it.
        realtime: True paces the 1 kHz loop to wall-clock time, a float scales that pace
            (2.0: half speed), False runs as fast as the machine allows.
        initial_q: the arm's joint positions at start; None: the Panda/FR3 "ready" pose
            (`robot.arms.panda.HOME_Q`).
        omit: names of scene objects that are NOT built, though the scene declares them
            (the fault "an object is missing from where the scene file says it is").
        moved: name -> xy or xyz (bottom centre): objects built somewhere else than the
            scene declares (z defaults to the declared z).
    """

    def __init__(
        self,
        scene: Scene | None = None,
        host: str = DEFAULT_HOST,
        realtime: bool | float = True,
        initial_q: Sequence[float] | None = None,
        *,
        omit: Iterable[str] = frozenset(),
        moved: Mapping[str, Sequence[float]] | None = None,
    ):
        self.scene = scene if scene is not None else Scene(table=Table(), objects=(), name="empty")
        self.host = host
        self.realtime = realtime
        q0 = panda.HOME_Q if initial_q is None else initial_q
        self.initial_q = np.array(q0, dtype=float)
        if self.initial_q.shape != (7,) or not np.all(np.isfinite(self.initial_q)):
            raise ValueError(f"initial_q must be 7 finite joint positions, got {initial_q!r}")
        self.omitted = frozenset(omit)
        moved = dict(moved or {})
        unknown = sorted((self.omitted | set(moved)) - set(self.scene.names))
        if unknown:
            raise KeyError(
                f"no object(s) {', '.join(unknown)} in scene {self.scene.name!r}; "
                f"objects: {', '.join(self.scene.names) or '(none)'}"
            )
        self._built = self._built_scene(moved)
        self._sim = None
        self._server = None
        self._model: mujoco.MjModel | None = None
        self._snapshot: _Snapshot | None = None
        self._started = False
        self._stopped = False
        self._lock = threading.Lock()  # guards the mutation queue and the start/stop state
        self._mutations: list[tuple[Callable[[Any], None], threading.Event]] = []
        self._parked = 0
        self._kin_lock = threading.Lock()
        self._kin_data: mujoco.MjData | None = None
        self._wall_start = 0.0
        self._wall_stop: float | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Build the model, bind the libfranka server on `host` and run the 1 kHz loop in a
        background thread. `OSError` if the address is taken, `FrankySimUnavailable` without
        franky-sim."""
        with self._lock:
            if self._started or self._stopped:
                raise RuntimeError("a workcell starts once; build a new one")
            self._started = True
        MujocoSimulator, SimulationServer = _franky_sim()
        sim = MujocoSimulator()
        sim.init()
        sim.add_robot(initial_q=tuple(float(v) for v in self.initial_q))
        try:
            self._configure(sim.scene)
            server = SimulationServer(sim, hostname_candidates=[self.host])
        except BaseException:
            sim.cleanup()
            raise
        try:
            server.init()  # binds the sockets, then compiles and starts the simulation
        except OSError as exc:
            server.cleanup()
            sim.cleanup()
            raise OSError(
                f"cannot serve franky-sim on {self.host} (TCP ports 1337 and 1338): {exc}; "
                "is another franky-sim or workcell running there?"
            ) from exc
        except BaseException:
            server.cleanup()
            if sim.is_initialized and not sim.is_cleaned_up:
                sim.cleanup()
            raise
        self._sim, self._server, self._model = sim, server, sim.model
        self._kin_data = mujoco.MjData(self._model)
        self._index(self._model)
        self._take_snapshot(sim)
        sim.register_pre_step_callback(self._apply_mutations)
        sim.register_post_step_callback(self._take_snapshot)
        self._wall_start = time.monotonic()
        server.run_async(realtime=self.realtime)

    def stop(self) -> None:
        """Stop the loop, drop any connected client (as a pulled cable would) and close the
        sockets, so the address is free again. Safe to call twice; reads keep answering
        with the last state."""
        with self._lock:
            if self._stopped or self._server is None:
                self._stopped = True
                return
            self._stopped = True
        server, sim = self._server, self._sim
        server.running = False
        thread = server.async_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        for rs in server.robot_servers:
            # franky-sim's cleanup closes the listening sockets only; close the client's
            # TCP and UDP sockets too, so a connected franky sees the connection drop.
            gripper = rs.gripper_server
            if gripper is not None:
                gripper.reset_state()
            rs.reset_state()
        self._wall_stop = time.monotonic()
        server.cleanup()
        sim.cleanup()
        self._fail_pending_mutations()

    def __enter__(self) -> FrankySimWorkcell:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between `start` and `stop` while franky-sim's loop thread is alive."""
        server = self._server
        if server is None or self._stopped:
            return False
        thread = server.async_thread
        return thread is not None and thread.is_alive()

    # ------------------------------------------------------------------ ground truth

    @property
    def sim_time(self) -> float:
        """Simulated seconds since start."""
        return self._snap().time

    def real_time_factor(self) -> float:
        """Simulated seconds per wall-clock second from start to now (or to `stop`)."""
        wall = (self._wall_stop or time.monotonic()) - self._wall_start
        return self._snap().time / wall if wall > 0 else 0.0

    def object_pose(self, name: str) -> Pose:
        """Ground-truth pose of a scene object's geometric centre (quaternion w, x, y, z);
        `KeyError` listing the objects present for a name that is not (or was omitted)."""
        adr = self._object_qpos.get(name)
        if adr is None:
            why = " (declared in the scene, but omitted or removed)" * (name in self.omitted)
            present = ", ".join(self._object_qpos) or "(none)"
            raise KeyError(f"no object {name!r}{why}; objects present: {present}")
        q = self._snap().qpos
        return Pose(q[adr : adr + 3].copy(), q[adr + 3 : adr + 7].copy())

    def object_poses(self) -> dict[str, Pose]:
        """Ground-truth poses of every object present, by name."""
        q = self._snap().qpos
        return {
            n: Pose(q[a : a + 3].copy(), q[a + 3 : a + 7].copy())
            for n, a in self._object_qpos.items()
        }

    def object_velocity(self, name: str) -> np.ndarray:
        """Linear (world) and angular (local) velocity of an object, shape (6,)."""
        self.object_pose(name)  # the KeyError
        adr = self._object_dof[name]
        return self._snap().qvel[adr : adr + 6].copy()

    def particle_positions(self) -> np.ndarray:
        """World positions of every cup particle, shape (N, 3)."""
        q = self._snap().qpos
        adrs = [a for name in self._object_qpos for a, _ in self._particle_adr.get(name, ())]
        if not adrs:
            return np.zeros((0, 3))
        return np.stack([q[a : a + 3] for a in adrs])

    def gripper_width(self) -> float:
        """Opening between the fingers (m), the sum of both finger joints."""
        q = self._snap().qpos
        return float(sum(q[a] for a in self._finger_qpos))

    def joint_positions(self) -> np.ndarray:
        """The arm's seven joint positions (rad)."""
        return self._snap().qpos[self._arm_qpos].copy()

    def body_pose(self, name: str) -> Pose:
        """World pose of any body of franky-sim's model (e.g. ``robot0_hand``), computed from
        the latest snapshot; `KeyError` for an unknown body."""
        m = self._require_model()
        bid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, name)
        if bid < 0:
            raise KeyError(f"franky-sim's model has no body {name!r}")
        with self._kin_lock:
            d = self._forward_kinematics()
            return Pose(d.xpos[bid].copy(), d.xquat[bid].copy())

    def fingertip_centre(self) -> np.ndarray:
        """World position of the grasp centre: midway between the two fingertip pads."""
        m = self._require_model()
        with self._kin_lock:
            d = self._forward_kinematics()
            left, right = (m.body(b).id for b in FINGER_BODIES)
            hand_z = d.xmat[m.body(HAND_BODY).id].reshape(3, 3)[:, 2]
            return (d.xpos[left] + d.xpos[right]) / 2 + FINGER_PAD_Z * hand_z

    def tcp_pose(self) -> Pose:
        """libfranka's end-effector frame (``O_T_EE`` with the Franka Hand's default
        ``NE_T_EE``): `FRANKA_TCP_Z` along the hand's z axis from the hand body."""
        hand = self.body_pose(HAND_BODY)
        mat = np.zeros(9)
        mujoco.mju_quat2Mat(mat, hand.quat)
        return Pose(hand.position + FRANKA_TCP_Z * mat.reshape(3, 3)[:, 2], hand.quat)

    @property
    def model(self) -> mujoco.MjModel:
        """franky-sim's compiled model (read only: it is shared with the server thread)."""
        return self._require_model()

    # ------------------------------------------------------------------ faults

    def remove_object(self, name: str) -> None:
        """Take an object (and a cup's contents) out of the workspace while the workcell
        runs: parked on the ground far out of reach, it is no longer one of the objects
        present (`object_pose` raises `KeyError`, `particle_positions` leaves them out)."""
        if name not in self._object_qpos:
            self.object_pose(name)  # raises the KeyError
        obj = self.scene.object(name)
        slot = self._parked
        self._parked += 1
        x, y = PARK_XY[0] + PARK_SPACING * slot, PARK_XY[1]
        self._set_object(name, (x, y, obj.half_height() + 0.001), obj.yaw)
        del self._object_qpos[name]
        self.omitted = self.omitted | {name}

    def move_object(self, name: str, position: Sequence[float], yaw: float | None = None) -> None:
        """Teleport an object (bottom centre ``position``: xy or xyz; ``yaw`` None keeps the
        declared yaw) while the workcell runs, e.g. a person moving it; a cup's contents move
        with it and all their velocities are zeroed."""
        self.object_pose(name)
        obj = self.scene.object(name)
        xyz = (*position, obj.position[2]) if len(position) == 2 else tuple(position)
        self._set_object(
            name,
            (xyz[0], xyz[1], xyz[2] + obj.half_height()),
            obj.yaw if yaw is None else yaw,
        )

    # ------------------------------------------------------------------ internals

    def _built_scene(self, moved: Mapping[str, Sequence[float]]) -> Scene:
        objects: list[SceneObject] = []
        for obj in self.scene.objects:
            if obj.name in self.omitted:
                continue
            if obj.name in moved:
                p = tuple(float(v) for v in moved[obj.name])
                if len(p) not in (2, 3):
                    raise ValueError(f"moved[{obj.name!r}] must be xy or xyz, got {p}")
                x, y, z = p if len(p) == 3 else (*p, obj.position[2])
                obj = dataclasses.replace(obj, position=(x, y, z))
            objects.append(obj)
        return dataclasses.replace(self.scene, objects=tuple(objects))

    def _configure(self, root: ET.Element) -> None:
        """Skillstack's contact options, the table's friction on the ground, the objects."""
        option = root.find("option")
        if option is None:
            option = ET.SubElement(root, "option")
        option.set("cone", "elliptic")
        option.set("impratio", f"{mujoco_scene.IMPRATIO:g}")
        worldbody = root.find("worldbody")
        assert worldbody is not None  # every MJCF model has one
        for geom in worldbody.findall("geom"):
            if geom.get("type") == "plane":
                geom.set("friction", f"{self.scene.table.friction:g} 0.005 0.0001")
        if self._built.objects:
            graft_mjcf(root, objects_mjcf(self._built))

    def _index(self, m: mujoco.MjModel) -> None:
        def qpos_of_body(name: str) -> tuple[int, int]:
            body = m.body(name)
            jnt = int(body.jntadr[0])
            if body.jntnum[0] != 1 or m.jnt_type[jnt] != mujoco.mjtJoint.mjJNT_FREE:
                raise RuntimeError(f"body {name!r} has no free joint in franky-sim's model")
            return int(m.jnt_qposadr[jnt]), int(m.jnt_dofadr[jnt])

        self._object_qpos: dict[str, int] = {}
        self._object_dof: dict[str, int] = {}
        for obj in self._built.objects:
            self._object_qpos[obj.name], self._object_dof[obj.name] = qpos_of_body(obj.name)
        # A cup's particles, named as `hw.sim.mujoco.scene._add_particles` names them.
        self._particle_adr: dict[str, list[tuple[int, int]]] = {
            obj.name: [
                qpos_of_body(f"{PARTICLE_PREFIX}{obj.name}_{i}") for i in range(obj.contents)
            ]
            for obj in self._built.objects
            if obj.contents
        }
        self._arm_qpos = np.array([m.joint(n).qposadr[0] for n in ARM_JOINTS])
        self._finger_qpos = [int(m.joint(n).qposadr[0]) for n in FINGER_JOINTS]

    def _take_snapshot(self, sim) -> None:  # server thread, after each step
        d = sim.data
        self._snapshot = _Snapshot(float(d.time), d.qpos.copy(), d.qvel.copy())

    def _apply_mutations(self, sim) -> None:  # server thread, before each step
        if not self._mutations:
            return
        with self._lock:
            pending, self._mutations = self._mutations, []
        for apply, done in pending:
            apply(sim.data)
            done.set()

    def _set_object(self, name: str, centre: Sequence[float], yaw: float) -> None:
        qadr, vadr = self._object_qpos[name], self._object_dof[name]
        contents = self._particle_adr.get(name, [])
        new_quat = [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]
        applied: list[bool] = []

        def apply(d) -> None:  # server thread, between two steps
            old_centre = d.qpos[qadr : qadr + 3].copy()
            w, _, _, z = d.qpos[qadr + 3 : qadr + 7]
            turn = yaw - 2.0 * math.atan2(z, w)  # about the vertical, for an upright object
            c, s = math.cos(turn), math.sin(turn)
            for a, _ in contents:  # keep the particles where they are relative to the cup
                rel = d.qpos[a : a + 3] - old_centre
                d.qpos[a : a + 3] = [
                    centre[0] + c * rel[0] - s * rel[1],
                    centre[1] + s * rel[0] + c * rel[1],
                    centre[2] + rel[2],
                ]
            d.qpos[qadr : qadr + 3] = centre
            d.qpos[qadr + 3 : qadr + 7] = new_quat
            d.qvel[vadr : vadr + 6] = 0.0
            for _, dof in contents:
                d.qvel[dof : dof + 6] = 0.0
            applied.append(True)

        done = threading.Event()
        with self._lock:
            if not self.running:
                raise RuntimeError("the workcell is not running; start it first")
            self._mutations.append((apply, done))
        if not done.wait(MUTATION_TIMEOUT_S):
            raise TimeoutError(f"franky-sim's loop did not apply the change to {name!r}")
        if not applied:
            raise RuntimeError(f"the workcell stopped before {name!r} could be changed")

    def _fail_pending_mutations(self) -> None:
        with self._lock:
            pending, self._mutations = self._mutations, []
        for _, done in pending:
            done.set()

    def _snap(self) -> _Snapshot:
        snap = self._snapshot
        if snap is None:
            raise RuntimeError("the workcell has not been started")
        return snap

    def _require_model(self) -> mujoco.MjModel:
        if self._model is None:
            raise RuntimeError("the workcell has not been started")
        return self._model

    def _forward_kinematics(self) -> mujoco.MjData:
        d = self._kin_data
        if d is None:
            raise RuntimeError("the workcell has not been started")
        d.qpos[:] = self._snap().qpos
        mujoco.mj_kinematics(self._model, d)
        return d
