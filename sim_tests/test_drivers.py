# Over 400 lines: the three vendor drivers against fakes of their SDKs, one section each.
"""Vendor drivers without vendor SDKs: clear refusals, consistent limits, and — against
small fake SDK modules that record calls — unit conversion and faithful forwarding."""

from __future__ import annotations

import math
import re
import sys
import types

import numpy as np
import pytest

from skillstack.hw.conformance import run_conformance
from skillstack.hw.drivers import (
    DRIVERS,
    DriverConnectionError,
    DriverOptionError,
    DriverUnavailable,
    TickPacer,
    franka,
    make_driver,
    parse_driver_options,
    ur,
    xarm,
)
from skillstack.hw.drivers.base import SPIN_S
from skillstack.hw.robot import RobotError
from skillstack.robot.arms import panda
from skillstack.robot.types import COMMAND_MODES, GripperCommand, JointCommand

SDK_MODULES = {
    "franka": ("franky",),
    "ur": ("rtde_control", "rtde_receive"),
    "xarm": ("xarm", "xarm.wrapper"),
}
SDK_PACKAGES = {"franka": "franky-control", "ur": "ur_rtde", "xarm": "xarm-python-sdk"}
DRIVER_NAMES = {"franka": "Franka", "ur": "UR", "xarm": "xArm"}
HOST = "192.0.2.7"  # TEST-NET-1: never a real robot


class FakeClock:
    """Monotonic time that advances when slept, and by 0.1 µs per reading (so spins end)."""

    def __init__(self, start: float = 100.0):
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        self.now += 1e-7
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def block_sdk(monkeypatch, kind: str) -> None:
    """Make the SDK of ``kind`` unimportable, whether or not it is installed."""
    for name in SDK_MODULES[kind]:
        monkeypatch.setitem(sys.modules, name, None)


# -- without SDKs ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(DRIVERS))
def test_a_missing_sdk_is_refused_with_the_pip_command(kind, monkeypatch):
    block_sdk(monkeypatch, kind)
    expected = (
        f"the {DRIVER_NAMES[kind]} driver needs {SDK_PACKAGES[kind]}: "
        f"pip install 'skillstack[{kind}]'"
    )
    with pytest.raises(DriverUnavailable, match=re.escape(expected)):
        make_driver(kind, HOST)
    with pytest.raises(DriverUnavailable, match=re.escape(f"skillstack[{kind}]")):
        DRIVERS[kind](HOST)


def test_driver_errors_are_robot_errors_the_cli_can_report():
    assert issubclass(DriverUnavailable, RuntimeError)
    assert issubclass(DriverConnectionError, RuntimeError)


@pytest.mark.parametrize("kind", ["kuka", "", "UR", None])
def test_make_driver_rejects_unknown_kinds_listing_the_valid_ones(kind):
    with pytest.raises(ValueError, match="valid kinds: franka, ur, xarm"):
        make_driver(kind, HOST)


CAPABILITIES = [
    (franka, "panda", franka.DEFAULT_CONTROL_RATE_HZ),
    (franka, "fr3", franka.DEFAULT_CONTROL_RATE_HZ),
    (ur, "ur3e", 500.0),
    (ur, "ur5e", 500.0),
    (ur, "ur10e", 500.0),
    (ur, "ur16e", 500.0),
    (xarm, "xarm6", 100.0),
    (xarm, "xarm7", 100.0),
]


@pytest.mark.parametrize("module, model, rate", CAPABILITIES)
def test_declared_capabilities_are_consistent(module, model, rate):
    caps = module.capabilities(model)
    n = caps.dof
    assert len(caps.joint_names) == len(set(caps.joint_names)) == n
    for limits in (caps.joint_lower, caps.joint_upper, caps.velocity_limit):
        assert limits.shape == (n,) and np.isfinite(limits).all()
    assert (caps.joint_lower < caps.joint_upper).all()
    for positive in (caps.velocity_limit, caps.acceleration_limit, caps.torque_limit):
        assert positive.shape == (n,) and (positive > 0).all() and np.isfinite(positive).all()
    assert caps.control_rate_hz == rate
    assert caps.command_modes and set(caps.command_modes) <= set(COMMAND_MODES)
    assert "joint_position" in caps.command_modes and "joint_torque" not in caps.command_modes
    if caps.gripper is not None:
        assert min(caps.gripper.max_width, caps.gripper.max_force, caps.gripper.max_speed) > 0


