# Over 400 lines: a complete scripted OpenAI-compatible server, documented.
"""A scripted, OpenAI-compatible chat-completions endpoint for tests.

`ChatServer` is a real HTTP server (standard library only) on 127.0.0.1 and a free port. It
answers ``POST /v1/chat/completions`` by replaying a queue of scripted replies, one per request,
and records every request it receives (body, headers, arrival time), so tests drive the real
`openai` client and then assert on the prompt it sent::

    with ChatServer([tool_calls(("grasp", {"object": "cube"})), content("done")]) as server:
        planner = LLMPlanner(base_url=server.base_url, model="test", api_key="k")
        ...
        assert server.requests[0].body["tools"]

A scripted item is one of

* `tool_calls` — an assistant message with one tool call per (name, arguments) pair; arguments
  are a dict (sent as JSON) or a raw string (sent as is, e.g. invalid JSON);
* `content` — an assistant message with text content and no tool calls;
* `http_error` — an error status with a JSON (or raw text) body and optional headers
  (``Retry-After``);
* `delay` — sleep before answering with another item, to trigger client timeouts;
* `raw` — any body with any status, for replies that are not chat completions at all.

``GET /v1/models`` lists ``models`` (default ``("scripted",)``) without using the script.

It is bounded: an exhausted script answers ``410 Gone`` (which no client retries) instead of
blocking, sleeps wake up when the server closes, and ``close`` (or leaving the ``with`` block,
or the ``chat_server`` pytest fixture's teardown) stops the serving thread. Any other path or
method gets a 404 JSON error, as the real API gives.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
LOOPBACK = "127.0.0.1"
MAX_BODY_BYTES = 4_000_000  # a request body larger than this is refused with 413
SHUTDOWN_POLL_S = 0.01  # how often the serving loop checks for shutdown [s]
CHARS_PER_TOKEN = 4  # the fake token counts in ``usage``: characters / this
IDLE_CONNECTION_S = 10.0  # a kept-alive connection idle this long is closed [s]
EXHAUSTED_STATUS = 410  # answered when no scripted reply is left; clients do not retry it
PROXY_ENV_VARS = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


# --- scripted replies ------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCallsReply:
    """An assistant message with tool calls: ``calls`` are (name, arguments) pairs."""

    calls: tuple[tuple[str, Any], ...]
    content: str | None = None


@dataclass(frozen=True)
class ContentReply:
    """An assistant message with text content only."""

    text: str | None


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP error: ``body`` is a message (wrapped as the API's error JSON) or a dict."""

    status: int
    body: str | dict[str, Any] = "error"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DelayReply:
    """Wait ``seconds`` before answering with ``then``."""

    seconds: float
    then: Reply


@dataclass(frozen=True)
class RawReply:
    """Any body with any status and content type."""

    body: str
    status: int = 200
    content_type: str = "application/json"


Reply = ToolCallsReply | ContentReply | ErrorReply | DelayReply | RawReply


def tool_calls(*calls: tuple[str, Any], content: str | None = None) -> ToolCallsReply:
    """A reply calling tools in order: ``tool_calls(("grasp", {"object": "cube"}), ...)``."""
    return ToolCallsReply(tuple(calls), content)


def content(text: str | None) -> ContentReply:
    """A reply with text content and no tool calls (``None``: content null)."""
    return ContentReply(text)


def http_error(
    status: int, body: str | dict[str, Any] = "error", headers: Mapping[str, str] | None = None
) -> ErrorReply:
    """An HTTP error reply, e.g. ``http_error(429, "slow down", {"Retry-After": "1"})``."""
    return ErrorReply(status, body, dict(headers or {}))


def delay(seconds: float, then: Reply | None = None) -> DelayReply:
    """Sleep ``seconds`` [s] before replying with ``then`` (default: content "late")."""
    return DelayReply(seconds, then if then is not None else ContentReply("late"))


def raw(body: str, status: int = 200, content_type: str = "application/json") -> RawReply:
    """A reply with exactly this body."""
    return RawReply(body, status, content_type)


# --- the server ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received: ``body`` is the parsed JSON (``None`` if it was not JSON)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw_body: str
    received_at: float  # time.monotonic() on arrival [s]


