"""Name detections after the scene's declared objects, and apply camera calibrations.

A camera sees a "red box at (0.5, 0.0)"; the planner and the skills talk about ``cube``. The
scene file declares each object's name, kind and colour (and where it was put), so
detections are assigned to declared objects by one global assignment
(``scipy.optimize.linear_sum_assignment``) whose cost adds up a colour mismatch (less when
the declared colour is a secondary colour of the detection, e.g. its shaded side), a kind
mismatch and the distance from where the object was last believed to be (at first: its
declared pose). Two objects of the same colour and kind are thus told apart by position.
Detections no declared object fits are *unmatched*; declared objects no detection fits are
*undetected*; both are reported, never silently dropped or invented.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from skillstack.robot.camera import CameraSpec, RGBDFrame
from skillstack.robot.perception.calibration_file import CameraCalibration
from skillstack.robot.perception.detect import Detection

COLOR_MISMATCH_COST = 1.0
SECONDARY_COLOR_COST = 0.3  # the declared colour is one the detection shows, not its main one
KIND_MISMATCH_COST = 0.6
DISTANCE_COST_PER_M = 2.0
MAX_COST = 1.5  # above this an assignment is refused (e.g. wrong colour and far away)
MAX_JUMP = 0.45  # m, a detection farther than this from the prior is not that object


@dataclass(frozen=True)
class Declared:
    """What the scene file says about one object: its name, kind, colour and a prior centre."""

    name: str
    kind: str
    color: str
    prior: tuple[float, float, float]


@dataclass
class Matching:
    """Assigned detections by name, plus what could not be assigned."""

    matched: dict[str, Detection] = field(default_factory=dict)
    undetected: list[str] = field(default_factory=list)
    unmatched: list[Detection] = field(default_factory=list)


def match(detections: Sequence[Detection], declared: Sequence[Declared]) -> Matching:
    """Assign ``detections`` to ``declared`` objects (see the module docstring)."""
    out = Matching()
    if not detections or not declared:
        out.undetected = [d.name for d in declared]
        out.unmatched = list(detections)
        return out
    cost = np.zeros((len(declared), len(detections)))
    for i, obj in enumerate(declared):
        for j, det in enumerate(detections):
            dist = float(np.linalg.norm(np.asarray(obj.prior[:2]) - det.position[:2]))
            cost[i, j] = (
                _color_cost(obj.color, det)
                + KIND_MISMATCH_COST * (obj.kind != det.kind)
                + DISTANCE_COST_PER_M * dist
                + (10.0 if dist > MAX_JUMP else 0.0)
            )
    rows, cols = linear_sum_assignment(cost)
    used = set()
    for i, j in zip(rows, cols, strict=True):
        if cost[i, j] <= MAX_COST:
            out.matched[declared[i].name] = detections[j]
            used.add(j)
    out.undetected = [d.name for d in declared if d.name not in out.matched]
    out.unmatched = [d for j, d in enumerate(detections) if j not in used]
    return out


def _color_cost(declared: str, det: Detection) -> float:
    """0 for the detection's main colour; less than a mismatch for a colour it also shows
    (a shaded face: a white cup's outside may look grey)."""
    if declared == det.color:
        return 0.0
    return SECONDARY_COLOR_COST if declared in det.colors else COLOR_MISMATCH_COST


def apply_calibration(
    frame: RGBDFrame, calibration: CameraCalibration, T_world_ee: np.ndarray | None = None
) -> RGBDFrame:
    """``frame`` with its intrinsics and pose replaced by a camera calibration.

    ``calibration`` is a `robot.perception.calibration_file.CameraCalibration` (anything with
    ``intrinsics``, ``mount`` and ``T_mount_camera``). A calibration with lens distortion
    undistorts the images to its pinhole model. An ``ee``-mounted camera needs ``T_world_ee``,
    the hand's pose when the frame was taken. `ValueError` when the calibration was made for
    another image size or the hand pose is missing.
    """
    k = calibration.intrinsics
    h, w = frame.depth.shape
    if (k.width, k.height) != (w, h):
        raise ValueError(
            f"calibration of camera {frame.camera!r} is for {k.width}x{k.height} images, "
            f"but the camera gives {w}x{h}; calibrate at this resolution"
        )
    rgb, depth = frame.rgb, frame.depth
    if any(k.distortion):
        K, dist = k.K, np.asarray(k.distortion, dtype=float)
        maps = cv2.initUndistortRectifyMap(K, dist, None, K, (w, h), cv2.CV_32FC1)
        rgb = cv2.remap(rgb, *maps, cv2.INTER_LINEAR)
        depth = cv2.remap(depth, *maps, cv2.INTER_NEAREST, borderValue=float("inf"))
        k = type(k)(k.width, k.height, k.fx, k.fy, k.cx, k.cy)
    T = frame.T_world_camera
    T_mount = getattr(calibration, "T_mount_camera", None)
    if T_mount is not None:
        if getattr(calibration, "mount", "world") == "ee":
            if T_world_ee is None:
                raise ValueError(f"camera {frame.camera!r} is on the hand: the hand pose is needed")
            T = np.asarray(T_world_ee) @ np.asarray(T_mount)
        else:
            T = np.asarray(T_mount, dtype=float)
    return RGBDFrame(frame.camera, rgb, depth, k, T, frame.time, dict(frame.meta))


def check_calibrations(
    calibrations: Mapping[str, CameraCalibration], cameras: Mapping[str, CameraSpec]
) -> None:
    """`ValueError` naming the cameras when a calibration is for a camera the robot lacks or
    for another image size than the camera renders."""
    for name, cal in calibrations.items():
        if name not in cameras:
            raise ValueError(
                f"calibration for unknown camera {name!r}; cameras: {', '.join(cameras)}"
            )
        spec, k = cameras[name], cal.intrinsics
        if (k.width, k.height) != (spec.width, spec.height):
            raise ValueError(
                f"calibration of camera {name!r} is for {k.width}x{k.height} images, "
                f"but the camera gives {spec.width}x{spec.height}; calibrate at this resolution"
            )