def test_declared_rates_and_units_match_the_vendor_figures():
    assert franka.FCI_RATE_HZ == 1000.0
    assert ur.CONTROL_RATE_HZ == 500.0
    assert xarm.MAX_CONTROL_RATE_HZ == 250.0
    panda_caps = franka.capabilities("panda")
    assert np.array_equal(panda_caps.joint_upper, panda.JOINT_UPPER)
    assert ur.capabilities("ur10e").velocity_limit[0] == pytest.approx(math.radians(120))
    assert ur.capabilities("ur5e").torque_limit.tolist() == [150, 150, 150, 28, 28, 28]
    assert xarm.capabilities("xarm7").velocity_limit[0] == pytest.approx(math.pi)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: franka.capabilities("panda", 2000.0), "control_rate_hz"),
        (lambda: franka.capabilities("fr2"), "valid models: panda, fr3"),
        (lambda: ur.capabilities("ur5"), "valid models: ur3e"),
        (lambda: ur.capabilities("ur5e", 1000.0), "control_rate_hz"),
        (lambda: xarm.capabilities("lite6"), "valid models: xarm7, xarm6"),
        (lambda: xarm.capabilities("xarm7", 500.0), "control_rate_hz"),
    ],
)
def test_impossible_configurations_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_gripper_unit_conversions_round_trip():
    assert xarm.width_to_pulse(xarm.GRIPPER_OPEN_WIDTH) == pytest.approx(850.0)
    assert xarm.width_to_pulse(0.043) == pytest.approx(425.0)
    assert xarm.pulse_to_width(425.0) == pytest.approx(0.043)
    assert xarm.width_to_pulse(-0.01) == 0.0 and xarm.pulse_to_width(-10.0) == 0.0
    assert xarm.speed_to_rpm(xarm.GRIPPER_NOMINAL_MAX_SPEED / 2) == pytest.approx(2500.0)


# -- options given as text (--robot-option KEY=VALUE) -----------------------------------------


@pytest.mark.parametrize(
    "kind, text, typed",
    [
        (
            "franka",
            {"model": "FR3", "realtime_config": "Ignore", "control_rate_hz": "250"},
            {"model": "fr3", "realtime_config": "ignore", "control_rate_hz": 250.0},
        ),
        (
            "franka",
            {"relative_dynamics_factor": "0.5", "gripper": "false"},
            {"relative_dynamics_factor": 0.5, "gripper": False},
        ),
        ("franka", {"gripper": "yes"}, {"gripper": True}),
        (
            "ur",
            {"model": "ur10e", "lookahead_time": "0.03", "gain": "2000"},
            {"model": "ur10e", "lookahead_time": 0.03, "gain": 2000.0},
        ),
        ("xarm", {"model": "xarm6", "gripper": "0"}, {"model": "xarm6", "gripper": False}),
        ("ur", {}, {}),
        ("xarm", None, {}),
    ],
)
def test_text_options_become_the_drivers_typed_keywords(kind, text, typed):
    assert parse_driver_options(kind, text) == typed


@pytest.mark.parametrize(
    "kind, text, match",
    [
        ("franka", {"speed": "1"}, "the Franka driver has no option 'speed'; valid options: "),
        ("franka", {"model": "fr4"}, "bad value 'fr4' for the Franka option model: "),
        ("franka", {"realtime_config": "off"}, "expected enforce|ignore"),
        ("franka", {"control_rate_hz": "2000"}, re.escape("expected N in (0, 1000] Hz")),
        ("franka", {"control_rate_hz": "0"}, re.escape("expected N in (0, 1000] Hz")),
        ("franka", {"control_rate_hz": "nan"}, "control_rate_hz"),
        ("franka", {"relative_dynamics_factor": "1.5"}, re.escape("(0, 1]")),
        ("franka", {"gripper": "maybe"}, "expected true|false"),
        ("ur", {"lookahead_time": "0.5"}, re.escape("expected N in [0.03, 0.2] s")),
        ("ur", {"gain": "fast"}, "bad value 'fast' for the UR option gain"),
        ("ur", {"gripper": "true"}, "valid options: model=ur3e|ur5e|ur10e|ur16e, "),
        ("xarm", {"model": "lite6"}, "expected xarm7|xarm6"),
    ],
)
def test_bad_text_options_are_refused_in_one_line_naming_the_valid_ones(kind, text, match):
    with pytest.raises(DriverOptionError, match=match) as info:
        parse_driver_options(kind, text)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_every_listed_option_is_a_constructor_keyword():
    import inspect

    for kind, cls in DRIVERS.items():
        keywords = inspect.signature(cls.__init__).parameters
        assert set(cls.OPTIONS) <= set(keywords), kind
        assert "model=" in cls.option_help() and "control_rate_hz=" in cls.option_help()


