"""Closed-loop figures on the simulated Panda: accuracy, tracking, grasp stability, refusals.

Errors are measured on the simulator's ground-truth end effector, not the controller's model.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

from skillstack.hw.sim.mujoco.robot import MujocoRobot
from skillstack.hw.sim.tour import Mover, pick_and_shake, run_tour
from skillstack.robot.rotations import axis_angle_quat, quat_angle, quat_mul
from skillstack.robot.safety import SafetyConfig, Workspace
from skillstack.robot.scene import Scene, SceneObject, Table
from skillstack.robot.types import JointCommand

FINAL_POSITION_TOL = 0.002  # m, point-to-point moves must end this close
FINAL_ANGLE_TOL = np.radians(1.0)  # rad
TRACKING_TOL = 0.01  # m, during a 0.25 m/s move
SLIP_TOL_MM = 2.0  # mm, a gripped 5 cm cube shaken at 0.6 m/s


def scene() -> Scene:
    cube = SceneObject("cube", "box", (0.05, 0.05, 0.05), (0.5, 0.0, 0.0), mass=0.15)
    return Scene(Table(), (cube,))


def test_tour_ends_within_2mm_and_tracks_within_1cm():
    with MujocoRobot(scene()) as robot:
        legs = run_tour(robot, speed=0.25)
        for leg in legs:
            assert leg.tracking.final_position_error < FINAL_POSITION_TOL
            assert leg.tracking.final_angle_error < FINAL_ANGLE_TOL
            assert leg.tracking.max_position_error < TRACKING_TOL
        # The controller's report agrees with the simulator's ground truth.
        truth = robot.ee_pose().position
        assert np.linalg.norm(truth - np.array(legs[-1].target)) < FINAL_POSITION_TOL


@pytest.mark.parametrize(
    ("position", "rotation"),
    [
        ((0.45, 0.15, 0.25), ((0, 0, 1), np.radians(45))),  # yaw the gripper
        ((0.55, -0.10, 0.20), ((1, 0, 0), np.radians(20))),  # tilt it
        ((0.35, 0.25, 0.35), ((0, 1, 1), np.radians(30))),
    ],
)
def test_point_to_point_with_orientation_change(position, rotation):
    with MujocoRobot(scene()) as robot:
        mover = Mover(robot)
        goal_quat = quat_mul(mover.down, axis_angle_quat(*rotation))
        mover.move(position, quat=goal_quat)
        truth = robot.ee_pose()
        assert np.linalg.norm(truth.position - np.array(position)) < FINAL_POSITION_TOL
        assert quat_angle(truth.quat, goal_quat) < FINAL_ANGLE_TOL


def test_tracking_error_measured_against_ground_truth_during_motion():
    with MujocoRobot(scene()) as robot:
        mover = Mover(robot)
        worst = 0.0

        def watch(state, sent):
            nonlocal worst
            motion_target = mover_motion.sample.position
            worst = max(worst, float(np.linalg.norm(robot.ee_pose().position - motion_target)))

        from skillstack.robot.loop import ControlLoop
        from skillstack.robot.motion import CartesianMotion
        from skillstack.robot.types import Pose

        goal = Pose(np.array([0.45, -0.25, 0.15]), mover.down)
        mover_motion = CartesianMotion(
            mover.kin, robot.capabilities, [goal], robot.arm.home_q, max_linear_speed=0.25
        )
        ControlLoop(robot, on_tick=watch).run(mover_motion, max_seconds=10.0)
        assert mover_motion.done
        assert 0.0 < worst < TRACKING_TOL


def test_gripped_cube_does_not_slip_when_lifted_and_shaken():
    with MujocoRobot(scene()) as robot:
        result = pick_and_shake(robot, "cube", shakes=3)
    assert result.held and result.lifted
    assert result.gripper_width_mm == pytest.approx(50.0, abs=1.5)  # fingers on the 5 cm faces
    assert result.slip_mm < SLIP_TOL_MM


def test_target_below_the_table_is_refused_and_the_arm_stays_above_it():
    with MujocoRobot(scene()) as robot:
        mover = Mover(robot)
        mover.move((0.35, -0.2, -0.05), speed=0.2)  # 5 cm into the table
        z = robot.ee_pose().position[2]
        clearance = robot.safety.config.workspace.table_clearance
        assert z > clearance - 0.002
        assert robot.safety.counts.get("table", 0) > 0
        assert any(e.code == "table" for e in robot.safety.events)


def test_target_outside_the_workspace_box_is_refused():
    box = Workspace(lower=(0.2, -0.3, 0.0), upper=(0.6, 0.3, 0.6))
    with MujocoRobot(scene(), safety=SafetyConfig(workspace=box)) as robot:
        mover = Mover(robot)
        mover.move((0.7, 0.0, 0.3), speed=0.25)  # reachable, but 10 cm outside the box
        assert robot.ee_pose().position[0] < box.upper[0] + 0.01
        assert robot.safety.counts.get("workspace", 0) > 0


def test_same_seed_same_tour_bitwise():
    def run() -> np.ndarray:
        with MujocoRobot(scene()) as robot:
            run_tour(robot, waypoints=((0.5, 0.1, 0.3),))
            return robot.data.qpos.copy()

    assert np.array_equal(run(), run())


def test_hold_after_motion_keeps_still():
    with MujocoRobot(scene()) as robot:
        mover = Mover(robot)
        mover.move((0.5, 0.1, 0.25))
        before = robot.ee_pose().position
        mover.hold(0.5)
        assert np.linalg.norm(robot.ee_pose().position - before) < 1e-4
        state = robot.read()
        sent = robot.command(JointCommand("joint_position", state.q, state.time))
        assert robot.safety.last_verdict == "pass" and np.array_equal(sent.values, state.q)


class _Lagging:
    """A robot whose commands take effect ``lag`` seconds late (a loaded simulator, a slow
    bus): what follows a move must wait for the arm, not for the reference clock."""

    def __init__(self, robot: MujocoRobot, lag: float):
        self._robot = robot
        self._queue = collections.deque()
        self._delay = round(lag / robot.capabilities.control_dt)

    def __getattr__(self, name):
        return getattr(self._robot, name)

    def command(self, cmd: JointCommand):
        self._queue.append(cmd)
        late = self._queue[0] if len(self._queue) > self._delay else None
        if late is None:
            return cmd
        self._queue.popleft()
        # Re-stamped: the lag is in the arm, not in the controller's clock.
        return self._robot.command(JointCommand(late.mode, late.values, cmd.stamp))


def test_a_move_ends_where_it_was_sent_even_when_the_arm_lags_its_commands():
    with MujocoRobot(scene()) as robot:
        lagging = _Lagging(robot, lag=0.8)  # longer than the settle time after a move
        mover = Mover(lagging)
        leg = mover.move((0.45, -0.2, 0.2), speed=0.25)
        assert leg.tracking.final_position_error < FINAL_POSITION_TOL
        assert np.linalg.norm(robot.ee_pose().position - (0.45, -0.2, 0.2)) < FINAL_POSITION_TOL
