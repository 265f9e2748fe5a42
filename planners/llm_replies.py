"""Reading an LLM's reply into skill calls: tool calls, or a JSON plan inside prose.

Only well-formedness is checked here; `planners.validator` judges the calls themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from skillstack.planners.types import SkillCall

GOAL_TOOL = "state_goal"  # the tool a model states the goal with (arguments {"facts": [...]})
MAX_CONTENT_CHARS = 200_000  # longer text content is not searched for a JSON plan
MAX_JSON_CANDIDATES = 500  # '{' / '[' positions tried when looking for a JSON plan in text
ERROR_TEXT_CHARS = 500  # how much of a reply goes into an error message


class MalformedReply(Exception):
    """A reply that is not a plan; ``status`` is "malformed" or "refused"."""

    def __init__(self, message: str, reply: Any, status: str = "malformed") -> None:
        super().__init__(message)
        self.reply = reply
        self.status = status
        self.prompt: list[dict] | None = None  # the messages that got this reply
        self.had_tool_calls = False  # the reply called tools, badly (vs. no calls at all)


class UnsupportedFeature(Exception):
    """The server answered 400 about an optional ``feature`` ("tools", "temperature")."""

    def __init__(self, feature: str) -> None:
        super().__init__(feature)
        self.feature = feature


@dataclass
class Reply:
    """A reply read as a plan: the skill calls, the model's text, and the goal it stated."""

    calls: list[SkillCall]
    text: str
    goal: Any = None  # untrusted: `planners.goals.parse_goal` reads it


def parse_reply(completion: Any, raw_body: str | None = None) -> Reply:
    """The skill calls, text and stated goal in a chat completion (`MalformedReply` if none).

    Tool calls win (a `GOAL_TOOL` call carries the goal); without them the text content must
    hold a JSON plan, either ``{"plan": [{"skill": ..., "params": {...}}, ...], "goal":
    [...]}`` or a bare list of steps, possibly inside prose or a fenced code block.
    """
    choices = getattr(completion, "choices", None)
    if not choices:
        raise MalformedReply("the model's reply was empty (no choices in the response)", raw_body)
    message = getattr(choices[0], "message", None)
    if message is None:
        raise MalformedReply("the model's reply was empty (no message in the response)", raw_body)
    text = (getattr(message, "content", None) or "").strip()
    tool_calls = getattr(message, "tool_calls", None) or []
    if tool_calls:
        try:
            calls = _from_tool_calls(tool_calls, text)
        except MalformedReply as exc:
            exc.had_tool_calls = True
            raise
        goals = [c for c in calls if c.skill == GOAL_TOOL]
        goal = goals[-1].params.get("facts") if goals else None
        calls = [c for c in calls if c.skill != GOAL_TOOL]
        if not calls:
            no_calls = MalformedReply("the model stated a goal but proposed no skill calls", text)
            no_calls.had_tool_calls = True
            raise no_calls
        return Reply(calls, text, goal)
    refusal = getattr(message, "refusal", None)
    if refusal:
        raise MalformedReply(f"the model refused to plan: {refusal}", refusal, "refused")
    if not text:
        finish = getattr(choices[0], "finish_reason", None)
        raise MalformedReply(
            f"the model's reply was empty (no tool calls and no text; finish_reason={finish})",
            raw_body,
        )
    calls, goal = _from_text(text)
    if not calls:
        raise MalformedReply(f"the model proposed no skill calls: {text}", text, "refused")
    return Reply(calls, text, goal)


def _from_tool_calls(tool_calls: list[Any], text: str) -> list[SkillCall]:
    raw = _render_tool_calls(tool_calls, text)
    calls = []
    for i, tc in enumerate(tool_calls, 1):
        function = getattr(tc, "function", None)
        name = getattr(function, "name", None)
        if not isinstance(name, str) or not name:
            raise MalformedReply(f"tool call {i} has no function name", raw)
        arguments = getattr(function, "arguments", None)
        if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
            params: Any = {}  # some servers send "" for a call without parameters
        elif isinstance(arguments, str):
            try:
                params = json.loads(arguments)
            except json.JSONDecodeError as exc:
                raise MalformedReply(
                    f"tool call {i} ({name}) has arguments that are not valid JSON ({exc}): "
                    f"{arguments[:ERROR_TEXT_CHARS]}",
                    raw,
                ) from None
        else:
            params = arguments
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise MalformedReply(
                f"tool call {i} ({name}) has arguments that are not a JSON object: "
                f"{str(arguments)[:ERROR_TEXT_CHARS]}",
                raw,
            )
        calls.append(SkillCall(name, params))
    return calls


def _from_text(text: str) -> tuple[list[SkillCall], Any]:
    """The calls of a JSON plan in ``text`` and its goal; no calls for prose or an empty plan."""
    found_json = False
    for value in _json_values(text):
        found_json = True
        items = value.get("plan") if isinstance(value, dict) else value
        if not isinstance(items, list) or not _looks_like_plan(items):
            continue
        goal = value.get("goal") if isinstance(value, dict) else None
        return _plan_items(items, text), goal
    if found_json or _looks_like_json_attempt(text):
        raise MalformedReply(
            "the model's text is not a plan: expected tool calls, or a JSON object "
            '{"plan": [{"skill": ..., "params": {...}}, ...]} or a list of such steps; got: '
            + text[:ERROR_TEXT_CHARS],
            text,
        )
    return [], None


def _looks_like_plan(items: list[Any]) -> bool:
    return not items or any(isinstance(it, dict) and "skill" in it for it in items)


def _looks_like_json_attempt(text: str) -> bool:
    return text.lstrip().startswith(("{", "[", "```")) or '"skill"' in text or '"plan"' in text


def _plan_items(items: list[Any], text: str) -> list[SkillCall]:
    calls = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict) or not isinstance(item.get("skill"), str):
            raise MalformedReply(
                f'plan step {i} is not an object {{"skill": <name>, "params": {{...}}}}: '
                f"{json.dumps(item)[:ERROR_TEXT_CHARS]}",
                text,
            )
        params = item.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise MalformedReply(
                f"plan step {i} ({item['skill']}): params must be a JSON object, got "
                f"{json.dumps(params)[:ERROR_TEXT_CHARS]}",
                text,
            )
        calls.append(SkillCall(item["skill"], params))
    return calls


def _json_values(text: str):
    """Every JSON object or array in ``text`` that parses, in order of where it starts.

    Fenced code blocks are not special: the scan finds the JSON inside them too.
    """
    decoder = json.JSONDecoder()
    text = text[:MAX_CONTENT_CHARS]
    tried = 0
    i = 0
    while tried < MAX_JSON_CANDIDATES:
        starts = [p for p in (text.find("{", i), text.find("[", i)) if p >= 0]
        if not starts:
            return
        start = min(starts)
        tried += 1
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            i = start + 1
            continue
        yield value
        i = end


def _render_tool_calls(tool_calls: list[Any], text: str) -> str:
    """The reply as the model wrote it: text, then ``name(arguments)`` per tool call."""
    lines = [text] if text else []
    for tc in tool_calls:
        function = getattr(tc, "function", None)
        lines.append(f"{getattr(function, 'name', None)}({getattr(function, 'arguments', '')})")
    return "\n".join(lines)