class ChatServer:
    """A scripted chat-completions server on the loopback interface (see the module docstring)."""

    def __init__(
        self,
        script: Iterable[Reply] = (),
        *,
        host: str = LOOPBACK,
        models: tuple[str, ...] = ("scripted",),
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the scripted chat server only listens on loopback, not {host}")
        self._script: deque[Reply] = deque(script)
        self.models = models  # what GET /v1/models lists (it consumes no scripted reply)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.requests: list[RecordedRequest] = []
        self.unscripted = 0  # requests that found the script exhausted
        self._httpd = ThreadingHTTPServer((host, 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._counter = 0
        self._connections: set[socket.socket] = set()

    # -- life cycle --

    def start(self) -> ChatServer:
        """Serve in a daemon thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": SHUTDOWN_POLL_S},
                name="chat-server",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, wake delayed replies, release the port (idempotent)."""
        self._closing.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5.0)
            self._thread = None
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for conn in connections:  # end kept-alive connections so their threads exit
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- script and records --

    @property
    def port(self) -> int:
        """The port it listens on."""
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ``http://127.0.0.1:PORT/v1``."""
        return f"http://{LOOPBACK}:{self.port}/v1"

    def push(self, *replies: Reply) -> None:
        """Append replies to the script."""
        with self._lock:
            self._script.extend(replies)

    @property
    def remaining(self) -> int:
        """Scripted replies not used yet."""
        with self._lock:
            return len(self._script)

    @property
    def bodies(self) -> list[Any]:
        """The JSON bodies of the chat requests received, in order."""
        with self._lock:
            return [r.body for r in self.requests if r.path == CHAT_PATH and r.method == "POST"]

    # -- used by the handler --

    def _record_and_pop(self, request: RecordedRequest) -> Reply | None:
        with self._lock:
            self.requests.append(request)
            if request.path != CHAT_PATH or request.method != "POST":
                return None
            if not self._script:
                self.unscripted += 1
                return ErrorReply(
                    EXHAUSTED_STATUS,
                    f"chat_server: no scripted reply left ({len(self.requests)} requests received)",
                )
            return self._script.popleft()

    def _next_id(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter


def _error_body(message: str, status: int) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _completion(server: ChatServer, request: Any, reply: ToolCallsReply | ContentReply) -> dict:
    n = server._next_id()
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if isinstance(reply, ToolCallsReply):
        message["content"] = reply.content
        message["tool_calls"] = [
            {
                "id": f"call_{n}_{i}",
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
            for i, (name, args) in enumerate(reply.calls)
        ]
        finish = "tool_calls"
    else:
        message["content"] = reply.text
        finish = "stop"
    prompt_tokens = max(1, len(json.dumps(request)) // CHARS_PER_TOKEN)
    completion_tokens = max(1, len(json.dumps(message)) // CHARS_PER_TOKEN)
    model = request.get("model", "scripted") if isinstance(request, dict) else "scripted"
    return {
        "id": f"chatcmpl-{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _make_handler(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = IDLE_CONNECTION_S

        def setup(self) -> None:
            super().setup()
            with server._lock:
                server._connections.add(self.connection)

        def finish(self) -> None:
            with server._lock:
                server._connections.discard(self.connection)
            try:
                super().finish()
            except OSError:
                pass

        def log_message(self, format: str, *args: Any) -> None:  # quiet under pytest
            pass

        def do_GET(self) -> None:
            self._handle(read_body=False)

        def do_POST(self) -> None:
            self._handle(read_body=True)

        def _handle(self, read_body: bool) -> None:
            length = int(self.headers.get("Content-Length") or 0) if read_body else 0
            if length > MAX_BODY_BYTES:
                self._send_json(413, _error_body("request body too large", 413))
                return
            text = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            try:
                body = json.loads(text) if text else None
            except json.JSONDecodeError:
                body = None
            path = self.path.split("?", 1)[0]
            if self.command == "GET" and path == MODELS_PATH:
                data = [{"id": m, "object": "model", "owned_by": "test"} for m in server.models]
                self._send_json(200, {"object": "list", "data": data})
                return
            request = RecordedRequest(
                self.command, path, dict(self.headers.items()), body, text, time.monotonic()
            )
            reply = server._record_and_pop(request)
            if reply is None:
                self._send_json(404, _error_body(f"no route {self.command} {path}", 404))
                return
            self._reply(reply, body)

        def _reply(self, reply: Reply, body: Any) -> None:
            while isinstance(reply, DelayReply):
                if server._closing.wait(reply.seconds):
                    return
                reply = reply.then
            if isinstance(reply, ErrorReply):
                payload = reply.body
                if isinstance(payload, str):
                    payload = _error_body(payload, reply.status)
                self._send_json(reply.status, payload, reply.headers)
            elif isinstance(reply, RawReply):
                self._send(reply.status, reply.body.encode(), reply.content_type)
            else:
                self._send_json(200, _completion(server, body, reply))

        def _send_json(
            self, status: int, payload: Any, headers: Mapping[str, str] | None = None
        ) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json", headers)

        def _send(
            self,
            status: int,
            data: bytes,
            content_type: str,
            headers: Mapping[str, str] | None = None,
        ) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timed out) before the reply

    return Handler


@pytest.fixture(name="chat_server")
def chat_server_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[ChatServer]:
    """Fixture ``chat_server``: a started `ChatServer` with an empty script, closed afterwards.

    Import it into a test module (``from chat_server import chat_server_fixture``) and ask for
    ``chat_server``; ``push`` the replies. Proxy variables are removed for the test so loopback
    requests go straight to the server.
    """
    for var in PROXY_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    with ChatServer() as server:
        yield server
