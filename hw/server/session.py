"""Who is talking to the robot server: transport identities, control sessions, message MACs.

Identity comes from the transport, never from a message body: the server's ROUTER socket
tags every message with the sending connection's routing id, and control is bound to the
routing id that said ``hello``. The hello reply carries a session secret (never published:
events name sessions by their ordinal number only); another socket of the same client (the
heartbeat socket) joins the session by presenting it (``join``).

With a token, every message is authenticated per connection, with replay protection: the
connection first asks for a fresh nonce (``nonce``, the one unauthenticated op), derives
``key = HMAC-SHA256(token, nonce)``, and sends each request as two frames, the payload
(which carries ``n``, a counter that must increase strictly) and
``HMAC-SHA256(key, payload)``. Bytes captured from one connection are worthless on
another (another nonce), and on the same connection a replayed or reordered message has a
stale ``n``: both are refused with code ``auth``. The token itself never travels.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
from dataclasses import dataclass, field
from typing import Any

MAX_CHANNELS = 4096  # connections remembered (oldest forgotten first)


class AuthError(Exception):
    """A message that fails authentication; the message says why (one line)."""


def derive_key(token: str, nonce: bytes) -> bytes:
    """The per-connection MAC key: HMAC-SHA256(token, nonce)."""
    return hmac.new(token.encode(), nonce, hashlib.sha256).digest()


def sign(key: bytes, payload: bytes) -> bytes:
    """The MAC frame of a payload: HMAC-SHA256(key, payload)."""
    return hmac.new(key, payload, hashlib.sha256).digest()


@dataclass
class Channel:
    """One client connection (a ROUTER routing id) with its nonce and counter."""

    key: bytes | None
    last_n: int = -1


@dataclass
class ControlSession:
    """The controlling client: the routing ids bound to it and its secret."""

    number: int
    secret: str = field(default_factory=lambda: os.urandom(16).hex())
    rids: set[bytes] = field(default_factory=set)

    @property
    def label(self) -> str:
        """How events name it (no identifier a third party could use)."""
        return f"session {self.number}"


class Sessions:
    """The server's view of its connections (used by the command thread only)."""

    def __init__(self, token: str | None):
        self.token = token
        self._channels: dict[bytes, Channel] = {}
        self._numbers = itertools.count(1)
        self.control: ControlSession | None = None

    # -- authentication -----------------------------------------------------------------------
    def nonce(self, rid: bytes) -> bytes:
        """Issue a fresh nonce for this connection (restarting its counter)."""
        nonce = os.urandom(16)
        if len(self._channels) >= MAX_CHANNELS:
            self._channels.pop(next(iter(self._channels)))
        key = derive_key(self.token, nonce) if self.token else None
        self._channels[rid] = Channel(key)
        return nonce

    def verify(self, rid: bytes, payload: bytes, mac: bytes | None, message: dict[str, Any]):
        """Check a message's MAC and counter (with a token); `AuthError` when it fails."""
        if not self.token:
            return
        channel = self._channels.get(rid)
        if channel is None or channel.key is None:
            raise AuthError("no session on this connection: send nonce first")
        if mac is None or not hmac.compare_digest(mac, sign(channel.key, payload)):
            raise AuthError("wrong or missing token (message authentication failed)")
        n = message.get("n")
        if not isinstance(n, int) or n <= channel.last_n:
            raise AuthError(f"replayed or reordered message (n={n!r}, last {channel.last_n})")
        channel.last_n = n

    # -- control ------------------------------------------------------------------------------
    def controls(self, rid: bytes) -> bool:
        """Whether this connection belongs to the controlling client."""
        return self.control is not None and rid in self.control.rids

    def take(self, rid: bytes) -> ControlSession:
        """Give control to this connection (a new session unless it already has it)."""
        if self.controls(rid):
            assert self.control is not None
            return self.control
        self.control = ControlSession(next(self._numbers), rids={rid})
        return self.control

    def join(self, rid: bytes, secret: Any) -> bool:
        """Bind another connection to the controlling session; whether the secret matched."""
        control = self.control
        if control is None or not isinstance(secret, str):
            return False
        if not hmac.compare_digest(secret.encode(), control.secret.encode()):
            return False
        control.rids.add(rid)
        return True

    def release(self) -> None:
        """No client has control."""
        self.control = None
