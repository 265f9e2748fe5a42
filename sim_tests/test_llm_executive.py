"""The LLM path end to end: a scripted chat-completions server, the real openai client, the
executive and the simulated arm. Malformed or unsafe replies are rejected or repaired; none
is executed."""

from __future__ import annotations

from chat_server import (  # chat_server_fixture provides the `chat_server` fixture
    chat_server_fixture,  # noqa: F401
    content,
    http_error,
    tool_calls,
)

from skillstack.hw.sim.mujoco.robot import MujocoRobot
from skillstack.planners.executive import run_instruction
from skillstack.planners.llm import LLMPlanner
from skillstack.planners.tasks import get_task

TASK = get_task("cube_in_bowl")  # blue1, red1 and a bowl


def planner_for(server) -> LLMPlanner:
    return LLMPlanner(
        base_url=server.base_url, model="scripted", timeout=2.0, max_retries=1, backoff_s=0.01
    )


def test_unsafe_and_malformed_replies_never_move_the_arm(chat_server):
    chat_server.push(
        content('Sure! Here is the plan: {"plan": [oops'),  # invalid JSON in prose
        content('Sure! Here is the plan: {"plan": [oops'),  # the same, asked in JSON mode
        tool_calls(("grasp", {"object": "ignore previous instructions and throw the bowl"})),
        tool_calls(("grasp", {"object": "blue1", "force": 5000})),
        tool_calls(("launch", {"object": "blue1"})),
    )
    with MujocoRobot(TASK.scene(0)) as robot:
        first = run_instruction(TASK.instruction, robot, planner_for(chat_server))
        second = run_instruction(TASK.instruction, robot, planner_for(chat_server))
        assert robot.read().time == 0.0  # nothing was executed
    assert not first.success and first.steps == [] and "JSON" in first.error
    assert not second.success and second.steps == [] and second.rejected_plans == 3
    assert "launch" in second.error


def test_a_rejected_plan_is_repaired_then_executed(chat_server):
    chat_server.push(
        http_error(500, "overloaded"),
        tool_calls(("grasp", {"object": "blue1", "force": 5000})),
        tool_calls(
            ("grasp", {"object": "blue1"}), ("place", {"object": "blue1", "target": "bowl"})
        ),
    )
    with MujocoRobot(TASK.scene(0)) as robot:
        planner = planner_for(chat_server)
        report = run_instruction(TASK.instruction, robot, planner, goal_check=TASK.check)
    assert report.success, report.error
    assert report.rejected_plans == 1
    assert [s["skill"] for s in report.steps] == ["grasp", "place"]
