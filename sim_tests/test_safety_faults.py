"""Fault injection of the safety filter (issue 17): a filter that cannot be poisoned.

Overflowing finite commands, malformed input and a corrupted internal state never reach a
backend as NaN or an exception; the braking look-ahead keeps the commanded hand inside the
workspace (judged by an independent forward kinematics); torque mode keeps measured joint
speeds and positions inside their limits on a MuJoCo rollout.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from skillstack.hw.benchmarks import faults_filter
from skillstack.hw.benchmarks.faults_filter import IndependentFK, fuzz_workspace
from skillstack.hw.sim.mujoco.robot import MujocoRobot
from skillstack.robot.arms import get_arm
from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.safety import SafetyConfig, SafetyFilter
from skillstack.robot.scene import Scene, Table
from skillstack.robot.types import JointCommand, RobotState

ARM = get_arm("panda")
CAPS = ARM.capabilities
HOME = ARM.home_q.copy()
DOF = CAPS.dof
DT = CAPS.control_dt
LOWER, UPPER, VMAX = CAPS.joint_lower, CAPS.joint_upper, CAPS.velocity_limit
WS = SafetyConfig().workspace


def drive(f: SafetyFilter, commands, mode: str = "joint_position") -> list[JointCommand]:
    """Send ``commands`` one per tick, the 'backend' following each output exactly."""
    state = RobotState(0.0, HOME.copy(), np.zeros(DOF), np.zeros(DOF), 0.08)
    outputs = []
    for k, values in enumerate(commands, start=1):
        state.time = k * DT
        out = f.filter(JointCommand(mode, values, state.time), state)  # type: ignore[arg-type]
        outputs.append(out)
        values_out = np.asarray(out.values, dtype=float)
        state.q = values_out if out.mode == "joint_position" else state.q + values_out * DT
    return outputs


@pytest.mark.parametrize("model", [False, True], ids=["no-model", "model"])
@pytest.mark.parametrize("mode", ["joint_position", "joint_velocity"])
def test_1e308_alternation_never_produces_nan_and_does_not_poison_the_filter(model, mode):
    f = SafetyFilter(CAPS, KinematicModel(ARM) if model else None)
    f.reset(HOME)
    signs = np.where(np.arange(DOF) % 2 == 0, 1.0, -1.0)
    # [1e308, -1e308, ...] then [-1e308, 1e308, ...]: finite, but their differences are not.
    wild = [1e308 * signs * (1 if k % 2 else -1) for k in range(200)]
    outputs = drive(f, wild, mode)
    assert all(np.isfinite(out.values).all() and math.isfinite(out.stamp) for out in outputs)
    assert all(
        (out.values >= LOWER).all() and (out.values <= UPPER).all()
        for out in outputs
        if out.mode == "joint_position"
    )
    # Not poisoned: afterwards, holding still where the arm is passes unchanged.
    q = f.q_prev
    for _ in range(2000):  # first let it come to rest
        drive(f, [q if mode == "joint_position" else np.zeros(DOF)], mode)
        q = f.q_prev
    assert f.last_verdict == "pass"
    assert np.isfinite(f.q_prev).all() and np.isfinite(f.v_prev).all()


MALFORMED = {
    "complex": HOME.astype(np.complex128),
    "object": HOME.astype(object),
    "object-none": np.array([*HOME[:-1].tolist(), None], dtype=object),
    "strings": np.array([str(x) for x in HOME]),
    "structured": np.zeros(DOF, dtype=[("q", "f8"), ("v", "f8")]),
    "bool": np.ones(DOF, dtype=bool),
    "datetime": np.array(["2026-01-01"] * DOF, dtype="datetime64[s]"),
    "masked": np.ma.masked_array(HOME, mask=[0, 1, 0, 0, 0, 0, 0]),
}


@pytest.mark.parametrize("model", [False, True], ids=["no-model", "model"])
@pytest.mark.parametrize("kind", list(MALFORMED))
def test_non_real_arrays_are_refused_with_an_event_never_a_type_error(kind, model):
    f = SafetyFilter(CAPS, KinematicModel(ARM) if model else None)
    f.reset(HOME)
    (out,) = drive(f, [MALFORMED[kind]])
    assert f.last_verdict == "refused"
    assert [e.code for e in f.events] == ["bad_type"]
    assert "dtype" in f.events[0].message
    assert out.mode == "joint_position"
    np.testing.assert_array_equal(out.values, HOME)  # at rest: the stop holds still


@pytest.mark.parametrize("stamp", ["0.1", None, 1j, [0.0], 10**400])
def test_non_real_stamps_are_refused(stamp):
    f = SafetyFilter(CAPS, None)
    f.reset(HOME)
    state = RobotState(0.001, HOME.copy(), np.zeros(DOF), np.zeros(DOF), 0.08)
    out = f.filter(JointCommand("joint_position", HOME.copy(), stamp), state)  # type: ignore[arg-type]
    assert f.last_verdict == "refused"
    assert f.events[-1].code in {"bad_type", "non_finite"}
    assert np.isfinite(out.values).all() and math.isfinite(out.stamp)


def test_an_array_as_mode_is_refused():
    f = SafetyFilter(CAPS, None)
    f.reset(HOME)
    state = RobotState(0.001, HOME.copy(), np.zeros(DOF), np.zeros(DOF), 0.08)
    mode = np.array(["joint_position", "joint_position"])
    f.filter(JointCommand(mode, HOME.copy(), 0.001), state)  # type: ignore[arg-type]
    assert [e.code for e in f.events] == ["bad_mode"]


def test_integer_and_narrow_float_commands_still_work():
    f = SafetyFilter(CAPS, KinematicModel(ARM))
    f.reset(np.zeros(DOF) + np.clip(0.0, LOWER, UPPER))
    q0 = f.q_prev
    for dtype in (np.float32, np.int64):
        (out,) = drive(f, [q0.astype(dtype)])
        assert np.isfinite(np.asarray(out.values, dtype=float)).all()
        assert not [e for e in f.events if e.code == "bad_type"]


@pytest.mark.parametrize("field", ["_qp", "_vp", "_c_prev"])
def test_a_corrupted_internal_state_resets_to_a_hold_at_the_measured_position(field):
    f = SafetyFilter(CAPS, KinematicModel(ARM))
    f.reset(HOME)
    drive(f, [HOME + 0.001 * k for k in range(1, 20)])
    getattr(f, field)[3] = math.nan
    measured = HOME + 0.01
    state = RobotState(1.0, measured.copy(), np.zeros(DOF), np.zeros(DOF), 0.08)
    out = f.filter(JointCommand("joint_position", measured.copy(), 1.0), state)
    assert f.last_verdict == "refused"
    assert f.events[-1].code == "bad_state"
    np.testing.assert_array_equal(out.values, measured)
    assert np.isfinite(f.q_prev).all() and np.isfinite(f.v_prev).all()
    out = f.filter(JointCommand("joint_position", measured.copy(), 1.001), state)
    assert f.last_verdict == "pass"  # and the filter works again


def test_joint_reach_bounds_how_far_the_hand_moves():
    """The look-ahead's premise: |ee(q1) - ee(q2)| <= sum(reach |q1 - q2|), anywhere."""
    kin = KinematicModel(ARM)
    reach = kin.joint_reach()
    fk = IndependentFK()
    rng = np.random.default_rng(0)
    ratios = []
    for _ in range(300):
        q1 = rng.uniform(LOWER, UPPER)
        q2 = q1 + rng.normal(0.0, 0.3, DOF) * rng.integers(0, 2, DOF)
        moved = np.linalg.norm(fk.ee(q1).copy() - fk.ee(q2))
        ratios.append(moved / max(float(reach @ np.abs(q1 - q2)), 1e-12))
    assert max(ratios) <= 1.0
    assert max(ratios) > 0.5  # and it is not uselessly loose


