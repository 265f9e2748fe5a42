"""RGB-D cameras on the MuJoCo and PyBullet backends and perception from their frames."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from skillstack.hw.sim.mujoco.render import rendering_available
from skillstack.hw.sim.mujoco.robot import MujocoRobot
from skillstack.robot.camera import DEFAULT_CAMERAS, Intrinsics
from skillstack.robot.scene import default_scene, scene_from_dict

OK, REASON = rendering_available()
needs_gl = pytest.mark.skipif(not OK, reason=REASON)  # MuJoCo renders with OpenGL

POSITION_TOL_M = 0.005  # detections within 5 mm of ground truth
SIZE_TOL_M = 0.005


@pytest.fixture(scope="module")
def robot():
    with MujocoRobot(default_scene()) as r:
        yield r


@needs_gl
def test_frame_shapes_and_depth_back_projection(robot):
    frame = robot.capture("scene")
    spec = DEFAULT_CAMERAS["scene"]
    assert frame.rgb.shape == (spec.height, spec.width, 3) and frame.rgb.dtype == np.uint8
    assert frame.depth.shape == (spec.height, spec.width)
    # The pixel the cube's top centre projects to back-projects onto the cube's top.
    top = robot.object_pose("cube").position + np.array([0.0, 0.0, 0.025])
    cam = np.linalg.inv(frame.T_world_camera) @ np.r_[top, 1.0]
    u, v = np.round((frame.intrinsics.K @ cam[:3])[:2] / cam[2]).astype(int)
    mask = np.zeros(frame.depth.shape, dtype=bool)
    mask[v, u] = True
    (point,) = frame.points_world(mask)
    assert abs(frame.depth[v, u] - cam[2]) < 0.003
    assert np.linalg.norm(point - top) < 0.003
    assert frame.meta["robot_mask"].any()  # the arm is in view and masked
    wrist = robot.capture("wrist")
    assert wrist.depth.shape == (DEFAULT_CAMERAS["wrist"].height, DEFAULT_CAMERAS["wrist"].width)


@needs_gl
def test_detections_match_ground_truth(robot):
    from skillstack.skills.perceive import CameraPerception

    perception = CameraPerception(robot, cameras=("scene",))
    world = perception.observe()
    assert perception.report.undetected == [] and perception.report.unmatched == []
    for obj in robot.scene.objects:
        est = world.objects[obj.name]
        det = perception.report.detections[obj.name]
        assert det.kind == obj.kind, obj.name
        err = np.linalg.norm(np.asarray(est.position) - robot.object_pose(obj.name).position)
        assert err < POSITION_TOL_M, (obj.name, err)
        assert max(abs(a - b) for a, b in zip(est.size, obj.size, strict=True)) < SIZE_TOL_M
    assert world.held is None and world.contents["cup"] == 20


@needs_gl
def test_unknown_camera_and_wrong_calibration_are_refused(robot):
    from skillstack.robot.perception.calibration_file import CameraCalibration
    from skillstack.skills.perceive import CameraPerception

    with pytest.raises(KeyError, match="cameras: scene, wrist"):
        robot.capture("nope")
    with pytest.raises(ValueError, match="unknown camera 'nope'"):
        CameraPerception(robot, cameras=("nope",))
    wrong = CameraCalibration("scene", Intrinsics.from_fovy(320, 240, 50.0))
    with pytest.raises(ValueError, match="is for 320x240 images, but the camera gives 640x480"):
        CameraPerception(robot, calibrations={"scene": wrong})


@needs_gl
def test_calibration_overrides_intrinsics_and_pose(robot):
    from skillstack.robot.perception.calibration_file import CameraCalibration
    from skillstack.skills.perceive import CameraPerception

    spec = DEFAULT_CAMERAS["scene"]
    shifted = spec.T_mount_camera().copy()
    shifted[0, 3] += 0.02  # a calibration 2 cm off moves every estimate by 2 cm
    cal = CameraCalibration("scene", spec.intrinsics, "world", shifted)
    world = CameraPerception(robot, cameras=("scene",), calibrations={"scene": cal}).observe()
    dx = world.objects["cube"].position[0] - robot.object_pose("cube").position[0]
    assert abs(dx - 0.02) < 0.004


@needs_gl
def test_cube_on_plate_is_two_objects():
    """A cube resting on a plate is seen as a cube on a plate, not as one tall yellow bowl."""
    from skillstack.skills.perceive import CameraPerception

    objects = [
        {"name": "cube", "kind": "box", "color": "red", "size": [0.05, 0.05, 0.05],
         "pose": [0.6, 0.05, 0.015, 0.2], "mass": 0.12},
        {"name": "plate", "kind": "plate", "color": "yellow", "size": [0.18, 0.015],
         "pose": [0.6, 0.05], "mass": 0.25},
    ]  # fmt: skip
    with MujocoRobot(scene_from_dict({"name": "stacked", "objects": objects})) as robot:
        perception = CameraPerception(robot, cameras=("scene",))
        world = perception.observe()
        assert perception.report.kind_mismatch == {}
        assert world.holds("on", "cube", "plate")
        assert abs(world.objects["plate"].height - 0.015) < 0.003


def _write_calibration(path, width=None, height=None):
    """A calibration file for the scene camera as `skillstack calibrate` writes it."""
    from skillstack.robot.perception.calibration_file import CameraCalibration, save_calibration

    spec = DEFAULT_CAMERAS["scene"]
    intr = Intrinsics.from_fovy(width or spec.width, height or spec.height, spec.fovy_deg)
    save_calibration(path, CameraCalibration("scene", intr, "world", spec.T_mount_camera()))
    return path


@needs_gl
def test_run_with_camera_perception_and_calibration_succeeds(tmp_path):
    from skillstack.planners.cli import app

    calibration = _write_calibration(tmp_path / "calib.yaml")
    result = CliRunner().invoke(
        app,
        ["run", "pick up the cube", "--perception", "camera", "--calibration", str(calibration),
         "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["success"] and report["steps"][0]["skill"] == "grasp"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--calibration", "{missing}"], "no such calibration file"),
        (["--calibration", "{garbage}"], "not a"),
        (["--calibration", "{small}"], "is for 320x240 images, but the camera gives 640x480"),
        (["--calibration", "{front}"], "unknown camera 'front'"),
    ],
)
def test_bad_calibration_is_refused_before_anything_runs(tmp_path, args, message):
    from skillstack.planners.cli import app
    from skillstack.robot.perception.calibration_file import load_calibration, save_calibration

    files = {
        "missing": tmp_path / "nope.yaml",
        "garbage": tmp_path / "garbage.yaml",
        "small": _write_calibration(tmp_path / "small.yaml", 320, 240),
        "front": tmp_path / "front.yaml",
    }
    files["garbage"].write_text("format: something-else\n")
    cal = load_calibration(_write_calibration(tmp_path / "ok.yaml"))["scene"]
    cal.name = "front"
    save_calibration(files["front"], cal)
    args = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]

    for command in (
        ["run", "pick up the cube", "--perception", "camera"],
        ["bench", "perception", "--episodes", "1", "--seeds", "1"],
    ):
        result = CliRunner().invoke(app, [*command, *args])
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], result.output
    result = CliRunner().invoke(
        app, ["run", "pick up the cube", "--calibration", str(files["small"])]
    )
    assert result.exit_code == 2 and "applies to --perception camera" in result.output


def test_a_frame_showing_no_table_gives_no_detections():
    """A wrist camera looking past the table (nothing but far background) sees nothing."""
    from skillstack.robot.camera import RGBDFrame
    from skillstack.robot.perception.detect import detect

    spec = DEFAULT_CAMERAS["wrist"]
    empty = RGBDFrame(
        "wrist",
        np.zeros((spec.height, spec.width, 3), np.uint8),
        np.full((spec.height, spec.width), np.inf, np.float32),
        spec.intrinsics,
        np.eye(4),
        0.0,
        {},
    )
    seen = detect(empty, {"red": (0.85, 0.1, 0.1)}, "red")
    assert seen.objects == [] and len(seen.particle_points) == 0


def test_pybullet_frames_give_detections_within_5mm():
    """PyBullet frames carry the arm's mask from the segmentation buffer; perception sees the
    default scene there as on MuJoCo (TinyRenderer: no OpenGL needed)."""
    from skillstack.hw.sim.pybullet.robot import PybulletRobot
    from skillstack.skills.perceive import CameraPerception

    with PybulletRobot(default_scene()) as robot:
        frame = robot.capture("scene")
        assert frame.meta["robot_mask"].any()  # the arm is in view and masked
        perception = CameraPerception(robot)
        world = perception.observe()
        assert perception.report.undetected == [] and perception.report.unmatched == []
        for obj in robot.scene.objects:
            assert perception.report.detections[obj.name].kind == obj.kind, obj.name
            true = robot.object_pose(obj.name).position
            err = np.linalg.norm(np.asarray(world.objects[obj.name].position) - true)
            assert err < POSITION_TOL_M, (obj.name, err)


def test_unknown_perception_is_refused():
    from skillstack.planners.cli import app

    result = CliRunner().invoke(app, ["run", "pick up the cube", "--perception", "lidar"])
    assert result.exit_code == 2 and "unknown perception 'lidar'" in result.output
