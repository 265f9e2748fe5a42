"""Reading calibration data sets from disk: a folder of images and the hand poses file.

The layout, the same for a real camera and for `hw.sim.mujoco.calibration_synth`::

    DIR/*.png (or .jpg, .jpeg, .bmp, .tif)     one image per view
    DIR/poses.json                             hand–eye only: the hand pose per image

``poses.json`` maps each image file name to the pose of the end effector in the robot's
base (world) frame at the moment the image was taken, position in metres and unit
quaternion (w, x, y, z) — what `hw.robot.Robot.ee_pose` returns::

    {"frame": "world", "link": "ee",
     "poses": {"view_000.png": {"position": [0.5, 0.0, 0.4], "quat": [0, 1, 0, 0]}, ...}}

Record it on a real arm by saving ``robot.ee_pose()`` next to each captured image.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from skillstack.robot.camera import Intrinsics
from skillstack.robot.perception.calibration import (
    MIN_FOUND_FRACTION,
    CalibrationError,
    CharucoSpec,
    HandEyeResult,
    Mount,
    calibrate_hand_eye,
    detect_charuco,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def load_images(folder: str | Path) -> list[tuple[str, np.ndarray]]:
    """Every image in ``folder`` as ``(file name, BGR array)``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CalibrationError(f"{folder}: no such folder of images")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise CalibrationError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in it")
    images = []
    for path in paths:
        image = cv2.imread(str(path))
        if image is None:
            raise CalibrationError(f"{path}: not a readable image")
        images.append((path.name, image))
    return images


def load_hand_poses(path: str | Path) -> dict[str, np.ndarray]:
    """``{image name: T_world_ee}`` from a poses file (layout in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"{path}: no such poses file")
    try:
        doc = json.loads(path.read_text())
        entries = doc["poses"]
        poses = {}
        for name, entry in entries.items():
            quat = np.asarray(entry["quat"], dtype=float)
            position = np.asarray(entry["position"], dtype=float)
            if (
                quat.shape != (4,)
                or position.shape != (3,)
                or not np.isfinite([*quat, *position]).all()
            ):
                raise ValueError(f"{name}: position needs 3 numbers and quat 4")
            if abs(np.linalg.norm(quat) - 1.0) > 1e-3:
                raise ValueError(f"{name}: quat (w, x, y, z) is not a unit quaternion")
            T = np.eye(4)
            T[:3, :3] = Rotation.from_quat(quat, scalar_first=True).as_matrix()
            T[:3, 3] = position
            poses[str(name)] = T
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
        raise CalibrationError(f"{path}: invalid poses file ({exc})") from None
    if doc.get("frame", "world") != "world" or doc.get("link", "ee") != "ee":
        raise CalibrationError(f"{path}: poses must be of the 'ee' link in the 'world' frame")
    return poses


def hand_eye_from_folder(
    images: str | Path,
    poses: str | Path,
    intrinsics: Intrinsics,
    board: CharucoSpec,
    mount: Mount,
) -> tuple[HandEyeResult, list[str]]:
    """Hand–eye calibration from a folder of ChArUco images and its poses file.

    Returns the result and the names of the images in which the board was not found.
    """
    shots = load_images(images)
    height, width = shots[0][1].shape[:2]
    if (width, height) != (intrinsics.width, intrinsics.height):
        raise CalibrationError(
            f"{images}: images are {width}x{height} but the intrinsics are for "
            f"{intrinsics.width}x{intrinsics.height}; calibrate intrinsics at this resolution"
        )
    hand = load_hand_poses(poses)
    missing = [name for name, _ in shots if name not in hand]
    if missing:
        raise CalibrationError(
            f"{poses}: no hand pose for {len(missing)} images, e.g. {missing[0]}"
        )
    views = [detect_charuco(name, image, board, intrinsics) for name, image in shots]
    found = [v for v in views if v is not None]
    if len(found) < MIN_FOUND_FRACTION * len(shots):
        raise CalibrationError(
            f"ChArUco board found in only {len(found)} of {len(shots)} images; "
            "check --board/--square/--marker/--dictionary"
        )
    result = calibrate_hand_eye(found, [hand[v.name] for v in found], intrinsics, mount)
    return result, [name for (name, _), v in zip(shots, views, strict=True) if v is None]
