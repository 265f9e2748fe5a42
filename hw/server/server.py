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

`RobotServer` is one object; its parts are modules of their own: the shared state and
records (`hw.server.core`), the control thread (`hw.server.control`), its stops and
watchdogs (`hw.server.supervision`), the mailbox between the two threads
(`hw.server.mailbox`) and the command thread with its request handlers
(`hw.server.commands`). Lifetime and telemetry are here.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import zmq

from skillstack.hw.server.commands import (
    ESTOP_MESSAGE,
    LEASE_GRACE,
    NOT_ARMED_MESSAGE,
    OPEN_OPS,
    PROTECTIVE_MESSAGE,
    CommandThread,
)
from skillstack.hw.server.control import (
    ERROR_GAP,
    FAULT_AFTER,
    FAULT_POLL,
    FAULT_RETRY,
    IDLE_CHUNK,
    ControlThread,
)
from skillstack.hw.server.core import (
    COMMAND_POLL_MS,
    LOOPBACK,
    STALL_TICKS,
    STILL,
    Job,
    RequestFailed,
    ServerConfig,
    log,
    one_line,
)
from skillstack.hw.server.mailbox import MAILBOX_TIMEOUT
from skillstack.hw.server.protocol import MAX_MESSAGE_BYTES, TELEMETRY_TOPIC, pack
from skillstack.hw.server.supervision import SILENCE_BACKSTOP

# The server's parts live in modules of their own (see `ServerCore`); their public names
# stay importable from here, where they were defined before the split.
__all__ = [
    "COMMAND_POLL_MS",
    "ERROR_GAP",
    "ESTOP_MESSAGE",
    "FAULT_AFTER",
    "FAULT_POLL",
    "FAULT_RETRY",
    "IDLE_CHUNK",
    "LEASE_GRACE",
    "LOOPBACK",
    "MAILBOX_TIMEOUT",
    "NOT_ARMED_MESSAGE",
    "OPEN_OPS",
    "PROTECTIVE_MESSAGE",
    "SHUTDOWN_JOIN_S",
    "SILENCE_BACKSTOP",
    "STALL_TICKS",
    "STILL",
    "Job",
    "RequestFailed",
    "RobotServer",
    "ServerConfig",
    "one_line",
]

SHUTDOWN_JOIN_S = 10.0  # s that shutdown waits for its threads (a skill ends at its next tick)


class RobotServer(CommandThread, ControlThread):
    """Serve one robot on ZeroMQ sockets; see the module docstring.

    ``run_skill`` runs one skill call (`SkillRunner`), ``observe`` returns the world state
    (`WorldObserver`); both run in the control thread. `skills.jobs.SkillJobs` provides both.
    """

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
