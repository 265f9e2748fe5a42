"""`skillstack llm check`: is this endpoint and model fit to plan, before a robot waits on it?

Four checks, each one exchange with the endpoint, each reported with what to do about it:

1. ``endpoint``: it answers ``GET /models`` (the base URL is right, the server is up);
2. ``model``: the model asked for is among those it lists;
3. ``tools``: offered one trivial tool and told to call it, the model calls it: tool calls
   are honoured, not silently dropped (llama.cpp needs a function-calling chat format);
4. ``context``: the real planning prompt for a bundled scene fits the model's context (the
   server counts its tokens; one that overflows says so, or fails the request).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import openai

from skillstack.planners.llm import LLMPlanner, skill_tool
from skillstack.planners.types import PlanningRequest
from skillstack.skills.registry import all_skills
from skillstack.skills.world import WorldState

PING_TOOL = {
    "type": "function",
    "function": {
        "name": "ping",
        "description": "Answer the check. Call this tool.",
        "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
    },
}
CONTEXT_HINTS = ("context", "n_ctx", "too long", "maximum", "exceed")
DETAIL_CHARS = 300


@dataclass
class Check:
    """One check's outcome."""

    name: str
    passed: bool
    detail: str
    duration_s: float = 0.0


def check_endpoint(planner: LLMPlanner, world: WorldState) -> list[Check]:
    """Run the checks against ``planner``'s endpoint and model, planning for ``world``."""
    client, model = planner.client, planner.model
    checks: list[Check] = []

    started = time.perf_counter()
    try:
        listed = [m.id for m in client.models.list()]
    except openai.APIError as exc:
        checks.append(
            Check("endpoint", False, f"{planner.base_url}: {_short(exc)}", _since(started))
        )
        return checks  # nothing else can work
    checks.append(Check("endpoint", True, f"{planner.base_url} answers", _since(started)))
    listed_text = ", ".join(listed[:20]) or "none"
    checks.append(
        Check(
            "model",
            model in listed,
            f"{model!r} is served"
            if model in listed
            else f"{model!r} is not listed; served: {listed_text} (pass --model with one of them)",
        )
    )

    started = time.perf_counter()
    try:
        reply = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Call the ping tool now."}],
            tools=[PING_TOOL],
            tool_choice="auto",
            max_tokens=64,
            temperature=0.0,
        )
        calls = reply.choices[0].message.tool_calls or []
        honoured = any(c.function.name == "ping" for c in calls)
        text = (reply.choices[0].message.content or "").strip()
        detail = (
            "the model called the tool"
            if honoured
            else "tools were accepted but not called (the reply was text: "
            f"{text[:80]!r}); the planner will ask for JSON plans (--no-tools); on llama.cpp "
            "start the server with a function-calling chat format "
            "(--chat_format chatml-function-calling)"
        )
        checks.append(Check("tools", honoured, detail, _since(started)))
    except openai.APIError as exc:
        checks.append(Check("tools", False, f"refused: {_short(exc)}", _since(started)))

    started = time.perf_counter()
    request = PlanningRequest("put the cube on the plate", world, all_skills())
    with_tools = planner.use_tools is not False
    messages = planner.messages(request, with_tools=with_tools)
    extra: dict[str, Any] = {}
    if with_tools:  # the skills' schemas count against the context too
        extra = {"tools": [skill_tool(s) for s in request.skills.values()], "tool_choice": "auto"}
    try:
        reply = client.chat.completions.create(
            model=model, messages=messages, max_tokens=1, temperature=0.0, **extra
        )
        used = getattr(getattr(reply, "usage", None), "prompt_tokens", None)
        checks.append(
            Check(
                "context",
                True,
                f"the planning prompt fits ({used} tokens)" if used else "the prompt fits",
                _since(started),
            )
        )
    except openai.APIError as exc:
        text = _short(exc)
        hint = any(h in text.lower() for h in CONTEXT_HINTS)
        advice = "; give the server a larger context (llama.cpp: --n_ctx 4096)" if hint else ""
        checks.append(Check("context", False, f"{text}{advice}", _since(started)))
    return checks


def report(checks: list[Check]) -> dict[str, Any]:
    """The JSON-ready summary: every check, and how many passed and failed."""
    return {
        "checks": [asdict(c) for c in checks],
        "passed": sum(c.passed for c in checks),
        "failed": sum(not c.passed for c in checks),
    }


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return json.dumps(text[:DETAIL_CHARS])[1:-1] if len(text) > DETAIL_CHARS else text


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)
