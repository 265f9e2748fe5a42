"""Every exchange with a chat endpoint, seen: logged, recorded, or replayed without a network.

`ExchangeTransport` sits under the `openai` client (an ``httpx`` transport), so it sees each
HTTP request and response exactly as sent and received, retries included:

* ``log``: one JSON line per exchange appended to a file: time, attempt number, the request
  (model, messages, tool names), the raw reply, status, tokens and latency (``--llm-log``);
* ``record``: each exchange stored in a folder, one file per exchange named by a hash of the
  request (``--llm-record DIR``);
* ``replay``: answers served from such a folder, nothing sent anywhere (``--llm-replay
  DIR``); a request that was not recorded gets an HTTP 404 whose message says so, which the
  planner reports at once without retrying.

The same request recorded several times is replayed in recording order (the last one again
once they are used up), so a recorded run, repair rounds and all, replays exchange for
exchange. The settings are environment variables too (`ENV_LOG`, `ENV_RECORD`,
`ENV_REPLAY`), so benchmark worker processes pick them up.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

try:  # the HTTP library the installed openai client is built on (httpx2 from openai 3)
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older openai releases use httpx
    import httpx  # type: ignore[no-redef]

ENV_LOG = "SKILLSTACK_LLM_LOG"
ENV_RECORD = "SKILLSTACK_LLM_RECORD"
ENV_REPLAY = "SKILLSTACK_LLM_REPLAY"
KEY_CHARS = 16  # hex characters of the request hash in a recording's file name
NOT_RECORDED_STATUS = 404


class ExchangeTransport(httpx.BaseTransport):
    """An httpx transport that logs, records or replays chat exchanges (see the module).

    Args:
        inner: the transport that really sends (default: httpx's own); unused in replay.
        log: JSON-lines file to append one line per exchange to.
        record: folder to store each exchange in.
        replay: folder of recorded exchanges to answer from instead of the network.
    """

    def __init__(
        self,
        inner: httpx.BaseTransport | None = None,
        *,
        log: str | Path | None = None,
        record: str | Path | None = None,
        replay: str | Path | None = None,
    ) -> None:
        if record and replay:
            raise ValueError("--llm-record and --llm-replay exclude each other")
        self.inner = inner or httpx.HTTPTransport()
        self.log = Path(log) if log else None
        self.record = Path(record) if record else None
        self.replay = Path(replay) if replay else None
        if self.replay is not None and not self.replay.is_dir():
            raise ValueError(f"--llm-replay: no folder {str(self.replay)[:200]!r}")
        if self.record is not None:
            self.record.mkdir(parents=True, exist_ok=True)
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()
        self._count = 0

    @classmethod
    def from_env(cls) -> ExchangeTransport | None:
        """The transport the environment asks for, or None when it asks for none."""
        log, record, replay = (os.environ.get(k) or None for k in (ENV_LOG, ENV_RECORD, ENV_REPLAY))
        if not (log or record or replay):
            return None
        return cls(log=log, record=record, replay=replay)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` (or answer it from the recordings), logging and recording it."""
        body = request.read()
        key = request_key(request.method, request.url.path, body)
        started = time.perf_counter()
        if self.replay is not None:
            status, headers, content = self._replayed(key, request)
        else:
            response = self.inner.handle_request(request)
            content = response.read()
            status, headers = response.status_code, dict(response.headers)
            headers.pop("content-encoding", None)  # the content is already decoded
            headers.pop("content-length", None)
        latency = time.perf_counter() - started
        with self._lock:
            self._count += 1
            n = self._count
        exchange = {
            "time": round(time.time(), 3),
            "n": n,
            "key": key,
            "method": request.method,
            "path": request.url.path,
            "request": _json_or_text(body),
            "status": status,
            "reply": _json_or_text(content),
            "latency_s": round(latency, 4),
            "replayed": self.replay is not None,
        }
        if self.record is not None:
            name = f"{key}-{os.getpid()}-{n:05d}.json"
            (self.record / name).write_text(json.dumps(exchange, indent=1))
        if self.log is not None:
            line = json.dumps({**exchange, **_summary(exchange)}) + "\n"
            with self._lock, self.log.open("a") as f:
                f.write(line)
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        """Close the inner transport."""
        self.inner.close()

    def _replayed(self, key: str, request: httpx.Request) -> tuple[int, dict, bytes]:
        assert self.replay is not None
        found = sorted(self.replay.glob(f"{key}-*.json"), key=_recording_order)
        if not found:
            message = (
                f"--llm-replay: this request was not recorded in {str(self.replay)[:200]} "
                f"(key {key}); record it with --llm-record against a live server"
            )
            error = {"error": {"message": message, "type": "not_recorded"}}
            return NOT_RECORDED_STATUS, {"content-type": "application/json"}, _dumps(error)
        with self._lock:
            i = self._served.get(key, 0)
            self._served[key] = i + 1
        exchange = json.loads(found[min(i, len(found) - 1)].read_text())
        reply = exchange["reply"]
        content = reply.encode() if isinstance(reply, str) else _dumps(reply)
        return int(exchange["status"]), {"content-type": "application/json"}, content


def request_key(method: str, path: str, body: bytes) -> str:
    """A hash of the request that ignores JSON key order and whitespace."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = body.decode(errors="replace")
    digest = hashlib.sha256(f"{method} {path} {canonical}".encode()).hexdigest()
    return digest[:KEY_CHARS]


def _recording_order(path: Path) -> tuple[int, str]:
    # name: KEY-PID-N.json; within one process N orders the exchanges
    parts = path.stem.split("-")
    return (int(parts[-1]) if parts[-1].isdigit() else 0, path.name)


def _json_or_text(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return data.decode(errors="replace")


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def _summary(exchange: dict) -> dict:
    """What a reader of the log wants first: model, tools offered, tokens, the answer."""
    request = exchange["request"] if isinstance(exchange["request"], dict) else {}
    reply = exchange["reply"] if isinstance(exchange["reply"], dict) else {}
    usage = reply.get("usage") or {}
    choices = reply.get("choices") or [{}]
    message = (choices[0] or {}).get("message") or {}
    return {
        "model": request.get("model"),
        "tools_offered": [t.get("function", {}).get("name") for t in request.get("tools", [])],
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "tool_calls": [
            (c.get("function") or {}).get("name") for c in message.get("tool_calls") or []
        ],
        "content": message.get("content"),
    }
