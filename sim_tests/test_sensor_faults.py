"""Sensor health under injected faults, on a real MuJoCo arm: stale, NaN and stuck readings
end the skill with `Failure.SENSOR_FAULT` and a held arm, a physics blow-up is caught on its
first tick, and a cube slipping out of the hand is reported within 50 ms of leaving it."""

from __future__ import annotations

import numpy as np
import pytest

from skillstack.hw.sim.mujoco.robot import MujocoRobot
from skillstack.robot.sensors import HOLD_AFTER, STOP_AFTER, SensorMonitor
from skillstack.robot.types import RobotState
from skillstack.skills import fault_bench_sensors as bench
from skillstack.skills.base import Failure
from skillstack.skills.executor import execute
from skillstack.skills.registry import get_skill


@pytest.mark.parametrize("kind", ["frozen", "nan"])
def test_a_stale_or_nan_reading_holds_the_arm_and_ends_the_skill(kind):
    run = bench.reading_fault_run(kind, seed=1)
    assert not run.result.success
    assert run.result.failure == Failure.SENSOR_FAULT, run.result.message
    assert "\n" not in run.result.message and "sensor fault" in run.result.message
    assert run.hold_ticks <= HOLD_AFTER  # the program's command froze at once
    assert run.fault_ticks == STOP_AFTER  # and the skill ended after 20 bad readings
    assert run.fault_ms <= STOP_AFTER + 1  # ms of simulator time (1 kHz), not a 14.7 s timeout
    assert run.rest_speed < bench.REST_SPEED  # the arm stays where it was held


def test_a_stuck_joint_reading_does_not_let_the_skill_succeed():
    run = bench.reading_fault_run("stuck", seed=0)
    assert not run.result.success
    assert run.result.failure == Failure.SENSOR_FAULT, run.result.message
    assert "stuck" in run.result.message
    assert run.fault_ms <= bench.STUCK_LIMIT_MS
    assert run.rest_speed < bench.REST_SPEED


def test_a_driver_repeating_its_reading_under_a_fresh_timestamp_is_stopped():
    run = bench.reading_fault_run("repeated", seed=2)
    assert run.result.failure == Failure.SENSOR_FAULT, run.result.message
    assert run.fault_ms <= bench.STUCK_LIMIT_MS
    assert run.rest_speed < bench.REST_SPEED


def test_a_50x_timestep_is_caught_on_the_first_tick_over_the_speed_bound():
    run = bench.timestep_run(seed=0)
    assert run.result.failure == Failure.SIM_DIVERGED, run.result.message
    assert run.ticks_over_bound == 0  # the tick that crossed the bound raised
    assert run.speed_at_detection < 10 * 2.61  # rad/s; it reached 4.8e5 before
    assert "joint" in run.result.message


def test_a_friction_loss_slip_is_reported_within_50_ms():
    run = bench.slip_run(seed=0)
    assert run.result.failure == Failure.OBJECT_SLIPPED, run.result.message
    assert run.from_onset_ms <= bench.SLIP_LIMIT_MS  # from the cube leaving (truth)
    assert run.from_loss_ms <= bench.SLIP_LIMIT_MS  # and from the grip losing its friction


def test_healthy_readings_pass_and_a_skill_still_succeeds():
    programs = []
    with MujocoRobot(bench.fault_scene()) as robot:
        result = execute(get_skill("grasp"), {"object": "cube"}, robot, on_program=programs.append)
        assert result.success, result.message
    # not one reading held the arm (the loop reads the first state twice: that is no fault)
    assert programs[0].sensors.bad_total == 0, programs[0].sensors.reason


@pytest.mark.parametrize("kind", ["frozen", "nan"])
def test_a_few_bad_readings_hold_the_arm_briefly_and_the_skill_goes_on(kind):
    with MujocoRobot(bench.fault_scene()) as robot:
        t = robot.read().time
        fault = bench.ReadingFault(robot, kind, t + 0.5, joint=1, until=t + 0.5 + 0.0055)
        result = execute(get_skill("move_to"), {"position": [0.45, -0.1, 0.3]}, robot)
        assert fault.onset is not None  # 5 bad readings (< STOP_AFTER), then good ones
        assert result.success, result.message


def _state(t: float, q: np.ndarray, dq: np.ndarray | None = None, qd=None) -> RobotState:
    n = len(q)
    dq = np.zeros(n) if dq is None else dq
    return RobotState(t, q.copy(), dq, np.zeros(n), 0.08, q_desired=qd)


def test_the_monitor_names_each_kind_of_bad_reading():
    with MujocoRobot(bench.fault_scene()) as robot:
        caps = robot.capabilities
        home = robot.arm.home_q.copy()
    monitor = SensorMonitor(caps, identical_is_stale=True)
    assert monitor.check(_state(0.000, home), home)
    assert not monitor.check(_state(0.000, home), home) and "timestamp" in monitor.reason
    assert monitor.check(_state(0.001, home), home)  # a real arm at rest may repeat itself
    moving = home + 1e-3  # but not while commanded to move
    assert not monitor.check(_state(0.002, home), moving) and "repeated" in monitor.reason
    fast = np.zeros(len(home))
    fast[2] = 4 * caps.velocity_limit[2]
    assert not monitor.check(_state(0.003, home, fast)) and "joint 3" in monitor.reason
    out = home.copy()
    out[0] = caps.joint_upper[0] + 0.5
    assert not monitor.check(_state(0.004, out)) and "outside its range" in monitor.reason
    assert monitor.hold and not monitor.stop
    assert monitor.check(_state(0.005, home + 1e-4), moving)
    assert monitor.bad_run == 0 and not monitor.hold
    for k in range(STOP_AFTER):  # joint 2 reads NaN: held, then stopped with one line
        q = home.copy()
        q[1] = np.nan
        assert not monitor.check(_state(0.006 + k * 1e-3, q), moving)
        assert monitor.hold == (k + 1 >= HOLD_AFTER) and monitor.stop == (k + 1 == STOP_AFTER)
    assert (
        monitor.fault.startswith("sensor fault: joint 2's position reads nan")
        and "\n" not in monitor.fault
    )
    # a simulator at rest may repeat itself exactly
    sim = SensorMonitor(caps)
    assert sim.check(_state(0.0, home)) and sim.check(_state(0.001, home))
