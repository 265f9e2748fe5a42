"""The robot server: owns one robot, runs its control loop next to it, executes skills locally.

Three threads. The **control thread** owns the robot and is the only one that touches it:
it runs skills through the executor at the robot's rate, paced to the wall clock, and
between skills holds position (or follows the joint commands of a `RemoteRobot` client).
The **command thread** answers requests on a ZeroMQ ROUTER socket; anything that must touch
the robot is handed to the control thread, which picks it up within a tick. The
**telemetry thread** publishes the latest state on a PUB socket at ``telemetry_hz``.

Supervision: the controlling client must send heartbeats; if it is silent for longer than
``heartbeat_timeout`` while a skill runs, the skill is stopped and the arm holds its
commanded position from the next tick (a protective stop, cleared when a client takes
control again). An emergency stop latches until an explicit reset. A run of late control
ticks stops the skill too. Every event is logged with a timestamp.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from hw.robot import Robot
from hw.server.protocol import TELEMETRY_TOPIC, ProtocolError, pack, parse_request, unpack
from robot.loop import ControlLoop
from robot.types import GripperCommand, JointCommand, RobotState
from skills.base import SkillResult
from skills.executor import execute
from skills.registry import get_skill
from skills.world import observe

log = logging.getLogger("skillstack.server")

LOOPBACK = ("127.0.0.1", "localhost", "::1")
IDLE_CHUNK = 0.05  # s of holding between checks for new jobs
STILL = 0.02  # rad/s, every joint slower than this: the arm is holding still
MAILBOX_TIMEOUT = 2.0  # s the command thread waits for the control thread
LEASE_GRACE = 5.0  # heartbeat timeouts after which a silent controller loses its lease


@dataclass
class ServerConfig:
    """How the server listens and supervises."""

    host: str = "127.0.0.1"
    port: int = 5555  # commands; telemetry on port + 1
    token: str | None = None  # required for every request when set
    heartbeat_timeout: float = 0.1  # s of client silence that stops a running skill
    telemetry_hz: float = 50.0
    late_tick_limit: int = 20  # consecutive late ticks that stop a running skill
    realtime: bool = True  # pace the simulated arm to the wall clock

    def check(self) -> None:
        """Refuse unsafe settings: a non-loopback address without a token."""
        if self.host not in LOOPBACK and not self.token:
            raise ValueError(
                f"binding to {self.host} exposes the robot to the network: "
                "set a shared token (--token) or bind to 127.0.0.1"
            )
        if self.heartbeat_timeout <= 0 or self.telemetry_hz <= 0:
            raise ValueError("heartbeat_timeout and telemetry_hz must be positive")


@dataclass
class Job:
    """A skill call accepted by the server."""

    id: int
    skill: str
    params: dict[str, Any]
    client: str
    status: str = "queued"  # queued, running, done
    result: SkillResult | None = None
    accepted_at: float = field(default_factory=time.monotonic)


class _Follow:
    """Idle policy: hold the commanded joints, or follow fresh remote joint commands."""

    def __init__(self, server: RobotServer, seconds: float):
        self.server, self.seconds = server, seconds
        self._q = None
        self._t0 = 0.0
        self.done = False

    def reset(self, state: RobotState) -> None:
        self._q = (state.q if state.q_desired is None else state.q_desired).copy()
        self._t0 = state.time
        self.done = False

    def step(self, state: RobotState) -> JointCommand:
        self.done = state.time - self._t0 >= self.seconds or self.server._jobs.qsize() > 0
        remote = self.server._remote_command
        if remote is not None:
            return remote
        return JointCommand("joint_position", self._q, state.time)


class RobotServer:
    """Serve one robot on ZeroMQ sockets; see the module docstring."""

    def __init__(self, robot: Robot, config: ServerConfig | None = None):
        config = config or ServerConfig()
        config.check()
        self.robot = robot
        self.config = config
        self.events: deque[dict[str, Any]] = deque(maxlen=2000)
        self._jobs: queue.Queue[Job] = queue.Queue()
        self._all_jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._mailbox: queue.Queue[tuple[str, Any, queue.Queue]] = queue.Queue()
        self._controller: str | None = None
        self._last_heartbeat = 0.0
        self._estop_request: str | None = None
        self._stop_request: str | None = None
        self._late_reason: str | None = None
        self._late_run = 0
        self._last_tick_wall = 0.0
        self._remote_command: JointCommand | None = None
        self._program = None  # the running skill's program (for telemetry)
        self._snapshot: dict[str, Any] = {}
        self._running = threading.Event()
        self._threads: list[threading.Thread] = []
        self.late_ticks = 0
        self.ticks = 0
        self.estop_latency_ticks: int | None = None
        self.silence_stop_delay: float | None = None  # s after the heartbeat timeout
        self.silence_stopped_at = 0.0
        self._protective = False  # the latched stop came from silence, not from an e-stop
        self._watch_still: float | None = None
        self.silence_still_delay: float | None = None  # s from the timeout to an arm at rest
        self._estop_requested_at = 0.0
        self._context = zmq.Context()

    # -- lifetime -----------------------------------------------------------------------------
    def start(self) -> None:
        """Connect the robot, bind the sockets and start the threads."""
        if not self.robot.connected:
            self.robot.connect()
        self._commands = self._context.socket(zmq.ROUTER)
        self._commands.setsockopt(zmq.LINGER, 0)
        self._commands.bind(f"tcp://{self.config.host}:{self.config.port}")
        self._telemetry = self._context.socket(zmq.PUB)
        self._telemetry.setsockopt(zmq.LINGER, 0)
        self._telemetry.bind(f"tcp://{self.config.host}:{self.config.port + 1}")
        self._running.set()
        for target in (self._control_thread, self._command_thread, self._telemetry_thread):
            t = threading.Thread(target=target, name=target.__name__, daemon=True)
            t.start()
            self._threads.append(t)
        self._event(
            "started",
            f"serving {self.robot.capabilities.name} on "
            f"tcp://{self.config.host}:{self.config.port}",
        )

    def shutdown(self) -> None:
        """Stop the threads, hold the arm, release the sockets and the robot."""
        self._stop_request = "server shutting down"
        self._running.clear()
        for t in self._threads:
            t.join(timeout=2.0)
        self._commands.close()
        self._telemetry.close()
        self._context.term()
        self.robot.disconnect()
        self._event("stopped", "server stopped")

    def __enter__(self) -> RobotServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    # -- the control thread (owns the robot) -------------------------------------------------------
    def _control_thread(self) -> None:
        loop = ControlLoop(self.robot, realtime=self.config.realtime, on_tick=self._tick)
        while self._running.is_set():
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                loop.run(_Follow(self, IDLE_CHUNK), max_seconds=IDLE_CHUNK + 0.01)
                continue
            self._run_job(job)

    def _run_job(self, job: Job) -> None:
        job.status = "running"
        self._program = None  # set by the executor once the skill has planned
        self._stop_request = self._late_reason = None
        self._late_run = 0
        self._remote_command = None
        self._event("skill", f"job {job.id}: {job.skill} {job.params} started")
        try:
            job.result = execute(
                get_skill(job.skill),
                job.params,
                self.robot,
                realtime=self.config.realtime,
                on_tick=self._tick,
                abort=self._abort_reason,
                on_program=self._set_program,
            )
        except KeyError as exc:
            job.result = SkillResult(job.skill, job.params, False, None, str(exc.args[0]))
        except Exception as exc:  # a bug must not kill the control thread: report it
            log.exception("job %s failed", job.id)
            job.result = SkillResult(job.skill, job.params, False, None, f"internal error: {exc}")
        job.status = "done"
        outcome = "success" if job.result.success else f"{job.result.failure}: {job.result.message}"
        self._event("skill", f"job {job.id}: {job.skill} ended: {outcome}")

    def _tick(self, state: RobotState, sent: JointCommand) -> None:
        """Per-tick bookkeeping in the control thread: stops, mail, lateness, snapshot."""
        self.ticks += 1
        if self._estop_request is not None:
            reason, self._estop_request = self._estop_request, None
            self.robot.estop(reason)
            # Ticks from the request's arrival to the latch (from then on: holds only).
            self.estop_latency_ticks = round(
                (state.time - self._estop_requested_at) / self.robot.capabilities.control_dt
            )
        now = time.perf_counter()
        period = self.robot.capabilities.control_dt
        if self._last_tick_wall and now - self._last_tick_wall > 2.0 * period:
            self.late_ticks += 1
            self._late_run += 1
            if self._late_run >= self.config.late_tick_limit and self._late_reason is None:
                self._late_reason = f"{self._late_run} late control ticks in a row"
                self._event("late", self._late_reason)
        else:
            self._late_run = 0
        self._last_tick_wall = now
        while not self._mailbox.empty():
            kind, payload, reply = self._mailbox.get_nowait()
            reply.put(self._serve_mail(kind, payload))
        if self._watch_still is not None and float(np.max(np.abs(state.dq))) < STILL:
            self.silence_still_delay = state.time - self._watch_still
            self._watch_still = None
        self._snapshot = {
            "time": state.time,
            "q": state.q,
            "dq": state.dq,
            "gripper_width": state.gripper_width,
            "command": sent.values,
            "estopped": self.robot.safety.estopped,
        }

    def _set_program(self, program) -> None:
        self._program = program

    def _abort_reason(self) -> str | None:
        """Why the running skill must stop now (checked every tick), or None."""
        if self._stop_request:
            return self._stop_request
        if self._late_reason:
            return self._late_reason
        now = time.monotonic()
        silent = now - self._last_heartbeat
        if self._controller is not None and silent > self.config.heartbeat_timeout:
            # How late after the timeout the stop came (the benchmark reports it).
            self.silence_stop_delay = silent - self.config.heartbeat_timeout
            self.silence_stopped_at = now
            # Robot time at which the timeout expired: the benchmark times the arm's rest from it.
            self._watch_still = float(self._snapshot.get("time", 0.0)) - self.silence_stop_delay
            reason = f"client {self._controller} silent for {silent * 1e3:.0f} ms"
            self._event("silence", reason + ": skill stopped, protective stop (holding)")
            self._stop_request = reason
            # A protective stop: hold the commanded position from the next tick (no ramp),
            # cleared when the controlling client says hello again.
            self._estop_request, self._protective = reason, True
            self._estop_requested_at = float(self._snapshot.get("time", 0.0))
            return reason
        return None

    def _serve_mail(self, kind: str, payload: Any) -> Any:
        if kind == "observe":
            return observe(self.robot).to_dict()
        if kind == "gripper":
            self.robot.gripper(GripperCommand(**payload))
            return None
        if kind == "reset_estop":
            self.robot.reset_estop()
            return None
        raise ValueError(kind)

    def _mail(self, kind: str, payload: Any = None) -> Any:
        reply: queue.Queue = queue.Queue()
        self._mailbox.put((kind, payload, reply))
        return reply.get(timeout=MAILBOX_TIMEOUT)

    # -- the command thread ------------------------------------------------------------------------
    def _command_thread(self) -> None:
        poller = zmq.Poller()
        poller.register(self._commands, zmq.POLLIN)
        while self._running.is_set():
            if not poller.poll(50):
                continue
            frames = self._commands.recv_multipart()
            identity, payload = frames[0], frames[-1]
            try:
                reply = self._handle(unpack(payload))
            except ProtocolError as exc:
                self._event("malformed", str(exc))
                reply = {"ok": False, "error": f"malformed request: {exc}"}
            except Exception as exc:  # never let one request take the server down
                log.exception("request failed")
                reply = {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"}
            self._commands.send_multipart([identity, b"", pack(reply)])

    def _handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        op = parse_request(msg)
        if self.config.token and msg.get("token") != self.config.token:
            self._event("auth", f"refused {op}: wrong or missing token")
            return {"ok": False, "error": "wrong or missing token"}
        client = str(msg.get("client", "anonymous"))
        if op == "estop":  # anyone may stop the robot
            self._estop_requested_at = float(self._snapshot.get("time", 0.0))
            self._protective = False  # an operator's e-stop needs an explicit reset
            self._estop_request = f"emergency stop from {client}: {msg.get('reason', '')}".strip()
            self._stop_request = "emergency stop"
            self._event("estop", self._estop_request)
            return {"ok": True}
        if op in ("state", "events", "job", "observe", "heartbeat", "hello", "describe"):
            return getattr(self, f"_op_{op}")(msg, client)
        if not self._has_control(client):
            return {
                "ok": False,
                "error": f"client {client} does not have control; send hello first"
                + (f" (controlled by {self._controller})" if self._controller else ""),
            }
        return getattr(self, f"_op_{op}")(msg, client)

    def _has_control(self, client: str) -> bool:
        return self._controller == client

    def _op_hello(self, msg: dict, client: str) -> dict:
        stale = (
            time.monotonic() - self._last_heartbeat > LEASE_GRACE * self.config.heartbeat_timeout
        )
        if self._controller not in (None, client) and not stale:
            self._event("busy", f"refused control to {client}: controlled by {self._controller}")
            return {"ok": False, "error": f"busy: the robot is controlled by {self._controller}"}
        self._controller, self._last_heartbeat = client, time.monotonic()
        self._event("control", f"{client} has control")
        if self._protective:  # a silence stop, not an operator's e-stop: clear it
            self._protective = False
            self._mail("reset_estop")
            self._event("estop", "protective stop cleared: a client is back in control")
        caps = self.robot.capabilities
        return {
            "ok": True,
            "robot": caps.name,
            "dof": caps.dof,
            "control_rate_hz": caps.control_rate_hz,
            "joint_lower": caps.joint_lower,
            "joint_upper": caps.joint_upper,
            "heartbeat_timeout": self.config.heartbeat_timeout,
            "telemetry_port": self.config.port + 1,
        }

    def _op_describe(self, msg: dict, client: str) -> dict:
        caps = self.robot.capabilities
        gripper = caps.gripper
        return {
            "ok": True,
            "name": caps.name,
            "dof": caps.dof,
            "joint_names": list(caps.joint_names),
            "joint_lower": caps.joint_lower,
            "joint_upper": caps.joint_upper,
            "velocity_limit": caps.velocity_limit,
            "acceleration_limit": caps.acceleration_limit,
            "torque_limit": caps.torque_limit,
            "control_rate_hz": caps.control_rate_hz,
            "command_modes": list(caps.command_modes),
            "gripper": None
            if gripper is None
            else [gripper.max_width, gripper.max_force, gripper.max_speed],
        }

    def _op_bye(self, msg: dict, client: str) -> dict:
        self._controller = None
        self._event("control", f"{client} released control")
        return {"ok": True}

    def _op_heartbeat(self, msg: dict, client: str) -> dict:
        if client == self._controller:
            self._last_heartbeat = time.monotonic()
        return {"ok": True, "server_time": time.time()}

    def _op_execute(self, msg: dict, client: str) -> dict:
        if any(j.status != "done" for j in self._all_jobs.values()):
            return {"ok": False, "error": "busy: a skill is running; wait for it or send stop"}
        if self.robot.safety.estopped:
            return {"ok": False, "error": "emergency stop is latched: send reset_estop first"}
        job = Job(next(self._ids), msg["skill"], dict(msg.get("params", {})), client)
        self._all_jobs[job.id] = job
        self._jobs.put(job)
        return {"ok": True, "id": job.id}

    def _op_job(self, msg: dict, client: str) -> dict:
        job = self._all_jobs.get(msg["id"])
        if job is None:
            return {"ok": False, "error": f"no job {msg['id']}"}
        return {
            "ok": True,
            "status": job.status,
            "result": job.result.to_dict() if job.result else None,
        }

    def _op_observe(self, msg: dict, client: str) -> dict:
        return {"ok": True, "world": self._mail("observe")}

    def _op_state(self, msg: dict, client: str) -> dict:
        return {"ok": True, **self._snapshot}

    def _op_command(self, msg: dict, client: str) -> dict:
        values = np.asarray(msg["values"], dtype=float)
        stamp = float(self._snapshot.get("time", 0.0))  # stamped in robot time on arrival
        self._remote_command = JointCommand(msg["mode"], values, stamp)
        return {"ok": True}

    def _op_gripper(self, msg: dict, client: str) -> dict:
        cmd = {
            k: float(msg.get(k, d)) for k, d in (("width", 0.08), ("force", 40.0), ("speed", 0.1))
        }
        self._mail("gripper", cmd)
        return {"ok": True}

    def _op_stop(self, msg: dict, client: str) -> dict:
        self._stop_request = f"stop requested by {client}"
        self._remote_command = None
        self._event("stop", self._stop_request)
        return {"ok": True}

    def _op_reset_estop(self, msg: dict, client: str) -> dict:
        self._mail("reset_estop")
        self._event("estop", f"reset by {client}")
        return {"ok": True}

    def _op_events(self, msg: dict, client: str) -> dict:
        return {"ok": True, "events": list(self.events)[-int(msg.get("last", 100)) :]}

    # -- telemetry ---------------
    def _telemetry_thread(self) -> None:
        period = 1.0 / self.config.telemetry_hz
        next_time = time.monotonic()
        while self._running.is_set():
            running = next((j for j in self._all_jobs.values() if j.status == "running"), None)
            program = self._program
            frame = {
                **self._snapshot,
                "skill": running.skill if running else None,
                "job": running.id if running else None,
                # What the skill is doing now: its current primitive, and how far along.
                "step": program.label if running and program else None,
                "progress": round(
                    min(program.index, len(program.primitives)) / len(program.primitives), 3
                )
                if running and program
                else None,
                "late_ticks": self.late_ticks,
                "ticks": self.ticks,
                "events": len(self.events),
            }
            self._telemetry.send_multipart([TELEMETRY_TOPIC, pack(frame)])
            next_time += period
            time.sleep(max(0.0, next_time - time.monotonic()))

    def _event(self, kind: str, message: str) -> None:
        entry = {
            "wall_time": time.time(),
            "kind": kind,
            "message": message,
            "robot_time": float(self._snapshot.get("time", 0.0)),
        }
        self.events.append(entry)
        log.info("%s: %s", kind, message)
