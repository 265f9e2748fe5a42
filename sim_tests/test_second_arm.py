"""The second arm, the UFACTORY xArm 6 with its linkage gripper: model, kinematics, skills, CLI.

The same Cartesian skills that run on the Panda run here unchanged; these tests check that
the arm description (`robot.arms.xarm6`) gives them what they rely on.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from run_cli import json_error

from skillstack.hw.conformance import CHECKS, run_conformance
from skillstack.hw.sim.mujoco.robot import MujocoRobot
from skillstack.robot.arms import ARMS, get_arm, xarm6
from skillstack.robot.ik_solve import solve_ik
from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.scene import default_scene
from skillstack.robot.types import GripperCommand
from skillstack.skills.episodes import episode_setup
from skillstack.skills.executor import execute
from skillstack.skills.registry import get_skill


@pytest.fixture(scope="module")
def arm():
    return get_arm("xarm6")


def test_registered_with_vendor_limits(arm):
    caps = arm.capabilities
    assert "xarm6" in ARMS and caps.dof == 6 and len(arm.home_q) == 6
    assert caps.control_rate_hz == 250.0  # UFACTORY's servo-mode maximum
    assert np.allclose(caps.velocity_limit, np.pi)  # 180 deg/s
    assert caps.gripper.max_width == pytest.approx(0.086)
    assert "joint_torque" not in caps.command_modes  # the SDK has no torque command


def test_home_points_the_gripper_down_over_the_table(arm):
    kin = KinematicModel(arm)
    pose = kin.ee_pose()
    x, y, z = pose.position
    assert 0.25 < x < 0.4 and abs(y) < 1e-3 and 0.3 < z < 0.5
    approach = np.reshape(kin.ee_rotation, (3, 3))[:, 2]  # the site's z axis, out of the hand
    assert approach @ [0.0, 0.0, -1.0] > 0.9999


def test_ik_round_trip(arm):
    kin = KinematicModel(arm)
    caps = arm.capabilities
    rng = np.random.default_rng(0)
    for _ in range(5):
        q = arm.home_q + rng.uniform(-0.4, 0.4, caps.dof)
        kin.update(q)
        pose = kin.ee_pose()
        solved = solve_ik(kin, caps, pose, [arm.home_q])
        assert solved is not None
        kin.update(solved)
        assert np.linalg.norm(kin.ee_position - pose.position) < 1e-3
        # The Jacobian has full rank away from singularities: a 6-DoF arm has no redundancy.
        assert np.linalg.matrix_rank(kin.ee_jacobian()) == 6


def test_linkage_maps_angle_to_opening_and_back():
    for angle in np.linspace(0.0, 0.85, 9):
        assert xarm6.finger_angle(xarm6.finger_opening(angle)) == pytest.approx(angle, abs=1e-6)
    assert 2 * xarm6.finger_opening(0.0) == pytest.approx(0.088, abs=0.002)  # 86 mm stroke
    assert xarm6.finger_opening(0.85) < 0.001  # closed: the pads meet


def test_gripper_opens_and_closes_in_simulation(arm):
    with MujocoRobot(default_scene(), arm=arm) as robot:
        assert robot.read().gripper_width == pytest.approx(0.086, abs=1e-3)
        robot.gripper(GripperCommand(width=0.04, force=20.0))
        for _ in range(500):
            robot.wait_for_tick()
        state = robot.read()
        assert state.gripper_width == pytest.approx(0.04, abs=1e-3)
        # The five mimic joints follow the drive: the fingers stay parallel.
        m, d = robot.model, robot.data
        angles = [d.qpos[m.joint(n).qposadr[0]] for n in (xarm6.DRIVE_JOINT, *xarm6.MIMIC_JOINTS)]
        assert np.ptp(angles) < 1e-3
        # The ee site sits between the pads.
        pads = [d.geom_xpos[m.geom(g).id] for g in arm.pad_geoms]
        assert np.linalg.norm(np.mean(pads, axis=0) - robot.ee_pose().position) < 0.005


@pytest.mark.parametrize("skill, seed", [("grasp", 0), ("place", 1)])
def test_scripted_skills_succeed_unchanged(skill, seed):
    """Place episodes start with a grasp, so this runs grasp twice and place once."""
    scene, setup, params = episode_setup(skill, seed)
    with MujocoRobot(scene, arm="xarm6") as robot:
        for name, p in setup:
            assert execute(get_skill(name), p, robot).success
        result = execute(get_skill(skill), params, robot)
        assert result.success, result.message
        if skill == "grasp":
            assert robot.object_pose(params["object"]).position[2] > 0.08  # lifted


def test_passes_the_hal_conformance_suite():
    """What `skillstack hw check --arm xarm6` runs: the same suite a real arm must pass."""
    with MujocoRobot(default_scene(), arm="xarm6") as robot:
        results = run_conformance(robot, log=lambda line: None)
    assert [r.name for r in results] == list(CHECKS)
    assert [r.name for r in results if not r.passed] == []


def test_unknown_arm_is_a_clear_error_and_nothing_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "skillstack", "do", "home", "--arm", "ur5", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == 2
    assert json_error(proc) == "unknown arm 'ur5'; available arms: panda, xarm6"
    assert proc.stderr.strip() == "error: unknown arm 'ur5'; available arms: panda, xarm6"
