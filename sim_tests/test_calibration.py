"""Camera calibration on synthetic images rendered in MuJoCo with known ground truth.

One data set per default camera (15 chessboard + 15 ChArUco views, lens distortion and
pixel noise, seed 0) is rendered once per module; the tests run the `skillstack calibrate`
commands on it and compare with the truth read back from the simulation model.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from skillstack.hw.sim.mujoco.render import rendering_available
from skillstack.planners.cli import app
from skillstack.robot.camera import Intrinsics
from skillstack.robot.perception.calibration import (
    CalibrationError,
    CharucoSpec,
    calibrate_hand_eye,
    pose_error,
)
from skillstack.robot.perception.calibration_data import load_hand_poses, load_images
from skillstack.robot.perception.calibration_file import (
    CalibrationFileError,
    CameraCalibration,
    load_calibration,
    load_camera,
    save_calibration,
)

INTRINSICS_TOL = 0.01  # relative error on fx, fy, cx, cy
TRANSLATION_TOL = 0.002  # m
ROTATION_TOL = 0.5  # deg

_ok, _reason = rendering_available()
needs_render = pytest.mark.skipif(not _ok, reason=_reason)
runner = CliRunner()


def _cli(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module", params=["wrist", "scene"])
def synth(request, tmp_path_factory):
    """A rendered data set and its calibration file, per camera."""
    if not _ok:
        pytest.skip(_reason)
    from skillstack.hw.sim.mujoco.calibration_synth import generate

    folder = tmp_path_factory.mktemp(request.param)
    truth = generate(request.param, folder, seed=0)
    calib = folder / "calib.yaml"
    res = _cli(
        "calibrate",
        "intrinsics",
        "--images",
        str(folder / "intrinsics"),
        "--camera",
        request.param,
        "--out",
        str(calib),
        "--json",
    )
    assert res.exit_code == 0, res.output
    return request.param, folder, truth, calib, json.loads(res.stdout)


@needs_render
def test_intrinsics_recovered_within_one_percent(synth):
    _, _, truth, _, report = synth
    for p in ("fx", "fy", "cx", "cy"):
        assert abs(report[p] - truth["intrinsics"][p]) < INTRINSICS_TOL * truth["intrinsics"][p], p
    assert report["rms_px"] < 0.5
    assert report["views_used"] >= 12


@needs_render
def test_hand_eye_within_2mm_and_half_degree(synth):
    camera, folder, truth, calib, _ = synth
    res = _cli(
        "calibrate",
        "handeye",
        "--images",
        str(folder / "handeye"),
        "--camera",
        camera,
        "--out",
        str(calib),
        "--json",
    )
    assert res.exit_code == 0, res.output
    cal = load_camera(calib, camera, truth["intrinsics"]["width"], truth["intrinsics"]["height"])
    assert cal.mount == truth["mount"]
    dt, dr = pose_error(cal.T_mount_camera, np.array(truth["T_mount_camera"]))
    assert dt < TRANSLATION_TOL and dr < ROTATION_TOL, (dt, dr)


@needs_render
def test_hand_eye_refuses_wrong_or_degenerate_data(synth):
    camera, folder, truth, calib, _ = synth
    # A board description that does not match the images.
    res = _cli(
        "calibrate",
        "handeye",
        "--images",
        str(folder / "handeye"),
        "--camera",
        camera,
        "--out",
        str(calib),
        "--dictionary",
        "6X6_250",
    )
    assert res.exit_code == 2 and "ChArUco board found in only" in res.output
    # Hand poses missing for some images.
    poses = json.loads((folder / "handeye" / "poses.json").read_text())
    poses["poses"].pop(sorted(poses["poses"])[0])
    partial = folder / "partial.json"
    partial.write_text(json.dumps(poses))
    res = _cli(
        "calibrate",
        "handeye",
        "--images",
        str(folder / "handeye"),
        "--camera",
        camera,
        "--poses",
        str(partial),
        "--out",
        str(calib),
    )
    assert res.exit_code == 2 and "no hand pose for 1 images" in res.output
    # Pure translations of the hand: the rotation of the camera is undetermined.
    from skillstack.robot.perception.calibration import detect_charuco

    cal = load_camera(calib, camera)
    shots = load_images(folder / "handeye")
    views = [v for n, img in shots if (v := detect_charuco(n, img, CharucoSpec(), cal.intrinsics))]
    hand = load_hand_poses(folder / "handeye" / "poses.json")
    translated = []
    for v in views:
        T = hand[v.name].copy()
        T[:3, :3] = hand[views[0].name][:3, :3]
        translated.append(T)
    with pytest.raises(CalibrationError, match="degenerate motion"):
        calibrate_hand_eye(views, translated, cal.intrinsics, truth["mount"])
    with pytest.raises(CalibrationError, match="need at least"):
        calibrate_hand_eye(views[:3], [hand[v.name] for v in views[:3]], cal.intrinsics, "ee")


@needs_render
def test_intrinsics_bad_inputs(synth, tmp_path):
    camera, folder, _, _, _ = synth
    out = str(tmp_path / "c.yaml")
    res = _cli(
        "calibrate", "intrinsics", "--images", str(tmp_path), "--camera", camera, "--out", out
    )
    assert res.exit_code == 2 and "no images" in res.output
    res = _cli(
        "calibrate",
        "intrinsics",
        "--images",
        str(folder / "intrinsics"),
        "--camera",
        camera,
        "--board",
        "7x4",
        "--out",
        out,
    )
    assert res.exit_code == 2 and "found in only" in res.output
    few = tmp_path / "few"
    few.mkdir()
    for p in sorted((folder / "intrinsics").iterdir())[:4]:
        shutil.copy(p, few / p.name)
    res = _cli("calibrate", "intrinsics", "--images", str(few), "--camera", camera, "--out", out)
    assert res.exit_code == 2 and "need at least" in res.output
    assert not (tmp_path / "c.yaml").exists()


def test_calibration_file_round_trip_and_errors(tmp_path):
    intr = Intrinsics(640, 480, 500.0, 501.0, 320.5, 240.5, (-0.05, 0.01, 0.0, 0.0, 0.0))
    T = np.eye(4)
    T[:3, 3] = [1.0, 0.0, 1.0]
    for suffix in (".yaml", ".json"):
        path = tmp_path / f"calib{suffix}"
        save_calibration(path, CameraCalibration("scene", intr, "world", T, 0.1, 0.2, 15))
        save_calibration(path, CameraCalibration("wrist", intr, "ee"))  # keeps "scene"
        cams = load_calibration(path)
        assert sorted(cams) == ["scene", "wrist"]
        assert cams["scene"].intrinsics == intr
        np.testing.assert_allclose(cams["scene"].T_mount_camera, T)
        assert cams["wrist"].T_mount_camera is None and cams["wrist"].mount == "ee"
    with pytest.raises(CalibrationFileError, match="no calibration for camera 'tool'"):
        load_camera(path, "tool")
    with pytest.raises(CalibrationFileError, match="calibrated at 640x480, not 320x240"):
        load_camera(path, "scene", 320, 240)
    with pytest.raises(CalibrationFileError, match="no such calibration file"):
        load_calibration(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: skillstack-camera-calibration\nversion: 1\ncameras: {a: {K: 3}}\n")
    with pytest.raises(CalibrationFileError, match="camera 'a'"):
        load_calibration(bad)
    bad.write_text("{not yaml: [")
    with pytest.raises(CalibrationFileError, match="not a readable calibration file"):
        load_calibration(bad)
    with pytest.raises(CalibrationFileError):  # a corrupt file is never overwritten
        save_calibration(bad, CameraCalibration("scene", intr))
    assert bad.read_text() == "{not yaml: ["


def test_hostile_calibration_files_are_refused_quickly_in_one_short_line(tmp_path):
    """Calibration files are read like scene files: no YAML aliases, a size limit."""
    import time

    from skillstack.robot.scene.fuzz import alias_bomb

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb(9, 9))  # 9^9 strings if expanded
    huge = tmp_path / "huge.json"
    huge.write_text('{"cameras": "' + "x" * 2_000_000 + '"}')
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    for path, reason in ((bomb, "aliases"), (huge, "larger than"), (deep, "not a readable")):
        start = time.perf_counter()
        with pytest.raises(CalibrationFileError, match=reason) as refused:
            load_calibration(path)
        assert time.perf_counter() - start < 2.0
        assert len(str(refused.value)) < 600 and "\n" not in str(refused.value)


def test_closed_form_fallback_matches_opencv(monkeypatch):
    """Where an OpenCV build lacks cv2.calibrateHandEye (opencv-python 5.0.0), the numpy
    version of Park's method gives the same hand-eye transform."""
    import cv2
    from scipy.spatial.transform import Rotation

    from skillstack.robot.perception import calibration

    if not hasattr(cv2, "calibrateHandEye"):
        pytest.skip("this OpenCV build has no calibrateHandEye to compare with")
    rng = np.random.default_rng(0)

    def pose(rotvec, t):
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = Rotation.from_rotvec(rotvec).as_matrix(), t
        return T

    X = pose([0.1, -0.2, 0.3], [0.02, -0.01, 0.05])  # camera in the hand frame
    board = pose([0.0, 0.0, 0.4], [0.5, 0.1, 0.0])  # board in the world
    M = [
        pose(rng.normal(0, 0.4, 3), rng.normal(0, 0.1, 3) + np.array([0.4, 0, 0.3]))
        for _ in range(8)
    ]
    M = [np.linalg.inv(m) for m in M]  # hand_T_world per view, as the solver takes them
    C = [np.linalg.inv(X) @ m @ board for m in M]  # camera_T_board per view
    with_cv2 = calibration._closed_form(M, C)
    monkeypatch.delattr(cv2, "calibrateHandEye")
    fallback = calibration._closed_form(M, C)
    np.testing.assert_allclose(fallback, with_cv2, atol=1e-6)
    np.testing.assert_allclose(with_cv2, X, atol=1e-6)
