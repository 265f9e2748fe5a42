"""The Franka driver against franky-sim: an FR3 in MuJoCo behind the real libfranka protocol.

`skillstack hw check` runs as a person would run it, in a subprocess, against franky-sim
served from this process (`hw.sim.franky_workcell.FrankySimWorkcell`) on a loopback
address; the whole HAL conformance suite must pass. Connection failures must be one line
with what to check, never a traceback. Skipped only where franky (franky-control) is not
installed; the suite's run also needs franky-sim.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from run_cli import json_error, skillstack

from skillstack.hw.conformance import CHECKS

pytest.importorskip(
    "franky", reason="franky-control is not installed (pip install 'skillstack[franka]')"
)

HOST = "127.0.0.2"  # franky-sim of these tests (test_franky_workcell.py uses 127.0.0.3)
NOBODY = "127.0.0.29"  # a loopback address nothing listens on
CHECK_FIELDS = {"name", "passed", "skipped", "detail", "duration_s"}


def hw_check(host: str, *options: str, json_out: bool = False) -> subprocess.CompletedProcess:
    args = ["hw", "check", "--robot", "franka", "--host", host, "--yes"]
    for option in options:
        args += ["--robot-option", option]
    return skillstack(*args, *(["--json"] if json_out else []))


def realtime_kernel() -> bool:
    flag = Path("/sys/kernel/realtime")  # "1" on a PREEMPT_RT kernel
    return flag.exists() and flag.read_text().strip() == "1"


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    if "--json" in result.args:
        json_error(result)
    else:
        assert result.stdout == "", result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return line


@pytest.fixture(scope="module")
def franky_sim():
    pytest.importorskip("franky_sim", reason="franky-sim is not installed (pip install franky-sim)")
    from skillstack.hw.sim.franky_workcell import FrankySimWorkcell

    with FrankySimWorkcell(host=HOST) as cell:
        yield cell


def test_hw_check_passes_every_check_against_franky_sim(franky_sim):
    result = hw_check(franky_sim.host, "realtime_config=ignore", "model=fr3", json_out=True)
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)  # exactly one JSON object on stdout
    failed = {c["name"]: c["detail"] for c in report["checks"] if not c["passed"]}
    assert result.returncode == 0 and not failed, (failed, result.stderr)
    assert set(report) == {"robot", "checks", "passed", "failed"}
    assert report["robot"] == "franka-fr3"
    assert [c["name"] for c in report["checks"]] == list(CHECKS)
    assert all(set(c) == CHECK_FIELDS for c in report["checks"])
    assert report["passed"] == len(CHECKS) and report["failed"] == 0  # nothing skipped
    assert "[PASS] move" in result.stderr  # progress goes to stderr


def test_a_realtime_refusal_is_one_line_suggesting_realtime_config_ignore(franky_sim):
    if realtime_kernel():
        pytest.skip("this kernel is PREEMPT_RT: libfranka has nothing to refuse")
    result = hw_check(franky_sim.host, "model=fr3")  # libfranka connects, then refuses
    line = one_error_line(result)
    assert result.returncode == 1
    assert "RealtimeException" in line and "--robot-option realtime_config=ignore" in line


def test_an_unknown_option_is_one_line_listing_the_valid_ones():
    result = hw_check(HOST, "realtime_config=ignore", "speed=0.1")
    line = one_error_line(result)
    assert result.returncode == 2
    assert "no option 'speed'" in line and "realtime_config=enforce|ignore" in line


def test_nothing_listening_is_one_line_saying_what_to_check():
    result = hw_check(NOBODY, "realtime_config=ignore", json_out=True)
    line = one_error_line(result)
    assert result.returncode == 1
    assert f"cannot bring up the Franka arm at {NOBODY}" in line and "FCI" in line


class _PlannerFailsOnce:
    """franky's Robot, except that one streamed motion fails to plan the way Ruckig does."""

    def __init__(self, robot, after: int):
        self._robot, self._left = robot, after

    def __getattr__(self, name):
        return getattr(self._robot, name)

    def move(self, motion, asynchronous=False):
        self._left -= 1
        if self._left == 0:
            raise RuntimeError("Motion planner failed with error code -111")
        return self._robot.move(motion, asynchronous=asynchronous)


def test_a_motion_that_fails_to_plan_restarts_the_stream_and_the_arm_arrives(franky_sim):
    import numpy as np

    from skillstack.hw.drivers.franka import FrankaRobot
    from skillstack.robot.loop import ControlLoop
    from skillstack.robot.motion import JointMotion

    with FrankaRobot(franky_sim.host, model="fr3", realtime_config="ignore") as arm:
        arm._robot = _PlannerFailsOnce(arm._robot, after=20)  # mid-motion
        goal = arm.read().q + np.array([0.15, -0.1, 0.0, 0.1, 0.0, 0.1, 0.2])
        motion = JointMotion(goal, arm.capabilities, speed_fraction=0.2)
        ControlLoop(arm, realtime=True).run(motion, max_seconds=10.0)
        assert motion.done and arm.planner_restarts == 1
        assert np.max(np.abs(franky_sim.joint_positions() - goal)) < 0.01  # franky-sim's joints


def test_connecting_leaves_the_callers_scheduling_as_it_was(franky_sim):
    """libfranka puts its caller at SCHED_FIFO 99 where it may; the driver undoes that, or
    every thread and process started later (a busy loop among them) would be real-time."""
    import os

    import franky

    from skillstack.hw.factory import make_robot

    before = os.sched_getscheduler(0), os.sched_getparam(0)
    raw = franky.Robot(franky_sim.host, realtime_config=franky.RealtimeConfig.Ignore)
    raised = os.sched_getscheduler(0) != before[0]
    os.sched_setscheduler(0, *before)
    del raw
    if os.geteuid() == 0:  # as root (so in CI) the SDK does raise it: this test can fail
        assert raised
    robot = make_robot("franka", host=franky_sim.host, options={"realtime_config": "ignore"})
    with robot:
        assert robot.read().q.shape == (7,)
        assert (os.sched_getscheduler(0), os.sched_getparam(0)) == before
