"""`skillstack mcp` driven by the official MCP SDK's own client over stdio, as an agent
application would: the tools are listed with the skills' own schemas, motion needs a
confirmation, bad calls are refused before motion, and what a call reports is checked with
``observe``, which reads the simulator's ground truth, not the skill's own verdict."""

from __future__ import annotations

import json
import sys

import anyio
import pytest

pytest.importorskip("mcp", reason="the MCP SDK is not installed (pip install 'skillstack[mcp]')")

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from run_cli import REPO

from skillstack.skills.registry import all_skills
from skillstack.skills.world import observe


def session_calls(*calls: tuple[str, dict], allow_motion: bool = False) -> tuple[list, list]:
    """Start `skillstack mcp`, list its tools, make ``calls`` in order; (tools, results)."""
    args = ["-m", "skillstack", "mcp", "--scene", "blocks"]
    if allow_motion:
        args.append("--allow-motion")
    params = StdioServerParameters(command=sys.executable, args=args, cwd=str(REPO))

    async def run():
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = (await session.list_tools()).tools
            results = [await session.call_tool(name, arguments) for name, arguments in calls]
            return tools, results

    return anyio.run(run)


def text(result) -> str:
    return result.content[0].text


def test_the_skills_are_listed_with_their_own_schemas_and_motion_needs_confirmation():
    tools, (refused, observed, grasped, world) = session_calls(
        ("grasp", {"object": "red_block"}),  # no confirm: refused, nothing moves
        ("observe", {}),
        ("grasp", {"object": "red_block", "confirm": True}),
        ("observe", {}),
    )
    by_name = {t.name: t for t in tools}
    assert {"skills", "observe", "plan", "run", "stop"} <= set(by_name)
    for name, skill in all_skills().items():
        schema = by_name[name].input_schema
        own = skill.schema()["parameters"]
        assert {k: v for k, v in schema["properties"].items() if k != "confirm"} == own[
            "properties"
        ]
        assert schema.get("required") == own.get("required")
    assert refused.is_error and "confirm=true" in text(refused) and "nothing moved" in text(refused)
    assert json.loads(text(observed))["held"] is None
    assert not grasped.is_error and json.loads(text(grasped))["success"], text(grasped)
    assert json.loads(text(world))["held"] == "red_block"


def test_bad_calls_are_refused_before_motion_in_one_line():
    _, results = session_calls(
        ("grasp", {"object": "unicorn"}),
        ("grasp", {"object": "red_block", "force": 5000}),
        ("move_to", {"position": [0.5, 0.0, -0.2]}),
        ("teleport", {}),
        ("run", {"instruction": "x" * 10_000}),
        allow_motion=True,
    )
    for result in results:
        assert result.is_error and "\n" not in text(result) and len(text(result)) <= 500
    assert "unicorn" in text(results[0]) and "force" in text(results[1])
    assert "move_to would refuse it" in text(results[2])
    assert "unknown tool 'teleport'" in text(results[3])


def test_plan_and_run_an_instruction_judged_on_its_goal():
    _, (plan, run, world) = session_calls(
        ("plan", {"instruction": "put the red cube on the plate"}),
        ("run", {"instruction": "put the red cube on the plate", "confirm": True}),
        ("observe", {}),
    )
    assert [c["skill"] for c in json.loads(text(plan))["plan"]] == ["grasp", "place"]
    report = json.loads(text(run))
    assert report["success"] and report["goal"] == ["on(red_block, plate)"], report
    assert "on red_block plate" in json.loads(text(world))["predicates"]


STACK = (
    "put the red block on the plate then put the green block on the red block "
    "then put the blue block on the green block"
)  # about 4 s of motion


def test_stop_interrupts_a_run_in_flight_and_the_arm_holds():
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "skillstack", "mcp", "--scene", "blocks"], cwd=str(REPO)
    )

    async def run():
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            results = {}

            async def run_call():
                results["run"] = await session.call_tool(
                    "run", {"instruction": STACK, "confirm": True}
                )

            async with anyio.create_task_group() as tg:
                tg.start_soon(run_call)
                await anyio.sleep(0.8)  # the run is planning or moving by now
                results["stop"] = await session.call_tool("stop", {})
                results["stop_wall"] = anyio.current_time()
            results["run_wall"] = anyio.current_time()
            await anyio.sleep(0.5)
            results["observe"] = await session.call_tool("observe", {})
            return results

    results = anyio.run(run)
    stop = json.loads(text(results["stop"]))
    assert stop == {"stopped": True, "was_running": True}  # answered while the run was going
    report = json.loads(text(results["run"]))
    assert not report["success"] and "stopped" in report["error"], report
    assert report["steps"][-1]["outcome"] == "safety_stop"
    assert report["replans"] == 0  # a stop is not a failure to recover from
    assert len(report["steps"]) < 6  # it ended early: the full stack is six steps
    world = json.loads(text(results["observe"]))
    assert "on blue_block green_block" not in world["predicates"]


def test_over_a_robot_server_skills_run_there_and_stop_stops_them_there():
    from skillstack.hw.server import free_port_pair
    from skillstack.hw.server.server import RobotServer, ServerConfig
    from skillstack.hw.sim.mujoco.robot import MujocoRobot
    from skillstack.robot.scene import load_scene
    from skillstack.robot.scene.bundled import find_scene
    from skillstack.skills.jobs import SkillJobs

    jobs = SkillJobs()
    robot = MujocoRobot(load_scene(find_scene("blocks")))
    server = RobotServer(robot, ServerConfig(port=free_port_pair()), run_skill=jobs.run,
                         observe=jobs.observe)  # fmt: skip
    server.start()
    args = ["-m", "skillstack", "mcp", "--robot", f"tcp://127.0.0.1:{server.config.port}"]
    params = StdioServerParameters(command=sys.executable, args=args, cwd=str(REPO))

    async def run():
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            out = {
                "grasp": await session.call_tool("grasp", {"object": "red_block", "confirm": True})
            }

            async def place():
                out["place"] = await session.call_tool(
                    "place", {"object": "red_block", "target": "plate", "confirm": True}
                )

            async with anyio.create_task_group() as tg:
                tg.start_soon(place)
                await anyio.sleep(0.5)  # the server's arm is carrying the block (real time)
                out["stop"] = await session.call_tool("stop", {})
            out["observe"] = await session.call_tool("observe", {})
            return out

    try:
        out = anyio.run(run)
        truth = observe(robot)  # the server's simulator, read directly
    finally:
        server.shutdown()
    assert json.loads(text(out["grasp"]))["success"], text(out["grasp"])
    assert json.loads(text(out["stop"])) == {"stopped": True, "was_running": True}
    placed = json.loads(text(out["place"]))
    assert not placed["success"] and placed["failure"] == "safety_stop", placed
    assert "on red_block plate" not in json.loads(text(out["observe"]))["predicates"]
    assert not truth.holds("on", "red_block", "plate")
