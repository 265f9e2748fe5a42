# Over 400 lines: the two clients share the session, MAC and heartbeat machinery.
"""Clients of the robot server: a skill-execution client and a `Robot`-compatible one.

`RobotClient` sends requests and keeps the connection supervised: a background thread sends
heartbeats (on its own socket: ZeroMQ sockets are not shared between threads). A server that
does not answer within ``timeout`` raises `ServerLost` — a client never hangs. A server that
refuses raises `RemoteError`, whose ``code`` says why (`hw.server.protocol.ERROR_CODES`).
Skill results and world states travel as plain dicts here (``hw/`` knows no skill types);
`skills.jobs.RemoteArm` turns them into `SkillResult` and `WorldState` for the executive.
`RemoteRobot` is a `Robot` whose arm is behind the server (joint-level use).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import zmq

from skillstack.hw.robot import Robot
from skillstack.hw.server.protocol import TELEMETRY_TOPIC, pack, unpack
from skillstack.hw.server.session import derive_key, sign
from skillstack.robot.types import (
    Capabilities,
    GripperCommand,
    GripperSpec,
    JointCommand,
    RobotState,
)

HEARTBEAT_PERIOD = 0.02  # s, five heartbeats per default 100 ms timeout
POLL_PERIOD = 0.02  # s between job-status polls
LOST_POLL_MS = 5  # a waiting request checks this often whether the server was found gone
TICK_WAIT_PERIODS = 50  # control periods a RemoteRobot waits for the server's next tick


class ServerLost(RuntimeError):
    """The server stopped answering (killed, unplugged, overloaded)."""


class RemoteError(RuntimeError):
    """The server answered with an error: ``code`` (an `ERROR_CODES` key) and a one-line reason."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code


def parse_address(address: str) -> tuple[str, int]:
    """``tcp://host:port`` or ``host:port`` -> (host, port)."""
    rest = address.removeprefix("tcp://")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"robot address {address!r} must look like tcp://HOST:PORT")
    return host or "127.0.0.1", int(port)


class _Link:
    """One DEALER socket with its per-connection MAC key and counter (`hw.server.session`)."""

    def __init__(self, sock: zmq.Socket):
        self.sock = sock
        self.key: bytes | None = None
        self.n = 0
        self.ready = False  # the nonce handshake is done (or not needed)
        self.monitor: zmq.Socket | None = None  # connection events (the heartbeat link)


