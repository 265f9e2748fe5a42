"""`skillstack calibrate ...`: camera intrinsics, hand–eye, and synthetic data to try them on.

For a real camera (see README, "Calibrating a real camera")::

    skillstack calibrate intrinsics --images shots/ --board 9x6 --square 0.025 \
        --camera wrist --out calib.yaml
    skillstack calibrate handeye --images views/ --poses views/poses.json \
        --camera wrist --out calib.yaml

and on synthetic images rendered with known ground truth::

    skillstack calibrate synth --camera wrist --out synth/ --seed 0
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from skillstack.planners.cli.bench_cmd import _with_progress
from skillstack.planners.cli.common import app, fail
from skillstack.planners.cli.output import print_json

calibrate_app = typer.Typer(
    help="Calibrate cameras: intrinsics (chessboard), hand–eye (ChArUco), synthetic data.",
    no_args_is_help=True,
)
app.add_typer(calibrate_app, name="calibrate")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
OutOpt = Annotated[Path, typer.Option(help="Calibration file to write (YAML or JSON).")]
CameraOpt = Annotated[str, typer.Option(help="Camera name, e.g. scene or wrist.")]


def _report(result: dict, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    for key, value in result.items():
        print(f"{key}: {value}")


@calibrate_app.command()
def intrinsics(
    images: Annotated[Path, typer.Option(help="Folder of chessboard images.")],
    camera: CameraOpt,
    out: OutOpt = Path("calib.yaml"),
    board: Annotated[str, typer.Option(help="Inner corners, columns x rows.")] = "9x6",
    square: Annotated[float, typer.Option(help="Square size in metres.")] = 0.025,
    as_json: JsonOpt = False,
) -> None:
    """Fit focal lengths, principal point and distortion to chessboard images."""
    from skillstack.robot.camera import DEFAULT_CAMERAS
    from skillstack.robot.perception.calibration import (
        CalibrationError,
        ChessboardSpec,
        calibrate_intrinsics,
    )
    from skillstack.robot.perception.calibration_data import load_images
    from skillstack.robot.perception.calibration_file import (
        CalibrationFileError,
        CameraCalibration,
        load_calibration,
        save_calibration,
    )

    try:
        spec = ChessboardSpec.parse(board, square)
        result = calibrate_intrinsics(load_images(images), spec)
        previous = load_calibration(out).get(camera) if out.exists() else None
        mount = DEFAULT_CAMERAS[camera].mount if camera in DEFAULT_CAMERAS else "world"
        # New intrinsics invalidate a hand–eye result computed with the old ones: drop it.
        entry = CameraCalibration(
            camera,
            result.intrinsics,
            previous.mount if previous else mount,
            intrinsics_rms_px=result.rms_px,
            intrinsics_board=spec.describe(),
        )
        save_calibration(out, entry)
    except (CalibrationError, CalibrationFileError) as exc:
        fail(str(exc), code=2)
    k = result.intrinsics
    _report(
        {
            "camera": camera,
            "width": k.width,
            "height": k.height,
            "fx": k.fx,
            "fy": k.fy,
            "cx": k.cx,
            "cy": k.cy,
            "distortion": list(k.distortion),
            "rms_px": result.rms_px,
            "views_used": len(result.views_used),
            "views_rejected": result.views_rejected,
            "handeye_dropped": previous is not None and previous.T_mount_camera is not None,
            "out": str(out),
        },
        as_json,
    )


@calibrate_app.command()
def handeye(
    images: Annotated[Path, typer.Option(help="Folder of ChArUco images.")],
    camera: CameraOpt,
    poses: Annotated[
        Path | None, typer.Option(help="Hand poses per image (default IMAGES/poses.json).")
    ] = None,
    mount: Annotated[
        str | None, typer.Option(help="ee (on the hand) or world (fixed); default from camera.")
    ] = None,
    out: OutOpt = Path("calib.yaml"),
    intrinsics_file: Annotated[
        Path | None, typer.Option("--intrinsics", help="File with this camera's intrinsics.")
    ] = None,
    board: Annotated[str, typer.Option(help="ChArUco squares, x by y.")] = "5x7",
    square: Annotated[float, typer.Option(help="Square size in metres.")] = 0.04,
    marker: Annotated[float, typer.Option(help="Marker size in metres.")] = 0.03,
    dictionary: Annotated[str, typer.Option(help="ArUco dictionary.")] = "4X4_50",
    as_json: JsonOpt = False,
) -> None:
    """Find the camera's pose on the hand (wrist) or in the world (fixed camera)."""
    from skillstack.robot.camera import DEFAULT_CAMERAS
    from skillstack.robot.perception.calibration import MOUNTS, CalibrationError, CharucoSpec
    from skillstack.robot.perception.calibration_data import hand_eye_from_folder
    from skillstack.robot.perception.calibration_file import (
        CalibrationFileError,
        load_camera,
        now_iso,
        save_calibration,
    )

    mount = mount or (DEFAULT_CAMERAS[camera].mount if camera in DEFAULT_CAMERAS else None)
    if mount not in MOUNTS:
        fail(f"--mount must be one of {', '.join(MOUNTS)} for camera {camera!r}", code=2)
    source = intrinsics_file or out
    try:
        sx, sy = (int(v) for v in board.lower().split("x"))
    except ValueError:
        fail(f"--board must look like 5x7 (squares), got {board!r}", code=2)
    try:
        spec = CharucoSpec(sx, sy, square, marker, dictionary.upper().removeprefix("DICT_"))
        if not source.exists():
            raise CalibrationError(
                f"{source}: no intrinsics for camera {camera!r}; run `skillstack calibrate "
                "intrinsics` first (or pass --intrinsics FILE)"
            )
        cal = load_camera(source, camera)
        result, without_board = hand_eye_from_folder(
            images, poses or images / "poses.json", cal.intrinsics, spec, mount
        )
        cal.mount, cal.T_mount_camera = mount, result.T_mount_camera
        cal.handeye_rms_px, cal.handeye_views = result.rms_px, len(result.views_used)
        cal.handeye_board = spec.describe()
        cal.date = now_iso()
        save_calibration(out, cal)
    except (CalibrationError, CalibrationFileError) as exc:
        fail(str(exc), code=2)
    _report(
        {
            "camera": camera,
            "mount": mount,
            "T_mount_camera": result.T_mount_camera.tolist(),
            "rms_px": result.rms_px,
            "views_used": len(result.views_used),
            "views_without_board": without_board,
            "out": str(out),
        },
        as_json,
    )


