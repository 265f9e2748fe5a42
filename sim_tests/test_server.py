# Over 400 lines: the robot server's protocol, supervision and faults, each a short test.
"""The robot server with real sockets and real processes: skills, supervision, faults.

Every test is bounded in time and talks only to 127.0.0.1.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from skillstack.hw.drivers import DriverConnectionError
from skillstack.hw.robot import RobotError
from skillstack.hw.server import free_port_pair, scratch_context
from skillstack.hw.server.client import RemoteError, RobotClient, ServerLost
from skillstack.hw.server.jobs import JobHooks
from skillstack.hw.server.protocol import ERROR_CODES, pack, unpack
from skillstack.hw.server.server import (
    MAILBOX_TIMEOUT,
    PROTECTIVE_MESSAGE,
    RobotServer,
    ServerConfig,
)
from skillstack.hw.sim.mujoco.robot import MujocoRobot
from skillstack.planners.executive import run_instruction
from skillstack.planners.symbolic import SymbolicPlanner
from skillstack.robot.scene import Scene, SceneObject, Table
from skillstack.skills.base import Failure
from skillstack.skills.jobs import RemoteArm, SkillJobs

ROOT = Path(__file__).resolve().parents[1]
STILL = 0.02  # rad/s: an arm slower than this is holding still
JOBS = SkillJobs()  # the skills side, injected into every server here


def scene() -> Scene:
    cube = SceneObject("cube", "box", (0.05, 0.05, 0.05), (0.5, 0.0, 0.0))
    bowl = SceneObject("bowl", "bowl", (0.16, 0.06), (0.45, -0.22, 0.0))
    return Scene(Table(), (cube, bowl))


@pytest.fixture
def server():
    port = free_port_pair()
    config = ServerConfig(port=port, heartbeat_timeout=0.1)
    srv = RobotServer(MujocoRobot(scene()), config, run_skill=JOBS.run, observe=JOBS.observe)
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
        assert RemoteArm(client).observe().holds("in", "cube", "bowl")
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


def test_a_wrong_token_is_refused_and_a_server_without_skills_says_so():
    port = free_port_pair()
    with RobotServer(MujocoRobot(scene()), ServerConfig(port=port, token="s3cret")) as srv:
        with pytest.raises(RemoteError, match="token") as refused:
            RobotClient(address(srv), token="guess").connect()
        assert refused.value.code == "auth"
        with RobotClient(address(srv), token="s3cret") as client:
            assert client.info["dof"] == 7
            # No runner and no observer were injected: refused with a reason, not a crash.
            for call in (lambda: client.execute("home"), client.observe):
                with pytest.raises(RemoteError, match="without") as refused:
                    call()
                assert refused.value.code == "unsupported"
        assert any(e["kind"] == "auth" for e in srv.events)


def test_binding_off_loopback_needs_a_token():
    with pytest.raises(ValueError, match="token"):
        ServerConfig(host="0.0.0.0").check()


def test_malformed_messages_get_errors_and_the_server_keeps_serving(server):
    with scratch_context() as ctx:
        sock = ctx.socket(zmq.DEALER)
        sock.connect(address(server))
        _send_malformed(sock)
    with RobotClient(address(server)) as client:
        assert client.state()["q"].shape == (7,)


def _send_malformed(sock) -> None:
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
        assert reply["ok"] is False and reply["error"] and reply["code"] in ERROR_CODES


def test_a_second_client_cannot_take_control(server):
    with RobotClient(address(server)) as first:
        second = RobotClient(address(server))
        with pytest.raises(RemoteError, match="busy") as refused:
            second.connect()
        assert refused.value.code == "busy"
        with pytest.raises(RemoteError, match="does not have control") as refused:
            second.request("execute", skill="home", params={})
        assert refused.value.code == "no_control"
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


def test_silence_mid_skill_is_a_protective_stop_that_hello_clears(server):
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
    # A protective stop, reported as one (not as an operator's emergency stop).
    assert client.state()["stop"] == "protective"
    with pytest.raises(RemoteError) as refused:
        client.request("execute", skill="home", params={})
    assert refused.value.code == "protective_stop" and str(refused.value) == PROTECTIVE_MESSAGE
    assert not any(e["kind"] == "estop" for e in client.events())
    # The controlling client resumes: hello clears it, and the next skill runs.
    client.connect()
    assert client.state()["stop"] is None
    result = client.execute("move_to", {"position": [0.4, 0.0, 0.35], "speed": 0.3})
    assert result["success"], result["message"]
    assert any(e["kind"] == "protective" for e in client.events())
    client.close()


CLIENT_SCRIPT = textwrap.dedent("""
    import sys, time
    from skillstack.hw.server.client import RobotClient
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
    from skillstack.hw.server.server import RobotServer, ServerConfig
    from skillstack.hw.sim.mujoco.robot import MujocoRobot
    from skillstack.skills.jobs import SkillJobs
    jobs = SkillJobs()
    config = ServerConfig(port=int(sys.argv[1]))
    srv = RobotServer(MujocoRobot(), config, run_skill=jobs.run, observe=jobs.observe)
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
        with pytest.raises(RemoteError, match="emergency stop is latched") as refused:
            client.request("execute", skill="home", params={})
        assert refused.value.code == "estop" and client.state()["stop"] == "estop"
        client.connect()  # hello does not clear an operator's e-stop
        with pytest.raises(RemoteError, match="emergency stop is latched"):
            client.request("execute", skill="home", params={})
        client.reset_estop()
        result = client.execute("home")
        assert result["success"], result["message"]


