"""The robot server's shared state, and what every part of it uses.

`RobotServer` (`hw.server.server`) is one object whose three threads share its supervision
state: the lease, the heartbeat, the stop requests, the fault, the snapshot of the arm. That
state is set up here, in `ServerCore`, so the parts that read and write it can live in
modules of their own and still be checked as one class: the control thread
(`hw.server.control`), the stops and watchdogs it runs every tick (`hw.server.supervision`),
the mailbox between the command and the control thread (`hw.server.mailbox`), and the
command thread with its request handlers (`hw.server.commands`). Also here: the server's
configuration, the records it keeps (`Job`, and `_Mail` for the mailbox), the error a
request fails with (`RequestFailed`), the event log and the constants more than one part
needs.
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

import zmq

from skillstack.hw.robot import Robot, RobotError
from skillstack.hw.server.jobs import SkillRunner, UnknownSkill, WorldObserver
from skillstack.hw.server.session import Sessions
from skillstack.robot.loop import TickDeadlines
from skillstack.robot.types import JointCommand, RobotState

log = logging.getLogger("skillstack.server")

LOOPBACK = ("127.0.0.1", "localhost", "::1")
STILL = 0.02  # rad/s, every joint slower than this: the arm is holding still
COMMAND_POLL_MS = 5  # the command thread looks at its socket at least this often
STALL_TICKS = 20  # control periods without a tick, mid-skill, that mean the driver is blocked


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


class RequestFailed(Exception):
    """A request that cannot be carried out: a code (`ERROR_CODES`) and a one-line reason."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def reply(self) -> dict[str, Any]:
        """The reply the client gets."""
        return {"ok": False, "error": self.message, "code": self.code}


@dataclass
class Job:
    """A skill call accepted by the server."""

    id: int
    skill: str
    params: dict[str, Any]
    client: str  # the controlling session's label (never an identifier)
    status: str = "queued"  # queued, running, done (a result), failed (error and code)
    result: dict[str, Any] | None = None
    error: str | None = None
    code: str | None = None
    accepted_at: float = field(default_factory=time.monotonic)


@dataclass
class _Mail:
    """A request handed from the command thread to the control thread."""

    kind: str
    payload: Any
    reply: queue.Queue = field(default_factory=lambda: queue.Queue(maxsize=1))
    lock: threading.Lock = field(default_factory=threading.Lock)
    taken: bool = False  # the control thread started on it
    abandoned: bool = False  # the command thread stopped waiting: do not start it any more

    def take(self) -> bool:
        """Start on it unless the command thread gave up waiting (control thread)."""
        with self.lock:
            self.taken = not self.abandoned
            return self.taken

    def abandon(self) -> bool:
        """Stop waiting; whether the control thread had started on it (command thread)."""
        with self.lock:
            self.abandoned = True
            return self.taken


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line, shortened to ``limit`` characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ServerCore:
    """The state the server's threads share, and the bookkeeping every one of them does.

    Constructed with `RobotServer`'s arguments (see there). The command and telemetry
    sockets are bound by `RobotServer.start`.
    """

    _commands: zmq.Socket  # the ROUTER socket (command thread)
    _telemetry: zmq.Socket  # the PUB socket (telemetry thread)

    def __init__(
        self,
        robot: Robot,
        config: ServerConfig | None = None,
        run_skill: SkillRunner | None = None,
        observe: WorldObserver | None = None,
    ):
        config = config or ServerConfig()
        config.check()
        self.robot = robot
        self.config = config
        self._run_skill = run_skill
        self._observe = observe
        self.events: deque[dict[str, Any]] = deque(maxlen=2000)
        self._jobs: queue.Queue[Job] = queue.Queue()
        self._all_jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._mailbox: queue.Queue[_Mail] = queue.Queue()
        self._sessions = Sessions(config.token)  # command thread only
        self._polled_at = 0.0  # the command thread saw its socket empty at this time
        self._armed = False  # joint streaming allowed (hello arms; any stop disarms)
        self._last_heartbeat = 0.0
        self._estop_request: str | None = None
        self._stop_request: str | None = None
        self._late_reason: str | None = None
        # One period of jitter allowed: a tick more than two periods after the one before is
        # late (`TickDeadlines`), and `late_tick_limit` of them in a row stop a skill.
        period = robot.capabilities.control_dt
        self._deadlines = TickDeadlines(period, tolerance=period)
        self._last_tick_wall = 0.0
        self._in_job: Job | None = None  # the job the control thread is inside, if any
        # A running skill's loop silent this long is stalled (at least a heartbeat timeout).
        self._stall_limit = max(
            config.heartbeat_timeout, STALL_TICKS * robot.capabilities.control_dt
        )
        self._remote_command: JointCommand | None = None
        self._progress: tuple[str, float] | None = None  # the running skill's step, fraction
        self._activity = "starting"  # what the control thread is doing (for error messages)
        self._fault: str | None = None  # set when the robot stopped answering; sticky
        self._snapshot: dict[str, Any] = {}
        self._running = threading.Event()
        self._threads: list[threading.Thread] = []
        self._control: threading.Thread | None = None
        self.ticks = 0
        self.estop_latency_ticks: int | None = None
        self.silence_stop_delay: float | None = None  # s after the heartbeat timeout
        self.silence_stopped_at = 0.0
        self._protective: str | None = None  # why a protective stop holds the arm
        self._watch_still: float | None = None
        self.silence_still_delay: float | None = None  # s from the timeout to an arm at rest
        self._estop_requested_at = 0.0
        self._context = zmq.Context()

    @property
    def fault(self) -> str | None:
        """Why the robot is faulted (it stopped answering), or None."""
        return self._fault

    @property
    def late_ticks(self) -> int:
        """Control ticks that came late (`TickDeadlines`, one period of jitter allowed)."""
        return self._deadlines.late_ticks

    def _stop_kind(self) -> str | None:
        """``"protective"`` (client silence), ``"estop"`` (operator, or the filter), or None."""
        if self.robot.safety.estopped or self._estop_request is not None:
            return "estop"
        return "protective" if self._protective is not None else None

    def _classify(self, kind: str, exc: Exception, skill: str = "") -> tuple[str, str]:
        """The code and one-line reason for an exception raised by a request; logged."""
        if isinstance(exc, UnknownSkill):
            return "unknown_skill", " ".join(str(exc.args[0] if exc.args else exc).split())
        if isinstance(exc, RobotError):
            code, message = "driver_error", f"robot driver error during {kind}: {one_line(exc)}"
        elif kind == "observe":
            code, message = "observe_error", f"the world observer failed: {one_line(exc)}"
        elif kind == "execute":
            code, message = "skill_error", f"skill {skill} failed in the server: {one_line(exc)}"
        else:
            code, message = "driver_error", f"{kind} failed: {one_line(exc)}"
        message += "; the arm holds"
        log.error("%s", message, exc_info=exc)
        self._event("error", f"[{code}] {message}")
        return code, message

    def _event(self, kind: str, message: str) -> None:
        entry = {
            "wall_time": time.time(),
            "kind": kind,
            "message": message,
            "robot_time": float(self._snapshot.get("time", 0.0)),
        }
        self.events.append(entry)
        log.info("%s: %s", kind, message)


def _state_fields(state: RobotState) -> dict[str, Any]:
    return {
        "time": state.time,
        "q": state.q,
        "dq": state.dq,
        "gripper_width": state.gripper_width,
    }