@calibrate_app.command()
def synth(
    camera: Annotated[str, typer.Option(help="Camera to simulate: scene or wrist.")],
    out: Annotated[Path, typer.Option(help="Folder for intrinsics/, handeye/, ground_truth.json.")],
    seed: Annotated[int, typer.Option(help="Seed of poses and image noise.")] = 0,
    views: Annotated[int, typer.Option(min=6, help="Images per data set.")] = 15,
    pose_noise_mm: Annotated[float, typer.Option(min=0, help="Hand pose noise, mm.")] = 0.0,
    pose_noise_deg: Annotated[float, typer.Option(min=0, help="Hand pose noise, deg.")] = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Render chessboard and ChArUco images from a simulated camera with known calibration."""
    from skillstack.hw.sim.mujoco.calibration_synth import generate
    from skillstack.hw.sim.mujoco.render import RenderUnavailable
    from skillstack.robot.camera import DEFAULT_CAMERAS

    if camera not in DEFAULT_CAMERAS:
        fail(f"unknown camera {camera!r}; available: {', '.join(DEFAULT_CAMERAS)}", code=2)
    try:
        truth = _with_progress(
            f"rendering {camera} views",
            lambda progress: generate(
                camera,
                out,
                seed,
                views=views,
                pose_noise=(pose_noise_mm / 1000, pose_noise_deg),
                progress=progress,
            ),
        )
    except RenderUnavailable as exc:
        fail(str(exc))
    except RuntimeError as exc:
        fail(str(exc))
    if not as_json:
        mount = "--mount ee" if truth["mount"] == "ee" else "--mount world"
        print(f"wrote {out}/intrinsics, {out}/handeye and {out}/ground_truth.json; try:")
        print(
            f"  skillstack calibrate intrinsics --images {out}/intrinsics --camera {camera} "
            f"--out {out}/calib.yaml"
        )
        print(
            f"  skillstack calibrate handeye --images {out}/handeye --camera {camera} "
            f"{mount} --out {out}/calib.yaml"
        )
        return
    print_json(truth)
