"""The robot server's command thread: its ROUTER socket and one handler per request.

The thread reads each request from the ROUTER socket, authenticates it per connection
(`hw.server.session`), checks that the sender has control unless the op is one of
`OPEN_OPS`, and answers it with the handler named after it: ``_op_<op>(msg, rid)``, which
returns the reply or raises `RequestFailed`. Handlers never touch the robot: what needs it
goes through the mailbox (`hw.server.mailbox`) to the control thread. See
`hw.server.server` for the protocol as a whole.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import zmq

from skillstack.hw.server.core import COMMAND_POLL_MS, Job, RequestFailed, log, one_line
from skillstack.hw.server.mailbox import Mailbox
from skillstack.hw.server.protocol import ProtocolError, pack, parse_request, unpack
from skillstack.hw.server.session import AuthError
from skillstack.hw.server.supervision import Supervision
from skillstack.robot.types import JointCommand

LEASE_GRACE = 5.0  # heartbeat timeouts after which a silent controller loses its lease
PROTECTIVE_MESSAGE = "protective stop after client silence: send hello to resume"
ESTOP_MESSAGE = "emergency stop is latched: send reset_estop first"
NOT_ARMED_MESSAGE = "joint streaming is disarmed after a stop: send hello to re-arm"


# Ops that need no control (reset checks it itself: the controller, or anyone once its lease
# has lapsed); the rest are the controlling client's alone.
OPEN_OPS = frozenset(
    {"estop", "state", "events", "job", "observe", "heartbeat", "hello", "describe"}
    | {"nonce", "join", "reset"}
)


class CommandThread(Mailbox, Supervision):
    """The command thread and its request handlers (a part of `RobotServer`)."""

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