def test_parsed_options_build_the_driver_they_describe(monkeypatch):
    install(monkeypatch, franky=fake_franky(Calls()))
    text = {"model": "fr3", "control_rate_hz": "200", "gripper": "false"}
    robot = make_driver("franka", HOST, **parse_driver_options("franka", text))
    caps = robot.capabilities
    assert robot.model == "fr3" and caps.name == "franka-fr3" and caps.gripper is None
    assert caps.control_rate_hz == 200.0
    np.testing.assert_array_equal(caps.velocity_limit, franka.FR3_VELOCITY_LIMIT)


def test_the_cli_reads_robot_options_and_refuses_malformed_ones(capsys):
    import typer

    from skillstack.planners.cli.common import parse_robot_options

    assert parse_robot_options(None) == {}
    items = ["model=fr3", " gripper = false ", "realtime_config=ignore", "model=fr3"]
    assert parse_robot_options(items) == {
        "model": "fr3",
        "gripper": "false",
        "realtime_config": "ignore",
    }
    for bad, says in [
        ("model", "is not KEY=VALUE"),
        ("=fr3", "is not KEY=VALUE"),
        ("model=", "is not KEY=VALUE"),
        ("real time=ignore", "is not KEY=VALUE"),
    ]:
        with pytest.raises(typer.Exit) as info:
            parse_robot_options([bad])
        assert info.value.exit_code == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith("error: --robot-option") and says in line
    with pytest.raises(typer.Exit) as info:
        parse_robot_options(["model=fr3", "model=panda"])
    assert info.value.exit_code == 2 and "given twice" in capsys.readouterr().err


def test_make_robot_hands_options_to_drivers_only(monkeypatch, capsys):
    import typer

    from skillstack.planners.cli.common import make_robot

    def exit_code(*args, **kwargs) -> tuple[int, str]:
        with pytest.raises(typer.Exit) as info:
            make_robot(*args, **kwargs)
        (line,) = capsys.readouterr().err.splitlines()
        return info.value.exit_code, line

    code, line = exit_code("mujoco", None, None, options={"model": "fr3"})
    assert code == 2 and "--robot mujoco takes none" in line
    code, line = exit_code("franka", HOST, None, options={"speed": "1"})
    assert code == 2 and "valid options: model=panda|fr3, realtime_config=enforce|ignore" in line
    block_sdk(monkeypatch, "franka")  # options are checked before the SDK is needed ...
    code, line = exit_code("franka", HOST, None, options={"model": "fr3"})
    assert code == 1 and "pip install 'skillstack[franka]'" in line  # ... which is missing
    install(monkeypatch, franky=fake_franky(Calls()))
    robot = make_robot("franka", HOST, None, options={"model": "fr3", "gripper": "false"})
    assert isinstance(robot, franka.FrankaRobot) and robot.model == "fr3"
    assert not robot.connected


# -- the tick pacer ----------------------------------------------------------------------------


def test_the_pacer_holds_the_rate_and_counts_late_ticks():
    clock = FakeClock()
    pacer = TickPacer(500.0, clock=clock, sleep=clock.sleep, spin_s=0.0)
    start = clock.now
    for _ in range(10):
        assert pacer.wait() is False
    assert clock.now - start == pytest.approx(10 * 0.002, abs=1e-5)
    clock.now += 0.0105  # the loop body took 10.5 ms: 8.5 ms past the next deadline
    assert pacer.wait() is True
    assert pacer.late_ticks == 1 and pacer.max_overrun_s == pytest.approx(0.0085, abs=1e-5)
    before = clock.now
    assert pacer.wait() is False  # re-anchored: one full period, no burst of short ticks
    assert clock.now - before == pytest.approx(0.002, abs=1e-5)
    assert pacer.ticks == 12


def test_the_pacer_refuses_a_nonsense_rate():
    with pytest.raises(ValueError, match="positive"):
        TickPacer(0.0)


# -- fake SDKs ----------------------------------------------------------------------------------


class Calls(list):
    """Every SDK call as (name, args, kwargs)."""

    def named(self, name: str) -> list[tuple]:
        return [c for c in self if c[0] == name]


def install(monkeypatch, **modules: types.ModuleType) -> None:
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name.replace("__", "."), module)


UR_HOME = [0.0, -1.57, 1.57, -1.57, -1.57, 0.0]


