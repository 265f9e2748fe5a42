"""One robot factory for every kind (`skillstack.hw.factory.make_robot`)."""

from __future__ import annotations

import importlib.util

import pytest

from skillstack.hw.drivers import DriverUnavailable
from skillstack.hw.factory import ROBOT_KINDS, RobotSpecError, make_robot
from skillstack.robot.scene import default_scene


@pytest.mark.parametrize("kind", ["mujoco", "pybullet"])
def test_simulators_by_name_with_a_bundled_scene_run(kind):
    with make_robot(kind, scene="pour") as robot:
        names = {o.name for o in robot.scene.objects}
        assert {"cup", "bowl"} <= names
        robot.wait_for_tick()
        assert robot.read().q.shape == (robot.capabilities.dof,)


def test_a_scene_object_and_another_arm():
    with make_robot("mujoco", scene=default_scene(), arm="xarm6") as robot:
        assert robot.capabilities.dof == 6


def test_a_driver_is_built_not_connected_with_text_options():
    if importlib.util.find_spec("franky") is None:
        pytest.skip("franky-control is not installed")
    arm = make_robot("franka", host="127.0.0.99", options={"model": "fr3", "gripper": "false"})
    assert arm.model == "fr3" and arm.capabilities.gripper is None and not arm.connected


def test_a_driver_without_its_sdk_names_the_pip_command():
    if importlib.util.find_spec("rtde_control") is not None:
        pytest.skip("ur_rtde is installed here")
    with pytest.raises(DriverUnavailable, match="pip install"):
        make_robot("ur", host="127.0.0.99")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "kuka"}, "unknown robot 'kuka'; available: " + ", ".join(ROBOT_KINDS)),
        ({"kind": "franka"}, "needs --host"),
        ({"kind": "franka", "host": "h", "options": {"speed": "1"}}, "no option 'speed'"),
        ({"kind": "franka", "host": "h", "scene": "pour"}, "declared to the skills"),
        ({"kind": "mujoco", "options": {"model": "fr3"}}, "takes none"),
        ({"kind": "mujoco", "host": "10.0.0.2"}, "--host is for real arms"),
        ({"kind": "mujoco", "scene": "no_such_scene"}, "bundled scenes: blocks, pour"),
        ({"kind": "mujoco", "arm": "kuka"}, "kuka"),
        ({"kind": "tcp://127.0.0.1:5999", "scene": "pour"}, "scene is for simulators"),
        ({"kind": "x" * 10_000}, "unknown robot"),
    ],
)
def test_bad_input_is_one_bounded_line(kwargs, message):
    with pytest.raises(RobotSpecError) as info:
        make_robot(**kwargs)
    text = str(info.value)
    assert message in text and "\n" not in text and len(text) < 400


def test_every_arm_module_registers_itself_and_names_are_unique():
    import dataclasses
    import pkgutil

    from skillstack.robot import arms

    modules = {m.name for m in pkgutil.iter_modules(arms.__path__)} - {"common"}
    assert modules == set(arms.ARMS)  # one file, one arm: nothing else to edit
    for name in modules:
        assert getattr(arms, name).ARM is arms.get_arm(name)
    clash = dataclasses.replace(arms.get_arm("panda"), home_q=arms.get_arm("panda").home_q * 0)
    with pytest.raises(ValueError, match="already registered"):
        arms.register_arm(clash)
