"""Hardware in the loop: the whole stack against franky-sim, through the public commands only.

franky-sim (a Franka FR3 in MuJoCo behind the real libfranka network protocol) runs in this
process with the declared workcell's objects in its world (`hw.sim.franky_workcell`). The
stack is started exactly as on a real arm — ``skillstack serve --robot franka --host H
--robot-option realtime_config=ignore --robot-option model=fr3 --scene FILE`` in a separate
process, ``skillstack run/deploy --robot tcp://…`` in others — and every outcome is judged on
franky-sim's own MuJoCo state, which the stack never reads: its world is the scene file,
tracked through the skills and the arm's signals.

Everything runs paced to the wall clock (the libfranka loop is real time), so each
instruction takes the seconds it would on an arm.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("franky", reason="franky-control is not installed (pip install franky-control)")
pytest.importorskip("franky_sim", reason="franky-sim is not installed (pip install franky-sim)")

from run_cli import skillstack

from skillstack.hw.server.client import RobotClient, ServerLost
from skillstack.hw.sim.franky_workcell import FrankySimWorkcell
from skillstack.planners.bench_hil import truth_world
from skillstack.robot.scene import load_scene
from skillstack.robot.scene.bundled import find_scene

SCENE_FILE = find_scene("workcell")
SCENE = load_scene(SCENE_FILE)
FRANKA = ("--robot-option", "realtime_config=ignore", "--robot-option", "model=fr3")
SERVER_START_S = 60.0  # s, longest wait for `skillstack serve` to answer
RUN_TIMEOUT_S = 240.0  # s, one `skillstack run` (real time: a pick and place takes ~20 s)
HEARTBEAT_TIMEOUT = 0.5  # s, client silence limit (0.2 s tripped protective stops under load)
STILL = 0.01  # rad, joints that moved less than this have held


@contextlib.contextmanager
def served(cell: FrankySimWorkcell, port: int):
    """``skillstack serve --robot franka`` on the workcell, until the block ends."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skillstack",
            "serve",
            "--robot",
            "franka",
            "--host",
            cell.host,
            *FRANKA,
            "--scene",
            str(SCENE_FILE),
            "--bind",
            f"127.0.0.1:{port}",
            "--heartbeat-timeout",
            str(HEARTBEAT_TIMEOUT),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    address = f"tcp://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"serve exited {proc.returncode}: {proc.stderr.read()}")
            try:
                with contextlib.closing(RobotClient(address, timeout=0.5)) as probe:
                    probe.request("state")
                break
            except ServerLost:
                assert time.monotonic() < deadline, "skillstack serve did not come up"
        yield proc, address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_json(address: str, instruction: str) -> tuple[int, dict]:
    result = skillstack("run", instruction, "--robot", address, "--json", timeout=RUN_TIMEOUT_S)
    assert result.stdout.strip(), result.stderr
    return result.returncode, json.loads(result.stdout)


def truth(cell: FrankySimWorkcell):
    """The world as franky-sim has it (objects omitted from the workcell left out)."""
    return truth_world(cell, SCENE)


def said(report: dict) -> str:
    """What a failed run said, whole: each step's outcome and message, then the error."""
    steps = "; ".join(
        f"{s['skill']} {s['outcome']} ({s.get('message', '')})" for s in report.get("steps", [])
    )
    return f"{steps} | error: {report.get('error')}"


# Class-scoped: torn down after `TestOneWorkcell`, since a second simulated arm running
# beside the later tests would halve their CPU (and make them lag real time).
@pytest.fixture(scope="class")
def workcell():
    with FrankySimWorkcell(SCENE, host="127.0.0.7") as cell:
        yield cell


@pytest.fixture(scope="class")
def server(workcell):
    with served(workcell, 5731) as (proc, address):
        yield proc, address


class TestOneWorkcell:
    """Instructions in sequence on one franky-sim and one server."""

    def test_pick_and_place_then_stack_on_what_was_just_moved(self, workcell, server):
        _, address = server
        code, report = run_json(address, "put the red cube on the plate")
        assert code == 0 and report["success"], said(report)
        world = truth(workcell)
        assert world.holds("on", "red_cube", "plate"), sorted(world.predicates)

        # Only a world model that tracked the first move knows where the red cube is now.
        code, report = run_json(address, "put the blue cube on the red cube")
        assert code == 0 and report["success"], said(report)
        world = truth(workcell)
        assert world.holds("on", "blue_cube", "red_cube"), sorted(world.predicates)
        assert world.holds("on", "red_cube", "plate")

    def test_deploy_rehearses_in_the_twin_then_executes(self, workcell, server):
        _, address = server
        result = skillstack(
            "deploy", "put the green cube in the bowl", "--robot", address, "--yes", "--json"
        )
        report = json.loads(result.stdout)
        assert result.returncode == 0 and report["success"], said(report)
        assert report["rehearsed_ok"] and [s["skill"] for s in report["rehearsal"]] == [
            "grasp",
            "place",
        ]
        assert truth(workcell).holds("in", "green_cube", "bowl")