def test_fast_dive_toward_the_table_brakes_above_it():
    """Velocity commands swinging the hand down at speed: every output stays above the
    table clearance (independent FK); checking only the commanded position would let the
    stop carry the hand below it."""
    f = SafetyFilter(CAPS, KinematicModel(ARM))
    f.reset(HOME)
    dive = np.zeros(DOF)
    dive[1], dive[3] = 0.9 * VMAX[1], 0.9 * VMAX[3]  # shoulder forward, elbow opening
    outputs = drive(f, [dive] * 1500, "joint_velocity")
    fk = IndependentFK()
    q = HOME.copy()
    lowest = math.inf
    for out in outputs:
        q = out.values if out.mode == "joint_position" else q + out.values * DT
        lowest = min(lowest, float(fk.ee(q)[2]))
    assert "table" in {e.code for e in f.events}  # it was refused ...
    assert lowest >= WS.table_z + WS.table_clearance  # ... in time
    assert lowest < WS.table_z + WS.table_clearance + 0.05  # (and not absurdly early)


def test_fuzzed_streams_never_take_the_hand_out_of_the_region():
    figures = fuzz_workspace(25, seed=5)
    assert figures["penetrating"] == 0, figures
    assert figures["worst_m"] == 0.0


def test_torque_mode_keeps_measured_speeds_and_positions_within_limits_on_mujoco():
    """Full torque on every joint for 1.5 s: unguarded, joints reach several times their
    speed limit; guarded, measured speeds stay below it and positions inside the range."""
    tau = CAPS.torque_limit * np.array([1, -1, 1, 1, -1, 1, -1])
    with MujocoRobot(Scene(Table(), (), name="torque")) as robot:
        worst_speed, worst_beyond = 0.0, -math.inf
        for _ in range(1500):
            state = robot.read()
            robot.command(JointCommand("joint_torque", tau.copy(), state.time))
            robot.wait_for_tick()
            state = robot.read()
            worst_speed = max(worst_speed, float((np.abs(state.dq) / VMAX).max()))
            worst_beyond = max(
                worst_beyond, float(np.maximum(LOWER - state.q, state.q - UPPER).max())
            )
        assert robot.safety.counts.get("clipped", 0) > 100  # the guard had work to do
    assert 0.5 < worst_speed <= 1.0
    assert worst_beyond <= 0.0


def test_fault_benchmark_small_run_passes_every_criterion():
    entries = faults_filter.run(small=True, seed=0)
    keys = {"fault", "criterion", "trials", "worst", "limit", "unit", "passed"}
    assert all(set(e) == keys for e in entries)
    assert {e["fault"] for e in entries} >= {
        "filter_non_finite",
        "filter_non_finite_no_model",
        "filter_bad_input",
        "filter_in_limit_identical",
        "workspace_streams_penetrating",
        "torque_speed",
        "torque_position",
    }
    failed = [e for e in entries if not e["passed"]]
    assert not failed, failed
    assert all(e["trials"] > 0 for e in entries if e["fault"] != "torque_speed_link_impact")
