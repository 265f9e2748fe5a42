"""The MuJoCo backend behind the `Robot` interface: lifetime, state, modes, gripper, safety."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from skillstack.hw.robot import DeviceNotConnectedError, RobotError
from skillstack.hw.sim.mujoco.robot import MujocoRobot, SimulationDiverged
from skillstack.robot.scene import Scene, SceneObject, Table
from skillstack.robot.types import GripperCommand, JointCommand

HOLD_DRIFT_TOL = 1e-4  # rad, gravity-compensated servo holding still for a second


def cube_scene() -> Scene:
    return Scene(Table(), (SceneObject("cube", "box", (0.05, 0.05, 0.05), (0.5, 0.0, 0.0)),))


@pytest.fixture
def robot():
    with MujocoRobot(cube_scene()) as r:
        yield r


def tick(robot: MujocoRobot, cmd_values=None, mode="joint_position", n=1):
    for _ in range(n):
        state = robot.read()
        values = state.q if cmd_values is None else cmd_values
        sent = robot.command(JointCommand(mode, np.asarray(values, dtype=float), state.time))
        robot.wait_for_tick()
    return sent


def test_capabilities_declared_before_connect():
    r = MujocoRobot(cube_scene())
    caps = r.capabilities
    assert caps.dof == 7 and caps.control_rate_hz == 1000.0
    assert set(caps.command_modes) == {"joint_position", "joint_velocity", "joint_torque"}
    assert caps.gripper is not None and caps.gripper.max_width == pytest.approx(0.08)
    assert not r.connected


def test_commands_before_connect_are_refused():
    r = MujocoRobot(cube_scene())
    with pytest.raises(DeviceNotConnectedError, match="connect"):
        r.command(JointCommand("joint_position", np.zeros(7)))


def test_context_manager_connects_and_disconnects():
    r = MujocoRobot(cube_scene())
    with r:
        assert r.connected
    assert not r.connected
    r.disconnect()  # twice is harmless


def test_state_shapes_time_and_gripper(robot):
    s0 = robot.read()
    assert s0.q.shape == s0.dq.shape == s0.tau.shape == (7,)
    assert s0.gripper_width == pytest.approx(0.08, abs=1e-6)
    tick(robot, n=10)
    s1 = robot.read()
    assert s1.time == pytest.approx(s0.time + 10 * robot.capabilities.control_dt)
    assert s1.q is not s0.q  # states are snapshots, not views into the simulator


def test_holds_home_without_drift(robot):
    home = robot.arm.home_q
    tick(robot, home, n=1000)
    assert np.abs(robot.read().q - home).max() < HOLD_DRIFT_TOL


def test_joint_velocity_mode_moves_at_the_commanded_rate(robot):
    q0 = robot.read().q
    v = np.zeros(7)
    v[0] = 0.2  # rad/s
    tick(robot, v, mode="joint_velocity", n=500)
    moved = robot.read().q[0] - q0[0]
    assert moved == pytest.approx(0.1, rel=0.05)


def test_joint_torque_mode_applies_and_clips_torque(robot):
    tau = np.zeros(7)
    tau[0] = 5.0
    tick(robot, tau, mode="joint_torque", n=40)
    assert robot.read().dq[0] > 0.1  # the base joint accelerated in the commanded direction
    # (slow enough still that one tick at 87 N m keeps it well under its speed limit)
    assert robot.read().dq[0] < 0.5 * robot.capabilities.velocity_limit[0]
    tau[0] = 500.0  # far beyond the 87 N m limit
    sent = tick(robot, tau, mode="joint_torque")
    assert sent.values[0] == pytest.approx(87.0)
    assert robot.safety.last_verdict == "clipped"


def test_switching_back_from_torque_resumes_servoing(robot):
    tick(robot, np.zeros(7), mode="joint_torque", n=100)
    q = robot.read().q
    tick(robot, q, n=500)
    assert np.abs(robot.read().dq).max() < 1e-2


def test_unsupported_mode_is_refused_by_the_hal(robot):
    with pytest.raises(RobotError, match="supported modes"):
        robot.command(JointCommand("cartesian_pose", np.zeros(7)))  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_targets_never_reach_the_simulator(robot, bad):
    q = robot.read().q.copy()
    target = q.copy()
    target[3] = bad
    tick(robot, target, n=50)
    assert np.isfinite(robot.data.ctrl).all()
    assert np.abs(robot.read().q - q).max() < 1e-3
    assert robot.safety.counts.get("non_finite") == 50


def test_joint_target_beyond_limits_is_clipped(robot):
    caps = robot.capabilities
    target = robot.read().q.copy()
    target[0] = caps.joint_upper[0] + 0.5
    for _ in range(3000):
        tick(robot, target)
    q = robot.read().q
    assert q[0] <= caps.joint_upper[0] + 1e-3
    assert (
        np.abs(
            robot.data.ctrl[:7] - np.clip(robot.data.ctrl[:7], caps.joint_lower, caps.joint_upper)
        ).max()
        == 0.0
    )


def test_gripper_opens_closes_and_clips(robot):
    robot.gripper(GripperCommand(width=0.0, force=20.0))
    tick(robot, n=1000)  # 8 cm at the default 0.1 m/s takes 0.8 s
    assert robot.read().gripper_width < 0.002
    sent = robot.gripper(GripperCommand(width=0.5, force=500.0, speed=5.0))
    assert sent.width == pytest.approx(0.08) and sent.force == pytest.approx(70.0)
    assert sent.speed == pytest.approx(0.1)
    tick(robot, n=1000)
    assert robot.read().gripper_width == pytest.approx(0.08, abs=1e-3)
    with pytest.raises(RobotError, match="NaN"):
        robot.gripper(GripperCommand(width=float("nan")))


def test_estop_latches_until_reset(robot):
    q = robot.read().q
    robot.estop("test")
    target = q.copy()
    target[0] += 0.001
    for _ in range(100):
        sent = tick(robot, target)
        assert np.array_equal(sent.values, q)
    robot.reset_estop()
    sent = tick(robot, target)
    assert sent.values[0] > q[0]


def _moving(robot: MujocoRobot, speed: float = 0.4) -> np.ndarray:
    """Ramp joints 1, 2 and 4 up to ``speed`` (joint 1) and return the last target."""
    q0 = robot.read().q
    direction = np.array([1.0, 0.4, 0.0, 0.4, 0.0, 0.0, 0.0])
    for k in range(1, 301):
        t = k * robot.capabilities.control_dt
        travel = speed * (t * t / 0.2 if t < 0.1 else t - 0.05)
        target = q0 + direction * travel
        tick(robot, target)
    assert robot.read().dq[0] > 0.9 * speed
    return target


def test_a_stop_brakes_the_arm_to_rest_within_20_ms_and_holds_it_there(robot):
    """The e-stop (and the server's protective stop) brakes at the drives: joint 1 at
    0.4 rad/s is at rest within 20 ms, decelerating within twice its planning limit and
    within the torque limits, and then stays where it stopped (no spring-back)."""
    target = _moving(robot)
    caps = robot.capabilities
    robot.estop("test")
    assert robot.braking
    dq_prev, t0, rested_at = robot.read().dq, robot.read().time, None
    for _ in range(40):
        tick(robot, target + 0.1)  # commands during the brake are ignored
        state = robot.read()
        decel = np.abs(state.dq - dq_prev) / caps.control_dt
        assert (decel <= 2.0 * caps.acceleration_limit * 1.05).all()
        assert (np.abs(state.tau) <= caps.torque_limit + 1e-9).all()
        dq_prev = state.dq
        if rested_at is None and np.abs(state.dq).max() < 0.02:
            rested_at = state.time - t0
    assert rested_at is not None and rested_at <= 0.020
    assert not robot.braking
    rest = robot.read().q
    np.testing.assert_allclose(robot.safety.q_prev, rest, atol=1e-4)  # re-armed where it rests
    tick(robot, target + 0.1, n=300)  # still latched: held where it came to rest
    assert np.abs(robot.read().q - rest).max() < 1e-3
    assert np.abs(robot.read().dq).max() < 0.02


def test_divergence_is_detected_not_silently_reset(robot):
    tick(robot, n=5)
    cube_dof = robot.model.joint("cube_joint").dofadr[0]
    robot.data.qvel[cube_dof] = np.nan
    with pytest.raises(SimulationDiverged, match="diverged"):
        tick(robot)
    robot.reset()  # an explicit reset recovers
    tick(robot, n=10)
    assert np.isfinite(robot.data.qpos).all()


def test_control_rate_must_divide_into_physics_steps():
    assert MujocoRobot(cube_scene(), control_rate_hz=500).substeps == 2
    with pytest.raises(ValueError, match="whole number"):
        MujocoRobot(cube_scene(), control_rate_hz=300)


def test_physics_options_for_grasping(robot):
    m = robot.model
    assert m.opt.timestep == pytest.approx(0.001)
    assert m.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC
    assert m.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_AUTORESET


def test_same_commands_give_the_same_trajectory():
    def run():
        with MujocoRobot(cube_scene()) as r:
            target = r.arm.home_q + 0.2
            for _ in range(300):
                tick(r, target)
            return r.data.qpos.copy()

    assert np.array_equal(run(), run())
