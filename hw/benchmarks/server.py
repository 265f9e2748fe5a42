"""`skillstack bench server`: the robot server on loopback with the MuJoCo arm behind it.

Measures, in one run: the fraction of late 1 kHz control ticks while a skill runs and a
client streams telemetry; how long after the heartbeat timeout a silent client's skill is
stopped and the arm is still; how many control ticks an emergency stop takes to latch; and
the round trip of requests (a state read, and a skill call from send to "accepted").

The skill runner and world observer are injected (``hw/`` imports nothing from ``skills/``):
the CLI passes `skills.jobs.SkillJobs`'s methods.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from skillstack.hw.benchmarks.control import bench_scene
from skillstack.hw.server import free_port_pair
from skillstack.hw.server.client import RobotClient
from skillstack.hw.server.jobs import SkillRunner, WorldObserver
from skillstack.hw.server.server import RobotServer, ServerConfig
from skillstack.hw.sim.mujoco.robot import MujocoRobot

MOVE = {"position": [0.35, 0.25, 0.35], "speed": 0.15}
BACK = {"position": [0.45, -0.2, 0.3], "speed": 0.15}


def _wait(predicate, timeout: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.monotonic()
        time.sleep(0.001)
    return None


def run(repeats: int = 3, *, run_skill: SkillRunner, observe: WorldObserver | None = None) -> dict:
    """Run the benchmark with the given skill runner; returns the JSON-ready figures."""
    config = ServerConfig(port=free_port_pair(), heartbeat_timeout=0.1, telemetry_hz=100.0)
    address = f"tcp://127.0.0.1:{config.port}"
    robot = MujocoRobot(bench_scene())
    server = RobotServer(robot, config, run_skill=run_skill, observe=observe)
    with server as srv, RobotClient(address) as client:
        frames: list[dict] = []
        stop = threading.Event()

        def consume() -> None:  # a dashboard reading telemetry throughout
            sub = client.telemetry()
            while not stop.is_set():
                frame = sub.receive(timeout=0.2)
                if frame:
                    frames.append(frame)
            sub.close()

        reader = threading.Thread(target=consume, daemon=True)
        reader.start()
        try:
            figures = _measure(srv, client, config, repeats)
        finally:
            stop.set()
            reader.join(timeout=1.0)
    return {"benchmark": "server", **figures, "telemetry_frames": len(frames)}


def _measure(srv: RobotServer, client: RobotClient, config: ServerConfig, repeats: int) -> dict:
    # 1. Late ticks while skills run.
    ticks0, late0 = srv.ticks, srv.late_ticks
    for _ in range(repeats):
        client.execute("move_to", MOVE)
        client.execute("move_to", BACK)
    ticks, late = srv.ticks - ticks0, srv.late_ticks - late0
    # 2. Round trips: a state read, and a skill call from send to "accepted".
    rtt = []
    for _ in range(200):
        t0 = time.perf_counter()
        client.request("state")
        rtt.append(time.perf_counter() - t0)
    accept = []
    for target in (MOVE, BACK) * repeats:
        t0 = time.perf_counter()
        job = client.request("execute", skill="move_to", params=target)["id"]
        accept.append(time.perf_counter() - t0)
        _wait(lambda job=job: client.request("job", id=job)["status"] == "done", 30.0)
    # 3. Silence mid-motion: the server times the stop and the arm's rest from the timeout.
    silence_stop, silence_still = [], []
    for target in ((MOVE, BACK) * repeats)[:repeats]:
        job = client.request("execute", skill="move_to", params=target)["id"]
        time.sleep(0.5)
        srv.silence_still_delay = None
        client._beating.clear()
        _wait(lambda job=job: client.request("job", id=job)["status"] == "done", 2.0)
        _wait(lambda: srv.silence_still_delay is not None, 2.0)
        if srv.silence_still_delay is None:  # never came to rest within 2 s: report it
            silence_still.append(float("inf"))
        else:
            silence_still.append(srv.silence_still_delay * 1e3)
        stop_delay = srv.silence_stop_delay
        silence_stop.append(float("inf") if stop_delay is None else stop_delay * 1e3)
        client.connect()  # back in control: the protective stop is cleared
    # 4. Emergency stop: control ticks from the request's arrival to the latch.
    estop_ticks: list[int] = []
    for _ in range(repeats):
        job = client.request("execute", skill="move_to", params=MOVE)["id"]
        time.sleep(0.4)
        srv.estop_latency_ticks = None
        client.estop("benchmark")
        _wait(lambda: srv.estop_latency_ticks is not None, 1.0)
        latency = srv.estop_latency_ticks
        if latency is None:  # never latched: say so, not a TypeError in max() below
            raise RuntimeError("the emergency stop did not latch within 1 s")
        estop_ticks.append(latency)
        _wait(lambda job=job: client.request("job", id=job)["status"] == "done", 2.0)
        client.reset_estop()
        client.execute("move_to", BACK)
    return {
        "late_tick_fraction": round(late / max(ticks, 1), 5),
        "control_ticks": ticks,
        # ms after the heartbeat timeout: until the skill is stopped, and until the arm is still
        "silence_stop_ms": round(float(np.median(silence_stop)), 2),
        "silence_still_ms": round(float(np.median(silence_still)), 2),
        "heartbeat_timeout_ms": config.heartbeat_timeout * 1e3,
        "estop_ticks": int(max(estop_ticks)),
        "rtt_ms_median": round(float(np.median(rtt)) * 1e3, 3),
        "rtt_ms_p99": round(float(np.percentile(rtt, 99)) * 1e3, 3),
        "skill_accept_ms_median": round(float(np.median(accept)) * 1e3, 3),
    }
