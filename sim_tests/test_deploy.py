"""Rehearse before moving: a plan runs on the robot only after it succeeded in a twin."""

from __future__ import annotations

from skillstack.hw.sim.mujoco.robot import MujocoRobot
from skillstack.planners.deploy import deploy
from skillstack.planners.symbolic import SymbolicPlanner
from skillstack.planners.types import Plan, Planner, SkillCall
from skillstack.robot.scene import default_scene
from skillstack.skills.arm import LocalArm
from skillstack.skills.twin import twin_scene
from skillstack.skills.world import observe


class Fixed(Planner):
    """Always proposes the same calls."""

    name = "fixed"

    def __init__(self, calls):
        self.calls = calls

    def plan(self, request):
        return Plan(self.calls, self.name)


def test_a_rehearsed_plan_is_executed_after_confirmation():
    asked = []
    with MujocoRobot(default_scene()) as robot:
        report = deploy(
            "put the cube in the bowl",
            LocalArm(robot),
            SymbolicPlanner(),
            confirm=lambda r: asked.append(r.rehearsal) or True,
            joints=lambda: robot.read().q,
        )
        assert report.success, report.error
        assert observe(robot).holds("in", "cube", "bowl")
    assert report.rehearsed_ok and [s["skill"] for s in asked[0]] == ["grasp", "place"]


def test_a_plan_that_fails_in_rehearsal_never_moves_the_robot():
    # Valid on paper (the validator passes it); the twin finds the cup in the way.
    bad = [SkillCall("push", {"object": "cube", "direction": 90.0, "distance": 0.15})]
    with MujocoRobot(default_scene()) as robot:
        report = deploy("push the cube", LocalArm(robot), Fixed(bad), confirm=lambda r: True)
        assert robot.read().time == 0.0
    assert not report.rehearsed_ok and not report.confirmed and report.steps == []
    assert "failed in rehearsal at push" in report.error and "not executed" in report.error


def test_a_plan_the_skills_would_refuse_is_refused_before_rehearsal():
    bad = [
        SkillCall("grasp", {"object": "cube"}),
        SkillCall("place", {"object": "cube", "target": "table", "position": [0.45, 0.2]}),
    ]  # the cup is there
    with MujocoRobot(default_scene()) as robot:
        report = deploy("put the cube down", LocalArm(robot), Fixed(bad), confirm=lambda r: True)
        assert robot.read().time == 0.0
    assert report.rehearsal == [] and report.steps == [] and not report.confirmed
    assert "taken by cup" in report.error


def test_declining_moves_nothing():
    with MujocoRobot(default_scene()) as robot:
        report = deploy(
            "put the cube in the bowl", LocalArm(robot), SymbolicPlanner(), confirm=lambda r: False
        )
        assert robot.read().time == 0.0
    assert report.rehearsed_ok and not report.success and "nothing moved" in report.error


def test_the_twin_reproduces_the_observed_world():
    with MujocoRobot(default_scene()) as robot:
        world = observe(robot)
    twin = twin_scene(world)
    assert twin.names == world.objects.keys() or set(twin.names) == set(world.objects)
    assert twin.object("cup").contents == world.contents["cup"]
    with MujocoRobot(twin) as sim:
        again = observe(sim)
    assert again.predicates == world.predicates


def test_a_plan_that_cannot_reach_the_goal_is_neither_rehearsed_nor_executed():
    asked = []
    with MujocoRobot(default_scene()) as robot:
        report = deploy(
            "put the cube in the bowl",
            LocalArm(robot),
            Fixed([SkillCall("home", {})]),  # every step would succeed; the cube would stay
            confirm=lambda r: asked.append(r) or True,
        )
        assert robot.read().time == 0.0  # nothing moved
        assert not observe(robot).holds("in", "cube", "bowl")  # the simulator's truth
    assert not report.rehearsal and not asked and report.steps == []
    assert not report.success and report.goal == ["in(cube, bowl)"]
    assert "does not achieve the instruction's goal: in(cube, bowl)" in report.error
    assert report.rejected_plans == 2  # asked again once with the reason, then it repeated
