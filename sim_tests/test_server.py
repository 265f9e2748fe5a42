"""The robot server with real sockets and real processes: skills, supervision, faults.

Every test is bounded in time and talks only to 127.0.0.1.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from hw.server import free_port_pair
from hw.server.client import RemoteArm, RemoteError, RobotClient, ServerLost
from hw.server.protocol import pack, unpack
from hw.server.server import RobotServer, ServerConfig
from hw.sim.mujoco_robot import MujocoRobot
from planners.executive import run_instruction
from planners.symbolic import SymbolicPlanner
from robot.scene import Scene, SceneObject, Table
from skills.base import Failure

ROOT = Path(__file__).resolve().parents[1]
STILL = 0.02  # rad/s: an arm slower than this is holding still


def scene() -> Scene:
    cube = SceneObject("cube", "box", (0.05, 0.05, 0.05), (0.5, 0.0, 0.0))
    bowl = SceneObject("bowl", "bowl", (0.16, 0.06), (0.45, -0.22, 0.0))
    return Scene(Table(), (cube, bowl))


@pytest.fixture
def server():
    port = free_port_pair()
    srv = RobotServer(MujocoRobot(scene()), ServerConfig(port=port, heartbeat_timeout=0.1))
    srv.start()
    yield srv
    srv.shutdown()


def address(srv: RobotServer) -> str:
    return f"tcp://127.0.0.1:{srv.config.port}"


def wait_for(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def test_the_executive_runs_unchanged_against_a_remote_arm(server):
    with RobotClient(address(server)) as client:
        report = run_instruction("put the cube in the bowl", RemoteArm(client), SymbolicPlanner())
        assert report.success, report.error
        assert client.observe().holds("in", "cube", "bowl")
        events = [e["kind"] for e in client.events()]
    assert "control" in events and events.count("skill") == 4


def test_telemetry_streams_at_its_rate(server):
    with RobotClient(address(server)) as client:
        sub = client.telemetry()
        frames, t0 = [], time.monotonic()
        while time.monotonic() - t0 < 0.5:
            frame = sub.receive(timeout=0.5)
            if frame:
                frames.append(frame)
        sub.close()
    assert 15 <= len(frames) <= 35  # 50 Hz for 0.5 s
    assert frames[-1]["time"] > frames[0]["time"] and len(frames[-1]["q"]) == 7


def test_a_wrong_token_is_refused():
    port = free_port_pair()
    with RobotServer(MujocoRobot(scene()), ServerConfig(port=port, token="s3cret")) as srv:
        with pytest.raises(RemoteError, match="token"):
            RobotClient(address(srv), token="guess").connect()
        with RobotClient(address(srv), token="s3cret") as client:
            assert client.info["dof"] == 7
        assert any(e["kind"] == "auth" for e in srv.events)


def test_binding_off_loopback_needs_a_token():
    with pytest.raises(ValueError, match="token"):
        ServerConfig(host="0.0.0.0").check()


def test_malformed_messages_get_errors_and_the_server_keeps_serving(server):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address(server))
    bad = [
        b"\x00\xff garbage",
        pack([1, 2, 3]),
        pack({"op": "fly"}),
        pack({"op": "execute", "skill": 3}),
        pack({"op": "command", "mode": "joint_position", "values": "abc"}),
        pack({"op": "job"}),
    ]
    for payload in bad:
        sock.send_multipart([b"", payload])
        assert sock.poll(2000)
        reply = unpack(sock.recv_multipart()[-1])
        assert reply["ok"] is False and reply["error"]
    sock.close()
    ctx.term()
    with RobotClient(address(server)) as client:
        assert client.state()["q"].shape == (7,)


def test_a_second_client_cannot_take_control(server):
    with RobotClient(address(server)) as first:
        second = RobotClient(address(server))
        with pytest.raises(RemoteError, match="busy"):
            second.connect()
        with pytest.raises(RemoteError, match="does not have control"):
            second.request("execute", skill="home", params={})
        first.request("bye")
        second.connect()  # free now
        second.close()


def test_nan_and_out_of_limit_joint_commands_never_reach_the_arm(server):
    with RobotClient(address(server)) as client:
        q0 = client.state()["q"]
        bad = q0.copy()
        bad[2] = float("nan")
        for _ in range(20):
            client.request("command", mode="joint_position", values=bad.tolist())
            time.sleep(0.005)
        assert np.abs(client.state()["q"] - q0).max() < 1e-3
        far = q0.copy()
        far[0] = 10.0  # way beyond the 2.9 rad limit
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            client.request("command", mode="joint_position", values=far.tolist())
            time.sleep(0.01)
        q = client.state()["q"]
        assert np.isfinite(q).all() and q[0] <= server.robot.capabilities.joint_upper[0] + 1e-3


def test_silence_mid_skill_stops_the_skill_and_the_arm_holds(server):
    client = RobotClient(address(server))
    client.connect()
    job = client.request(
        "execute", skill="move_to", params={"position": [0.35, 0.25, 0.35], "speed": 0.1}
    )["id"]
    time.sleep(0.6)  # moving now
    client._beating.clear()  # heartbeats stop: the client has gone quiet
    silent_from = time.monotonic()
    assert wait_for(lambda: client.request("job", id=job)["status"] == "done", 2.0)
    result = client.request("job", id=job)["result"]
    stopped_after = time.monotonic() - silent_from
    assert result["failure"] == Failure.SAFETY_STOP.value and "silent" in result["message"]
    assert stopped_after < 0.1 + 0.25  # timeout plus polling slack
    assert wait_for(lambda: np.abs(client.state()["dq"]).max() < STILL, 0.5)
    client.close()


CLIENT_SCRIPT = textwrap.dedent("""
    import sys, time
    from hw.server.client import RobotClient
    client = RobotClient(sys.argv[1])
    client.connect()
    target = {"position": [0.35, -0.25, 0.35], "speed": 0.1}
    client.request("execute", skill="move_to", params=target)
    print("started", flush=True)
    time.sleep(30)
