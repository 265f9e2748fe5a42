"""The declared world model: a scene file tracked through the skills, checked against truth.

These run the skills on the MuJoCo arm with `skills.declared.DeclaredWorld` as their world —
the world model a real arm uses — and compare what it believes with the simulator's ground
truth, which the skills never see here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from skillstack.hw.robot import RobotError
from skillstack.hw.sim.mujoco.robot import MujocoRobot
from skillstack.planners.executive import run_instruction
from skillstack.planners.symbolic import SymbolicPlanner
from skillstack.planners.tasks import get_task
from skillstack.robot.scene import Scene, SceneObject, Table
from skillstack.robot.types import RobotState
from skillstack.skills.arm import LocalArm
from skillstack.skills.context import Context, top_down
from skillstack.skills.declared import CONTACT_FORCE, DeclaredWorld
from skillstack.skills.executor import execute
from skillstack.skills.registry import get_skill
from skillstack.skills.world import observe
from skillstack.skills.world_model import SimWorld, default_world

POSITION_TOL = 0.01  # m, declared vs true object position after the skills moved it


def _box(name, x, y, size=0.05, z=0.0, color=(0.8, 0.1, 0.1, 1.0)):
    return SceneObject(name, "box", (size, size, size), (x, y, z), color=color)


def _agree(world: DeclaredWorld, sim: MujocoRobot) -> None:
    believed, truth = world.observe(), observe(sim)
    for name, obj in truth.objects.items():
        error = np.linalg.norm(np.subtract(believed.object(name).position, obj.position))
        assert error < POSITION_TOL, (name, error)
    relations = ("on", "in", "holding", "on_table")
    assert {p for p in believed.predicates if p[0] in relations} == {
        p for p in truth.predicates if p[0] in relations
    }


@pytest.mark.parametrize("task", ["stack_two", "cube_in_bowl", "pour_then_plate", "push_left"])
def test_the_task_suite_succeeds_on_a_declared_world_and_agrees_with_the_truth(task):
    chosen = get_task(task)
    scene = chosen.scene(1)
    with MujocoRobot(scene) as sim:
        world = DeclaredWorld(sim, scene)
        report = run_instruction(
            chosen.instruction,
            LocalArm(sim, world=world),
            SymbolicPlanner(),
            goal_check=chosen.check,
        )
        assert report.success, report.error
        assert not chosen.unmet(observe(sim))  # the goal holds in the ground truth
        _agree(world, sim)
        if task == "pour_then_plate":
            assert world.contents["bowl"] == 20 and world.contents["cup"] == 0


def test_a_grasp_that_closes_on_nothing_takes_the_object_out_of_the_world():
    declared = Scene(Table(), (_box("cube", 0.5, 0.0), _box("other", 0.45, -0.2)))
    actual = Scene(Table(), (_box("other", 0.45, -0.2),))  # the cube is not there
    with MujocoRobot(actual) as sim:
        world = DeclaredWorld(sim, declared)
        result = execute(get_skill("grasp"), {"object": "cube"}, sim, world=world)
        assert not result.success and result.failure.value == "grasp_missed"
        assert "cube" not in world.observe().objects
        assert "cube" in world.missing and any("cube" in e for e in world.events)
        # The next grasp of a real object starts by rising, and succeeds.
        result = execute(get_skill("grasp"), {"object": "other"}, sim, world=world)
        assert result.success, result.message
        assert world.observe().held == "other" == observe(sim).held


def test_a_released_object_rests_on_the_highest_support_under_it():
    scene = Scene(
        Table(),
        (
            SceneObject("plate", "plate", (0.18, 0.015), (0.55, 0.1, 0.0)),
            _box("cube", 0.4, -0.15),
        ),
    )
    with MujocoRobot(scene) as sim:
        world = DeclaredWorld(sim, scene)
        for call in (
            ("grasp", {"object": "cube"}),
            ("place", {"object": "cube", "target": "plate"}),
        ):
            assert execute(get_skill(call[0]), call[1], sim, world=world).success
        cube = world.observe().object("cube")
        assert cube.bottom == pytest.approx(0.015, abs=1e-6)  # the plate's top, exactly
        assert world.observe().holds("on", "cube", "plate")
        _agree(world, sim)


def test_the_twin_answers_clearance_like_the_simulator():
    scene = get_task("cube_in_bowl").scene(0)
    with MujocoRobot(scene) as sim:
        world, truth = DeclaredWorld(sim, scene), SimWorld(sim)
        rng = np.random.default_rng(3)
        for _ in range(5):
            q = sim.arm.home_q + rng.uniform(-0.4, 0.4, size=7)
            assert world.clearance(q, within=0.2) == pytest.approx(
                truth.clearance(q, within=0.2), abs=1e-3
            )


def test_an_external_force_on_the_hand_is_a_contact_and_a_quiet_one_is_not():
    scene = Scene(Table(), (_box("cube", 0.5, 0.0),))
    with MujocoRobot(scene) as sim:
        world = DeclaredWorld(sim, scene)
        state = sim.read()

        def with_force(newtons: float) -> RobotState:
            wrench = np.array([0.0, 0.0, newtons, 0.0, 0.0, 0.0])
            return RobotState(
                state.time, state.q, state.dq, state.tau, state.gripper_width, wrench=wrench
            )

        world.track(with_force(0.5 * CONTACT_FORCE))
        assert world.unexpected_contacts(set()) == []
        world.track(with_force(1.5 * CONTACT_FORCE))
        (contact,) = world.unexpected_contacts(set())
        assert f"{1.5 * CONTACT_FORCE:.0f} N" in contact[1]


def test_the_twin_notices_the_arm_inside_a_declared_object():
    # The arm's measured joints put the fingers through a box the scene declares but the
    # simulator does not have: only the twin can know.
    declared = Scene(Table(), (_box("block", 0.5, 0.0, size=0.1),))
    with MujocoRobot(Scene(Table(), ())) as sim:
        world = DeclaredWorld(sim, declared)
        ctx = Context.for_robot(sim, world)
        for z in np.linspace(0.3, 0.04, 14):
            sim.reset(ctx.solve("probe", (0.5, 0.0, z), top_down(ctx, 0.0)))
            world.track(sim.read())
            if world.unexpected_contacts(set()):
                break
        else:
            pytest.fail("the twin never noticed the hand inside the block")
        assert z < 0.1  # only once the fingers are really inside (the top is at 10 cm)
        assert world.unexpected_contacts({"block"}) == []  # an allowed body is no contact


def test_a_robot_without_ground_truth_or_arm_model_is_refused_in_one_line():
    class Bare:  # what a driver without an arm model looks like to the skills
        arm = None

        class capabilities:
            name = "ur5e"

    with pytest.raises(RobotError, match="no simulator ground truth"):
        default_world(Bare())
    with pytest.raises(RobotError, match="no kinematic model"):
        DeclaredWorld(Bare(), Scene(Table(), ()))


def test_a_pour_moves_the_contents_in_the_books_only_when_the_cup_tips():
    task = get_task("pour")
    scene = task.scene(0)
    with MujocoRobot(scene) as sim:
        world = DeclaredWorld(sim, scene)
        assert execute(get_skill("grasp"), {"object": "cup"}, sim, world=world).success
        assert world.contents["cup"] == 20  # carried upright: nothing poured yet
        result = execute(get_skill("pour"), {"source": "cup", "target": "bowl"}, sim, world=world)
        assert result.success, result.message
        assert world.contents == {"cup": 0, "bowl": 20}
        true_bowl = observe(sim).contents["bowl"]
        assert true_bowl >= 14  # the simulator agrees that most of it landed
        assert math.isclose(result.metrics["particles_in_target"], 1.0)
