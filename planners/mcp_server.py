"""`skillstack mcp`: the skill library as Model Context Protocol tools, for agent applications.

An MCP client (Claude Desktop, an IDE agent, any application using the official SDK) starts
``skillstack mcp`` and sees these tools over stdio:

===============  =====================================================  ============
tool             what it does                                           moves the arm
===============  =====================================================  ============
``skills``       every skill's name, description and JSON Schema        no
``observe``      the world model's objects, predicates and the hand     no
``plan``         a validated plan for an instruction, not executed      no
``run``          plan, execute, replan; success judged on the goal      yes
``stop``         stop the skill that is running (the arm holds)         no (stops it)
one per skill    the skill with its own typed parameters (``grasp``…)   yes
===============  =====================================================  ============

Every call goes the way a ``skillstack run`` goes: parameters through the skill's schema
and ranges, each plan through the validator (objects, preconditions, the skills' own
pre-motion checks), every command through the robot's safety filter, every observation
through the world model. A tool that moves the arm is refused unless the call says
``"confirm": true`` or the server was started with ``--allow-motion``: an agent cannot move
a real arm by accident. Refusals come back as tool errors with one line a person can act
on; nothing moves.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from skillstack.planners.executive import RunReport, propose, run_instruction
from skillstack.planners.goals import UNVERIFIED, Goal, instruction_goal
from skillstack.planners.types import Plan, Planner, PlanningError, PlanningRequest, SkillCall
from skillstack.planners.validator import validate_plan
from skillstack.skills.arm import SkillRunner
from skillstack.skills.registry import all_skills

CONFIRM = {
    "type": "boolean",
    "description": "true to let this call move the arm (not needed with --allow-motion)",
}
MESSAGE_CHARS = 500  # of a refusal or of an echoed value


class ToolError(Exception):
    """A call refused or failed: the message goes back to the client as the tool's error."""


