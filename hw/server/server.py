# Over 400 lines: one class whose three threads share the supervision state.
"""The robot server: owns one robot, runs its control loop next to it, runs skill jobs locally.

Three threads. The **control thread** owns the robot and is the only one that touches it:
it runs skill jobs through the injected `SkillRunner` at the robot's rate, paced to the wall
clock, and between jobs holds position (or follows the joint commands of a `RemoteRobot`
client). The **command thread** answers requests on a ZeroMQ ROUTER socket; anything that
must touch the robot is handed to the control thread, which picks it up within a tick. The
**telemetry thread** publishes the latest state on a PUB socket at ``telemetry_hz``.

The server knows nothing of skills or world models (``hw/`` sits below ``skills/``): what
runs a skill call and what observes the world are callables handed to it (`hw.server.jobs`;
the skills-side implementation is `skills.jobs.SkillJobs`). A server without a runner
refuses ``execute``; without an observer it refuses ``observe``.

Identity is the transport's (`hw.server.session`): control belongs to the connection that
said hello (and the connections that joined its session), never to a name in a message; with
a token every message is authenticated per connection with replay protection.

Supervision: the controlling client must send heartbeats (on any of its connections); if it
is silent for longer than ``heartbeat_timeout`` while a skill runs or a joint stream is
followed, the skill is stopped and the arm is brought to rest where it is, from that tick:
a *protective stop*, which never latches the e-stop and is cleared when the controlling
client (or, once its lease has lapsed, another one) says hello again. Silence counts only
once the command thread has looked at its socket past the deadline: a server starved of CPU
does not blame its client. A joint stream that stalls while the arm moves is a protective
stop too, and after any stop a stream needs an explicit re-arm (hello, or reset_estop). An
operator's *emergency stop* latches until an explicit ``reset_estop``. A run of late control
ticks stops the skill too.

The control thread never dies. Whatever a request raises (the runner, the observer, the
driver) is caught there: the arm holds and the client gets ``{"ok": False, "error": one
line, "code": ...}`` (codes in `hw.server.protocol.ERROR_CODES`). If the holding loop itself
fails (a driver error, a diverged simulation, a bug), the arm is held and the loop retried;
three failures in a row and the server is *degraded*: the fault is an event, telemetry,
``state`` and every reply say so, requests that need the arm are refused with code
``robot_fault``, reads are retried at a low rate, and a ``reset`` request clears it once
the robot answers with a finite state. Every event is logged with a timestamp.
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

from skillstack.hw.robot import Robot, RobotError
from skillstack.hw.server.jobs import JobHooks, SkillRunner, UnknownSkill, WorldObserver
from skillstack.hw.server.protocol import (
    MAX_MESSAGE_BYTES,
    TELEMETRY_TOPIC,
    ProtocolError,
    pack,
    parse_request,
    unpack,
)
from skillstack.hw.server.session import AuthError, Sessions
from skillstack.robot.loop import ControlLoop, TickDeadlines
from skillstack.robot.types import GripperCommand, JointCommand, RobotState

log = logging.getLogger("skillstack.server")

LOOPBACK = ("127.0.0.1", "localhost", "::1")
IDLE_CHUNK = 0.05  # s of holding between checks for new jobs
STILL = 0.02  # rad/s, every joint slower than this: the arm is holding still
MAILBOX_TIMEOUT = 1.0  # s the command thread waits for the control thread (< client timeout)
LEASE_GRACE = 5.0  # heartbeat timeouts after which a silent controller loses its lease
FAULT_AFTER = 3  # consecutive failures of the holding loop that mark the server degraded
SILENCE_BACKSTOP = 3.0  # heartbeat timeouts of silence that stop even a starved server
COMMAND_POLL_MS = 5  # the command thread looks at its socket at least this often
ERROR_GAP = 0.01  # s between two attempts of the holding loop after a failure
FAULT_RETRY = 0.5  # s between read attempts while faulted
FAULT_POLL = 0.01  # s between mailbox checks while faulted
STALL_TICKS = 20  # control periods without a tick, mid-skill, that mean the driver is blocked
PROTECTIVE_MESSAGE = "protective stop after client silence: send hello to resume"
SHUTDOWN_JOIN_S = 10.0  # s that shutdown waits for its threads (a skill ends at its next tick)
ESTOP_MESSAGE = "emergency stop is latched: send reset_estop first"
NOT_ARMED_MESSAGE = "joint streaming is disarmed after a stop: send hello to re-arm"


# Ops that need no control (reset checks it itself: the controller, or anyone once its lease
# has lapsed); the rest are the controlling client's alone.
OPEN_OPS = frozenset(
    {"estop", "state", "events", "job", "observe", "heartbeat", "hello", "describe"}
    | {"nonce", "join", "reset"}
)


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


class _Follow:
    """Idle policy: hold the commanded joints, or follow fresh remote joint commands."""

    def __init__(self, server: RobotServer, seconds: float):
        self.server, self.seconds = server, seconds
        self._q: np.ndarray | None = None  # set by reset()
        self._t0 = 0.0
        self._following = False
        self.done = False

    def reset(self, state: RobotState) -> None:
        self._q = _commanded(state)
        self._t0 = state.time
        self._following = False
        self.done = False

    def step(self, state: RobotState) -> JointCommand:
        self.done = state.time - self._t0 >= self.seconds or self.server._jobs.qsize() > 0
        remote = self.server._remote_command
        if remote is not None and self.server._stream_stopped(state, remote):
            remote = None
        if remote is not None:
            self._following = True
            return remote
        if self._following or self.server.robot.braking:
            # The stream ended (stop, an error), or a stop's brake runs: hold where the stop
            # leaves the arm (the brake re-arms the filter where the arm comes to rest).
            self._following = False
            self._q = self.server.robot.safety.q_prev
        assert self._q is not None  # the loop calls reset() before step()
        return JointCommand("joint_position", self._q, state.time)


def _commanded(state: RobotState) -> np.ndarray:
    return (state.q if state.q_desired is None else state.q_desired).copy()


class RobotServer:
    """Serve one robot on ZeroMQ sockets; see the module docstring.

    ``run_skill`` runs one skill call (`SkillRunner`), ``observe`` returns the world state
    (`WorldObserver`); both run in the control thread. `skills.jobs.SkillJobs` provides both.
    """

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

    # -- lifetime -----------------------------------------------------------------------------
    def start(self) -> None:
        """Connect the robot, bind the sockets and start the threads."""
        if not self.robot.connected:
            self.robot.connect()
        self._commands = self._context.socket(zmq.ROUTER)
        self._commands.setsockopt(zmq.LINGER, 0)
        # Bigger frames are never read in full: libzmq drops the connection at the header.
        self._commands.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES + 4096)
        self._commands.bind(f"tcp://{self.config.host}:{self.config.port}")
        self._telemetry = self._context.socket(zmq.PUB)
        self._telemetry.setsockopt(zmq.LINGER, 0)
        self._telemetry.bind(f"tcp://{self.config.host}:{self.config.port + 1}")
        self._running.set()
        for target in (self._control_thread, self._command_thread, self._telemetry_thread):
            t = threading.Thread(target=target, name=target.__name__, daemon=True)
            t.start()
            self._threads.append(t)
        self._control = self._threads[0]
        self._event(
            "started",
            f"serving {self.robot.capabilities.name} on "
            f"tcp://{self.config.host}:{self.config.port}",
        )

    def shutdown(self) -> None:
        """Stop the threads, hold the arm, release the sockets and the robot."""
        self._stop_request = "server shutting down"
        self._running.clear()
        deadline = time.monotonic() + SHUTDOWN_JOIN_S
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            # A zmq socket must not be closed under a thread that still uses it, and a context
            # with an open socket never terminates: leave both to the process rather than hang.
            log.warning("server threads still running after %.0f s: %s", SHUTDOWN_JOIN_S, stuck)
        else:
            self._commands.close()
            self._telemetry.close()
            self._context.term()
        try:
            self.robot.disconnect()
        except Exception as exc:  # a robot that is gone cannot be stopped: say so, go on
            log.warning("disconnecting the robot failed: %s", one_line(exc))
        self._event("stopped", "server stopped")

    def __enter__(self) -> RobotServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    @property
    def fault(self) -> str | None:
        """Why the robot is faulted (it stopped answering), or None."""
        return self._fault

    @property
    def late_ticks(self) -> int:
        """Control ticks that came late (`TickDeadlines`, one period of jitter allowed)."""
        return self._deadlines.late_ticks

    # -- the control thread (owns the robot) -------------------------------------------------------
    def _control_thread(self) -> None:
        while self._running.is_set():
            try:
                self._control_loop()
            except BaseException as exc:  # the thread holding the arm never dies
                self._loop_failed(exc, FAULT_AFTER)

    def _control_loop(self) -> None:
        loop = ControlLoop(self.robot, realtime=self.config.realtime, on_tick=self._tick)
        failures = 0
        while self._running.is_set():
            if self._fault is not None:
                self._serve_faulted()
                continue
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                job = None
            try:
                if job is None:
                    self._activity = "holding the arm"
                    loop.run(_Follow(self, IDLE_CHUNK), max_seconds=IDLE_CHUNK + 0.01)
                    failures = 0
                else:
                    self._run_job(job)
            except Exception as exc:  # the loop that holds the arm must never die
                failures += 1
                self._loop_failed(exc, failures)

    def _loop_failed(self, exc: BaseException, failures: int) -> None:
        """The holding loop raised: hold the arm; a transient failure (a driver recovering
        from a reflex) is retried, `FAULT_AFTER` in a row mark the server degraded."""
        try:
            if failures == 1:
                log.error("control loop failed: %s", one_line(exc), exc_info=exc)
                self._event("error", f"control loop: {one_line(exc)}")
            self._remote_command, self._armed = None, False
            self._hold()
            if failures < FAULT_AFTER:
                time.sleep(ERROR_GAP)
                return
            try:
                state = self.robot.read()
            except Exception as read_exc:
                self._set_fault(
                    f"robot connection lost: {one_line(read_exc)}; the arm holds: restart the "
                    "server once the arm is reachable, or send reset"
                )
            else:
                what = "" if np.isfinite(state.q).all() else " (the robot's state is not finite)"
                self._set_fault(
                    f"control loop failed{what}: {one_line(exc)}; the arm holds: send reset "
                    "once the cause is fixed"
                )
        except BaseException:  # nor while reporting
            self._fault = self._fault or f"control loop failed: {one_line(exc)}"
        time.sleep(ERROR_GAP)

    def _hold(self) -> None:
        """Hold the arm where it was commanded, if the robot still answers."""
        try:
            self.robot.stop()
        except Exception as exc:
            log.warning("could not hold the arm: %s", one_line(exc))

    def _set_fault(self, message: str) -> None:
        self._fault = message
        self._activity = "faulted"
        self._event("fault", message)
        self._fail_queued_jobs()

    def _fail_queued_jobs(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            job.status, job.code, job.error = "failed", "robot_fault", self._fault
            self._event("skill", f"job {job.id}: {job.skill} refused: {self._fault}")

    def _serve_faulted(self) -> None:
        """While faulted: answer the mailbox (reset among it), refuse jobs, retry reads."""
        answered = False
        next_read = time.monotonic() + FAULT_RETRY
        while self._running.is_set() and self._fault is not None:
            self._fail_queued_jobs()
            self._serve_mailbox()
            if time.monotonic() >= next_read:
                next_read = time.monotonic() + FAULT_RETRY
                try:
                    state = self.robot.read()
                except Exception:
                    answered = False
                else:
                    self._snapshot = {**self._snapshot, **_state_fields(state)}
                    if not answered:
                        answered = True
                        self._event(
                            "fault", "the robot answers reads again; restart the server to resume"
                        )
            time.sleep(FAULT_POLL)

    def _run_job(self, job: Job) -> None:
        self._in_job = job
        try:
            self._run_job_inner(job)
        finally:
            self._in_job = None

    def _stalled(self, job: Job) -> None:
        """Fail a running job whose control loop stopped ticking mid-motion (a driver call
        that blocks: the connection to the arm is gone). Called by the command thread, so the
        client hears of it without waiting for the driver to give up; the arm's own
        controller brakes when its command stream stops."""
        if job.status != "running" or self._progress is None or not self._last_tick_wall:
            return  # not moving yet: planning does not tick
        since = time.perf_counter() - self._last_tick_wall
        if since <= self._stall_limit:
            return
        job.status, job.code = "failed", "robot_fault"
        job.error = (
            f"control loop stalled during {job.skill}: no control tick for {since * 1e3:.0f} ms "
            "(the driver is blocked: is the connection to the arm lost?)"
        )
        self._event("skill", f"job {job.id}: {job.skill} failed [robot_fault]: {job.error}")

    def _run_job_inner(self, job: Job) -> None:
        job.status = "running"
        self._activity = f"running job {job.id} ({job.skill})"
        self._progress = None  # reported by the runner once the skill has planned
        self._stop_request = self._late_reason = None
        self._deadlines.late_run = 0
        self._remote_command = None
        self._event("skill", f"job {job.id}: {job.skill} {job.params} started")
        hooks = JobHooks(self.config.realtime, self._tick, self._abort_reason, self._set_progress)
        try:
            run_skill = self._run_skill
            assert run_skill is not None  # `_op_execute` queues no job without a runner
            result = run_skill(self.robot, job.skill, job.params, hooks)
            if not isinstance(result, dict):
                raise TypeError(f"the skill runner returned {type(result).__name__}, not a dict")
        except Exception as exc:  # a bug or a driver error must not kill the control thread
            code, error = self._classify("execute", exc, job.skill)
            self._hold()
            if job.status == "running":  # not already failed by the stall watchdog
                job.code, job.error, job.status = code, error, "failed"
                self._event("skill", f"job {job.id}: {job.skill} failed [{job.code}]: {job.error}")
            return
        if job.status != "running":
            return  # failed by the stall watchdog; the client has been told
        job.result = result
        job.status = "done"
        outcome = (
            "success"
            if result.get("success")
            else f"{result.get('failure')}: {result.get('message', '')}"
        )
        self._event("skill", f"job {job.id}: {job.skill} ended: {outcome}")

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

    def _tick(self, state: RobotState, sent: JointCommand) -> None:
        """Per-tick bookkeeping in the control thread: stops, mail, lateness, snapshot."""
        self.ticks += 1
        if not np.isfinite(state.q).all() or not np.isfinite(state.dq).all():
            raise RobotError("the robot's joint state is not finite (a diverged simulation?)")
        if self._estop_request is not None:
            reason, self._estop_request = self._estop_request, None
            self.robot.estop(reason)
            # Ticks from the request's arrival to the latch (from then on: holds only).
            self.estop_latency_ticks = round(
                (state.time - self._estop_requested_at) / self.robot.capabilities.control_dt
            )
        now = time.perf_counter()
        deadlines = self._deadlines
        if deadlines.end(now):
            run = deadlines.late_run
            if run >= self.config.late_tick_limit and self._late_reason is None:
                self._late_reason = f"{run} late control ticks in a row"
                self._event("late", self._late_reason)
        self._last_tick_wall = now
        if not self._mailbox.empty():
            self._serve_mailbox()
        if self._watch_still is not None and float(np.max(np.abs(state.dq))) < STILL:
            self.silence_still_delay = state.time - self._watch_still
            self._watch_still = None
        self._snapshot = {
            **_state_fields(state),
            "command": sent.values,
            "estopped": self.robot.safety.estopped,
        }

    def _protective_stop(self, reason: str) -> None:
        """Bring the arm to rest where it is now, without latching the e-stop (control thread).

        For one tick the safety filter holds the measured joints (as an e-stop does: holding
        the last command would carry the arm on by its tracking lag), the drives brake
        (`Robot.brake`), and the filter unlatches; the holding loop keeps the arm where it
        came to rest until the controlling client says hello.
        """
        self._protective, self._armed, self._remote_command = reason, False, None
        safety = self.robot.safety
        if safety.estopped:  # an operator's e-stop already holds the arm
            return
        state = self.robot.read()
        safety.estop(f"protective stop: {reason}", state.time, hold=state.q)
        try:
            self.robot.command(JointCommand("joint_position", safety.q_prev, state.time))
            self.robot.brake()
        finally:
            safety.reset_estop()

    def _stream_stopped(self, state: RobotState, remote: JointCommand) -> bool:
        """Whether a followed joint stream must end now: its client fell silent, or the
        stream stalled while the arm moves (control thread). Either is a protective stop."""
        reason = self._silence_reason()
        age = state.time - remote.stamp
        if reason is None and age > self.config.heartbeat_timeout:
            if float(np.max(np.abs(state.dq))) < STILL:  # at its target: the stream just ended
                self._remote_command = None
                return True
            reason = f"joint stream stalled for {age * 1e3:.0f} ms while the arm moved"
            self._event("stall", reason + ": protective stop (at rest)")
        if reason is None:
            return False
        self._remote_command = None
        self._protective_stop(reason)
        return True

    def _set_progress(self, label: str, fraction: float) -> None:
        self._progress = (str(label), float(fraction))

    def _abort_reason(self) -> str | None:
        """Why the running skill must stop now (checked every tick), or None."""
        if self._stop_request:
            return self._stop_request
        if self._late_reason:
            return self._late_reason
        reason = self._silence_reason()
        if reason is not None:
            self._stop_request = reason
            # A protective stop: the arm is brought to rest from this tick, cleared when the
            # controlling client says hello again.
            self._protective_stop(reason)
        return reason

    def _silence_reason(self) -> str | None:
        """Why the controlling client counts as silent now (reported once), or None.

        Silent: no heartbeat from it for ``heartbeat_timeout``, and the command thread has
        looked at its socket since that deadline, give or take one of its polls (so a
        heartbeat that waits, unread, in a
        server starved of CPU is not the client's silence), or silence past the backstop.
        """
        control = self._sessions.control
        if control is None or self._protective is not None:
            return None
        now = time.monotonic()
        timeout = self.config.heartbeat_timeout
        silent = now - self._last_heartbeat
        if silent <= timeout:
            return None
        looked = self._polled_at - self._last_heartbeat > timeout - COMMAND_POLL_MS / 1e3
        if not looked and silent <= SILENCE_BACKSTOP * timeout:
            return None
        # How late after the timeout the stop came (the benchmark reports it).
        self.silence_stop_delay = silent - timeout
        self.silence_stopped_at = now
        # Robot time at which the timeout expired: the benchmark times the arm's rest from it.
        self._watch_still = float(self._snapshot.get("time", 0.0)) - self.silence_stop_delay
        reason = f"controlling client ({control.label}) silent for {silent * 1e3:.0f} ms"
        self._protective = reason  # reported once; the tick brings the arm to rest
        self._event("silence", reason + ": protective stop (the arm is brought to rest)")
        return reason

    def _serve_mailbox(self) -> None:
        """Answer every waiting request (control thread); never raises."""
        while True:
            try:
                mail = self._mailbox.get_nowait()
            except queue.Empty:
                return
            if not mail.take():
                continue
            activity, self._activity = self._activity, f"carrying out {mail.kind}"
            try:
                if self._fault is not None and mail.kind != "reset":
                    raise RequestFailed("robot_fault", self._fault)
                answer: tuple[str, Any] = ("ok", self._serve_mail(mail.kind, mail.payload))
            except RequestFailed as exc:
                answer = ("error", exc)
            except Exception as exc:  # a bad request or a driver error: hold, report, go on
                self._remote_command = None  # the idle loop holds from the next tick
                answer = ("error", RequestFailed(*self._classify(mail.kind, exc)))
            finally:
                self._activity = activity
            mail.reply.put(answer)

    def _serve_mail(self, kind: str, payload: Any) -> Any:
        if kind == "observe":
            observe = self._observe
            assert observe is not None  # `_op_observe` mails no request without an observer
            return observe(self.robot)
        if kind == "gripper":
            self.robot.gripper(GripperCommand(**payload))
            return None
        if kind == "reset_estop":
            self.robot.reset_estop()
            return None
        if kind == "reset":
            return self._reset()
        raise RequestFailed("internal", f"the control thread has no request {kind!r}")

    def _reset(self) -> None:
        """Clear a degraded server if the robot answers with a finite state (control thread)."""
        if self._fault is None:
            return
        state = self.robot.read()
        if not (np.isfinite(state.q).all() and np.isfinite(state.dq).all()):
            raise RequestFailed(
                "robot_fault", "reset refused: the robot's joint state is still not finite"
            )
        self.robot.safety.reset(state.q)  # hold where the arm is, from rest
        self._snapshot = {**self._snapshot, **_state_fields(state)}
        self._event("reset", f"degraded state cleared (was: {self._fault})")
        self._fault = None

    def _mail(self, kind: str, payload: Any = None) -> Any:
        """Hand a request to the control thread and wait for its answer (command thread)."""
        if self._control is None or not self._control.is_alive():
            raise RequestFailed("internal", "the control thread has stopped: restart the server")
        job = self._in_job
        if job is not None and job.code == "robot_fault":  # stalled: it would not answer
            raise RequestFailed("robot_fault", job.error or "the control loop stalled")
        mail = _Mail(kind, payload)
        self._mailbox.put(mail)
        try:
            status, value = mail.reply.get(timeout=MAILBOX_TIMEOUT)
        except queue.Empty:
            since = time.perf_counter() - self._last_tick_wall
            doing = f"it is {self._activity}"
            if self._last_tick_wall and since > 0.5:
                doing += f", no control tick for {since:.1f} s"
            if mail.abandon():
                message = (
                    f"the control thread started the {kind} request but did not finish it "
                    f"within {MAILBOX_TIMEOUT:.1f} s ({doing}); it may still take effect"
                )
            else:
                message = (
                    f"the control thread did not take the {kind} request within "
                    f"{MAILBOX_TIMEOUT:.1f} s ({doing}); it was dropped"
                )
            self._event("timeout", message)
            raise RequestFailed("control_timeout", message) from None
        if status == "error":
            raise value
        return value

    # -- the command thread ------------------------------------------------------------------------
    def _command_thread(self) -> None:
        poller = zmq.Poller()
        poller.register(self._commands, zmq.POLLIN)
        while self._running.is_set():
            looked = time.monotonic()
            if not poller.poll(0):
                self._polled_at = looked  # caught up: nothing waited unread at this time
                if not poller.poll(COMMAND_POLL_MS):
                    continue
            frames = self._commands.recv_multipart()
            identity, body = frames[0], frames[1:]
            if body and body[0] == b"":  # a DEALER's (or REQ's) empty delimiter
                body = body[1:]
            payload = body[0] if body else b""
            mac = body[1] if len(body) > 1 else None
            try:
                reply = self._handle(identity, payload, mac)
            except ProtocolError as exc:
                self._event("malformed", str(exc))
                reply = {"ok": False, "error": f"malformed request: {exc}", "code": "bad_request"}
            except Exception as exc:  # never let one request take the server down
                log.exception("request failed")
                reply = RequestFailed("internal", f"internal error: {one_line(exc)}").reply()
            self._commands.send_multipart([identity, b"", pack(reply)])

    def _handle(self, rid: bytes, payload: bytes, mac: bytes | None) -> dict[str, Any]:
        """Answer one request from the connection ``rid`` (command thread)."""
        msg = unpack(payload)
        op = parse_request(msg)
        if op == "nonce":  # the one unauthenticated op: it starts the connection's MACs
            return {"ok": True, "nonce": self._sessions.nonce(rid)}
        try:
            self._sessions.verify(rid, payload, mac, msg)
        except AuthError as exc:
            self._event("auth", f"refused {op}: {exc}")
            return {"ok": False, "error": str(exc), "code": "auth"}
        try:
            if op in OPEN_OPS:  # anyone may stop the robot, read, or ask for control
                reply = getattr(self, f"_op_{op}")(msg, rid)
            elif not self._sessions.controls(rid):
                control = self._sessions.control
                raise RequestFailed(
                    "no_control",
                    "this client does not have control; send hello first"
                    + (f" (controlled by {control.label})" if control else ""),
                )
            else:
                reply = getattr(self, f"_op_{op}")(msg, rid)
        except RequestFailed as exc:
            reply = exc.reply()
        if reply.get("ok") and self._fault is not None:
            reply["fault"] = self._fault
        return reply

    def _who(self, rid: bytes) -> str:
        """How events name a connection: its session's number, never an identifier."""
        control = self._sessions.control
        if control is not None and rid in control.rids:
            return f"the controlling client ({control.label})"
        return "a client without control"

    def _lease_lapsed(self) -> bool:
        grace = LEASE_GRACE * self.config.heartbeat_timeout
        return time.monotonic() - self._last_heartbeat > grace

    def _require_robot(self) -> None:
        """Refuse a request that needs the arm while the robot is faulted."""
        if self._fault is not None:
            raise RequestFailed("robot_fault", self._fault)

    def _stop_kind(self) -> str | None:
        """``"protective"`` (client silence), ``"estop"`` (operator, or the filter), or None."""
        if self.robot.safety.estopped or self._estop_request is not None:
            return "estop"
        return "protective" if self._protective is not None else None

    def _op_estop(self, msg: dict, rid: bytes) -> dict:
        self._estop_requested_at = float(self._snapshot.get("time", 0.0))
        self._armed, self._remote_command = False, None
        who = self._who(rid)
        self._estop_request = f"emergency stop from {who}: {msg.get('reason', '')}".strip(" :")
        self._stop_request = "emergency stop"
        self._event("estop", self._estop_request)
        return {"ok": True}

    def _op_join(self, msg: dict, rid: bytes) -> dict:
        if not self._sessions.join(rid, msg.get("session")):
            self._event("auth", "refused join: not the controlling session's secret")
            raise RequestFailed("no_control", "join refused: not the controlling session")
        self._last_heartbeat = time.monotonic()
        return {"ok": True}

    def _op_reset(self, msg: dict, rid: bytes) -> dict:
        control = self._sessions.control
        if control is not None and not self._sessions.controls(rid) and not self._lease_lapsed():
            raise RequestFailed(
                "no_control", f"reset is for the controlling client ({control.label})"
            )
        if self._fault is not None:
            self._mail("reset")
        return {"ok": True, "degraded": False}

    def _op_hello(self, msg: dict, rid: bytes) -> dict:
        self._require_robot()
        control = self._sessions.control
        if control is not None and not self._sessions.controls(rid) and not self._lease_lapsed():
            self._event("busy", f"refused control to a client: controlled by {control.label}")
            raise RequestFailed("busy", f"busy: the robot is controlled by {control.label}")
        control = self._sessions.take(rid)
        self._last_heartbeat = time.monotonic()
        self._event("control", f"{control.label} has control")
        if self._protective is not None:  # a silence stop, not an operator's e-stop: clear it
            self._protective = None
            self._event("protective", f"protective stop cleared: {control.label} is back")
        self._armed = True
        caps = self.robot.capabilities
        return {
            "ok": True,
            "session": control.secret,
            "degraded": self._fault is not None,
            "robot": caps.name,
            "dof": caps.dof,
            "control_rate_hz": caps.control_rate_hz,
            "joint_lower": caps.joint_lower,
            "joint_upper": caps.joint_upper,
            "heartbeat_timeout": self.config.heartbeat_timeout,
            "telemetry_port": self.config.port + 1,
            "skills": self._run_skill is not None,
            "observe": self._observe is not None,
        }

    def _op_describe(self, msg: dict, rid: bytes) -> dict:
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

    def _op_bye(self, msg: dict, rid: bytes) -> dict:
        self._event("control", f"{self._who(rid)} released control")
        self._sessions.release()
        self._armed, self._remote_command = False, None
        return {"ok": True}

    def _op_heartbeat(self, msg: dict, rid: bytes) -> dict:
        if self._sessions.controls(rid):
            self._last_heartbeat = time.monotonic()
        return {"ok": True, "server_time": time.time()}

    def _op_execute(self, msg: dict, rid: bytes) -> dict:
        self._require_robot()
        if self._run_skill is None:
            raise RequestFailed(
                "unsupported", "this server runs no skills: it was started without a skill runner"
            )
        busy = any(j.status in ("queued", "running") for j in self._all_jobs.values())
        if busy or self._in_job is not None:
            raise RequestFailed("busy", "busy: a skill is running; wait for it or send stop")
        stop = self._stop_kind()
        if stop == "protective":
            raise RequestFailed("protective_stop", PROTECTIVE_MESSAGE)
        if stop == "estop":
            raise RequestFailed("estop", ESTOP_MESSAGE)
        control = self._sessions.control
        label = control.label if control else "?"
        job = Job(next(self._ids), msg["skill"], dict(msg.get("params", {})), label)
        self._all_jobs[job.id] = job
        self._jobs.put(job)  # a fault from now on fails it within FAULT_POLL
        return {"ok": True, "id": job.id}

    def _op_job(self, msg: dict, rid: bytes) -> dict:
        job = self._all_jobs.get(msg["id"])
        if job is None:
            raise RequestFailed("no_job", f"no job {msg['id']}")
        self._stalled(job)
        reply = {"ok": True, "status": job.status, "result": job.result}
        if job.status == "failed":
            reply.update(error=job.error, code=job.code)
        return reply

    def _op_observe(self, msg: dict, rid: bytes) -> dict:
        self._require_robot()
        if self._observe is None:
            raise RequestFailed(
                "unsupported",
                "this server has no world observer: it was started without one",
            )
        return {"ok": True, "world": self._mail("observe")}

    def _op_state(self, msg: dict, rid: bytes) -> dict:
        return {
            "ok": True,
            **self._snapshot,
            "stop": self._stop_kind(),
            "degraded": self._fault is not None,
            "fault": self._fault,
            "armed": self._armed,
        }

    def _op_command(self, msg: dict, rid: bytes) -> dict:
        self._require_robot()
        if not self._armed and self._stop_kind() != "estop":  # under an e-stop: held anyway
            if self._protective is not None:
                raise RequestFailed("protective_stop", PROTECTIVE_MESSAGE)
            raise RequestFailed("not_armed", NOT_ARMED_MESSAGE)
        values = np.asarray(msg["values"], dtype=float)
        stamp = float(self._snapshot.get("time", 0.0))  # stamped in robot time on arrival
        self._remote_command = JointCommand(msg["mode"], values, stamp)
        return {"ok": True}

    def _op_gripper(self, msg: dict, rid: bytes) -> dict:
        self._require_robot()
        cmd = {
            k: float(msg.get(k, d)) for k, d in (("width", 0.08), ("force", 40.0), ("speed", 0.1))
        }
        self._mail("gripper", cmd)
        return {"ok": True}

    def _op_stop(self, msg: dict, rid: bytes) -> dict:
        self._stop_request = f"stop requested by {self._who(rid)}"
        self._remote_command, self._armed = None, False
        self._event("stop", self._stop_request)
        return {"ok": True}

    def _op_reset_estop(self, msg: dict, rid: bytes) -> dict:
        self._require_robot()
        self._mail("reset_estop")
        self._protective, self._armed = None, True
        self._event("estop", f"reset by {self._who(rid)}")
        return {"ok": True}

    def _op_events(self, msg: dict, rid: bytes) -> dict:
        return {"ok": True, "events": list(self.events)[-int(msg.get("last", 100)) :]}

    # -- telemetry ---------------
    def _telemetry_thread(self) -> None:
        period = 1.0 / self.config.telemetry_hz
        next_time = time.monotonic()
        failed = False
        while self._running.is_set():
            try:
                self._telemetry.send_multipart([TELEMETRY_TOPIC, pack(self._frame())])
                failed = False
            except Exception as exc:  # a bad frame must not end the stream
                if not failed:
                    log.exception("telemetry frame failed")
                    self._event("error", f"telemetry: {one_line(exc)}")
                failed = True
            next_time += period
            time.sleep(max(0.0, next_time - time.monotonic()))

    def _frame(self) -> dict[str, Any]:
        running = next((j for j in self._all_jobs.values() if j.status == "running"), None)
        progress = self._progress if running else None
        return {
            **self._snapshot,
            "skill": running.skill if running else None,
            "job": running.id if running else None,
            # What the skill is doing now: its current step, and how far along (0..1).
            "step": progress[0] if progress else None,
            "progress": round(progress[1], 3) if progress else None,
            "stop": self._stop_kind(),
            "fault": self._fault,
            "degraded": self._fault is not None,
            "late_ticks": self.late_ticks,
            "ticks": self.ticks,
            "events": len(self.events),
        }

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
