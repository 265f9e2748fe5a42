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
import uuid
from typing import Any

import numpy as np
import zmq

from skillstack.hw.robot import Robot
from skillstack.hw.server.protocol import TELEMETRY_TOPIC, pack, unpack
from skillstack.robot.types import (
    Capabilities,
    GripperCommand,
    GripperSpec,
    JointCommand,
    RobotState,
)

HEARTBEAT_PERIOD = 0.02  # s, five heartbeats per default 100 ms timeout
POLL_PERIOD = 0.02  # s between job-status polls
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


class RobotClient:
    """Talk to a robot server; see the module docstring."""

    def __init__(
        self,
        address: str = "tcp://127.0.0.1:5555",
        token: str | None = None,
        timeout: float = 2.0,
        heartbeat_period: float = HEARTBEAT_PERIOD,
    ):
        self.host, self.port = parse_address(address)
        self.address = f"tcp://{self.host}:{self.port}"
        self.token = token
        self.timeout = timeout
        self.heartbeat_period = heartbeat_period
        self.client_id = f"client-{uuid.uuid4().hex[:8]}"
        self._context = zmq.Context()
        self._socket = self._new_socket()
        self._lock = threading.Lock()
        self._beating = threading.Event()
        self._beat_thread: threading.Thread | None = None
        self.heartbeat_error: str | None = None
        self.info: dict[str, Any] = {}

    def _new_socket(self) -> zmq.Socket:
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.address)
        return sock

    # -- requests -----------------------------------------------------------------------------
    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request and wait for its reply; `ServerLost` after ``timeout``."""
        with self._lock:
            return self._request(self._socket, op, fields)

    def _request(self, sock: zmq.Socket, op: str, fields: dict[str, Any]) -> dict[str, Any]:
        message = {"op": op, "client": self.client_id, **fields}
        if self.token:
            message["token"] = self.token
        sock.send_multipart([b"", pack(message)])
        if not sock.poll(int(self.timeout * 1000)):
            # The request may be stuck in the socket: start afresh so later calls work.
            sock.close()
            if sock is self._socket:
                self._socket = self._new_socket()
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
        again, which clears a protective stop, and restarts heartbeats if they had stopped.
        """
        self.info = self.request("hello")
        self._beating.set()
        if self._beat_thread is None or not self._beat_thread.is_alive():
            self._beat_thread = threading.Thread(
                target=self._heartbeats, name="heartbeats", daemon=True
            )
            self._beat_thread.start()
        return self.info

    def close(self) -> None:
        """Give control back and stop heartbeats."""
        self._beating.clear()
        if self._beat_thread is not None:
            self._beat_thread.join(timeout=1.0)
        try:
            self.request("bye")
        except (ServerLost, RemoteError):
            pass
        self._socket.close()
        # destroy, not term: a telemetry subscriber in another thread must not block the exit.
        self._context.destroy(linger=0)

    def __enter__(self) -> RobotClient:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _heartbeats(self) -> None:
        sock = self._new_socket()
        try:
            while self._beating.is_set():
                try:
                    self._request(sock, "heartbeat", {})
                except ServerLost as exc:
                    self.heartbeat_error = str(exc)
                    sock = self._new_socket()
                except RemoteError as exc:  # e.g. a wrong token: keep trying, say why
                    self.heartbeat_error = str(exc)
                time.sleep(self.heartbeat_period)
        finally:
            sock.close()

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
        """Clear a latched emergency stop."""
        self.request("reset_estop")

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
        except zmq.ContextTerminated:  # the client was closed under us
            return None

    def close(self) -> None:
        """Close the socket."""
        self._socket.close()


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
        """Clear it here and on the server."""
        super().reset_estop()
        self.client.reset_estop()
