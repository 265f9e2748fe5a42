"""Skills on seeded scenes: each one succeeds where it should and is refused, before any motion,
where it should not run; runtime failures carry the right typed code."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skillstack.hw.sim.geometry import CUP_WALL
from skillstack.hw.sim.mujoco.robot import MujocoRobot
from skillstack.robot.scene import Scene, SceneObject, Table, default_scene
from skillstack.skills.base import Failure
from skillstack.skills.executor import execute
from skillstack.skills.registry import get_skill


def scene(*objects: SceneObject) -> Scene:
    return Scene(Table(), objects)


CUBE = SceneObject("cube", "box", (0.05, 0.05, 0.05), (0.5, 0.0, 0.0), mass=0.15)
CAN = SceneObject("can", "cylinder", (0.06, 0.10), (0.45, 0.15, 0.0))
PLATE = SceneObject("plate", "plate", (0.18, 0.015), (0.45, -0.2, 0.0))
BOWL = SceneObject("bowl", "bowl", (0.16, 0.06), (0.4, 0.25, 0.0))


def run(robot, name, **params):
    return execute(get_skill(name), params, robot)


def assert_refused_before_motion(robot, name, params, failure: Failure, words: str):
    before = robot.read()
    result = execute(get_skill(name), params, robot)
    after = robot.read()
    assert not result.success and result.failure == failure, result.message
    assert not result.moved
    assert after.time == before.time and np.array_equal(after.q, before.q)
    assert words.lower() in result.message.lower(), result.message
    return result


# -- success ------------------------------------------------------------------------------
@pytest.mark.parametrize("approach", ["top", "side"])
def test_grasp_lifts_the_object(approach):
    with MujocoRobot(scene(CAN, CUBE)) as robot:
        result = run(robot, "grasp", object="can", approach=approach)
        assert result.success, result.message
        assert result.template == approach
        assert robot.object_pose("can").position[2] > 0.05 + 0.08  # lifted ~10 cm
        assert result.metrics["finger_width_m"] == pytest.approx(0.06, abs=0.004)


@pytest.mark.parametrize(("target", "relation"), [("plate", "on"), ("bowl", "in")])
def test_place_on_a_surface_and_in_a_container(target, relation):
    with MujocoRobot(scene(CUBE, PLATE, BOWL)) as robot:
        assert run(robot, "grasp", object="cube").success
        result = run(robot, "place", object="cube", target=target)
        assert result.success, result.message
        assert result.template == relation
        cube, goal = robot.object_pose("cube").position, robot.object_pose(target).position
        if relation == "on":
            assert math.dist(cube[:2], goal[:2]) < 0.04
        else:  # inside the bowl's wall (a cube dropped in may slide against it)
            inner = BOWL.size[0] / 2 - CUP_WALL - CUBE.size[0] / 2
            assert math.dist(cube[:2], goal[:2]) < inner + 0.002
            assert cube[2] < goal[2] + BOWL.size[1] / 2  # its centre below the rim


def test_place_on_the_table_at_a_position():
    with MujocoRobot(scene(CUBE)) as robot:
        assert run(robot, "grasp", object="cube").success
        result = run(robot, "place", object="cube", target="table", position=[0.35, -0.15])
        assert result.success, result.message
        assert math.dist(robot.object_pose("cube").position[:2], (0.35, -0.15)) < 0.02


def test_pour_lands_most_particles_in_the_bowl():
    with MujocoRobot(default_scene()) as robot:
        assert run(robot, "grasp", object="cup").success
        result = run(robot, "pour", source="cup", target="bowl")
        assert result.success, result.message
        assert result.metrics["particles_in_target"] >= 0.8
        assert get_skill("pour").name == "pour" and robot.read().gripper_width > 0.06  # still held


@pytest.mark.parametrize(("direction", "distance"), [(0.0, 0.10), (90.0, 0.06), (-135.0, 0.08)])
def test_push_moves_the_object_the_commanded_distance(direction, distance):
    with MujocoRobot(scene(CUBE)) as robot:
        start = robot.object_pose("cube").position
        result = run(robot, "push", object="cube", direction=direction, distance=distance)
        assert result.success, result.message
        moved = robot.object_pose("cube").position - start
        along = moved[0] * math.cos(math.radians(direction)) + moved[1] * math.sin(
            math.radians(direction)
        )
        assert along == pytest.approx(distance, abs=0.01)


def test_move_to_home_and_release():
    with MujocoRobot(scene(CUBE)) as robot:
        assert run(robot, "move_to", position=[0.4, -0.1, 0.3]).success
        assert math.dist(robot.ee_pose().position, (0.4, -0.1, 0.3)) < 0.005
        assert run(robot, "grasp", object="cube").success
        assert run(robot, "release").success
        assert robot.read().gripper_width > 0.07
        assert run(robot, "home").success


# -- refused before motion -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "params", "failure", "words"),
    [
        ("grasp", {"object": "bowl"}, Failure.TOO_LARGE, "at most"),
        ("grasp", {"object": "plate"}, Failure.TOO_LARGE, "at most"),
        ("grasp", {"object": "ghost"}, Failure.UNKNOWN_OBJECT, "objects: cube"),
        ("grasp", {"object": "cube", "force": 500}, Failure.INVALID_PARAMETERS, "out of range"),
        ("grasp", {"object": "cube", "approach": "below"}, Failure.INVALID_PARAMETERS, "'top'"),
        (
            "grasp",
            {"object": "cube", "lift": "high"},
            Failure.INVALID_PARAMETERS,
            "expected a number",
        ),
        ("grasp", {"object": "cube", "force": float("nan")}, Failure.INVALID_PARAMETERS, "finite"),
        ("grasp", {"object": "cube", "speed": 1}, Failure.INVALID_PARAMETERS, "unknown parameter"),
        ("grasp", {}, Failure.INVALID_PARAMETERS, "missing required"),
        ("grasp", {"object": "cup", "approach": "side"}, Failure.PRECONDITION_FAILED, "rim"),
        (
            "place",
            {"object": "cube", "target": "plate"},
            Failure.PRECONDITION_FAILED,
            "holding(cube)",
        ),
        ("pour", {"source": "cup", "target": "bowl"}, Failure.PRECONDITION_FAILED, "holding(cup)"),
        (
            "push",
            {"object": "cube", "direction": 0, "distance": 0.25},
            Failure.PRECONDITION_FAILED,
            "in the way",
        ),
        ("move_to", {"position": [0.4, 0.0, -0.1]}, Failure.UNREACHABLE, "reachable"),
        ("move_to", {"position": [0.4, 0.0]}, Failure.INVALID_PARAMETERS, "3 numbers"),
    ],
)
def test_refused_before_any_motion(name, params, failure, words):
    with MujocoRobot(default_scene()) as robot:
        assert_refused_before_motion(robot, name, params, failure, words)


def test_push_beyond_reach_is_refused():
    far = SceneObject("cube", "box", (0.05, 0.05, 0.05), (0.7, 0.0, 0.0))
    with MujocoRobot(scene(far)) as robot:
        assert_refused_before_motion(
            robot,
            "push",
            {"object": "cube", "direction": 0, "distance": 0.2},
            Failure.UNREACHABLE,
            "outside",
        )


def test_refusals_while_holding():
    extra = SceneObject("can", "cylinder", (0.06, 0.10), (0.3, -0.3, 0.0))
    base = default_scene()
    with MujocoRobot(Scene(base.table, (*base.objects, extra))) as robot:
        assert run(robot, "grasp", object="cube").success
        assert_refused_before_motion(
            robot, "grasp", {"object": "cup"}, Failure.PRECONDITION_FAILED, "gripper_empty"
        )
        assert_refused_before_motion(
            robot,
            "place",
            {"object": "cube", "target": "can"},
            Failure.INVALID_TARGET,
            "neither a surface",
        )
        assert_refused_before_motion(
            robot,
            "place",
            {"object": "cube", "target": "cup"},
            Failure.INVALID_TARGET,
            "does not fit",
        )
        assert_refused_before_motion(
            robot,
            "place",
            {"object": "cube", "target": "table"},
            Failure.INVALID_PARAMETERS,
            "position",
        )
        assert_refused_before_motion(
            robot,
            "place",
            {"object": "cube", "target": "table", "position": [0.45, 0.2]},
            Failure.INVALID_TARGET,
            "taken by cup",
        )
        assert_refused_before_motion(
            robot, "pour", {"source": "cube", "target": "bowl"}, Failure.INVALID_TARGET, "only cups"
        )


def test_pour_refuses_an_empty_cup_and_a_non_container():
    empty = SceneObject("cup", "cup", (0.07, 0.09), (0.45, 0.2, 0.0), contents=0)
    bowl = SceneObject("bowl", "bowl", (0.16, 0.06), (0.5, -0.05, 0.0))
    with MujocoRobot(scene(empty, PLATE, bowl)) as robot:
        assert run(robot, "grasp", object="cup").success
        assert_refused_before_motion(
            robot,
            "pour",
            {"source": "cup", "target": "plate"},
            Failure.INVALID_TARGET,
            "not a container",
        )
        assert_refused_before_motion(
            robot, "pour", {"source": "cup", "target": "bowl"}, Failure.PRECONDITION_FAILED, "empty"
        )


# -- failures during motion ------------------------------------------------------------------
def test_grasp_missed_when_the_object_is_taken_away():
    with MujocoRobot(scene(CUBE)) as robot:
        jnt = robot.model.joint("cube_joint")

        def snatch(state, sent):  # someone takes the cube while the arm comes down
            if 3.0 < state.time < 3.01:
                robot.data.qpos[jnt.qposadr[0] : jnt.qposadr[0] + 3] = (0.3, -0.35, 0.025)

        result = execute(get_skill("grasp"), {"object": "cube"}, robot, on_tick=snatch)
        assert result.failure == Failure.GRASP_MISSED, result.message
        assert "nothing" in result.message


def test_an_emergency_stop_ends_the_skill_with_safety_stop():
    with MujocoRobot(scene(CUBE)) as robot:

        def press_estop(state, sent):
            if 1.0 < state.time < 1.002:
                robot.estop("test")

        result = execute(get_skill("grasp"), {"object": "cube"}, robot, on_tick=press_estop)
        assert result.failure == Failure.SAFETY_STOP, result.message


def test_timeout():
    slow = type(get_skill("grasp"))()
    slow.timeout_s = 1.0
    with MujocoRobot(scene(CUBE)) as robot:
        result = execute(slow, {"object": "cube"}, robot)
    assert result.failure == Failure.TIMEOUT and "1 s" in result.message


def test_same_seed_same_outcome():
    from skillstack.skills.bench import run_episode

    a, b = run_episode("push", 7), run_episode("push", 7)
    assert a.metrics == b.metrics and a.success == b.success
