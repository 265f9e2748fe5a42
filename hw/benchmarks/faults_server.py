# Over 400 lines: one trial function per injected fault, each judged against its own limit.
"""Fault injection against a real robot server: real ZeroMQ sockets on loopback, MuJoCo.

`run` returns one entry per criterion: ``fault``, ``criterion``, ``trials``, ``worst`` (the
worst trial, in ``unit``), ``limit`` and ``passed``. Where the fault lives in the server
process (a kill, CPU starvation) the server runs in a process of its own.

The skill here is `joint_move`, a joint-space move with a little start-up work (as a
skill's planning), so that ``hw/`` needs nothing from ``skills/``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import zmq

from skillstack.hw.robot import Robot, RobotError
from skillstack.hw.server import free_port_pair, scratch_context
from skillstack.hw.server.client import RemoteError, RobotClient, ServerLost
from skillstack.hw.server.jobs import JobHooks
from skillstack.hw.server.protocol import pack, unpack
from skillstack.hw.server.server import RobotServer, ServerConfig
from skillstack.hw.server.session import derive_key, sign
from skillstack.hw.sim.mujoco.robot import MujocoRobot
from skillstack.robot.faults import fault_entry
from skillstack.robot.loop import ControlLoop
from skillstack.robot.types import JointCommand, RobotState

TIMEOUT = 0.1  # s, heartbeat timeout of every server here
STILL = 0.02  # rad/s
PLAN_POINTS = 4000  # start-up work of a `joint_move` (a few ms of Python, as planning)
COUNTS = ("trials", "actions", "frames", "motions", "stops")  # units counted over the trials
HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])


def joint_move(robot: Robot, skill: str, params: dict[str, Any], hooks: JobHooks) -> dict:
    """A `SkillRunner`: move the joints to ``params["q"]`` at ``params["speed"]`` rad/s."""
    t0 = time.perf_counter()
    target = np.asarray(params.get("q", HOME), dtype=float)
    speed = float(params.get("speed", 0.5))
    # Start-up work, as a skill's planning: check the path against the joint limits.
    caps = robot.capabilities
    start = robot.read().q
    path = [start + (target - start) * k / PLAN_POINTS for k in range(PLAN_POINTS + 1)]
    if any(((q < caps.joint_lower) | (q > caps.joint_upper)).any() for q in path):
        raise RobotError("joint_move: the path leaves the joint limits")
    policy = _Move(target, speed, hooks.abort)
    ControlLoop(robot, realtime=hooks.realtime, on_tick=hooks.on_tick).run(policy, 30.0)
    ok = policy.reason is None
    return {
        "skill": skill,
        "params": params,
        "outcome": "success" if ok else "stopped",
        "success": ok,
        "failure": None if ok else "safety_stop",
        "message": policy.reason or "",
        "duration_s": time.perf_counter() - t0,
        "template": None,
        "moved": True,
        "metrics": {},
    }


class _Move:
    """Smoothstep from the start to ``target`` (peak joint speed about ``speed``)."""

    def __init__(self, target: np.ndarray, speed: float, abort: Callable[[], str | None]):
        self.target, self.speed, self.abort = target, speed, abort
        self.reason: str | None = None
        self.done = False

    def reset(self, state: RobotState) -> None:
        self.q0, self.t0 = state.q.copy(), state.time
        self.duration = max(1.5 * float(np.max(np.abs(self.target - self.q0))) / self.speed, 0.01)

    def step(self, state: RobotState) -> JointCommand:
        reason = self.abort()
        if reason:
            self.reason, self.done = reason, True
            held = state.q if state.q_desired is None else state.q_desired
            return JointCommand("joint_position", held, state.time)
        s = min((state.time - self.t0) / self.duration, 1.0)
        self.done = s >= 1.0 and float(np.max(np.abs(state.dq))) < STILL
        q = self.q0 + (self.target - self.q0) * (3 * s * s - 2 * s * s * s)
        return JointCommand("joint_position", q, state.time)


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.002)
    return False


def _job_over(client: RobotClient, job: int) -> Callable[[], bool]:
    return lambda: client.request("job", id=job)["status"] in ("done", "failed")


def _is_lost(client: RobotClient) -> Callable[[], bool]:
    return lambda: client.lost is not None


def _server(robot: Robot | None = None, token: str | None = None) -> RobotServer:
    config = ServerConfig(port=free_port_pair(), heartbeat_timeout=TIMEOUT, token=token)
    return RobotServer(robot or MujocoRobot(), config, run_skill=joint_move)


def _address(srv: RobotServer) -> str:
    return f"tcp://127.0.0.1:{srv.config.port}"


def _entry(fault: str, criterion: str, values: list[float], limit: float, unit: str) -> dict:
    """One criterion; for a count (a 0/1 per trial, limit 0) ``worst`` is the total."""
    if not values:
        worst = float("inf")
    elif unit in COUNTS:
        worst = sum(values)
    else:
        worst = max(values)
    return fault_entry(fault, criterion, len(values), round(float(worst), 3), limit, unit)


# -- 1. the control loop ------------------------------------------------------------------------
class _Faulty(MujocoRobot):
    fault: str | None = None

    def read(self):
        state = super().read()
        if self.fault == "diverged":
            state.q[:] = np.nan
        return state

    def _send(self, cmd):
        if self.fault == "driver":
            raise RobotError("injected driver error")
        if self.fault == "exit":
            raise SystemExit("injected sys.exit()")
        if self.fault == "bug":
            raise ZeroDivisionError("injected bug")
        super()._send(cmd)


def _loop_faults(trials: int) -> list[float]:
    """1 per trial where the loop died, the refusal was untyped or slow, or reset failed."""
    bad: list[float] = []
    robot = _Faulty()
    kinds = ("diverged", "driver", "exit", "bug")
    with _server(robot) as srv, RobotClient(_address(srv)) as client:
        for k in range(trials):
            robot.fault = kinds[k % len(kinds)]
            ok = _wait(lambda: bool(client.state()["degraded"]), 1.0)
            t0 = time.monotonic()
            try:
                client.request("execute", skill="move", params={})
                ok = False
            except RemoteError as exc:
                ok = ok and exc.code == "robot_fault" and time.monotonic() - t0 < 0.5
            robot.fault = None
            ok = ok and srv._control is not None and srv._control.is_alive()
            try:
                client.reset()
                ok = ok and not client.state()["degraded"]
            except RemoteError:
                ok = False
            bad.append(0.0 if ok else 1.0)
    return bad


# -- 2. identity, replay, size -------------------------------------------------------------------
def _impersonation(trials: int) -> list[float]:
    """Actions accepted from a client without control that names the controller."""
    accepted: list[float] = []
    with _server() as srv, RobotClient(_address(srv)) as owner:
        stranger = RobotClient(_address(srv))
        q0 = owner.state()["q"]
        ops = [
            ("stop", {}),
            ("reset_estop", {}),
            ("command", {"mode": "joint_position", "values": (q0 + 0.3).tolist()}),
            ("execute", {"skill": "move", "params": {"q": (q0 + 0.3).tolist()}}),
            ("gripper", {"width": 0.0}),
            ("bye", {}),
        ]
        for k in range(trials):
            op, fields = ops[k % len(ops)]
            try:
                stranger.request(op, client=owner.info.get("session"), **fields)
                accepted.append(1.0)
            except RemoteError:
                accepted.append(0.0)
        moved = float(np.abs(owner.state()["q"] - q0).max()) > 1e-3
        owner.request("heartbeat")  # still in control: this raises otherwise
        stranger.close()
    if moved:
        accepted.append(1.0)
    return accepted


def _exchange(sock: zmq.Socket, frames: list[bytes]) -> dict:
    sock.send_multipart(frames)
    if not sock.poll(2000):
        return {"ok": False, "code": "no reply"}
    return unpack(sock.recv_multipart()[-1])


def _replay(trials: int) -> list[float]:
    """Replayed (other connection, same connection) or reordered commands accepted."""
    token = "bench-token"
    accepted: list[float] = []
    with (
        _server(token=token) as srv,
        RobotClient(_address(srv), token=token) as owner,
        scratch_context() as ctx,
    ):
        stream = ctx.socket(zmq.DEALER)
        stream.connect(_address(srv))
        key = derive_key(token, _exchange(stream, [b"", pack({"op": "nonce"})])["nonce"])
        join = pack({"op": "join", "session": owner.info["session"], "n": 0})
        _exchange(stream, [b"", join, sign(key, join)])
        q0 = owner.state()["q"]
        n = 1
        for k in range(trials):
            n += 2
            payload = pack(
                {"op": "command", "mode": "joint_position", "values": q0.tolist(), "n": n}
            )
            captured = [b"", payload, sign(key, payload)]
            _exchange(stream, captured)  # the genuine message
            if k % 3 == 0:  # replayed by a stranger on its own connection
                other = ctx.socket(zmq.DEALER)
                other.connect(_address(srv))
                _exchange(other, [b"", pack({"op": "nonce"})])
                reply = _exchange(other, captured)
                other.close()
            elif k % 3 == 1:  # replayed on the same connection
                reply = _exchange(stream, captured)
            else:  # reordered: an older counter, correctly signed
                old = pack(
                    {"op": "command", "mode": "joint_position", "values": q0.tolist(), "n": n - 1}
                )
                reply = _exchange(stream, [b"", old, sign(key, old)])
            accepted.append(1.0 if reply.get("ok") else 0.0)
    return accepted


def _oversize(trials: int, megabytes: int) -> list[float]:
    """Oversized frames answered (read in full); the server must go on answering."""
    answered: list[float] = []
    with _server() as srv, RobotClient(_address(srv)) as client, scratch_context() as ctx:
        for _ in range(trials):
            sock = ctx.socket(zmq.DEALER)
            sock.connect(_address(srv))
            sock.send_multipart([b"", b"\x00" * (megabytes << 20)])
            answered.append(1.0 if sock.poll(300) else 0.0)
            sock.close()
            client.state()
    return answered


# -- 3. protective stops -------------------------------------------------------------------------
def _silence(trials: int, rng: np.random.Generator) -> tuple[list[float], list[float]]:
    """ms after the heartbeat timeout until the skill stops, and until the arm is at rest."""
    stop_ms: list[float] = []
    rest_ms: list[float] = []
    with _server() as srv:
        client = RobotClient(_address(srv))
        client.connect()
        for k in range(trials):
            target = HOME + (0.5 if k % 2 == 0 else -0.5) * np.array([1, 0.4, 0, 0.4, 0, 0, 0])
            job = _start(client, {"q": target.tolist(), "speed": 0.4})
            _wait(lambda: float(np.abs(client.state()["dq"]).max()) > 0.15, 3.0)
            time.sleep(float(rng.uniform(0.0, 0.05)))
            srv.silence_still_delay = srv.silence_stop_delay = None
            client._beating.clear()  # the client falls silent mid-motion
            _wait(lambda: srv.silence_still_delay is not None, 2.0)
            stop = srv.silence_stop_delay
            rest = srv.silence_still_delay
            stop_ms.append(float("inf") if stop is None else stop * 1e3)
            rest_ms.append(float("inf") if rest is None else rest * 1e3)
            _wait(_job_over(client, job), 2.0)
            client.connect()  # clears the protective stop
            _wait(_job_over(client, _start(client, {"q": HOME.tolist(), "speed": 1.0})), 10.0)
        client.close()
    return stop_ms, rest_ms


def _start(client: RobotClient, params: dict[str, Any]) -> int:
    """Start a move; after a protective stop left by an earlier trial, hello and retry."""
    for _ in range(3):
        try:
            return int(client.request("execute", skill="move", params=params)["id"])
        except RemoteError as exc:
            if exc.code not in ("protective_stop", "busy"):
                raise
            client.connect()
            time.sleep(0.05)
    return int(client.request("execute", skill="move", params=params)["id"])


def _stall(trials: int) -> list[float]:
    """Motions resumed, without a re-arm, by a joint stream that stalled mid-motion."""
    resumed: list[float] = []
    with _server() as srv, RobotClient(_address(srv)) as client:
        for k in range(trials):
            q = client.state()["q"]
            target = q.copy()
            target[0] += 0.6 if k % 2 == 0 else -0.6
            for _ in range(40):
                client.request("command", mode="joint_position", values=target.tolist())
                time.sleep(0.003)
            time.sleep(0.25)  # the stream stalls
            _wait(lambda: float(np.abs(client.state()["dq"]).max()) < STILL, 0.5)
            held = client.state()["q"]
            for _ in range(20):
                try:
                    client.request("command", mode="joint_position", values=target.tolist())
                except RemoteError:
                    pass
                time.sleep(0.003)
            time.sleep(0.05)
            moved = float(np.abs(client.state()["q"] - held).max())
            resumed.append(1.0 if moved > 0.01 else 0.0)  # not settling: a resumed motion
            client.connect()  # re-arm for the next trial
    return resumed


SERVER_SCRIPT = textwrap.dedent("""
    import sys, time
    from skillstack.hw.benchmarks.faults_server import joint_move
    from skillstack.hw.server.server import RobotServer, ServerConfig
    from skillstack.hw.sim.mujoco.robot import MujocoRobot
    config = ServerConfig(port=int(sys.argv[1]), heartbeat_timeout=float(sys.argv[2]))
    RobotServer(MujocoRobot(), config, run_skill=joint_move).start()
    print("ready", flush=True)
    time.sleep(3600)
