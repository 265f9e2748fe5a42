"""The world as the cameras see it: a `WorldState` from RGB-D frames instead of ground truth.

`CameraPerception(robot).observe()` captures the robot's cameras (``robot.capture(name)``,
any backend with `RGBDFrame` cameras), detects objects (`robot.perception.detect`), names
them after the scene's declared objects (`robot.perception.match`) and returns the same
`WorldState` the planner and the skills use. `PerceivingArm` is a `skills.arm.LocalArm`
whose observations, before and after every skill too, come from it.

Where each field comes from:

* objects: position, size and yaw measured from the frames; name, kind and colour are the
  declared ones of the object a detection was matched to. An object that is not seen (hidden
  by the arm, say) keeps its last estimate and is listed in ``report.undetected``.
* ``held``: the robot's own sensing plus vision, as on a real arm: the gripper is neither
  fully open nor closed on nothing (its measured width), no wider than the object
  (`HELD_WIDTH_MARGIN`: a hand left half open after a release holds nothing), and a detected
  object's centre sits between the fingers (`HELD_XY`, `HELD_Z` from the end effector). An
  object seen away from the hand is not held. An object the hand hides
  completely counts as held when it is gone from under the hand and the fingers closed on
  something; it is then centred between the fingers at the top-grasp height. A held object
  moves rigidly with the hand.
* ``contents``: particles are counted from particle-coloured pixels (each pixel's area over
  one particle's). Bowls are open enough to count what is in them; a cup's inside is hidden
  from a side camera, so a cup's count is bookkept: it starts at the declared ``contents``
  and loses what appears in bowls or on the table while it is held. Each camera misses the
  particles hidden from it, so a bowl keeps the most it was ever seen to hold until it is
  picked up (the wrist camera, over the bowl after a pour, sees them best). ``spilled`` is the count
  outside every container.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from skillstack.robot.perception.calibration_file import CameraCalibration
from skillstack.robot.perception.detect import Detection, FrameDetections, detect
from skillstack.robot.perception.match import Declared, apply_calibration, check_calibrations, match
from skillstack.robot.rotations import quat_to_matrix
from skillstack.robot.scene import COLORS, PARTICLE_RADIUS
from skillstack.skills.arm import LocalArm
from skillstack.skills.library.geometry import top_grasp
from skillstack.skills.world import ObjectState, WorldState, vec3
from skillstack.skills.world_model import SimWorld, WorldSource

PARTICLE_COLOR = (0.45, 0.25, 0.1)  # rgb of `contents` particles in the simulators
PARTICLE_KEY = "_particle"  # palette entry of particles (not a colour name objects use)
HELD_XY = 0.05  # m, centre this close to the end effector (horizontally) can be held
HELD_Z = 0.06  # m, ... and this close vertically
HELD_WIDTH_MARGIN = 0.012  # m, fingers wider apart than the object by more than this hold nothing
MIN_HELD_WIDTH = 0.005  # m, fingers closed further than this hold nothing
GRIPPER_MARGIN = 0.004  # m, narrower than fully open by this much: fingers closed on something
CONTAINER_MARGIN_Z = 0.02  # m, particles up to this far above a rim count as inside


@dataclass
class PerceptionReport:
    """What the last observation saw: per-object detections and what did not fit."""

    detections: dict[str, Detection] = field(default_factory=dict)
    undetected: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # "red box at (x, y)"
    kind_mismatch: dict[str, str] = field(default_factory=dict)  # name -> kind seen

    def summary(self) -> str:
        """One line for a person: what was not seen or not recognised."""
        parts = []
        if self.undetected:
            parts.append("not seen (last estimate kept): " + ", ".join(self.undetected))
        if self.unmatched:
            parts.append("seen but not in the scene: " + "; ".join(self.unmatched))
        return "; ".join(parts) or "every declared object seen"


class CameraPerception:
    """Builds `WorldState`s from a robot's cameras; keeps the estimates between calls.

    Args:
        robot: a connected robot with ``cameras``, ``capture(name)``, ``scene``, ``read()``,
            ``ee_pose()`` and ``arm`` (every simulated backend).
        cameras: the cameras to fuse: objects come from the first; the others fill in
            objects it does not see and count particles in containers it sees better.
        calibrations: camera name -> calibration (`load_calibration`) overriding the
            simulated intrinsics and extrinsics.
    """

    def __init__(
        self,
        robot,
        cameras: Sequence[str] = ("scene", "wrist"),
        calibrations: Mapping[str, CameraCalibration] | None = None,
    ):
        known = robot.cameras
        for name in cameras:
            if name not in known:
                raise ValueError(f"unknown camera {name!r}; cameras: {', '.join(known)}")
        self.calibrations = dict(calibrations or {})
        check_calibrations(self.calibrations, known)
        self.robot, self.camera_names = robot, tuple(cameras)
        scene = robot.scene
        (cx, cy), (sx, sy) = scene.table.center, scene.table.size
        self.work_area = ((cx - sx / 2, cx + sx / 2), (cy - sy / 2, cy + sy / 2))
        self.scene_objects = {o.name: o for o in scene.objects}
        self.palette = {o.color_name: COLORS.get(o.color_name, o.color) for o in scene.objects}
        self.contents = {o.name: o.contents for o in scene.objects if o.is_container()}
        self.total_particles = sum(self.contents.values())
        if self.total_particles:
            self.palette[PARTICLE_KEY] = PARTICLE_COLOR
        self.estimates = {
            o.name: ObjectState(
                o.name,
                o.kind,
                o.color_name,
                tuple(o.size),
                tuple(o.center()),
                (math.cos(o.yaw / 2), 0.0, 0.0, math.sin(o.yaw / 2)),
            )
            for o in scene.objects
        }
        self.held: str | None = None
        self.held_offset = np.zeros(3)
        self.report = PerceptionReport()
        self.frames: list[FrameDetections] = []

    # -- one observation -----------------------------------------------------------------------
    def observe(self) -> WorldState:
        """Capture, detect, match and return the world as seen now."""
        state = self.robot.read()
        ee = self.robot.ee_pose()
        T_world_ee = np.eye(4)
        T_world_ee[:3, :3] = quat_to_matrix(ee.quat)
        T_world_ee[:3, 3] = ee.position
        self.frames = []
        for name in self.camera_names:
            frame = self.robot.capture(name)
            if name in self.calibrations:
                frame = apply_calibration(frame, self.calibrations[name], T_world_ee)
            particle = PARTICLE_KEY if self.total_particles else None
            self.frames.append(detect(frame, self.palette, particle, self.work_area))
        self._update_objects(float(state.gripper_width), np.asarray(ee.position, dtype=float))
        contents, spilled = self._count_particles()
        return WorldState(
            objects=dict(self.estimates),
            held=self.held,
            gripper_width=float(state.gripper_width),
            ee_position=vec3(ee.position),
            contents=contents,
            spilled=spilled,
            time=float(state.time),
        )

    def _update_objects(self, gripper_width: float, ee: np.ndarray) -> None:
        if self.held is not None:  # it moved with the hand since (maybe put down just now)
            prev = self.estimates[self.held]
            moved = vec3(ee + self.held_offset)
            self.estimates[self.held] = ObjectState(
                prev.name, prev.kind, prev.color, prev.size, moved, prev.quat
            )
        declared = [Declared(o.name, o.kind, o.color, o.position) for o in self.estimates.values()]
        best: dict[str, Detection] = {}
        unmatched: list[Detection] = []
        for i, frame in enumerate(self.frames):
            m = match(frame.objects, declared)
            for name, det in m.matched.items():
                best.setdefault(name, det)  # the first camera's view wins; others fill gaps
            if i == 0:
                unmatched += m.unmatched
        report = PerceptionReport(best)
        report.undetected = [n for n in self.estimates if n not in best]
        report.unmatched = [
            f"{d.color} {d.kind} at ({d.position[0]:.3f}, {d.position[1]:.3f})" for d in unmatched
        ]
        open_width = 2 * self.robot.arm.finger_travel
        grasping = gripper_width < open_width - GRIPPER_MARGIN
        held = None
        if grasping:
            near = [
                (float(np.hypot(*(d.position[:2] - ee[:2]))), n)
                for n, d in best.items()
                if np.hypot(*(d.position[:2] - ee[:2])) < HELD_XY
                and abs(d.position[2] - ee[2]) < HELD_Z
                and self._fits(n, gripper_width)
            ]
            hidden = [
                (float(np.hypot(*(np.asarray(o.position[:2]) - ee[:2]))), n)
                for n, o in self.estimates.items()
                if n not in best
                and np.hypot(*(np.asarray(o.position[:2]) - ee[:2])) < HELD_XY
                and self._fits(n, gripper_width)
            ]
            if near:
                held = min(near)[1]
            elif (
                self.held is not None
                and self.held not in best
                and self._fits(self.held, gripper_width)
            ):
                held = self.held  # hidden by the hand: it moves with the hand (seen elsewhere,
                # away from the fingers, it was let go: a half-open hand holds nothing)
            elif hidden and gripper_width > MIN_HELD_WIDTH:
                held = min(hidden)[1]  # gone from under the hand, which closed on something
        for name, det in best.items():
            obj, previous = self.scene_objects[name], self.estimates[name]
            if det.kind != obj.kind:
                report.kind_mismatch[name] = det.kind
            same_layout = (det.kind == "box") == (obj.kind == "box")
            size = det.size if same_layout and name != held else previous.size
            yaw = det.yaw if obj.kind == "box" else 0.0
            quat = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
            position = vec3(det.position)
            if name == held:
                quat, size = previous.quat, previous.size
                if name == self.held:  # rigidly in the hand since the last observation
                    position = vec3(ee + self.held_offset)
                else:  # just grasped and lifted straight up: x-y as before, z from the bottom
                    position = (*previous.position[:2], det.bottom + previous.height / 2)
            self.estimates[name] = ObjectState(
                name, obj.kind, obj.color_name, tuple(size), position, quat
            )
        if held is not None and held not in best:
            if held == self.held:
                moved = vec3(ee + self.held_offset)
            else:  # grasped out of sight: centred between the fingers at the grasp height
                prev = self.estimates[held]
                z = ee[2] + prev.position[2] - top_grasp(prev)[1]
                moved = (float(ee[0]), float(ee[1]), float(z))
            prev = self.estimates[held]
            self.estimates[held] = ObjectState(
                held, prev.kind, prev.color, prev.size, moved, prev.quat
            )
        if held is not None:
            self.held_offset = np.asarray(self.estimates[held].position) - ee
        self.held = held
        self.report = report

    def _fits(self, name: str, gripper_width: float) -> bool:
        """Whether fingers ``gripper_width`` apart can be closed on object ``name`` (after a
        release the hand may stay half open, wider than the object it let go of)."""
        size = self.estimates[name].size
        across = max(size[:2]) if self.scene_objects[name].kind == "box" else size[0]
        return gripper_width <= across + HELD_WIDTH_MARGIN

    def _count_particles(self) -> tuple[dict[str, int], int]:
        """Particles per container and spilled; see the module docstring."""
        if not self.total_particles:
            return dict(self.contents), 0
        containers = [o for o in self.estimates.values() if o.is_container]
        unit = math.pi * PARTICLE_RADIUS**2
        seen = {c.name: 0.0 for c in containers}
        spilled_area = 0.0
        for i, frame in enumerate(self.frames):
            # Each camera misses what is hidden from it: per container, the camera that
            # sees the most particles counts; spills are counted by the first camera.
            area = {c.name: 0.0 for c in containers}
            for p, a in zip(frame.particle_points, frame.particle_area, strict=True):
                for c in containers:
                    if (
                        math.hypot(p[0] - c.position[0], p[1] - c.position[1]) <= c.radius
                        and c.bottom - 0.01 <= p[2] <= c.top + CONTAINER_MARGIN_Z
                    ):
                        area[c.name] += a
                        break
                else:
                    spilled_area += a if i == 0 else 0.0
            seen = {n: max(seen[n], area[n]) for n in seen}
        spilled = round(spilled_area / unit)
        cups = [c.name for c in containers if c.kind == "cup"]
        for c in containers:
            if c.kind != "cup":  # particles only leave a bowl that is held (tipped)
                counted = round(seen[c.name] / unit)
                keep = self.contents[c.name] if c.name != self.held else 0
                self.contents[c.name] = max(counted, keep)
        if self.held in cups:  # only a held cup can pour: it loses what appeared elsewhere
            bowls = sum(self.contents[c.name] for c in containers if c.kind != "cup")
            others = sum(self.contents[c] for c in cups if c != self.held)
            left = self.total_particles - spilled - bowls - others
            self.contents[self.held] = min(self.contents[self.held], max(left, 0))
        return dict(self.contents), spilled


class PerceivedWorld(SimWorld):
    """The ``camera`` world model: objects as the cameras see them; clearance and contact
    guards from the simulator (perception does not see the arm's own contacts)."""

    source: WorldSource = "camera"

    def __init__(self, robot, perception: CameraPerception):
        super().__init__(robot)
        self.perception = perception

    def observe(self) -> WorldState:
        """The world as the cameras see it."""
        return self.perception.observe()


class PerceivingArm(LocalArm):
    """A `LocalArm` whose observations come from the cameras (`CameraPerception`)."""

    def __init__(self, robot, on_tick=None, perception: CameraPerception | None = None):
        super().__init__(robot, on_tick)
        self.perception = perception or CameraPerception(robot)
        self.world = PerceivedWorld(robot, self.perception)

    def observe(self) -> WorldState:
        """The world as the cameras see it."""
        return self.perception.observe()
