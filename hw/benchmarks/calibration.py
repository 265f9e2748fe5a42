"""`skillstack bench calibration`: camera calibration accuracy on synthetic images.

For each default camera (the fixed ``scene`` camera, eye-to-hand; the ``wrist`` camera,
eye-in-hand) this renders a data set with `hw.sim.mujoco.calibration_synth.generate` (15 chessboard
and 15 ChArUco views, lens distortion and pixel noise, seeded), runs exactly what
`skillstack calibrate intrinsics` and `skillstack calibrate handeye` run on the folders, and
compares the results with the ground truth read back from the simulation model.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from skillstack.hw.sim.calibration_boards import CHARUCO, CHESSBOARD
from skillstack.hw.sim.mujoco.calibration_synth import generate
from skillstack.robot.perception.calibration import calibrate_intrinsics, pose_error
from skillstack.robot.perception.calibration_data import hand_eye_from_folder, load_images

CAMERAS = ("scene", "wrist")
VIEWS = 15


def run_camera(camera: str, seed: int, folder: Path, progress=None) -> dict:
    """Generate, calibrate and score one camera; the figures as a dict."""
    truth = generate(camera, folder, seed, views=VIEWS, progress=progress)
    result = calibrate_intrinsics(load_images(folder / "intrinsics"), CHESSBOARD)
    k, t = result.intrinsics, truth["intrinsics"]
    errors_pct = {p: 100 * abs(getattr(k, p) - t[p]) / t[p] for p in ("fx", "fy", "cx", "cy")}
    handeye, _ = hand_eye_from_folder(
        folder / "handeye", folder / "handeye" / "poses.json", k, CHARUCO, truth["mount"]
    )
    dt, dr = pose_error(handeye.T_mount_camera, np.array(truth["T_mount_camera"]))
    return {
        "mount": truth["mount"],
        "intrinsics_error_pct": {p: round(v, 4) for p, v in errors_pct.items()},
        "intrinsics_rms_px": round(result.rms_px, 4),
        "intrinsics_views": len(result.views_used),
        "handeye_translation_error_mm": round(1000 * dt, 3),
        "handeye_rotation_error_deg": round(dr, 4),
        "handeye_rms_px": round(handeye.rms_px, 4),
        "handeye_views": len(handeye.views_used),
    }


def run(seed: int = 0, progress: Callable[[int, int], None] | None = None) -> dict:
    """All cameras; worst-case figures at the top level."""
    cameras = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, camera in enumerate(CAMERAS):

            def step(done: int, total: int, i: int = i) -> None:
                if progress is not None:
                    progress(i * total + done, len(CAMERAS) * total)

            cameras[camera] = run_camera(camera, seed, Path(tmp) / camera, step)
    return {
        "seed": seed,
        "intrinsics_error_pct_max": max(
            max(c["intrinsics_error_pct"].values()) for c in cameras.values()
        ),
        "translation_error_mm_max": max(
            c["handeye_translation_error_mm"] for c in cameras.values()
        ),
        "rotation_error_deg_max": max(c["handeye_rotation_error_deg"] for c in cameras.values()),
        "cameras": cameras,
    }


if __name__ == "__main__":
    print(json.dumps(run()))