def fake_ur_rtde(calls: Calls, fail: Exception | None = None) -> dict[str, types.ModuleType]:
    """rtde_control and rtde_receive over an ideal arm that is wherever it was last sent."""
    arm = {"q": list(UR_HOME), "dq": [0.0] * 6}

    class RTDEReceiveInterface:
        def __init__(self, host, frequency=-1.0):
            calls.append(("RTDEReceiveInterface", (host, frequency), {}))
            if fail is not None:
                raise fail

        def getActualQ(self):
            return list(arm["q"])

        def getActualQd(self):
            return list(arm["dq"])

        def getTargetQ(self):
            return list(arm["q"])

        def getTargetMoment(self):
            return [1.0, 2.0, 3.0, 0.1, 0.2, 0.3]

        def disconnect(self):
            calls.append(("receive.disconnect", (), {}))

    class RTDEControlInterface:
        def __init__(self, host, frequency=-1.0):
            calls.append(("RTDEControlInterface", (host, frequency), {}))

        def servoJ(self, q, speed, acceleration, time, lookahead_time, gain):
            calls.append(("servoJ", (q, speed, acceleration, time, lookahead_time, gain), {}))
            arm["dq"] = [(a - b) / time for a, b in zip(q, arm["q"])]
            arm["q"] = list(q)
            return True

        def speedJ(self, qd, acceleration=0.5, time=0.0):
            calls.append(("speedJ", (qd, acceleration, time), {}))
            arm["q"] = [a + v * time for a, v in zip(arm["q"], qd)]
            arm["dq"] = list(qd)
            return True

        def servoStop(self, a=10.0):
            calls.append(("servoStop", (a,), {}))
            arm["dq"] = [0.0] * 6

        speedStop = servoStop

        def __getattr__(self, name):  # stopScript, disconnect
            return lambda *args, **kwargs: calls.append((name, args, kwargs))

    control = types.ModuleType("rtde_control")
    control.RTDEControlInterface = RTDEControlInterface
    receive = types.ModuleType("rtde_receive")
    receive.RTDEReceiveInterface = RTDEReceiveInterface
    return {"rtde_control": control, "rtde_receive": receive}


def test_ur_forwards_exactly_the_filtered_commands(monkeypatch):
    calls = Calls()
    install(monkeypatch, **fake_ur_rtde(calls))
    clock = FakeClock()
    with make_driver("ur", HOST, model="ur5e", clock=clock, sleep=clock.sleep) as robot:
        assert calls.named("RTDEReceiveInterface")[0][1] == (HOST, 500.0)
        state = robot.read()
        assert state.q.tolist() == UR_HOME and state.gripper_width == 0.0
        assert state.tau.tolist() == [1.0, 2.0, 3.0, 0.1, 0.2, 0.3]
        target = state.q.copy()
        target[5] += 0.5  # far more than one tick allows: the filter clips it
        sent = robot.command(JointCommand("joint_position", target, state.time))
        assert robot.safety.last_verdict == "clipped"
        _, args, _ = calls.named("servoJ")[-1]
        assert args[0] == sent.values.tolist()  # the filtered values, bit for bit
        assert args[3:] == (0.002, ur.SERVO_LOOKAHEAD_S, ur.SERVO_GAIN)
        before = clock.now
        robot.wait_for_tick()  # paced by the driver: sleeps most of the 2 ms, spins the rest
        assert clock.now - before == pytest.approx(0.002, abs=1e-5) and clock.slept
        state = robot.read()
        velocity = np.zeros(6)
        sent = robot.command(JointCommand("joint_velocity", velocity, state.time))
        assert calls.named("servoStop"), "leaving servo mode must stop it first"
        assert calls.named("speedJ")[-1][1] == (sent.values.tolist(), math.pi, 0.002)
        robot.stop()
        assert len(calls.named("servoStop")) == 2  # the fake's speedStop is its servoStop
        np.testing.assert_array_equal(robot.safety.q_prev, robot.read().q)
    assert calls.named("stopScript") and calls.named("receive.disconnect")


def test_ur_unreachable_names_the_host_and_what_to_check(monkeypatch):
    calls = Calls()
    error = RuntimeError(f"Error: Could not connect to: {HOST} at 30004, verify the IP")
    install(monkeypatch, **fake_ur_rtde(calls, fail=error))
    robot = make_driver("ur", HOST)
    with pytest.raises(DriverConnectionError) as info:
        robot.connect()
    message = str(info.value)
    assert HOST in message and "verify the IP" in message and "Remote Control" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert not robot.connected