def _held_still(cell: FrankySimWorkcell, seconds: float = 0.5) -> float:
    q0 = cell.joint_positions()
    time.sleep(seconds)
    return float(np.max(np.abs(cell.joint_positions() - q0)))


def test_a_grasp_on_an_object_that_is_not_there_fails_typed_and_the_arm_holds():
    with (
        FrankySimWorkcell(SCENE, host="127.0.0.8", omit={"red_cube"}) as cell,
        served(cell, 5741) as (proc, address),
    ):
        code, report = run_json(address, "put the red cube on the plate")
        assert code == 1 and not report["success"]
        outcomes = [s["outcome"] for s in report["steps"]]
        assert outcomes[0] == "grasp_missed", said(report)
        assert "closed" in report["steps"][0]["message"]
        assert _held_still(cell) < STILL
        # The world no longer believes in the cube: the next plan is refused, not attempted.
        assert "red" in (report["error"] or "")
        assert proc.poll() is None  # the server lives on
        code, report = run_json(address, "put the green cube in the bowl")
        assert code == 0 and report["success"], said(report)
        assert truth(cell).holds("in", "green_cube", "bowl")


def test_an_object_elsewhere_than_declared_is_not_believed():
    # The blue cube stands 20 cm from where the scene file says: the fingers find nothing.
    with (
        FrankySimWorkcell(SCENE, host="127.0.0.9", moved={"blue_cube": (0.35, 0.3)}) as cell,
        served(cell, 5751) as (proc, address),
    ):
        code, report = run_json(address, "put the blue cube on the plate")
        assert code == 1 and not report["success"]
        assert report["steps"][0]["outcome"] in ("grasp_missed", "collision"), said(report)
        assert _held_still(cell) < STILL
        assert proc.poll() is None
        blue = truth(cell).object("blue_cube")
        assert np.hypot(blue.position[0] - 0.35, blue.position[1] - 0.3) < 0.03  # not knocked


def test_the_sdk_connection_dropped_mid_skill_is_a_typed_failure_and_the_server_lives():
    cell = FrankySimWorkcell(SCENE, host="127.0.0.10")
    cell.start()
    try:
        with served(cell, 5761) as (proc, address):
            outcome: dict = {}

            def run() -> None:
                outcome["code"], outcome["report"] = run_json(
                    address, "put the red cube on the plate"
                )

            worker = threading.Thread(target=run)
            worker.start()
            with contextlib.closing(RobotClient(address)) as watcher:
                deadline = time.monotonic() + 60
                while not any(
                    e["kind"] == "skill" and "started" in e["message"]
                    for e in watcher.request("events", last=20)["events"]
                ):
                    assert time.monotonic() < deadline, "no skill started"
                    time.sleep(0.05)
                time.sleep(1.0)  # mid-motion
                cell.stop()  # the arm's network connection is gone
                dropped = time.monotonic()
                worker.join(timeout=60)
                answered = time.monotonic() - dropped
                assert not worker.is_alive()
                report = outcome["report"]
                assert outcome["code"] == 1 and not report["success"], report
                steps = report["steps"]
                # Either the step failed (and replanning found the robot faulted), or the
                # call itself was refused: in both cases one line says what happened.
                assert not steps or steps[-1]["outcome"] != "success", steps
                assert report["error"] and "\n" not in report["error"], report
                # The control thread is alive and says what happened, in one line.
                deadline = time.monotonic() + 10
                while not (state := watcher.request("state")).get("fault"):
                    assert time.monotonic() < deadline, f"no fault reported: {state}"
                    time.sleep(0.1)
                assert "\n" not in state["fault"], state
                print("dropped connection:", round(answered, 2), "s;", report["error"])
                print("fault:", state["fault"])
                assert proc.poll() is None
            # The server notices the stalled loop after a heartbeat timeout (0.5 s here).
            assert answered < 5.0, answered  # ~0.5 s measured; generous for a loaded CI
    finally:
        cell.stop()


def test_bench_hil_reports_the_bench_tasks_fields_judged_on_ground_truth():
    result = skillstack(
        "bench", "hil", "--seeds", "1", "--tasks", "pick_cube", "--host", "127.0.0.12", "--json"
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["verified_by"] == "franky-sim ground truth" and out["world"] == "declared"
    assert out["episodes"] == 1 and out["success_rate"] == 1.0 and out["false_successes"] == 0
    assert isinstance(out["planning_ms_median"], float)
    assert set(out["tasks"]["pick_cube"]) >= {"success_rate", "episodes", "replans"}
