"""The camera calibration file: what `skillstack calibrate` writes and perception loads.

A YAML (``.yaml``/``.yml``) or JSON (any other suffix) file holding one entry per camera::

    format: skillstack-camera-calibration
    version: 1
    cameras:
      wrist:
        width: 320                 # px, the resolution the intrinsics belong to
        height: 240
        K: [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]
        distortion: [k1, k2, p1, p2, k3]     # OpenCV order
        intrinsics_rms_px: 0.08    # reprojection error of the intrinsics fit
        intrinsics_board: {type: chessboard, inner_corners: [9, 6], square_m: 0.025}
        mount: ee                  # "ee": pose is T_ee_camera; "world": T_world_camera
        T_mount_camera: [[...4x4...]]         # OpenCV camera axes; null until hand–eye ran
        handeye_rms_px: 0.12
        handeye_views: 15
        handeye_board: {type: charuco, squares: [5, 7], square_m: 0.04, ...}
        date: "2025-01-01T12:00:00+00:00"    # of the latest step that wrote this entry

Loading, for the perception pipeline::

    from skillstack.robot.perception.calibration_file import load_camera
    cal = load_camera("calib.yaml", "wrist", width=320, height=240)
    cal.intrinsics          # robot.camera.Intrinsics, distortion included
    cal.T_mount_camera      # 4x4, or None if only the intrinsics were calibrated
    cal.mount               # "ee" or "world"

`load_calibration(path)` returns every camera as ``{name: CameraCalibration}``. Both raise
`CalibrationFileError` (a ValueError) with a one-line reason for a missing or corrupt file,
an unknown camera, or a calibration taken at another resolution.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from skillstack.robot.camera import Intrinsics
from skillstack.robot.scene.io import load_yaml
from skillstack.robot.scene.model import SceneError, clip

FORMAT = "skillstack-camera-calibration"
MAX_CALIBRATION_BYTES = 1_000_000  # a calibration file is a few kB
MAX_CALIBRATION_VALUES = 20_000  # YAML scalars, lists and mappings
VERSION = 1


def now_iso() -> str:
    """The current UTC time as written into calibration entries."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


class CalibrationFileError(ValueError):
    """A calibration file that is missing, malformed, or for another camera or resolution."""


@dataclass
class CameraCalibration:
    """Everything known about one calibrated camera."""

    name: str
    intrinsics: Intrinsics
    mount: str = "world"
    T_mount_camera: np.ndarray | None = None
    intrinsics_rms_px: float | None = None
    handeye_rms_px: float | None = None
    handeye_views: int | None = None
    intrinsics_board: dict | None = None
    handeye_board: dict | None = None
    date: str = field(default_factory=lambda: now_iso())

    def to_dict(self) -> dict:
        """The entry as written into the file (plain lists and numbers)."""
        k = self.intrinsics
        return {
            "width": k.width,
            "height": k.height,
            "K": k.K.tolist(),
            "distortion": list(k.distortion),
            "intrinsics_rms_px": _number(self.intrinsics_rms_px),
            "intrinsics_board": self.intrinsics_board,
            "mount": self.mount,
            "T_mount_camera": None if self.T_mount_camera is None else self.T_mount_camera.tolist(),
            "handeye_rms_px": _number(self.handeye_rms_px),
            "handeye_views": None if self.handeye_views is None else int(self.handeye_views),
            "handeye_board": self.handeye_board,
            "date": self.date,
        }

    @staticmethod
    def from_dict(name: str, entry: dict, source: str = "") -> CameraCalibration:
        """Parse one camera entry; raises `CalibrationFileError` naming what is wrong."""
        where = f"{source}: camera {name!r}"
        try:
            K = np.asarray(entry["K"], dtype=float)
            width, height = int(entry["width"]), int(entry["height"])
            dist = tuple(float(v) for v in entry.get("distortion") or ())
            pose = entry.get("T_mount_camera")
            T = None if pose is None else np.asarray(pose, dtype=float)
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationFileError(f"{where}: missing or invalid field ({exc})") from None
        if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise CalibrationFileError(f"{where}: K must be a 3x3 camera matrix")
        if T is not None and (
            T.shape != (4, 4)
            or not np.allclose(T[:3, :3].T @ T[:3, :3], np.eye(3), atol=1e-6)
            or not np.allclose(T[3], [0, 0, 0, 1])
        ):
            raise CalibrationFileError(f"{where}: T_mount_camera must be a 4x4 rigid transform")
        mount = entry.get("mount", "world")
        if mount not in ("world", "ee"):
            raise CalibrationFileError(f"{where}: mount must be 'world' or 'ee', got {mount!r}")
        intr = Intrinsics(width, height, K[0, 0], K[1, 1], K[0, 2], K[1, 2], dist)
        return CameraCalibration(
            name,
            intr,
            mount,
            T,
            entry.get("intrinsics_rms_px"),
            entry.get("handeye_rms_px"),
            entry.get("handeye_views"),
            entry.get("intrinsics_board"),
            entry.get("handeye_board"),
            str(entry.get("date", "")),
        )


