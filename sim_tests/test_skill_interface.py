"""The skill interface without a simulator: registry, JSON Schema, parameters, predicates."""

from __future__ import annotations

import dataclasses

import jsonschema
import pytest

from skillstack.skills.base import Skill
from skillstack.skills.params import ParameterError, parse, schema
from skillstack.skills.registry import all_skills, get_skill, schemas
from skillstack.skills.world import ObjectState, WorldState

EXPECTED = {"grasp", "place", "pour", "push", "move_to", "release", "home"}


def test_registry_lists_every_skill_and_names_them_on_a_miss():
    assert EXPECTED <= set(all_skills())
    with pytest.raises(KeyError, match=r"available skills: .*grasp"):
        get_skill("teleport")


@pytest.mark.parametrize("name", sorted(all_skills()))  # every registered skill, new ones too
def test_every_skill_is_self_describing(name):
    skill = get_skill(name)
    assert isinstance(skill, Skill)
    tool = skill.schema()
    assert tool["name"] == name and len(tool["description"]) > 30
    jsonschema.Draft202012Validator.check_schema(tool["parameters"])
    for prop in tool["parameters"]["properties"].values():
        assert prop["description"], f"{name}: every parameter is described"
    assert skill.timeout_s > 0


def test_schemas_validate_good_calls_and_reject_bad_ones():
    grasp = next(s for s in schemas() if s["name"] == "grasp")["parameters"]
    jsonschema.validate({"object": "cube", "approach": "side", "force": 30.0}, grasp)
    for bad in ({"approach": "top"}, {"object": "cube", "force": 500}, {"object": "cube", "x": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, grasp)
    assert (
        grasp["properties"]["force"]["minimum"] == 5.0
        and "[N]" in grasp["properties"]["force"]["description"]
    )


def test_parse_reports_every_problem_at_once():
    with pytest.raises(ParameterError) as err:
        get_skill("push").parse({"object": 3, "direction": "left", "distance": 9.0, "speed": 1})
    problems = err.value.problems
    assert len(problems) == 4
    text = str(err.value)
    assert "object: expected a non-empty string" in text
    assert "direction: expected a number, got 'left'" in text
    assert "distance: 9.0 m is out of range [0.02, 0.25] m" in text
    assert "unknown parameter 'speed'; valid parameters: object, direction, distance" in text


@pytest.mark.parametrize("value", [True, float("inf"), float("nan"), None, [1.0]])
def test_numbers_must_be_finite_numbers(value):
    with pytest.raises(ParameterError):
        get_skill("grasp").parse({"object": "cube", "force": value})


def test_parse_returns_typed_frozen_parameters():
    p = get_skill("place").parse({"object": "cube", "target": "table", "position": [0.4, 0.1]})
    assert p.position == (0.4, 0.1) and p.offset == (0.0, 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.object = "other"
    assert parse(type(p), {"object": "a", "target": "b"}).position is None
    assert schema(type(p))["required"] == ["object", "target"]


def _obj(name, kind, size, position, quat=(1.0, 0.0, 0.0, 0.0)):
    return ObjectState(name, kind, "red", size, position, quat)


def test_predicates_from_geometry():
    world = WorldState(
        objects={
            "plate": _obj("plate", "plate", (0.18, 0.015), (0.5, 0.0, 0.0075)),
            "cube": _obj("cube", "box", (0.05, 0.05, 0.05), (0.51, 0.01, 0.015 + 0.025)),
            "bowl": _obj("bowl", "bowl", (0.16, 0.06), (0.4, 0.3, 0.03)),
            "ball": _obj("ball", "cylinder", (0.03, 0.03), (0.41, 0.29, 0.012 + 0.015)),
            "cup": _obj("cup", "cup", (0.07, 0.09), (0.3, -0.3, 0.045)),
        },
        contents={"cup": 12, "bowl": 0},
    )
    assert world.holds("on", "cube", "plate")
    assert world.holds("in", "ball", "bowl")
    assert world.holds("on_table", "plate") and not world.holds("on_table", "cube")
    assert not world.holds("clear", "plate") and world.holds("clear", "cube")
    assert world.holds("gripper_empty")
    assert world.holds("contains", "cup", 12)
    held = dataclasses.replace(world, held="cube")
    assert held.holds("holding", "cube") and not held.holds("gripper_empty")
    assert not held.holds("on", "cube", "plate")  # a held object rests on nothing
    text = world.describe()
    assert "cube: red box" in text and "on(cube, plate)" in text
    with pytest.raises(KeyError, match="objects: plate, cube"):
        world.object("ghost")


def test_effects_are_consistent_with_preconditions():
    world = WorldState(objects={"cube": _obj("cube", "box", (0.05,) * 3, (0.5, 0.0, 0.025))})
    grasp = get_skill("grasp")
    params = grasp.parse({"object": "cube"})
    assert all(world.holds(*p) for p in grasp.preconditions(params))
    add, delete = grasp.effects(world, params)
    after = (world.predicates - delete) | add
    assert ("holding", "cube") in after and ("gripper_empty",) not in after
    place = get_skill("place")
    pp = place.parse({"object": "cube", "target": "table", "position": [0.3, 0.2]})
    assert all(p in after for p in place.preconditions(pp))