class RobotClient:
    """Talk to a robot server; see the module docstring.

    With a token, each socket first fetches a nonce and signs every request with a key
    derived from it (the token never travels); a captured message is worthless to anyone
    else. The heartbeat thread watches its connection: a server that closes it (killed,
    crashed) is reported at once, one that stops answering within ``timeout``; from then on
    every request raises `ServerLost` until heartbeats are answered again.
    """

    def __init__(
        self,
        address: str = "tcp://127.0.0.1:5555",
        token: str | None = None,
        timeout: float = 2.0,
        heartbeat_period: float = HEARTBEAT_PERIOD,
        context: zmq.Context | None = None,
    ):
        self.host, self.port = parse_address(address)
        self.address = f"tcp://{self.host}:{self.port}"
        self.token = token
        self.timeout = timeout
        self.heartbeat_period = heartbeat_period
        # The process-wide context, never one of our own: a context dropped unclosed is
        # terminated by the garbage collector, and if its sockets are collected in the same
        # cycle that termination waits for them forever (a hang at a random allocation).
        self._context = context or zmq.Context.instance()
        self._link = self._new_link()
        self._lock = threading.Lock()
        self._beating = threading.Event()
        self._beat_thread: threading.Thread | None = None
        self.heartbeat_error: str | None = None
        self.lost_at: float | None = None  # time.monotonic() when the server was found gone
        self._lost: str | None = None  # why the server counts as gone (requests raise)
        self.info: dict[str, Any] = {}
        self._session: str | None = None  # the control session's secret (from hello)
        self._rejoin = False  # the heartbeat link must join the session again

    def _new_link(self) -> _Link:
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.address)
        return _Link(sock)

    def _new_socket(self) -> zmq.Socket:
        return self._new_link().sock

    @property
    def lost(self) -> str | None:
        """Why the server counts as gone (its connection closed, or it stopped answering)."""
        return self._lost

    # -- requests -----------------------------------------------------------------------------
    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request and wait for its reply; `ServerLost` after ``timeout``, or at
        once when the heartbeat thread has found the server gone."""
        with self._lock:
            try:
                return self._request(self._link, op, fields)
            except ServerLost:
                self._link.sock.close()  # the request may be stuck in it: start afresh
                self._link = self._new_link()
                raise

    def _request(self, link: _Link, op: str, fields: dict[str, Any]) -> dict[str, Any]:
        if self._lost is not None and link is self._link:
            raise ServerLost(f"the robot server at {self.address} did not answer: {self._lost}")
        if not link.ready:
            link.ready = True
            if self.token:
                nonce = self._exchange(link, pack({"op": "nonce"}), None, "nonce")["nonce"]
                link.key = derive_key(self.token, nonce)
        message = {"op": op, **fields}
        if link.key is not None:
            message["n"] = link.n
            link.n += 1
        payload = pack(message)
        mac = sign(link.key, payload) if link.key is not None else None
        return self._exchange(link, payload, mac, op)

    def _exchange(self, link: _Link, payload: bytes, mac: bytes | None, op: str) -> dict[str, Any]:
        sock = link.sock
        sock.send_multipart([b"", payload] if mac is None else [b"", payload, mac])
        deadline = time.monotonic() + self.timeout
        while not sock.poll(LOST_POLL_MS):
            if link.monitor is not None and link.monitor.poll(0):
                link.monitor.recv_multipart()
                self._mark_lost("its connection closed (the server was killed or crashed)")
                raise ServerLost(f"the robot server at {self.address} did not answer: {self._lost}")
            if link is not self._link and not self._beating.is_set():
                raise ServerLost("heartbeats stopped")  # closing: do not wait on the socket
            if self._lost is not None and link is self._link:
                link.ready = False
                raise ServerLost(
                    f"the robot server at {self.address} did not answer {op!r}: {self._lost}"
                )
            if time.monotonic() > deadline:
                link.ready = False
                raise ServerLost(
                    f"the robot server at {self.address} did not answer {op!r} within "
                    f"{self.timeout:.1f} s (is `skillstack serve` running?)"
                )
        reply = unpack(sock.recv_multipart()[-1])
        if not reply.get("ok"):
            error = reply.get("error", "the server refused the request")
            raise RemoteError(error, reply.get("code"))
        return reply

    # -- session ---------------
    def connect(self) -> dict[str, Any]:
        """Take control of the robot and start heartbeats.

        Calling it again (after a protective stop, or after heartbeats stopped) says hello
        again, which clears a protective stop and re-arms joint streaming, and restarts
        heartbeats if they had stopped.
        """
        self._lost = None
        self.info = self.request("hello")
        self._session = self.info.get("session")
        self._beating.set()
        if self._beat_thread is None or not self._beat_thread.is_alive():
            self._beat_thread = threading.Thread(
                target=self._heartbeats, name="heartbeats", daemon=True
            )
            self._beat_thread.start()
        else:
            self._rejoin = True
        return self.info

    def close(self) -> None:
        """Give control back and stop heartbeats."""
        self._beating.clear()
        if self._beat_thread is not None:
            # It notices within one poll, or its request gives up after ``timeout``.
            self._beat_thread.join(timeout=self.timeout + self.heartbeat_period + 1.0)
        try:
            self._lost = None
            self.request("bye")
        except (ServerLost, RemoteError):
            pass
        self._link.sock.close(linger=0)

    def __enter__(self) -> RobotClient:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _mark_lost(self, reason: str) -> None:
        if self._lost is None:
            self.lost_at = time.monotonic()
            self._lost = reason
            self.heartbeat_error = reason

    def _heartbeats(self) -> None:
        """Send heartbeats on a socket of its own, joined to the session; watch the server."""
        try:
            self._beat()
        except zmq.ZMQError:  # the client was closed under this thread: nothing to watch
            pass

    def _beat(self) -> None:
        link: _Link | None = None
        monitor: zmq.Socket | None = None
        try:
            while self._beating.is_set():
                if link is None or self._rejoin:
                    if link is not None:
                        self._close_link(link)
                    link = self._new_link()
                    link.monitor = link.sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
                    self._rejoin = False
                    try:
                        self._request(link, "join", {"session": self._session})
                    except ServerLost as exc:
                        self._mark_lost(str(exc))
                        self._close_link(link)
                        link = None
                        time.sleep(self.heartbeat_period)
                        continue
                    except RemoteError as exc:  # answered, but we lost control: say why
                        self.heartbeat_error = str(exc)
                monitor = link.monitor
                assert monitor is not None
                try:
                    self._request(link, "heartbeat", {})
                    self._lost = None
                except ServerLost as exc:
                    self._mark_lost(str(exc))
                    self._close_link(link)
                    link = None
                    continue
                except RemoteError as exc:  # e.g. a wrong token: keep trying, say why
                    self.heartbeat_error = str(exc)
                # Between beats, a closed connection (a killed server) is seen at once.
                if monitor.poll(int(self.heartbeat_period * 1000)):
                    monitor.recv_multipart()
                    self._mark_lost("its connection closed (the server was killed or crashed)")
                    self._close_link(link)
                    link = None
        finally:
            if link is not None:
                self._close_link(link)

    @staticmethod
    def _close_link(link: _Link) -> None:
        try:
            if link.monitor is not None:
                link.sock.disable_monitor()
                link.monitor.close()
        except zmq.ZMQError:  # the context is gone already
            pass
        link.sock.close()

    # -- skills and state --------------------------------------------------------------------------
    def execute(
        self, skill: str, params: dict[str, Any] | None = None, timeout: float = 120.0
    ) -> dict[str, Any]:
        """Run a skill on the server and wait for its result (a `SkillResult.to_dict()` map).

        A skill that ran and failed is a result (``success`` false, ``failure`` its code). A
        call the server could not carry out (unknown skill, a runner or driver error, a stop,
        a faulted robot) raises `RemoteError` with its ``code``, at the latest one poll
        period after the server knows.
        """
        job = self.request("execute", skill=skill, params=params or {})["id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self.request("job", id=job)
            if reply["status"] == "done":
                return reply["result"]
            if reply["status"] == "failed":
                raise RemoteError(reply.get("error") or f"{skill} failed", reply.get("code"))
            if reply.get("fault"):  # the robot stopped answering: the job cannot go on
                raise RemoteError(reply["fault"], "robot_fault")
            time.sleep(POLL_PERIOD)
        self.request("stop")
        raise TimeoutError(f"{skill} did not finish within {timeout:.0f} s; it was stopped")

    def observe(self) -> dict[str, Any]:
        """The world state as the server sees it (a `WorldState.to_dict()` map)."""
        return self.request("observe")["world"]

    def state(self) -> dict[str, Any]:
        """The latest robot state (time, q, dq, gripper width, last command, e-stop)."""
        reply = self.request("state")
        return {
            k: np.asarray(v) if isinstance(v, list) else v for k, v in reply.items() if k != "ok"
        }

    def estop(self, reason: str = "") -> None:
        """Emergency stop (latched on the server until `reset_estop`)."""
        self.request("estop", reason=reason)

    def reset_estop(self) -> None:
        """Clear a latched emergency stop (and re-arm joint streaming)."""
        self.request("reset_estop")

    def reset(self) -> dict[str, Any]:
        """Clear a degraded server (its control loop failed) once the robot answers."""
        return self.request("reset")

    def stop(self) -> None:
        """Stop the running skill; the arm holds."""
        self.request("stop")

    def events(self, last: int = 100) -> list[dict[str, Any]]:
        """The server's event log."""
        return self.request("events", last=last)["events"]

    def telemetry(self) -> TelemetrySubscriber:
        """A subscriber to the server's telemetry stream."""
        return TelemetrySubscriber(f"tcp://{self.host}:{self.port + 1}", self._context)