def _number(value: float | None) -> float | None:
    return None if value is None else float(value)


def _is_yaml(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml")


def load_calibration(path: str | Path) -> dict[str, CameraCalibration]:
    """Every camera in the calibration file at ``path``."""
    path = Path(path)
    where = clip(str(path), 200)
    if not path.is_file():
        raise CalibrationFileError(f"{where}: no such calibration file")
    try:  # untrusted text, read as scene files are: bounded size, no YAML aliases
        with path.open("rb") as f:
            raw = f.read(MAX_CALIBRATION_BYTES + 1)
        if len(raw) > MAX_CALIBRATION_BYTES:
            raise CalibrationFileError(
                f"{where}: larger than {MAX_CALIBRATION_BYTES:,} bytes; not a calibration file"
            )
        text = raw.decode()
        doc = load_yaml(text, MAX_CALIBRATION_VALUES) if _is_yaml(path) else json.loads(text)
    except (OSError, UnicodeDecodeError, SceneError, json.JSONDecodeError, RecursionError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CalibrationFileError(
            f"{where}: not a readable calibration file ({clip(first, 200)})"
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CalibrationFileError(f"{path}: not a camera calibration file (format != {FORMAT})")
    if doc.get("version") != VERSION:
        raise CalibrationFileError(f"{path}: unsupported version {doc.get('version')!r}")
    cameras = doc.get("cameras")
    if not isinstance(cameras, dict):
        raise CalibrationFileError(f"{path}: 'cameras' must be a mapping of name to entry")
    out = {}
    for name, entry in cameras.items():
        if not isinstance(entry, dict):
            raise CalibrationFileError(f"{path}: camera {name!r} must be a mapping")
        out[str(name)] = CameraCalibration.from_dict(str(name), entry, str(path))
    return out


def load_camera(
    path: str | Path, name: str, width: int | None = None, height: int | None = None
) -> CameraCalibration:
    """One camera's calibration, checked against the resolution it will be used at."""
    cameras = load_calibration(path)
    if name not in cameras:
        have = ", ".join(sorted(cameras)) or "none"
        raise CalibrationFileError(f"{path}: no calibration for camera {name!r} (has: {have})")
    cal = cameras[name]
    k = cal.intrinsics
    if (width is not None and width != k.width) or (height is not None and height != k.height):
        raise CalibrationFileError(
            f"{path}: camera {name!r} was calibrated at {k.width}x{k.height}, "
            f"not {width}x{height}; recalibrate at this resolution"
        )
    return cal


def save_calibration(path: str | Path, calibration: CameraCalibration) -> Path:
    """Write ``calibration`` into the file at ``path``, keeping the other cameras in it.

    A file that exists but cannot be read is not overwritten (`CalibrationFileError`).
    """
    path = Path(path)
    cameras = load_calibration(path) if path.exists() else {}
    cameras[calibration.name] = calibration
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "cameras": {name: cal.to_dict() for name, cal in sorted(cameras.items())},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)
        if _is_yaml(path)
        else json.dumps(doc, indent=2)
    )
    path.write_text(text)
    return path
