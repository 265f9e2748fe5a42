"""The HAL conformance suite: the MuJoCo backend passes it, and broken backends fail it."""

from __future__ import annotations

import dataclasses
import time

import pytest

from skillstack.hw.conformance import CHECKS, MAX_AMPLITUDE, CheckResult, run_conformance
from skillstack.hw.robot import RobotError
from skillstack.hw.sim.mujoco.robot import MujocoRobot
from skillstack.robot.scene import default_scene


class IgnoresCommands(MujocoRobot):
    """Accepts every command and sends none of them: the arm never moves."""

    def _send(self, cmd):
        pass


class FrozenClock(MujocoRobot):
    """Reads states whose time never advances."""

    def read(self):
        state = super().read()
        state.time = 0.0
        self._last_state = state
        return state


class BypassesSafety(MujocoRobot):
    """Sends commands raw, skipping the safety filter."""

    def command(self, cmd):
        self._send(cmd)
        return cmd


class EstopDoesNotLatch(MujocoRobot):
    """estop() is a no-op."""

    def estop(self, reason: str = "emergency stop") -> None:
        pass


class SlowReader(MujocoRobot):
    """A real-time robot read by someone slower than it (a client over a busy network link):
    each tick takes 3 ms of wall time, in which the arm ticks 1 to 3 times."""

    def wait_for_tick(self):
        self._reads = getattr(self, "_reads", 0) + 1
        for _ in range(1 + self._reads % 3):
            super().wait_for_tick()
        time.sleep(0.003)


class SlowClock(SlowReader):
    """Declares 1 kHz but ticks every 3 ms, read as slowly as `SlowReader`."""

    def wait_for_tick(self):
        for _ in range(3):
            MujocoRobot.wait_for_tick(self)
        time.sleep(0.003)


class DeafGripper(MujocoRobot):
    """Gripper commands are swallowed: the fingers never move."""

    def _send_gripper(self, cmd):
        pass


class JammedGripper(MujocoRobot):
    """Every gripper command raises."""

    def gripper(self, cmd):
        raise RobotError("gripper jammed")


@pytest.fixture(scope="module")
def mujoco_results():
    lines: list[str] = []
    with MujocoRobot(default_scene()) as robot:
        results = run_conformance(robot, log=lines.append)
    return results, lines


def failed(results: list[CheckResult]) -> set[str]:
    return {r.name for r in results if not r.passed}


def _every_simulated_robot() -> list[tuple[str, str]]:
    """(backend, arm) for every backend and arm that runs here (PyBullet builds the Panda)."""
    from skillstack.hw.sim.backends import BACKENDS
    from skillstack.robot.arms import ARMS

    return [("mujoco", arm) for arm in sorted(ARMS)] + [
        (backend, "panda") for backend in BACKENDS if backend != "mujoco"
    ]


@pytest.mark.parametrize(("backend", "arm"), _every_simulated_robot())
def test_every_backend_that_runs_here_passes_every_check(backend, arm):
    from skillstack.hw.factory import make_robot

    with make_robot(backend, arm=arm) as robot:
        results = run_conformance(robot)
    assert [r.name for r in results] == list(CHECKS)
    assert not failed(results), [(r.name, r.detail) for r in results if not r.passed]


def test_the_mujoco_backend_passes_every_check(mujoco_results):
    results, _ = mujoco_results
    assert [r.name for r in results] == list(CHECKS)
    assert not failed(results), [(r.name, r.detail) for r in results if not r.passed]
    assert not any(r.skipped for r in results)  # the Panda has a gripper: nothing skipped
    assert all(r.duration_s > 0 and r.detail for r in results)


def test_each_check_logs_one_line_and_a_summary(mujoco_results):
    results, lines = mujoco_results
    assert lines[0].startswith("conformance: panda, 7 joints at 1000 Hz")
    assert [line.split()[1] for line in lines[1:-1]] == [r.name for r in results]
    assert all(line.startswith("[PASS]") for line in lines[1:-1])
    assert lines[-1] == f"{len(CHECKS)} checks: {len(CHECKS)} passed, 0 skipped, 0 failed"


@pytest.mark.parametrize(
    "backend, must_fail",
    [
        (IgnoresCommands, {"move", "joint_limits", "stop"}),
        (FrozenClock, {"timestamps"}),
        (BypassesSafety, {"joint_limits", "bad_commands", "estop"}),
        (EstopDoesNotLatch, {"estop"}),
        (DeafGripper, {"gripper"}),
    ],
)
def test_a_broken_backend_fails_exactly_the_relevant_checks(
    backend, must_fail, monkeypatch, tmp_path
):
    monkeypatch.chdir(tmp_path)  # MuJoCo logs the NaN that BypassesSafety lets through here
    with backend(default_scene()) as robot:
        results = run_conformance(robot, log=None)
    assert failed(results) == must_fail, {r.name: r.detail for r in results if not r.passed}


def test_failure_details_say_what_went_wrong(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with IgnoresCommands(default_scene()) as robot:
        (move,) = run_conformance(robot, log=None, checks=["move"])
    assert (
        not move.passed
        and "did not follow" in move.detail
        and "reached within 50.00" in move.detail
    )
    with FrozenClock(default_scene()) as robot:
        (stamps,) = run_conformance(robot, log=None, checks=["timestamps"])
    assert "did not advance" in stamps.detail


def test_a_reader_slower_than_the_robot_judges_the_robot_by_its_shortest_step():
    with SlowReader(default_scene()) as robot:
        (stamps,) = run_conformance(robot, log=None, checks=["timestamps"])
    assert stamps.passed and "shortest step 1.000 ms" in stamps.detail, stamps.detail
    with SlowClock(default_scene()) as robot:
        (stamps,) = run_conformance(robot, log=None, checks=["timestamps"])
    assert not stamps.passed and "shortest step 3.000 ms" in stamps.detail, stamps.detail


def test_a_check_that_raises_fails_and_the_suite_carries_on():
    with JammedGripper(default_scene()) as robot:
        gripper, estop = run_conformance(robot, log=None, checks=["gripper", "estop"])
    assert not gripper.passed and gripper.detail == "raised RobotError: gripper jammed"
    assert estop.passed, estop.detail


def test_a_robot_without_gripper_skips_the_gripper_check():
    robot = MujocoRobot(default_scene())
    robot.capabilities = dataclasses.replace(robot.capabilities, gripper=None)
    with robot:
        (result,) = run_conformance(robot, log=None, checks=["gripper"])
    assert result.passed and result.skipped and result.detail.startswith("skipped: ")


def test_an_unconnected_robot_is_connected_for_the_run_and_released_after():
    robot = MujocoRobot(default_scene())
    (result,) = run_conformance(robot, log=None, checks=["capabilities"])
    assert result.passed and not robot.connected


def test_unsafe_or_unknown_arguments_are_refused_before_anything_moves():
    robot = MujocoRobot(default_scene())
    with pytest.raises(ValueError, match="amplitude"):
        run_conformance(robot, amplitude=MAX_AMPLITUDE * 2, log=None)
    with pytest.raises(ValueError, match="speed"):
        run_conformance(robot, speed=0.0, log=None)
    with pytest.raises(ValueError, match="valid checks: capabilities"):
        run_conformance(robot, checks=["teleport"], log=None)
    assert not robot.connected