""")


def _spawn(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT, str(port), str(TIMEOUT)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("the benchmark's server process did not start")
    return proc


def _reap(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(timeout=5)
    if proc.stdout is not None:
        proc.stdout.close()


def _kill(trials: int) -> list[float]:
    """ms from killing the server process to the client reporting it lost."""
    delays: list[float] = []
    for _ in range(trials):
        port = free_port_pair()
        proc = _spawn(port)
        client = RobotClient(f"tcp://127.0.0.1:{port}")
        try:
            client.connect()
            time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            _wait(_is_lost(client), 3.0)
            lost_at = client.lost_at
            delays.append(float("inf") if lost_at is None else (lost_at - killed) * 1e3)
            try:
                client.state()
            except ServerLost:
                pass
        finally:
            _reap(proc)
            client.close()
    return delays


MOVE_TIMEOUT_S = 15.0  # one benchmark move takes ~1 s; one that runs past this is stuck


def _hogged(trials: int) -> list[float]:
    """False protective stops in skill starts while two processes hog the CPU.

    The client runs in a process of its own under an overall deadline: once, under heavy
    outside load, a client here stayed stuck past every per-request timeout (in a call that
    kept the interpreter's lock, so no thread-level deadline could end it). A client that
    overruns is killed and its trials count as failures instead of hanging the benchmark.
    """
    port = free_port_pair()
    proc = _spawn(port)
    hog_command = [sys.executable, "-c", "while 1: pass"]
    hogs = [subprocess.Popen(hog_command, preexec_fn=_ordinary_scheduling) for _ in range(2)]
    code = (
        "import json, sys\n"
        "from skillstack.hw.benchmarks.faults_server import hogged_trials\n"
        "print(json.dumps(hogged_trials(int(sys.argv[1]), int(sys.argv[2]))))\n"
    )
    stops: list[float] = []
    try:
        client = subprocess.run(
            [sys.executable, "-c", code, str(port), str(trials)],
            capture_output=True,
            text=True,
            timeout=trials * MOVE_TIMEOUT_S / 5 + 30.0,
        )
        if client.returncode == 0 and client.stdout.strip():
            stops = [float(v) for v in json.loads(client.stdout.strip().splitlines()[-1])]
    except subprocess.TimeoutExpired:  # subprocess.run killed the stuck client
        pass
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait(timeout=5)
        _reap(proc)
    return stops + [1.0] * (trials - len(stops))  # unfinished trials count as failures


def _ordinary_scheduling() -> None:
    """In a hog, before it runs: ordinary time-sharing, whatever its parent runs at (a busy
    loop at a real-time priority would take its core for good)."""
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def hogged_trials(port: int, trials: int) -> list[float]:
    """The client side of `_hogged` (run in its own process): 1.0 per falsely stopped move."""
    stops: list[float] = []
    with RobotClient(f"tcp://127.0.0.1:{port}") as client:
        for k in range(trials):
            target = HOME + (0.15 if k % 2 == 0 else -0.15) * np.array([1, 0, 0, 0, 0, 0, 1])
            try:
                params = {"q": target.tolist(), "speed": 1.0}
                result = client.execute("move", params, timeout=MOVE_TIMEOUT_S)
                stopped = not result["success"] and "silent" in result["message"]
            except RemoteError as exc:
                stopped = exc.code in ("protective_stop", "estop")
                client.connect()
            except TimeoutError:  # a start that never finished is a failure too
                stopped = True
                client.connect()
            stops.append(1.0 if stopped else 0.0)
    return stops


def run(small: bool = False, seed: int = 0) -> list[dict]:
    """Inject every fault; one entry per criterion (small: a CI-sized run, < 30 s)."""
    rng = np.random.default_rng(seed)
    n = (
        {
            "loop": 4,
            "ident": 6,
            "replay": 6,
            "size": 2,
            "silence": 4,
            "stall": 2,
            "kill": 2,
            "hog": 6,
        }
        if small
        else {
            "loop": 40,
            "ident": 60,
            "replay": 60,
            "size": 10,
            "silence": 100,
            "stall": 20,
            "kill": 20,
            "hog": 100,
        }
    )
    timeout_ms = TIMEOUT * 1e3
    stop_ms, rest_ms = _silence(n["silence"], rng)
    return [
        _entry(
            "control-loop exception while idle (driver error, NaN state, SystemExit, bug)",
            "control-thread deaths (or untyped/slow refusal, or failed reset)",
            _loop_faults(n["loop"]),
            0,
            "trials",
        ),
        _entry(
            "a client without control names the controller in its requests",
            "actions accepted",
            _impersonation(n["ident"]),
            0,
            "actions",
        ),
        _entry(
            "captured signed commands replayed (other/same connection) or reordered",
            "actions accepted",
            _replay(n["replay"]),
            0,
            "actions",
        ),
        _entry(
            "64 MB request frame", "frames read and answered", _oversize(n["size"], 64), 0, "frames"
        ),
        _entry(
            "controlling client silent mid-motion",
            "skill stopped after the timeout",
            stop_ms,
            20.0,
            "ms",
        ),
        _entry(
            "controlling client silent mid-motion",
            "arm at rest after the timeout",
            rest_ms,
            20.0,
            "ms",
        ),
        _entry(
            "joint stream stalls mid-motion, then resumes",
            "motions resumed without re-arm",
            _stall(n["stall"]),
            0,
            "motions",
        ),
        _entry(
            "server process killed (SIGKILL)",
            "loss reported by the client after the kill",
            _kill(n["kill"]),
            timeout_ms + 20.0,
            "ms",
        ),
        _entry(
            "two CPU-hog processes during skill starts",
            "false protective stops",
            _hogged(n["hog"]),
            0,
            "stops",
        ),
    ]


if __name__ == "__main__":  # pragma: no cover
    import json

    small = "--small" in sys.argv
    print(json.dumps(run(small=small), indent=1))
    os._exit(0)
