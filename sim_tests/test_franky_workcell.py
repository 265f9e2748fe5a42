"""Hardware in the loop on franky-sim: a Franka FR3 behind the real libfranka protocol, with a
skillstack scene's objects in its MuJoCo world (`hw.sim.franky_workcell`).

Physics sanity: the declared objects rest where the scene file says; franky (the SDK a real
Franka is driven with) grasps, lifts, carries and places a cube, judged from franky-sim's own
ground truth; skillstack's Panda kinematics agree with franky-sim's FR3; stopping the
workcell frees its address and drops a connected client. Skipped where franky-sim (or, for
the SDK tests, franky) is not installed.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from skillstack.robot.scene import SceneObject, load_scene

REPO = Path(__file__).resolve().parents[1]
WORKCELL = REPO / "assets" / "scenes" / "workcell.yaml"
HOST = "127.0.0.3"  # loopback address of these tests (other suites use 127.0.0.1 and .2)
DOWN = np.array([0.0, 1.0, 0.0, 0.0])  # ee (= hand) frame pointing down, fingers along world y
REST_TOL = 3e-3  # m, declared vs simulated resting position
FK_TOL = 5e-3  # m, skillstack's Panda ee vs franky-sim's fingertip centre / libfranka's O_T_EE
# Measured (this file's first runs): skillstack's `ee` site lies 2.1 mm beyond franky-sim's
# fingertip-pad centre and 1.6 mm beyond libfranka's end effector (NE_T_EE = 0.1034 m),
# both along the tool axis, with identical orientation.
EE_BEYOND_FINGERTIPS = 2.1e-3  # m
SETTLE_TOL = 3e-3  # rad: franky-sim's joint PD holds targets within ~2 mrad


def _franky_sim():
    return pytest.importorskip(
        "franky_sim",
        reason="franky-sim is not installed: pip install franky-sim franky-control",
        exc_type=ImportError,
    )


def _franky():
    _franky_sim()
    return pytest.importorskip(
        "franky", reason="franky is not installed: pip install franky-control", exc_type=ImportError
    )


def _scene_with_a_cup():
    """The workcell scene with a cup of 12 particles added (for the contents queries)."""
    cup = SceneObject(
        name="cup",
        kind="cup",
        size=(0.07, 0.09),
        position=(0.62, 0.0, 0.0),
        mass=0.15,
        contents=12,
    )
    return load_scene(WORKCELL).with_object(cup)


def _above(position, dz: float) -> np.ndarray:
    return np.asarray(position, dtype=float) + np.array([0.0, 0.0, dz])


def _wait_sim_time(cell, seconds: float, timeout: float = 10.0) -> None:
    start, t0 = cell.sim_time, time.monotonic()
    while cell.sim_time - start < seconds:
        assert time.monotonic() - t0 < timeout, "franky-sim's loop is not advancing"
        time.sleep(0.02)


def test_workcell_scene_is_valid_and_within_easy_reach():
    scene = load_scene(WORKCELL)
    assert {"red_cube", "blue_cube", "green_cube", "plate", "bowl"} <= set(scene.names)
    for obj in scene.objects:
        assert 0.35 <= obj.position[0] <= 0.6 and abs(obj.position[1]) <= 0.3, obj.name
    red = scene.object("red_cube")
    assert red.kind == "box" and red.size == (0.05, 0.05, 0.05) and red.color_name == "red"


def test_objects_rest_where_declared_and_stop_frees_the_host():
    _franky_sim()
    from skillstack.hw.sim.franky_workcell import FrankySimWorkcell

    scene = _scene_with_a_cup()
    with FrankySimWorkcell(scene, host=HOST) as cell:
        # Built by skillstack's own object builder: same names, sizes, masses.
        m = cell.model
        assert np.allclose(m.geom("red_cube").size, 0.025)
        assert m.body("plate").mass[0] == pytest.approx(scene.object("plate").mass)
        assert m.geom("bowl_floor") is not None and m.geom("cup_wall0") is not None
        # The address is taken while it runs.
        with pytest.raises(OSError, match=HOST):
            FrankySimWorkcell(scene, host=HOST).start()

        _wait_sim_time(cell, 0.5)
        poses = cell.object_poses()
        assert set(poses) == set(scene.names)
        for obj in scene.objects:
            pose = cell.object_pose(obj.name)
            err = np.linalg.norm(pose.position - np.array(obj.center()))
            assert err < REST_TOL, f"{obj.name} rests {err * 1e3:.1f} mm from its declared place"
            assert abs(pose.quat[0]) == pytest.approx(math.cos(obj.yaw / 2), abs=1e-3)
        with pytest.raises(KeyError, match="red_cube"):
            cell.object_pose("no_such_thing")
        assert np.allclose(cell.joint_positions(), cell.initial_q, atol=5e-3)
        assert cell.gripper_width() == pytest.approx(0.04, abs=2e-3)

        beads = cell.particle_positions()
        cup = scene.object("cup")
        assert beads.shape == (cup.contents, 3)
        radial = np.linalg.norm(beads[:, :2] - np.array(cup.position[:2]), axis=1)
        assert radial.max() < cup.size[0] / 2 and beads[:, 2].min() > 0.012  # on the cup floor

        # Faults while it runs: a person moves the cup (its contents come along) and takes
        # the blue cube away.
        cell.move_object("cup", (0.62, 0.05))
        cell.remove_object("blue_cube")
        _wait_sim_time(cell, 0.2)
        assert np.allclose(cell.object_pose("cup").position[:2], (0.62, 0.05), atol=2e-3)
        moved = cell.particle_positions()
        assert np.abs(moved[:, 1] - beads[:, 1] - 0.05).max() < 5e-3
        with pytest.raises(KeyError, match="blue_cube"):
            cell.object_pose("blue_cube")
        assert "blue_cube" not in cell.object_poses()
        rtf = cell.real_time_factor()
    cell.stop()  # a second stop is harmless
    assert not cell.running and rtf > 0.3
    assert cell.object_pose("cup") is not None  # the last state stays readable

    # The host is free again; this workcell lacks the red cube the scene declares.
    with FrankySimWorkcell(load_scene(WORKCELL), host=HOST, omit={"red_cube"}) as again:
        assert "red_cube" not in again.object_poses()
        with pytest.raises(KeyError, match="omitted"):
            again.object_pose("red_cube")


def test_franky_grasps_carries_and_places_a_cube_and_kinematics_agree():
    franky = _franky()
    from skillstack.hw.drivers.base import caller_scheduling_kept
    from skillstack.hw.drivers.franka import capabilities
    from skillstack.hw.sim.franky_workcell import FrankySimWorkcell
    from skillstack.robot.arms import get_arm
    from skillstack.robot.ik_solve import solve_ik
    from skillstack.robot.kinematics import KinematicModel
    from skillstack.robot.types import Pose

    scene = load_scene(WORKCELL)
    kin = KinematicModel(get_arm("panda"))  # the FR3 shares the Panda's kinematic parameters
    caps = capabilities("fr3")  # FR3 joint limits for the IK

    with FrankySimWorkcell(scene, host=HOST) as cell:
        with caller_scheduling_kept():  # libfranka would leave this process at SCHED_FIFO 99
            robot = franky.Robot(cell.host, realtime_config=franky.RealtimeConfig.Ignore)
            gripper = franky.Gripper(cell.host)
        robot.relative_dynamics_factor = 1.0

        def ik(xyz, seed):
            q = solve_ik(kin, caps, Pose(np.asarray(xyz, dtype=float), DOWN), [seed])
            assert q is not None, f"no IK solution for {xyz}"
            return q

        def go(q_target):
            robot.move(franky.JointMotion(franky.JointState(list(q_target))))
            deadline = time.monotonic() + 3.0
            while np.abs(cell.joint_positions() - q_target).max() > SETTLE_TOL:
                assert time.monotonic() < deadline, "the arm did not settle at its target"
                time.sleep(0.01)
            return q_target

        red = np.array(scene.object("red_cube").center())
        gripper.move(0.07, 0.05)
        q = go(ik(_above(red, 0.12), cell.joint_positions()))
        time.sleep(0.2)

        # skillstack's FK at franky-sim's measured q vs franky-sim's own fingertip centre and
        # libfranka's reported end effector pose.
        kin.update(cell.joint_positions())
        ee, rot = kin.ee_position.copy(), kin.ee_rotation.reshape(3, 3).copy()
        offset = rot.T @ (ee - cell.fingertip_centre())  # in the ee frame
        assert np.linalg.norm(offset) < FK_TOL, offset
        assert offset[2] == pytest.approx(EE_BEYOND_FINGERTIPS, abs=0.5e-3), offset
        o_t_ee = np.array(robot.current_pose.end_effector_pose.translation)
        assert np.linalg.norm(ee - o_t_ee) < FK_TOL
        x, y, z, w = robot.current_pose.end_effector_pose.quaternion  # franky: x, y, z, w
        assert abs(np.dot([w, x, y, z], kin.ee_pose().quat)) == pytest.approx(1.0, abs=1e-4)

        # Grasp: franky-sim's fingers servo to the commanded width (1000 N/m per finger,
        # capped at `force`), so a width below the cube's squeezes it: 5 N per finger here.
        q = go(ik(red, q))
        assert gripper.grasp(0.04, 0.05, 40.0, epsilon_inner=0.04, epsilon_outer=0.04)
        width = cell.gripper_width()
        assert 0.045 < width < 0.052, f"fingers closed to {width * 1e3:.1f} mm on a 50 mm cube"
        assert gripper.width == pytest.approx(width, abs=2e-3)

        q = go(ik(_above(red, 0.10), q))
        cube = cell.object_pose("red_cube").position
        assert cube[2] - red[2] > 0.09, "the cube was not lifted with the hand"
        held = cube - cell.fingertip_centre()
        assert np.linalg.norm(held) < 0.01, f"the cube is {held} from the fingertip centre"

        plate = scene.object("plate")
        place = _above(plate.position, plate.height() + 0.025 + 0.004)
        q = go(ik(_above(place, 0.10), q))
        held = cell.object_pose("red_cube").position - cell.fingertip_centre()
        assert np.linalg.norm(held) < 0.01, "the cube slipped while carried"
        q = go(ik(place, q))
        gripper.move(0.07, 0.05)
        q = go(ik(_above(place, 0.10), q))
        _wait_sim_time(cell, 0.3)

        cube = cell.object_pose("red_cube")
        on_plate = plate.position[2] + plate.height() + 0.025
        assert cube.position[2] == pytest.approx(on_plate, abs=REST_TOL), cube.position
        assert np.linalg.norm(cube.position[:2] - np.array(plate.position[:2])) < 0.02
        assert np.linalg.norm(cell.object_pose("plate").position[:2] - plate.position[:2]) < 5e-3

        # A dropped connection mid-motion: stopping the workcell makes franky raise.
        turn = q + np.array([0.4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
        robot.move(franky.JointMotion(franky.JointState(list(turn))), asynchronous=True)
        time.sleep(0.2)
        cell.stop()
        t0 = time.monotonic()
        with pytest.raises(franky.Exception):
            robot.join_motion()
        assert time.monotonic() - t0 < 3.0


def test_cli_finds_bundled_scenes_by_name():
    from skillstack.robot.scene.bundled import bundled_scene_names, find_scene

    assert find_scene("workcell") == WORKCELL
    assert find_scene(str(WORKCELL)) == WORKCELL
    assert {"blocks", "pour", "workcell"} <= set(bundled_scene_names())
    with pytest.raises(FileNotFoundError, match=r"bundled scenes: .*workcell"):
        find_scene("no_such_scene")


def test_cli_bad_input_exits_2_with_one_line(monkeypatch, tmp_path):
    from skillstack.planners.cli import app

    runner = CliRunner()
    bad = tmp_path / "bad.yaml"
    bad.write_text("objects:\n  - {name: x, kind: spaceship, size: [0.1], pose: [0.5, 0]}\n")
    for args in (["--scene", "no_such_scene"], ["--scene", str(bad)]):
        result = runner.invoke(app, ["hw", "franky-sim", *args, "--host", HOST])
        assert result.exit_code == 2, result.output
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr

    import skillstack.hw.sim.franky_workcell as workcell

    monkeypatch.setattr(workcell, "franky_sim_available", lambda: False)
    result = runner.invoke(app, ["hw", "franky-sim", "--scene", "workcell"])
    assert result.exit_code == 2
    assert "pip install franky-sim franky-control" in result.stderr


def test_cli_serves_until_interrupted():
    _franky_sim()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skillstack",
            "hw",
            "franky-sim",
            "--scene=workcell",
            f"--host={HOST}",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = []
        deadline = time.monotonic() + 60
        while not any(ln.startswith(f"connect to {HOST}") for ln in lines):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
            lines.append(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        out, errors = proc.communicate(timeout=30)
        assert proc.returncode == 0, errors
        assert "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
