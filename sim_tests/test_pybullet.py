"""The PyBullet backend: the Robot interface, ground truth, cameras, videos and skill parity.

Every test runs real PyBullet physics (DIRECT clients, no GUI); the skill tests run the very
skills MuJoCo runs, through `skills.executor.execute`, unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import pybullet as pb
import pytest

from skillstack.hw.robot import DeviceNotConnectedError
from skillstack.hw.sim.backends import BACKENDS, make_sim
from skillstack.hw.sim.divergence import SimulationDiverged
from skillstack.hw.sim.pybullet.robot import PybulletRobot
from skillstack.hw.sim.truth import SimTruth
from skillstack.robot.scene import Scene, SceneObject, Table, default_scene
from skillstack.robot.types import GripperCommand, JointCommand
from skillstack.skills.bench import run_episode
from skillstack.skills.executor import execute
from skillstack.skills.registry import get_skill
from skillstack.skills.world import observe

CENTROID_TOL = 0.003  # m, back-projected top face vs true object centre
SURFACE_TOL = 0.003  # m, every back-projected object pixel vs the object's box


def _cube_scene() -> Scene:
    cube = SceneObject("cube", "box", (0.05, 0.05, 0.05), (0.5, 0.05, 0.0), color=(1, 0, 0, 1))
    return Scene(Table(), (cube,), name="one cube")


def test_unknown_backend_names_the_choices():
    with pytest.raises(ValueError, match="available: mujoco, pybullet"):
        make_sim("gazebo")
    assert BACKENDS == ("mujoco", "pybullet")


def test_both_backends_answer_the_ground_truth_interface_alike():
    scene = default_scene()
    with make_sim("mujoco", scene) as mj, make_sim("pybullet", scene) as bt:
        assert isinstance(mj, SimTruth) and isinstance(bt, SimTruth)
        np.testing.assert_allclose(bt.ee_pose().position, mj.ee_pose().position, atol=1e-6)
        for name in scene.names:
            np.testing.assert_allclose(
                bt.object_pose(name).position, mj.object_pose(name).position, atol=2e-3
            )
        assert len(bt.particle_positions()) == len(mj.particle_positions()) == 20
        a, b = observe(mj), observe(bt)
        assert a.predicates == b.predicates  # same facts: on_table, clear, contains(cup, 20)
        assert bt.arm_contacts() == [] and bt.pad_contacts() == {}


def test_two_robots_coexist_in_one_process_each_with_its_own_client():
    with PybulletRobot(_cube_scene()) as a, PybulletRobot(_cube_scene()) as b:
        assert a.client != b.client
        q = a.read().q + np.array([0.2, 0, 0, 0, 0, 0, 0])
        for _ in range(600):
            a.command(JointCommand("joint_position", q, a.read().time))
            a.wait_for_tick()
        assert a.read().q[0] > 0.15
        assert abs(b.read().q[0]) < 1e-6 and b.sim_time == 0.0


def test_command_modes_gripper_speed_and_reset():
    with PybulletRobot(_cube_scene()) as robot:
        home = robot.read().q.copy()
        # Torque mode with zero torque: gravity is compensated, the arm stays put.
        for _ in range(300):
            robot.command(JointCommand("joint_torque", np.zeros(7), robot.read().time))
            robot.wait_for_tick()
        assert np.abs(robot.read().q - home).max() < 0.02
        # Velocity mode: joint 1 turns at the commanded rate.
        for _ in range(500):
            robot.command(JointCommand("joint_velocity", np.r_[0.2, np.zeros(6)], robot.sim_time))
            robot.wait_for_tick()
        state = robot.read()
        assert state.q[0] - home[0] == pytest.approx(0.1, abs=0.01)
        # The gripper closes no faster than its commanded speed.
        robot.gripper(GripperCommand(width=0.0, force=20.0, speed=0.05))
        w0 = robot.read().gripper_width
        for _ in range(200):
            robot.wait_for_tick()
        closed = w0 - robot.read().gripper_width
        assert 0.005 < closed <= 0.05 * 0.2 + 1e-3
        robot.reset()
        assert robot.sim_time == 0.0 and np.abs(robot.read().q - home).max() < 1e-9
        assert robot.read().gripper_width == pytest.approx(0.08)


def test_the_pybullet_backend_passes_the_hal_conformance_suite():
    from skillstack.hw.conformance import run_conformance

    with PybulletRobot(_cube_scene()) as robot:
        results = run_conformance(robot, log=lambda line: None)
    assert results and all(r.passed and not r.skipped for r in results), [
        (r.name, r.detail) for r in results if not r.passed
    ]


def test_divergence_is_reported_not_hidden():
    with PybulletRobot(_cube_scene()) as robot:
        pb.resetJointState(robot.built.arm, 0, 0.0, 1e4, physicsClientId=robot.client)
        with pytest.raises(SimulationDiverged, match="reset"):
            robot.wait_for_tick()
    with pytest.raises(DeviceNotConnectedError):
        robot.read()


def test_clearance_matches_mujoco_and_leaves_the_arm_alone():
    from skillstack.robot.ik_solve import solve_ik
    from skillstack.robot.kinematics import KinematicModel
    from skillstack.robot.types import Pose

    scene = _cube_scene()
    with make_sim("mujoco", scene) as mj, PybulletRobot(scene) as robot:
        kin = KinematicModel(robot.arm)
        kin.update(robot.arm.home_q)
        down = kin.ee_pose().quat
        before = robot.read().q.copy()
        assert robot.clearance(robot.arm.home_q) == pytest.approx(0.1)  # nothing within 10 cm
        for z in (0.04, 0.0):  # fingertips 4 cm above the table, then in it
            pose = Pose(np.array([0.35, -0.15, z]), down)
            q = solve_ik(kin, robot.capabilities, pose, [robot.arm.home_q])
            assert robot.clearance(q) == pytest.approx(mj.clearance(q), abs=1e-3)
        assert robot.clearance(q) < 0.0
        assert robot.clearance(q, ignore={"cube"}) < 0.0  # the table is never ignored
        assert np.array_equal(robot.read().q, before)


@pytest.mark.parametrize("camera", ["scene", "wrist"])
def test_depth_back_projects_onto_the_object(camera):
    with PybulletRobot(_cube_scene()) as robot:
        if camera == "wrist":  # look down at the cube from 25 cm above it
            q = get_skill("move_to")
            assert execute(q, {"position": [0.45, 0.05, 0.3]}, robot).success
        frame = robot.capture(camera)
        assert frame.rgb.dtype == np.uint8 and frame.rgb.shape == (*frame.depth.shape, 3)
        mask = frame.meta["segmentation"] == frame.meta["object_ids"]["cube"]
        assert mask.sum() > 200
        pts = frame.points_world(mask)
        centre = robot.object_pose("cube").position
        # Every pixel of the cube lands on the cube's surface...
        outside = np.clip(np.abs(pts - centre) - 0.025, 0.0, None)
        assert np.linalg.norm(outside, axis=1).max() < SURFACE_TOL
        # ... and its top face is centred on the cube.
        top = pts[pts[:, 2] > centre[2] + 0.025 - 0.002]
        assert np.linalg.norm(top[:, :2].mean(axis=0) - centre[:2]) < CENTROID_TOL
        if camera == "wrist":  # the wrist camera moved with the hand
            ee = robot.ee_pose().position
            assert np.linalg.norm(frame.T_world_camera[:3, 3] - ee) < 0.12


def test_video_is_written_with_the_caption(tmp_path):
    from skillstack.hw.sim.pybullet.camera import PybulletVideoRecorder

    path = tmp_path / "clip.mp4"
    with PybulletRobot(_cube_scene()) as robot:
        robot.recorder = rec = PybulletVideoRecorder(
            path, robot.client, fps=10, width=160, height=120
        )
        plain = rec.capture_frame()
        rec.set_caption("grasp(object=cube)")
        for _ in range(300):
            robot.wait_for_tick()
        captioned = rec.capture_frame()
        assert rec.frame_count >= 4
    assert path.stat().st_size > 1000
    assert np.abs(captioned[:30].astype(int) - plain[:30].astype(int)).max() > 100


def test_skills_run_unchanged_in_pybullet():
    with PybulletRobot(default_scene()) as robot:
        grasp = execute(get_skill("grasp"), {"object": "cube"}, robot)
        assert grasp.success, grasp.message
        assert observe(robot).held == "cube"
        place = execute(get_skill("place"), {"object": "cube", "target": "bowl"}, robot)
        assert place.success, place.message
        world = observe(robot)
        assert world.holds("in", "cube", "bowl") and world.held is None


def test_same_seed_same_outcome_in_both_backends():
    outcomes = {b: run_episode("push", 7, backend=b) for b in BACKENDS}
    assert all(e.success for e in outcomes.values()), {b: e.message for b, e in outcomes.items()}
    mj, bt = (outcomes[b].metrics["distance_error_m"] for b in BACKENDS)
    assert math.isfinite(mj) and abs(mj - bt) < 0.01