class TelemetrySubscriber:
    """Receives the telemetry frames the server publishes."""

    def __init__(self, address: str, context: zmq.Context):
        self._socket = context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SUBSCRIBE, TELEMETRY_TOPIC)
        self._socket.connect(address)

    def receive(self, timeout: float = 1.0) -> dict[str, Any] | None:
        """The next frame, or None after ``timeout`` seconds."""
        try:
            if not self._socket.poll(int(timeout * 1000)):
                return None
            return unpack(self._socket.recv_multipart()[-1])
        except zmq.ContextTerminated:  # someone terminated the process-wide context
            return None

    def close(self) -> None:
        """Close the socket."""
        self._socket.close(linger=0)

    def __enter__(self) -> TelemetrySubscriber:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RemoteRobot(Robot):
    """A `Robot` whose arm is behind a robot server (for the conformance suite, teleop, ...).

    Commands stream over the network and the server's control loop follows them (its own
    safety filter and watchdog included: a stream that stops is a stale command, and the arm
    stops). Skills should run on the server instead (`RemoteArm`); this is for joint-level use.
    """

    def __init__(self, address: str = "tcp://127.0.0.1:5555", token: str | None = None):
        self.client = RobotClient(address, token=token)
        d = self.client.request("describe")
        gripper = None if d["gripper"] is None else GripperSpec(*d["gripper"])
        caps = Capabilities(
            name=f"remote {d['name']}",
            dof=d["dof"],
            joint_names=tuple(d["joint_names"]),
            joint_lower=np.asarray(d["joint_lower"]),
            joint_upper=np.asarray(d["joint_upper"]),
            velocity_limit=np.asarray(d["velocity_limit"]),
            acceleration_limit=np.asarray(d["acceleration_limit"]),
            torque_limit=np.asarray(d["torque_limit"]),
            control_rate_hz=d["control_rate_hz"],
            command_modes=tuple(d["command_modes"]),
            gripper=gripper,
        )
        super().__init__(caps)

    def _connect(self) -> None:
        self.client.connect()

    def _disconnect(self) -> None:
        self.client.close()

    def read(self) -> RobotState:
        """The server's latest state; ``tau`` is zeros (not sent), ``q_desired`` the last
        command. Kept as ``_last_state``."""
        s = self.client.state()
        state = RobotState(
            time=float(s["time"]),
            q=np.asarray(s["q"], dtype=float),
            dq=np.asarray(s["dq"], dtype=float),
            tau=np.zeros(self.capabilities.dof),
            gripper_width=float(s["gripper_width"]),
            q_desired=np.asarray(s["command"], dtype=float),
        )
        self._last_state = state
        return state

    def _send(self, cmd: JointCommand) -> None:
        self.client.request("command", mode=cmd.mode, values=np.asarray(cmd.values).tolist())

    def _send_gripper(self, cmd: GripperCommand) -> None:
        self.client.request("gripper", width=cmd.width, force=cmd.force, speed=cmd.speed)

    def wait_for_tick(self) -> None:
        """Wait until the server's control loop has ticked past the last state read."""
        last = self._last_state.time if self._last_state is not None else float("-inf")
        dt = self.capabilities.control_dt
        deadline = time.monotonic() + TICK_WAIT_PERIODS * dt
        while time.monotonic() < deadline:
            time.sleep(dt / 4)
            if float(self.client.state()["time"]) > last:
                return
        raise ServerLost(
            f"the server's control loop has not ticked for {TICK_WAIT_PERIODS} periods"
        )

    def estop(self, reason: str = "emergency stop") -> None:
        """Latch the e-stop here and on the server."""
        super().estop(reason)
        self.client.estop(reason)

    def reset_estop(self) -> None:
        """Clear it here and on the server (which re-arms joint streaming)."""
        super().reset_estop()
        self.client.reset_estop()

    def rearm(self) -> None:
        """Re-arm joint streaming after a stop (says hello again: clears a protective stop)."""
        self.client.connect()