def test_the_conformance_suite_passes_over_loopback(server):
    from skillstack.hw.conformance import run_conformance
    from skillstack.hw.server.client import RemoteRobot

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
    assert (result["failure"] == Failure.SAFETY_STOP.value) is stopped, result["message"]


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


# -- faults: the control thread never dies -------------------------------------------------------
MOVE = {"position": [0.35, 0.2, 0.35], "speed": 0.1}


def faulty_runner(robot, skill, params, hooks: JobHooks) -> dict:
    """Runs ``move_to`` for 0.3 s and then raises the exception its skill name asks for."""
    errors = {"bug": RuntimeError("a bug in a skill"), "driver": DriverConnectionError("gone")}
    if skill not in errors:
        return JOBS.run(robot, skill, params, hooks)
    ticks = 0

    def on_tick(state, sent):
        nonlocal ticks
        hooks.on_tick(state, sent)
        ticks += 1
        if ticks == 300:
            raise errors[skill]

    failing = JobHooks(hooks.realtime, on_tick, hooks.abort, hooks.on_progress)
    return JOBS.run(robot, "move_to", MOVE, failing)


def test_a_runner_that_raises_gives_a_typed_error_and_the_arm_holds():
    config = ServerConfig(port=free_port_pair(), heartbeat_timeout=0.1)
    robot = MujocoRobot(scene())
    with (
        RobotServer(robot, config, run_skill=faulty_runner, observe=JOBS.observe) as srv,
        RobotClient(address(srv)) as client,
    ):
        for skill, code in (("bug", "skill_error"), ("driver", "driver_error")):
            with pytest.raises(RemoteError) as failed:
                client.execute(skill)
            assert failed.value.code == code and "\n" not in str(failed.value)
            assert srv._control.is_alive()
            assert wait_for(lambda: np.abs(client.state()["dq"]).max() < STILL, 0.5)
        with pytest.raises(RemoteError, match="unknown skill 'fly'") as failed:
            client.execute("fly")
        assert failed.value.code == "unknown_skill"
        # The executive's view: failed results with a failure code, not exceptions.
        arm = RemoteArm(client)
        assert arm.execute("bug", {}).failure == Failure.SAFETY_STOP
        assert arm.execute("fly", {}).failure == Failure.INVALID_PARAMETERS
        # Still serving: telemetry flows, skills run, the events say what happened.
        sub = client.telemetry()
        frames = [sub.receive(timeout=0.5) for _ in range(3)]
        sub.close()
        assert all(frames) and frames[-1]["ticks"] > frames[0]["ticks"]
        assert client.execute("home")["success"]
        assert sum(e["kind"] == "error" for e in client.events()) >= 2