""")


def test_a_client_killed_mid_skill_leaves_the_arm_stopped(server):
    proc = subprocess.Popen(
        [sys.executable, "-c", CLIENT_SCRIPT, address(server)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "started"
        time.sleep(0.5)
        proc.kill()
        killed = time.monotonic()
        assert wait_for(lambda: any(e["kind"] == "silence" for e in server.events), 1.0)
        assert time.monotonic() - killed < 0.5
    finally:
        proc.kill()
        proc.wait(timeout=5)
    observer = RobotClient(address(server))  # reading state needs no control
    try:
        assert wait_for(lambda: np.abs(observer.state()["dq"]).max() < STILL, 1.0)
    finally:
        observer.close()


SERVER_SCRIPT = textwrap.dedent("""
    import sys, time
    from hw.server.server import RobotServer, ServerConfig
    from hw.sim.mujoco_robot import MujocoRobot
    srv = RobotServer(MujocoRobot(), ServerConfig(port=int(sys.argv[1])))
    srv.start()
    print("ready", flush=True)
    time.sleep(60)
""")


def test_a_server_killed_mid_skill_is_reported_not_waited_for():
    port = free_port_pair()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT, str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        client = RobotClient(f"tcp://127.0.0.1:{port}", timeout=0.5)
        client.connect()
        client.request("execute", skill="home", params={})
        proc.kill()
        t0 = time.monotonic()
        with pytest.raises(ServerLost, match="did not answer"):
            client.execute("move_to", {"position": [0.4, 0.0, 0.3]})
        assert time.monotonic() - t0 < 2.0
        client._beating.clear()
    finally:
        proc.kill()
        proc.wait(timeout=5)


def test_estop_latches_and_stops_commanding_motion_at_once(server):
    with RobotClient(address(server)) as client:
        job = client.request(
            "execute", skill="move_to", params={"position": [0.35, 0.2, 0.3], "speed": 0.1}
        )["id"]
        time.sleep(0.5)
        client.estop("test")
        assert wait_for(lambda: client.state()["estopped"], 0.2)
        time.sleep(0.005)  # the snapshot of the latching tick still shows that tick's command
        held = client.state()["command"]
        time.sleep(0.2)
        assert np.array_equal(client.state()["command"], held)  # no further motion command
        assert wait_for(lambda: client.request("job", id=job)["status"] == "done", 2.0)
        with pytest.raises(RemoteError, match="emergency stop is latched"):
            client.request("execute", skill="home", params={})
        client.reset_estop()
        result = client.execute("home")
        assert result.success, result.message


def test_the_conformance_suite_passes_over_loopback(server):
    from hw.conformance import run_conformance
    from hw.server.client import RemoteRobot

    results = run_conformance(RemoteRobot(address(server)), log=None)
    failed = [(r.name, r.detail) for r in results if not r.passed and not r.skipped]
    assert not failed and len(results) >= 9


@pytest.mark.parametrize(("period", "stopped"), [(0.05, False), (0.25, True)])
def test_delayed_heartbeats_stop_a_skill_only_past_the_timeout(server, period, stopped):
    client = RobotClient(address(server), heartbeat_period=period)  # 100 ms timeout
    client.connect()
    try:
        result = client.execute("move_to", {"position": [0.4, 0.15, 0.35], "speed": 0.2})
    finally:
        client.close()
    assert (result.failure == Failure.SAFETY_STOP) is stopped, result.message


def test_telemetry_reports_the_running_skill_and_its_progress(server):
    with RobotClient(address(server)) as client:
        sub = client.telemetry()
        job = client.request("execute", skill="grasp", params={"object": "cube"})["id"]
        seen = set()
        end = time.monotonic() + 15
        while time.monotonic() < end and client.request("job", id=job)["status"] != "done":
            frame = sub.receive(timeout=0.5)
            if frame and frame["skill"] == "grasp" and frame["step"] is not None:
                seen.add((frame["step"], frame["progress"]))
        sub.close()
    steps = {s for s, _ in seen}
    assert {"approach", "descend", "close", "lift"} <= steps
    assert max(p for _, p in seen) > min(p for _, p in seen)
