"""The robot server's wire protocol: ZeroMQ sockets carrying MessagePack maps.

Why ZeroMQ + MessagePack rather than gRPC: no code generation or schema compiler in the
build, a request/reply socket for commands and a publish/subscribe socket for telemetry
come for free, and MessagePack maps are compact and readable from any language. The price
is that message shapes are checked here by hand (`parse_request`), strictly.

Requests (client → server, on the command socket) are maps with ``op``; with a token,
each is followed by a MAC frame and carries a counter ``n`` (see `hw.server.session`; the
token itself never travels). Who sends a request is the connection, not a field of it.
Replies are maps with ``ok`` and either results or ``error`` (one line a person can act on)
and ``code`` (one of `ERROR_CODES`, for programs). While the server is degraded every
successful reply also carries ``fault`` (the reason).
Telemetry (server → subscribers) is a map published on the ``state`` topic.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack

OPS = {
    "nonce": "a fresh nonce for this connection (with a token: the key of its MACs)",
    "join": "bind this connection to the controlling session: {session} from hello",
    "reset": "clear a degraded server (the control loop failed) once the robot answers",
    "hello": "take control (one client at a time), clearing a protective stop; describes it",
    "describe": "the robot's capabilities (no control needed)",
    "bye": "give control back",
    "heartbeat": "I am alive (send at least every heartbeat_timeout)",
    "execute": "start a skill: {skill, params}; returns a job id at once",
    "job": "status and result of a job: {id}",
    "observe": "the world state now",
    "state": "the latest robot state",
    "command": "a joint command for the Robot-compatible client: {mode, values, stamp}",
    "gripper": "a gripper command: {width, force, speed}",
    "stop": "stop the running skill and hold (controlled stop)",
    "estop": "emergency stop: latched until reset_estop",
    "reset_estop": "clear a latched emergency stop",
    "events": "the server's event log",
}
ERROR_CODES = {
    "bad_request": "a malformed request, or parameters the server cannot use",
    "auth": "a wrong or missing token, or a replayed or reordered message",
    "no_control": "this client does not have control: send hello first",
    "busy": "another client has control, or a skill is running",
    "no_job": "no job with that id",
    "unsupported": "the server was started without a skill runner or a world observer",
    "unknown_skill": "the skill runner knows no skill of that name",
    "skill_error": "the skill runner raised (a bug): the arm holds",
    "observe_error": "the world observer raised: the arm holds",
    "driver_error": "the robot driver raised during the request: the arm holds",
    "robot_fault": "the control loop failed or the robot stopped answering: the server is "
    "degraded and holds the arm; send reset once the cause is fixed (or restart it)",
    "protective_stop": "stopped after client silence: the controlling client sends hello",
    "not_armed": "streaming is disarmed after a stop: the controlling client sends hello",
    "estop": "an emergency stop is latched: send reset_estop",
    "control_timeout": "the control thread did not take the request in time",
    "internal": "a bug in the server; the request was not carried out",
}
TELEMETRY_TOPIC = b"state"
MAX_MESSAGE_BYTES = 1 << 20  # bigger requests are refused unread (zmq.MAXMSGSIZE)


class ProtocolError(ValueError):
    """A malformed request; the message says what was wrong."""


def pack(message: dict[str, Any]) -> bytes:
    """Serialise a message (numpy arrays and scalars become lists and numbers)."""
    return msgpack.packb(message, default=_default, use_bin_type=True)


def unpack(data: bytes) -> dict[str, Any]:
    """Deserialise a message; `ProtocolError` if it is not a MessagePack map."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        message = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:
        raise ProtocolError(f"not a MessagePack message: {type(exc).__name__}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"a message must be a map, got {type(message).__name__}")
    return message


def parse_request(message: dict[str, Any]) -> str:
    """The request's op, after checking its shape; `ProtocolError` otherwise."""
    op = message.get("op")
    if op not in OPS:
        raise ProtocolError(f"unknown op {op!r}; ops: {', '.join(OPS)}")
    if op == "execute":
        if not isinstance(message.get("skill"), str):
            raise ProtocolError("execute needs 'skill': a skill name")
        if not isinstance(message.get("params", {}), dict):
            raise ProtocolError("execute needs 'params': a map")
    if op == "job" and not isinstance(message.get("id"), int):
        raise ProtocolError("job needs 'id': an integer")
    if op == "command":
        values = message.get("values")
        if message.get("mode") not in ("joint_position", "joint_velocity", "joint_torque"):
            raise ProtocolError(
                "command needs 'mode': joint_position, joint_velocity or joint_torque"
            )
        if not isinstance(values, list) or not all(isinstance(v, int | float) for v in values):
            raise ProtocolError("command needs 'values': a list of numbers")
    if op == "gripper":
        for key in ("width", "force", "speed"):
            value = message.get(key, 0.0)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ProtocolError(f"gripper needs a finite number for {key!r}")
    return op


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__}")