class FakeXArmAPI:
    """Speaks degrees unless told radians, like XArmAPI; gripper in pulses. An ideal arm:
    it is wherever it was last sent, having moved there in one `period`."""

    calls: Calls
    fail: Exception | None = None
    period = 1.0 / xarm.DEFAULT_CONTROL_RATE_HZ

    def __init__(self, port=None, is_radian=False, do_not_open=False, **kwargs):
        self.calls.append(
            ("XArmAPI", (port,), {"is_radian": is_radian, "do_not_open": do_not_open})
        )
        self.default_is_radian = is_radian
        self.joints_rad = [0.0, -0.5, 0.0, 0.8, 0.0, 1.3, 0.0]
        self.speeds_rad = [0.0] * 7
        self.gripper_pulse = 425.0
        self.error_code = 0

    def _radian(self, is_radian):
        return self.default_is_radian if is_radian is None else is_radian

    def connect(self):
        self.calls.append(("connect", (), {}))
        if self.fail is not None:
            raise self.fail

    def get_joint_states(self, is_radian=None, num=3):
        scale = 1.0 if self._radian(is_radian) else 180.0 / math.pi
        position = [v * scale for v in self.joints_rad]
        velocity = [v * scale for v in self.speeds_rad]
        return 0, [position, velocity, [0.5] * 7]

    def set_servo_angle_j(self, angles, speed=None, mvacc=None, mvtime=None, is_radian=None):
        self.calls.append(("set_servo_angle_j", (list(angles),), {"is_radian": is_radian}))
        scale = 1.0 if self._radian(is_radian) else math.pi / 180.0
        new = [a * scale for a in angles] + [0.0] * (7 - len(angles))
        self.speeds_rad = [(a - b) / self.period for a, b in zip(new, self.joints_rad)]
        self.joints_rad = new
        return 0

    def set_state(self, state=0):
        self.calls.append(("set_state", (state,), {}))
        if state == xarm.STOP_STATE:
            self.speeds_rad = [0.0] * 7
        return 0

    def get_gripper_position(self):
        return 0, self.gripper_pulse

    def set_gripper_position(self, pos, wait=False, speed=None, **kwargs):
        self.calls.append(("set_gripper_position", (pos,), {"wait": wait, "speed": speed}))
        self.gripper_pulse = pos
        return 0

    def __getattr__(self, name):  # set_mode, set_state, motion_enable, gripper setup, ...
        def record(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return 0

        return record


def fake_xarm(calls: Calls, fail: Exception | None = None) -> dict[str, types.ModuleType]:
    api = type("XArmAPI", (FakeXArmAPI,), {"calls": calls, "fail": fail})
    package = types.ModuleType("xarm")
    wrapper = types.ModuleType("xarm.wrapper")
    wrapper.XArmAPI = api
    package.wrapper = wrapper
    return {"xarm": package, "xarm__wrapper": wrapper}


def test_xarm_speaks_radians_and_converts_the_gripper(monkeypatch):
    calls = Calls()
    install(monkeypatch, **fake_xarm(calls))
    with make_driver("xarm", HOST, model="xarm7") as robot:
        assert calls.named("XArmAPI")[0][2] == {"is_radian": True, "do_not_open": True}
        assert ("set_mode", (xarm.SERVO_MODE,), {}) in calls
        arm = robot._arm
        state = robot.read()
        assert state.q.tolist() == arm.joints_rad  # radians, not degrees
        assert state.gripper_width == pytest.approx(0.043)  # 425 pulses
        target = state.q.copy()
        target[6] += 1e-5
        sent = robot.command(JointCommand("joint_position", target, state.time))
        _, args, kwargs = calls.named("set_servo_angle_j")[-1]
        assert args[0] == sent.values.tolist() and kwargs == {"is_radian": True}
        assert arm.joints_rad == sent.values.tolist()  # the arm went exactly there, in rad
        robot.gripper(GripperCommand(width=0.0215, force=10.0, speed=0.05))
        _, args, kwargs = calls.named("set_gripper_position")[-1]
        assert args[0] == pytest.approx(212.5) and kwargs["speed"] == pytest.approx(2500.0)
        assert kwargs["wait"] is False  # never block the control loop


def test_xarm_unreachable_names_the_host_and_what_to_check(monkeypatch):
    install(monkeypatch, **fake_xarm(Calls(), fail=Exception("connect socket failed")))
    robot = make_driver("xarm", HOST)
    with pytest.raises(DriverConnectionError, match=re.escape(HOST)) as info:
        robot.connect()
    assert "connect socket failed" in str(info.value) and "IPv4" in str(info.value)


class FakeRobotState(types.SimpleNamespace):
    """franky's RobotState: q, dq, tau_J, q_d and ``time`` (a Duration, 1 ms steps)."""


class FakeDuration:
    def __init__(self, ms: int):
        self.ms = ms

    def to_sec(self) -> float:
        return self.ms / 1000.0


def fake_franky(calls: Calls, fail: Exception | None = None) -> types.ModuleType:
    fr = types.ModuleType("franky")

    def record(name):
        class Recorded:
            def __init__(self, *args, **kwargs):
                self.args, self.kwargs = args, kwargs

        Recorded.__name__ = name
        return Recorded

    for name in ("JointMotion", "JointState", "JointVelocityMotion", "Duration"):
        setattr(fr, name, record(name))
    fr.JointStopMotion = record("JointStopMotion")
    fr.JointVelocityStopMotion = record("JointVelocityStopMotion")
    fr.RelativeDynamicsFactor = record("RelativeDynamicsFactor")
    fr.RealtimeConfig = types.SimpleNamespace(Enforce="RealtimeConfig.Enforce", Ignore="Ignore")

    class Robot:
        def __init__(self, host, **options):
            calls.append(("Robot", (host,), options))
            if fail is not None:
                raise fail
            q = panda.HOME_Q.copy()
            self.state = FakeRobotState(q=q, dq=np.zeros(7), tau_J=np.ones(7), q_d=q)
            self.relative_dynamics_factor = None
            self.joint_velocity_limit = types.SimpleNamespace(get=lambda: panda.VELOCITY_LIMIT)

        def move(self, motion, asynchronous=False):
            calls.append(("move", (motion,), {"asynchronous": asynchronous}))

        def join_motion(self, timeout=None):
            calls.append(("join_motion", (timeout,), {}))
            return True

        def poll_motion(self):
            calls.append(("poll_motion", (), {}))
            return True

    class Gripper:
        width = 0.08

        def __init__(self, host):
            calls.append(("Gripper", (host,), {}))

        def __getattr__(self, name):  # move_async, grasp_async
            return lambda *args: calls.append((name, args, {}))

    fr.Robot, fr.Gripper = Robot, Gripper
    return fr


def test_franka_streams_filtered_targets_as_franky_motions(monkeypatch):
    calls = Calls()
    install(monkeypatch, franky=fake_franky(calls))
    with make_driver("franka", HOST) as robot:
        assert calls.named("Robot")[0][2] == {"realtime_config": "RealtimeConfig.Enforce"}
        assert robot.capabilities.control_rate_hz == franka.DEFAULT_CONTROL_RATE_HZ
        assert robot._robot.relative_dynamics_factor == franka.DEFAULT_DYNAMICS_FACTOR
        state = robot.read()
        assert state.gripper_width == 0.08 and state.tau.tolist() == [1.0] * 7
        targets = []
        for k in (1, 2):
            target = state.q.copy()
            target[6] += 1e-4 * k
            targets.append(robot.command(JointCommand("joint_position", target, state.time)))
        (motion,), kwargs = calls.named("move")[-1][1:]
        assert type(motion).__name__ == "JointMotion" and kwargs == {"asynchronous": True}
        assert motion.kwargs["return_when_finished"] is False
        position, velocity = motion.args[0].args
        np.testing.assert_array_equal(position, targets[1].values)
        np.testing.assert_allclose(velocity, (targets[1].values - targets[0].values) * 100.0)
        # 0.01 rad/s is 0.4 % of the wrist's 2.61 rad/s: the velocity factor's floor applies
        factor = motion.kwargs["relative_dynamics_factor"]
        assert factor.args == (franka.MIN_VELOCITY_FACTOR, 1.0, 1.0)
        robot.command(JointCommand("joint_velocity", np.zeros(7), state.time))
        names = [type(c[1][0]).__name__ if c[0] == "move" else c[0] for c in calls[-3:]]
        assert names == ["JointStopMotion", "join_motion", "JointVelocityMotion"]
        duration = calls.named("move")[-1][1][0].kwargs["duration"]
        assert duration.args == (30,)  # ms: three ticks at 100 Hz, then franky ramps to zero
        robot.gripper(GripperCommand(width=0.02, force=30.0, speed=0.05))
        robot.gripper(GripperCommand(width=0.08, speed=0.05))
        assert calls.named("grasp_async")[-1][1][:3] == (0.02, 0.05, 30.0)
        assert calls.named("move_async")[-1][1] == (0.08, 0.05)
        with pytest.raises(RobotError, match="does not support 'joint_torque'"):
            robot.command(JointCommand("joint_torque", np.zeros(7), state.time))


def test_franka_caps_each_motion_at_the_streams_recent_top_speed(monkeypatch):
    """Ruckig may not catch up on a target by running faster than the stream asked for:
    each motion's velocity factor is SPEED_MARGIN above the fastest speed of the last
    SPEED_MEMORY_S, as a fraction of franky's own joint velocity limits (the first motion
    after connecting, a stop or an error is not capped)."""
    calls = Calls()
    install(monkeypatch, franky=fake_franky(calls))
    with make_driver("franka", HOST, relative_dynamics_factor=0.5) as robot:
        state = robot.read()
        q = state.q.copy()
        steps = [0.001 * k for k in range(6)] + [0.001 * k for k in range(5, -1, -1)]
        sent, factors = [], []
        for step in steps:  # rad per 10 ms tick: up to 0.5 rad/s and back to rest
            q[6] += step
            sent.append(robot.command(JointCommand("joint_position", q.copy(), state.time)))
            motion = calls.named("move")[-1][1][0]
            factors.append(motion.kwargs["relative_dynamics_factor"].args)
        wrist = np.array([c.values[6] for c in sent])
        speeds = np.abs(np.diff(wrist, prepend=wrist[0])) * 100.0  # the first starts from rest
        assert speeds.max() > 0.4  # the safety filter let the ramp through, nearly
        recent_top = np.maximum.accumulate(speeds) / panda.VELOCITY_LIMIT[6]
        # 1.05 x the top speed so far (as a fraction of franky's 2.61 rad/s), divided by
        # the robot-wide factor 0.5, which franky multiplies back in; never below the floor
        expected = np.maximum((1 + franka.SPEED_MARGIN) * recent_top / 0.5, 0.01)
        expected[0] = 1.0  # a stream's first motion starts from the robot's own state: no cap
        np.testing.assert_allclose([f[0] for f in factors], expected)
        assert {f[1:] for f in factors} == {(1.0, 1.0)}  # acceleration and jerk untouched


def test_franka_does_not_resend_a_target_the_running_motion_holds(monkeypatch):
    calls = Calls()
    install(monkeypatch, franky=fake_franky(calls))
    with make_driver("franka", HOST) as robot:
        state = robot.read()
        q = state.q.copy()
        robot.command(JointCommand("joint_position", q, state.time))  # from rest: sent
        robot.command(JointCommand("joint_position", q, state.time))  # held already
        assert len(calls.named("move")) == 1 and len(calls.named("poll_motion")) == 1
        q[6] += 1e-3
        for _ in range(4):
            robot.command(JointCommand("joint_position", q, state.time))
        moves = calls.named("move")
        # the step (moving), its first repeat (at rest now: velocity 0), then nothing
        assert len(moves) == 3 and not moves[-1][1][0].args[0].args[1].any()
        assert len(calls.named("poll_motion")) == 3  # franky is asked for errors instead
        robot.stop()  # a stop motion replaces the hold: the next target is sent again
        robot.command(JointCommand("joint_position", q, state.time))
        assert type(calls.named("move")[-1][1][0]).__name__ == "JointMotion"


def test_franka_reports_the_mean_velocity_over_its_window(monkeypatch):
    """libfranka's instantaneous dq may alias into a 100 Hz reader (franky-sim's wrist
    alternates +-0.077 rad/s at 500 Hz at rest); read() reports q's mean velocity over
    at least VELOCITY_WINDOW_S of the robot's own clock."""
    install(monkeypatch, franky=fake_franky(Calls()))
    with make_driver("franka", HOST) as robot:
        fake = robot._robot
        q0 = fake.state.q.copy()

        def at(ms: int, wrist_speed: float):
            q = q0.copy()
            q[6] += wrist_speed * ms / 1000.0 + (4e-5 if ms % 2 else -4e-5)  # 500 Hz dither
            dq = np.zeros(7)
            dq[6] = 0.077 if ms % 2 else -0.077
            fake.state = FakeRobotState(q=q, dq=dq, tau_J=np.ones(7), q_d=q, time=FakeDuration(ms))
            return robot.read()

        assert at(1000, 0.1).dq[6] == pytest.approx(-0.077)  # no earlier sample: libfranka's
        readings = [at(1000 + 10 * k, 0.1).dq[6] for k in range(1, 8)]
        assert readings[0] == pytest.approx(-0.077)  # 10 ms back is not yet a full window
        np.testing.assert_allclose(readings[1:], 0.1, atol=1e-9)  # 20 ms windows: exact
        assert at(1085, 0.1).dq[6] == pytest.approx(0.1 + 8e-5 / 0.025)  # odd span: 3 mrad/s
        assert at(1500, 0.1).dq[6] == pytest.approx(-0.077)  # 415 ms gap: too old, libfranka's


def test_franka_passes_realtime_config_and_explains_a_refusal(monkeypatch):
    class RealtimeException(Exception):
        pass

    calls = Calls()
    refusal = RealtimeException("libfranka: Running kernel does not have realtime capabilities.")
    install(monkeypatch, franky=fake_franky(calls, fail=refusal))
    robot = make_driver("franka", HOST, realtime_config="ignore", robot_options={"x": 1})
    with pytest.raises(DriverConnectionError) as info:
        robot.connect()
    assert calls.named("Robot")[0][2] == {"realtime_config": "Ignore", "x": 1}
    message = str(info.value)
    assert "realtime capabilities." in message and "capabilities.. " not in message
    assert "realtime_config=ignore" in message and "PREEMPT_RT" in message
    assert "\n" not in message and info.value.__cause__ is None
    with pytest.raises(ValueError, match="realtime_config must be one of enforce, ignore"):
        make_driver("franka", HOST, realtime_config="Ignore")


def test_franka_unreachable_names_the_host_and_what_to_check(monkeypatch):
    error = RuntimeError("libfranka: Connection timeout")
    install(monkeypatch, franky=fake_franky(Calls(), fail=error))
    robot = make_driver("franka", HOST, model="fr3")
    with pytest.raises(DriverConnectionError, match=re.escape(HOST)) as info:
        robot.connect()
    assert "Connection timeout" in str(info.value) and "FCI is activated" in str(info.value)


@pytest.mark.parametrize("kind, fake", [("ur", fake_ur_rtde), ("xarm", fake_xarm)])
def test_the_conformance_suite_passes_on_a_driver_over_an_ideal_fake_arm(kind, fake, monkeypatch):
    """The drivers' glue (pacing, modes, stop, e-stop re-arming) meets the HAL contract.

    The fake arm is ideal (it is exactly where it was last sent), so this says nothing about
    the real arm; on hardware, run the same suite against the real driver.
    """
    install(monkeypatch, **fake(Calls()))
    clock = FakeClock()
    # Sleeping through the pacer's final spin keeps the fake clock from being polled 2000x.
    robot = make_driver(kind, HOST, clock=clock, sleep=lambda s: clock.sleep(s + SPIN_S))
    results = run_conformance(robot, log=None)
    assert all(r.passed for r in results), {r.name: r.detail for r in results if not r.passed}
    assert [r.name for r in results if r.skipped] == (["gripper"] if kind == "ur" else [])
    assert robot.late_ticks == 0 and not robot.connected


def test_skills_run_on_an_xarm6_over_its_sdk_with_a_declared_world(monkeypatch):
    """The real-arm path end to end below the network: the xArm driver over a fake SDK (an
    ideal arm), the world a declared workcell, skills planned with the xArm 6 model. Nothing
    here has simulator ground truth."""
    from skillstack.robot.scene import Scene, SceneObject, Table
    from skillstack.skills.declared import DeclaredWorld
    from skillstack.skills.executor import execute
    from skillstack.skills.registry import get_skill

    calls = Calls()
    install(monkeypatch, **fake_xarm(calls))
    clock = FakeClock()
    robot = xarm.XArmRobot("10.0.0.7", model="xarm6", clock=clock, sleep=clock.sleep)
    assert robot.arm is not None and robot.arm.name == "xarm6"
    scene = Scene(Table(), (SceneObject("cube", "box", (0.05, 0.05, 0.05), (0.45, 0.1, 0.0)),))
    with robot:
        world = DeclaredWorld(robot, scene, twin=False)
        goal = (0.4, -0.1, 0.25)
        result = execute(get_skill("move_to"), {"position": list(goal)}, robot, world=world)
        assert result.success, result.message
        assert np.linalg.norm(np.subtract(world.observe().ee_position, goal)) < 0.005
        # What reached the SDK was radians, through the safety filter.
        assert calls.named("set_servo_angle_j")
        assert all(kw["is_radian"] for _, _, kw in calls.named("set_servo_angle_j"))


def test_skills_refuse_an_arm_without_a_kinematic_model_in_one_line(monkeypatch):
    from skillstack.robot.scene import Scene, Table
    from skillstack.skills.declared import DeclaredWorld

    install(monkeypatch, **fake_ur_rtde(Calls()))
    robot = ur.URRobot("10.0.0.8")
    with pytest.raises(RobotError, match="no kinematic model in robot/arms"):
        DeclaredWorld(robot, Scene(Table(), ()))