class RobotTools:
    """The tools, independent of the MCP transport (see the module docstring).

    Args:
        arm: what executes skills and observes the world (a `LocalArm` over a simulator or a
            driver, with its world model).
        planner: plans instructions for ``plan`` and ``run``.
        allow_motion: motion without a per-call confirmation.
        stop: asked to stop the arm when ``stop`` is called and no skill is running (a skill
            running here stops at its next control tick, through `abort`).
        interrupt: asked when ``stop`` is called while a skill runs elsewhere (a robot
            server's ``stop``, which ends the remote skill; the arm holds).
    """

    def __init__(
        self,
        arm: SkillRunner,
        planner: Planner,
        *,
        allow_motion: bool = False,
        stop: Callable[[], None] | None = None,
        interrupt: Callable[[], None] | None = None,
    ) -> None:
        self.arm = arm
        self.planner = planner
        self.allow_motion = allow_motion
        self._stop = stop
        self._interrupt = interrupt
        self._motion = threading.Lock()  # one motion at a time
        self.stop_requested = threading.Event()

    def describe(self) -> list[dict[str, Any]]:
        """The tools: name, description, JSON Schema of the arguments."""
        tools = [
            _tool("skills", "Every skill with its description and parameter schema.", {}),
            _tool("observe", "The world now: objects, positions, predicates, the hand.", {}),
            _tool(
                "plan",
                "A validated plan (skill calls) for an instruction; nothing moves.",
                {"instruction": {"type": "string", "maxLength": 500}},
                ["instruction"],
            ),
            _tool(
                "run",
                "Carry out an instruction: plan, validate, execute, replan; success means "
                "the instruction's goal holds in the final world. Moves the arm.",
                {"instruction": {"type": "string", "maxLength": 500}, "confirm": CONFIRM},
                ["instruction"],
            ),
            _tool("stop", "Stop the running skill; the arm holds where it is.", {}),
        ]
        for skill in all_skills().values():
            schema = skill.schema()
            params = dict(schema["parameters"])
            props = {**params.get("properties", {}), "confirm": CONFIRM}
            tools.append(
                {
                    "name": skill.name,
                    "description": schema["description"] + " Moves the arm.",
                    "input_schema": {**params, "properties": props},
                }
            )
        return tools

    def call(self, name: str, arguments: dict[str, Any] | None) -> dict[str, Any]:
        """Run tool ``name``; its JSON-ready result, or `ToolError`."""
        args = dict(arguments or {})
        if name == "skills":
            return {"skills": [s.schema() for s in all_skills().values()]}
        if name == "observe":
            return _world(self.arm.observe())
        if name == "stop":
            return self._stop_now()
        if name == "plan":
            plan, goal = self._plan(_instruction(args))
            return {
                "plan": [c.to_dict() for c in plan.calls],
                "goal": goal.describe() if goal else UNVERIFIED,
            }
        if name == "run":
            self._gate(args, "run")
            instruction = _instruction(args)
            with self._motion:
                self.stop_requested.clear()
                report = run_instruction(instruction, self.arm, self.planner, stopped=self.abort)
            return report.to_dict()
        skills = all_skills()
        if name not in skills:
            raise ToolError(f"unknown tool {name[:100]!r}; tools: {', '.join(self._names())}")
        self._gate(args, name)
        args.pop("confirm", None)
        call = SkillCall(name, args)
        problems = validate_plan(Plan([call], "mcp"), self.arm.observe(), skills)
        if problems:
            raise ToolError("refused before motion: " + "; ".join(problems)[:MESSAGE_CHARS])
        with self._motion:
            self.stop_requested.clear()
            result = self.arm.execute(name, args)
        return result.to_dict()

    def abort(self) -> str | None:
        """Asked every control tick by a running skill: a reason once ``stop`` was called."""
        return "stopped by the MCP client" if self.stop_requested.is_set() else None

    def _stop_now(self) -> dict[str, Any]:
        self.stop_requested.set()
        running = self._motion.locked()
        if not running and self._stop is not None:
            self._stop()
        elif running and self._interrupt is not None:
            self._interrupt()
        return {"stopped": True, "was_running": running}

    def _plan(self, instruction: str) -> tuple[Plan, Goal | None]:
        world = self.arm.observe()
        goal = instruction_goal(instruction, world)
        request = PlanningRequest(instruction, world, all_skills(), state_goal=goal is None)
        try:
            return propose(self.planner, request, RunReport(instruction), goal=goal)
        except PlanningError as exc:
            raise ToolError(" ".join(str(exc).split())[:MESSAGE_CHARS]) from None

    def _gate(self, args: dict[str, Any], what: str) -> None:
        confirm = args.get("confirm", False)
        if not isinstance(confirm, bool):
            raise ToolError("confirm must be true or false")
        if not (self.allow_motion or confirm):
            raise ToolError(
                f"{what} moves the arm: call it again with confirm=true, or start the server "
                "with skillstack mcp --allow-motion; nothing moved"
            )

    def _names(self) -> list[str]:
        return [t["name"] for t in self.describe()]


def serve_stdio(tools: RobotTools, name: str = "skillstack") -> None:
    """Serve ``tools`` over stdio with the official MCP SDK until the client disconnects."""
    import anyio
    from mcp import types
    from mcp.server.lowlevel import Server
    from mcp.server.stdio import stdio_server

    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(**t) for t in tools.describe()])

    async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            result = await anyio.to_thread.run_sync(tools.call, params.name, params.arguments)
        except (ToolError, ValueError) as exc:
            text = " ".join(str(exc).split())[:MESSAGE_CHARS]
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=text)], is_error=True
            )
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(result))],
            structured_content=result,
        )

    server = Server(name, on_list_tools=list_tools, on_call_tool=call_tool)

    async def main() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)


def _tool(
    name: str, description: str, properties: dict, required: list[str] | None = None
) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return {"name": name, "description": description, "input_schema": schema}


def _instruction(args: dict[str, Any]) -> str:
    text = args.get("instruction")
    if not isinstance(text, str) or not text.strip():
        raise ToolError("instruction must be a non-empty string")
    if len(text) > 500:
        raise ToolError(f"instruction is {len(text)} characters; at most 500")
    return text


def _world(world) -> dict[str, Any]:
    return {
        "held": world.held,
        "objects": {
            name: {
                "kind": o.kind,
                "color": o.color,
                "size": list(o.size),
                "position": list(o.position),
            }
            for name, o in world.objects.items()
        },
        "predicates": sorted(" ".join(map(str, p)) for p in world.predicates),
        "contents": dict(world.contents),
    }