def test_an_observer_that_raises_or_blocks_gets_a_typed_error_not_a_dead_thread():
    slow = threading.Event()

    def observe(robot):  # as over a vendor driver, whose robot has no simulator scene
        if slow.is_set():
            time.sleep(MAILBOX_TIMEOUT + 0.3)
        raise AttributeError("'FrankaRobot' object has no attribute 'scene'")

    config = ServerConfig(port=free_port_pair(), heartbeat_timeout=0.1)
    robot = MujocoRobot(scene())
    with (
        RobotServer(robot, config, run_skill=JOBS.run, observe=observe) as srv,
        RobotClient(address(srv)) as client,
    ):
        for _ in range(2):
            with pytest.raises(RemoteError, match="AttributeError") as failed:
                client.observe()
            assert failed.value.code == "observe_error"
        assert srv._control.is_alive()
        slow.set()  # the observer blocks the control thread past the mailbox timeout
        with pytest.raises(RemoteError, match="did not finish it within") as failed:
            client.observe()
        assert failed.value.code == "control_timeout" and "Empty" not in str(failed.value)
        slow.clear()
        time.sleep(0.4)  # the blocked observe returns; the loop goes on
        assert srv._control.is_alive()
        assert client.execute("home")["success"]


class FlakyMujoco(MujocoRobot):
    """A MuJoCo arm whose reads fail once ``broken`` is set, like a vendor SDK gone away."""

    broken = False

    def read(self):
        if self.broken:
            raise RobotError("libfranka: connection to 172.16.0.2 lost")
        return super().read()


@pytest.mark.parametrize("when", ["idle", "mid-skill"])
def test_a_robot_that_stops_answering_is_reported_as_faulted(when):
    timeout = 0.1
    config = ServerConfig(port=free_port_pair(), heartbeat_timeout=timeout)
    robot = FlakyMujoco(scene())
    with (
        RobotServer(robot, config, run_skill=JOBS.run, observe=JOBS.observe) as srv,
        RobotClient(address(srv)) as client,
    ):
        sub = client.telemetry()
        if when == "mid-skill":
            job = client.request("execute", skill="move_to", params=MOVE)["id"]
            time.sleep(0.3)
        else:
            time.sleep(0.1)
        robot.broken = True
        t0 = time.monotonic()
        if when == "mid-skill":  # the running job fails at once, with the driver's reason
            assert wait_for(lambda: client.request("job", id=job)["status"] == "failed", timeout)
            assert client.request("job", id=job)["code"] == "driver_error"
        with pytest.raises(RemoteError, match="robot connection lost") as failed:
            client.observe()
        assert time.monotonic() - t0 < timeout
        assert failed.value.code == "robot_fault" and "restart the server" in str(failed.value)
        with pytest.raises(RemoteError, match="robot connection lost") as failed:
            client.execute("home")
        assert failed.value.code == "robot_fault"
        # Still answering, and saying so: state, telemetry, a new client's hello.
        assert client.state()["fault"].startswith("robot connection lost")
        frames = [sub.receive(timeout=0.2) for _ in range(20)]  # the latest say so (50 Hz)
        sub.close()
        assert frames[-1] is not None and frames[-1]["fault"].startswith("robot connection lost")
        assert srv._control.is_alive() and srv.fault is not None
        with pytest.raises(RemoteError, match="robot connection lost"):
            RobotClient(address(srv)).connect()
        assert any(e["kind"] == "fault" for e in client.events())


def test_nothing_under_hw_imports_skills_or_planners():
    offenders = []
    for path in sorted((ROOT / "hw").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.removeprefix("skillstack.").split(".")[0]
                if top in ("skills", "planners"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert not offenders, "hw/ must not import the layers above it:\n" + "\n".join(offenders)
