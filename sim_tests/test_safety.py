# Over 400 lines: every limit of the safety filter, each a short test.
"""Tests for robot.safety.SafetyFilter: every rule, at and just beyond its limit.

Like libfranka's rate-limiter tests: commands just inside every limit must come out
bit-identical, commands just outside must be clipped, and whatever goes in — random jumps,
huge values, NaN, inf — what comes out must respect every limit when differentiated at the
control period, starting from rest at the reset configuration.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skillstack.robot.arms import get_arm
from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.safety import SafetyConfig, SafetyFilter, Workspace
from skillstack.robot.trajectory import min_jerk
from skillstack.robot.types import JointCommand, RobotState

ARM = get_arm("panda")
CAPS = ARM.capabilities
HOME = ARM.home_q.copy()
DOF = CAPS.dof
DT = 0.001
LOWER, UPPER = CAPS.joint_lower, CAPS.joint_upper
VMAX, AMAX, TAU_MAX = CAPS.velocity_limit, CAPS.acceleration_limit, CAPS.torque_limit
WS = SafetyConfig().workspace
Z_MIN = WS.table_z + WS.table_clearance

SNAN = np.frombuffer(np.uint64(0x7FF0000000000001).tobytes(), dtype=np.float64)[0]
SNAN_BITS = 0x7FF0000000000001
BAD_VALUES = {"nan": math.nan, "snan": SNAN, "+inf": math.inf, "-inf": -math.inf}

FK = KinematicModel(ARM)  # the test's own forward kinematics


def ee(q: np.ndarray) -> np.ndarray:
    FK.update_positions_only(q)
    return FK.ee_position.copy()


def unit(j: int) -> np.ndarray:
    e = np.zeros(DOF)
    e[j] = 1.0
    return e


class Rig:
    """A SafetyFilter driven at 1 kHz, recording the position every output commands.

    ``q[0]`` is the reset configuration (at rest); ``q[k]`` the position after tick k.
    Velocity outputs are integrated exactly as the filter does (``q + v * dt``).
    """

    def __init__(self, q0: np.ndarray = HOME, config: SafetyConfig = SafetyConfig()):
        self.filter = SafetyFilter(CAPS, KinematicModel(ARM), config)
        self.filter.reset(q0)
        q0 = np.array(q0, dtype=float)
        self.state = RobotState(0.0, q0.copy(), np.zeros(DOF), np.zeros(DOF), 0.08)
        self.tick = 0
        self.q = [q0]
        self.verdicts: list[str] = []
        self.outputs: list[JointCommand] = []

    @property
    def now(self) -> float:
        return self.tick * DT

    def send(
        self, mode: str, values, stamp: float | None = None
    ) -> tuple[JointCommand, JointCommand]:
        self.tick += 1
        self.state.time = self.now
        sent = values.copy() if isinstance(values, np.ndarray) else values
        cmd = JointCommand(mode, values, self.now if stamp is None else stamp)
        out = self.filter.filter(cmd, self.state)
        if isinstance(values, np.ndarray):  # the caller's array is never modified
            assert values.tobytes() == sent.tobytes()
        self.outputs.append(out)
        self.verdicts.append(self.filter.last_verdict)
        if out.mode == "joint_position":
            q = np.array(out.values, dtype=float)
        elif out.mode == "joint_velocity":
            q = self.q[-1] + np.asarray(out.values, dtype=float) * DT
        else:
            q = self.q[-1]
        self.q.append(q)
        self.state.q = q.copy()
        return cmd, out

    def position(self, values, stamp: float | None = None) -> tuple[JointCommand, JointCommand]:
        return self.send("joint_position", values, stamp)

    def velocity(self, values, stamp: float | None = None) -> tuple[JointCommand, JointCommand]:
        return self.send("joint_velocity", values, stamp)

    def history(self) -> np.ndarray:
        return np.array(self.q)

    def codes(self) -> list[str]:
        return [e.code for e in self.filter.events]


def finite_differences(qs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """v_k = (q_k - q_{k-1})/dt, a_k = (v_k - v_{k-1})/dt, starting from rest at q_0."""
    v = np.vstack([np.zeros(DOF), np.diff(qs, axis=0) / DT])
    a = np.diff(v, axis=0) / DT
    return v[1:], a


def assert_feasible(qs: np.ndarray) -> None:
    """Finite, within position limits, velocity and acceleration limits by finite differences."""
    qs = np.asarray(qs, dtype=float)
    assert np.isfinite(qs).all()
    assert (qs >= LOWER).all(), (qs - LOWER).min()
    assert (qs <= UPPER).all(), (qs - UPPER).max()
    v, a = finite_differences(qs)
    assert (np.abs(v) <= VMAX).all(), (np.abs(v) / VMAX).max()
    assert (np.abs(a) <= AMAX).all(), (np.abs(a) / AMAX).max()


def assert_passed_unchanged(cmd: JointCommand, out: JointCommand, rig: Rig) -> None:
    assert rig.filter.last_verdict == "pass"
    assert out is cmd
    assert out.values is cmd.values


def ramp_velocities(j: int, frac: float = 0.999, cruise: int = 50) -> list[float]:
    """Speed of joint j per tick: up at frac*amax to frac*vmax, cruise, down to rest, rest."""
    a, top = frac * AMAX[j] * DT, frac * VMAX[j]
    speeds, v = [], 0.0
    while v < top:
        v = min(top, v + a)
        speeds.append(v)
    speeds += [top] * cruise
    while v > 0.0:
        v = max(0.0, v - a)
        speeds.append(v)
    return speeds + [0.0] * 20


def joint_trajectory(q_from: np.ndarray, q_to: np.ndarray, seconds: float) -> list[np.ndarray]:
    """Minimum-jerk joint-space positions, one per tick, ending at q_to."""
    n = round(seconds / DT)
    return [q_from + min_jerk(k / n)[0] * (q_to - q_from) for k in range(1, n + 1)]


# -- inside every limit: unchanged ---------------------------------------------------------
@pytest.mark.parametrize("j", range(DOF))
def test_position_ramp_just_inside_velocity_and_acceleration_limits_passes_bit_identical(j):
    rig = Rig()
    q = HOME.copy()
    for speed in ramp_velocities(j):
        q = q + unit(j) * speed * DT
        cmd, out = rig.position(q)
        assert_passed_unchanged(cmd, out, rig)
    v, a = finite_differences(rig.history())
    assert np.abs(v[:, j]).max() > 0.998 * VMAX[j]  # the ramp really reached the limit
    assert np.abs(a[:, j]).max() > 0.998 * AMAX[j]
    assert_feasible(rig.history())
    assert rig.filter.counts == {}
    assert not rig.filter.events


@pytest.mark.parametrize("j", range(DOF))
def test_velocity_ramp_just_inside_limits_passes_bit_identical(j):
    rig = Rig()
    for speed in ramp_velocities(j):
        cmd, out = rig.velocity(unit(j) * speed)
        assert_passed_unchanged(cmd, out, rig)
    assert_feasible(rig.history())


def test_all_joints_accelerating_together_just_inside_limits_pass():
    rig = Rig()
    q, v = HOME.copy(), np.zeros(DOF)
    signs = np.array([1, 1, -1, 1, -1, 1, -1])
    for _ in range(40):
        v = v + signs * 0.999 * AMAX * DT
        q = q + v * DT
        cmd, out = rig.position(q)
        assert_passed_unchanged(cmd, out, rig)
    for _ in range(40):  # and braking just as hard
        v = v - signs * 0.999 * AMAX * DT
        q = q + v * DT
        cmd, out = rig.position(q)
        assert_passed_unchanged(cmd, out, rig)


def test_holding_still_passes_bit_identical():
    rig = Rig()
    for _ in range(100):
        cmd, out = rig.position(HOME.copy())
        assert_passed_unchanged(cmd, out, rig)
        cmd, out = rig.velocity(np.zeros(DOF))
        assert_passed_unchanged(cmd, out, rig)
    np.testing.assert_array_equal(rig.history()[-1], HOME)


# Start configurations from which joint j can reach each limit with the end effector
# staying inside the workspace (home, where that works).
LIMIT_BASES = {
    (0, 0): [0.37, -0.72, 0.7, -1.85, -0.8, 2.14, 0.04],
    (0, 1): [0.37, -1.3, 0.58, -2.29, -0.32, 1.45, 0.03],
    (1, 1): [-0.08, -0.31, -0.43, -2.9718, -0.15, 1.09, 0.13],
    (3, 1): [-0.75, -0.97, 0.71, -2.57, -0.09, 0.88, 0.1],
    (4, 0): [0.12, -0.06, 0.59, -2.12, 0.77, 1.46, 1.52],
    (4, 1): [-0.62, -0.54, -0.44, -2.51, -0.68, 1.98, 1.34],
    (5, 1): [0.41, -1.06, 0.07, -2.65, 0.77, 1.45, 1.29],
}
LIMIT_CASES = [(j, side) for j in range(DOF) for side in (0, 1)]


def near_limit_start(j: int, side: int, distance: float) -> tuple[np.ndarray, float, float]:
    """(start q, limit, direction toward the limit) with joint j `distance` inside it."""
    base = np.array(LIMIT_BASES.get((j, side), HOME), dtype=float)
    limit = (LOWER, UPPER)[side][j]
    direction = 1.0 if side else -1.0
    base[j] = limit - direction * distance
    return base, limit, direction


@pytest.mark.parametrize(("j", "side"), LIMIT_CASES)
def test_creeping_up_to_a_position_limit_passes_bit_identical(j, side):
    q0, limit, direction = near_limit_start(j, side, 0.01)
    goal = q0.copy()
    goal[j] = limit - direction * 1e-6
    rig = Rig(q0)
    for q in joint_trajectory(q0, goal, 0.5) + [goal] * 50:
        cmd, out = rig.position(q)
        assert_passed_unchanged(cmd, out, rig)
    assert abs(rig.history()[-1][j] - limit) <= 1.1e-6
    assert_feasible(rig.history())
    # The same motion as velocities passes too (feed the exact finite differences).
    rig_v = Rig(q0)
    for v in np.diff(rig.history(), axis=0) / DT:
        cmd, out = rig_v.velocity(v)
        assert_passed_unchanged(cmd, out, rig_v)
    np.testing.assert_allclose(rig_v.history()[-1], goal, atol=1e-12)


# -- just outside: clipped --------------------------------------------------------------
@pytest.mark.parametrize("mode", ["joint_position", "joint_velocity"])
@pytest.mark.parametrize("j", range(DOF))
def test_velocity_just_above_the_limit_is_clipped_to_the_limit(j, mode):
    rig = Rig()
    q = HOME.copy()
    speeds = ramp_velocities(j)
    up = speeds.index(max(speeds)) + 5  # cruising at 0.999 vmax
    for speed in speeds[:up]:
        q = q + unit(j) * speed * DT
        rig.send(mode, q if mode == "joint_position" else unit(j) * speed)
    assert rig.verdicts == ["pass"] * up
    too_fast = unit(j) * 1.001 * VMAX[j]
    cmd, out = rig.send(mode, q + too_fast * DT if mode == "joint_position" else too_fast)
    assert rig.filter.last_verdict == "clipped"
    assert out is not cmd and out.mode == mode
    assert rig.filter.counts["clipped"] == 1
    assert_feasible(rig.history())
    v, _ = finite_differences(rig.history())
    assert 0.0 < v[-1, j] <= VMAX[j]
    np.testing.assert_allclose(np.delete(v[-1], j), 0.0, atol=1e-9)
    if mode == "joint_velocity":  # the nearest feasible command: exactly at the limit
        assert out.values[j] == pytest.approx(VMAX[j], rel=1e-8)


@pytest.mark.parametrize("mode", ["joint_position", "joint_velocity"])
@pytest.mark.parametrize("j", range(DOF))
def test_acceleration_just_above_the_limit_is_clipped_to_the_limit(j, mode):
    rig = Rig()
    dv = unit(j) * 1.001 * AMAX[j] * DT  # from rest, one tick
    cmd, out = rig.send(mode, HOME + dv * DT if mode == "joint_position" else dv)
    assert rig.filter.last_verdict == "clipped"
    assert out is not cmd
    assert_feasible(rig.history())
    _, a = finite_differences(rig.history())
    assert 0.0 < a[-1, j] <= AMAX[j]
    if mode == "joint_velocity":
        assert a[-1, j] == pytest.approx(AMAX[j], rel=1e-6)
    # Braking harder than the limit allows is clipped too.
    rig = Rig()
    q, speed = HOME.copy(), 0.0
    for _ in range(20):
        speed += 0.9 * AMAX[j] * DT
        q = q + unit(j) * speed * DT
        rig.send(mode, q if mode == "joint_position" else unit(j) * speed)
    assert set(rig.verdicts) == {"pass"}
    speed -= 1.001 * AMAX[j] * DT
    rig.send(mode, q + unit(j) * speed * DT if mode == "joint_position" else unit(j) * speed)
    assert rig.filter.last_verdict == "clipped"
    assert_feasible(rig.history())
    _, a = finite_differences(rig.history())
    assert a[-1, j] == pytest.approx(-AMAX[j], rel=1e-6)


@pytest.mark.parametrize(("j", "side"), LIMIT_CASES)
def test_position_beyond_a_limit_is_clipped_inside(j, side):
    q0, limit, direction = near_limit_start(j, side, 1e-6)
    rig = Rig(q0)
    beyond = q0.copy()
    beyond[j] = limit + direction * 1e-8  # slow (1 mrad/s) and gentle, but past the limit
    cmd, out = rig.position(beyond)
    assert rig.filter.last_verdict == "clipped"
    assert out is not cmd
    assert_feasible(rig.history())
    # Pushing far past the limit for a while: the output stops at or before it.
    for _ in range(200):
        far = rig.q[-1].copy()
        far[j] = limit + direction * 0.5
        rig.position(far)
    assert set(rig.verdicts) == {"clipped"}
    assert_feasible(rig.history())
    assert abs(rig.history()[-1][j] - limit) < 1e-6


@pytest.mark.parametrize(("j", "side"), LIMIT_CASES)
def test_fast_approach_toward_a_limit_brakes_in_time(j, side):
    """Commanded to run through a limit at speed, the joint brakes and stops inside it."""
    q0, limit, direction = near_limit_start(j, side, 0.4)
    rig = Rig(q0)
    goal = q0.copy()
    goal[j] = limit + direction * 0.3
    for q in joint_trajectory(q0, goal, 0.6) + [goal] * 300:
        rig.position(q)
    qs = rig.history()
    assert_feasible(qs)
    assert "clipped" in rig.verdicts
    assert abs(qs[-1][j] - limit) < 1e-3  # it ends pressed against (not beyond) the limit
    v, _ = finite_differences(qs)
    assert np.abs(v[:, j]).max() > 1.0  # the approach really was fast


# -- whatever comes in, the output is feasible -------------------------------------------
def wild_sequence(rig: Rig, mode: str, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    kinds = ["jump", "step", "hold", "continue", "huge", "bad", "stale", "near"]
    probs = [0.12, 0.3, 0.1, 0.2, 0.05, 0.05, 0.03, 0.15]
    for _ in range(n):
        kind = rng.choice(kinds, p=probs)
        last = rig.q[-1]
        v_last = (rig.q[-1] - rig.q[-2]) / DT if len(rig.q) > 1 else np.zeros(DOF)
        stamp = None
        if mode == "joint_position":
            if kind == "jump":
                values = rng.uniform(LOWER - 0.5, UPPER + 0.5)
            elif kind == "step":
                values = last + rng.normal(0.0, 0.02, DOF)
            elif kind == "continue":
                values = last + v_last * DT + rng.normal(0.0, 1e-5, DOF)
            elif kind == "near":
                values = HOME + rng.normal(0.0, 0.3, DOF)
            else:
                values = last.copy()
        else:
            if kind == "jump":
                values = rng.uniform(-3.0, 3.0, DOF) * VMAX
            elif kind == "step":
                values = v_last + rng.normal(0.0, 0.5, DOF)
            elif kind == "hold":
                values = np.zeros(DOF)
            elif kind == "near":
                values = (HOME - last) * 2.0
            else:
                values = v_last.copy()
        if kind == "huge":
            values[rng.integers(DOF)] = rng.choice([1e6, -1e6, 1e12, -1e300])
        elif kind == "bad":
            values[rng.integers(DOF)] = rng.choice([math.nan, math.inf, -math.inf])
        elif kind == "stale":
            stamp = rig.now + DT - rng.uniform(0.11, 5.0)
        rig.send(mode, values, stamp)


@pytest.mark.parametrize("mode", ["joint_position", "joint_velocity"])
@pytest.mark.parametrize("seed", [1, 2])
def test_random_wild_commands_never_produce_an_infeasible_output(mode, seed):
    rig = Rig()
    wild_sequence(rig, mode, 2000, seed)
    assert_feasible(rig.history())
    for out in rig.outputs:
        assert np.isfinite(out.values).all()
        if out.mode == "joint_velocity":
            assert (np.abs(out.values) <= VMAX).all()
    # Every kind of outcome happened, so the check above covered all of them.
    counts = {v: rig.verdicts.count(v) for v in set(rig.verdicts)}
    assert counts.get("pass", 0) > 20, counts
    assert counts.get("clipped", 0) > 200, counts
    assert counts.get("refused", 0) > 20, counts


_joint_values = arrays(
    np.float64,
    DOF,
    elements=st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
)
_command = st.one_of(
    st.tuples(st.just("raw"), _joint_values),
    st.tuples(st.just("offset"), arrays(np.float64, DOF, elements=st.floats(-0.05, 0.05))),
    st.tuples(st.just("absolute"), arrays(np.float64, DOF, elements=st.floats(-4.0, 4.0))),
    st.tuples(st.just("hold"), st.none()),
)
_shared_kin = KinematicModel(ARM)


@settings(
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    mode=st.sampled_from(["joint_position", "joint_velocity"]),
    commands=st.lists(st.tuples(_command, st.integers(1, 40)), min_size=1, max_size=12),
)
def test_property_output_is_always_feasible(mode, commands):
    """Hypothesis: runs of arbitrary commands (each repeated a few ticks) stay feasible."""
    f = SafetyFilter(CAPS, _shared_kin, SafetyConfig())
    f.reset(HOME)
    state = RobotState(0.0, HOME.copy(), np.zeros(DOF), np.zeros(DOF), 0.08)
    qs = [HOME.copy()]
    tick = 0
    for (kind, values), repeat in commands:
        for _ in range(repeat):
            tick += 1
            state.time = tick * DT
            if kind == "hold":
                cmd_values = qs[-1].copy() if mode == "joint_position" else np.zeros(DOF)
            elif kind == "offset":
                cmd_values = qs[-1] + values if mode == "joint_position" else values * 40.0
            else:
                cmd_values = values.copy()
            out = f.filter(JointCommand(mode, cmd_values, state.time), state)
            assert np.isfinite(out.values).all()
            if out.mode == "joint_position":
                qs.append(np.array(out.values, dtype=float))
            else:
                qs.append(qs[-1] + out.values * DT)
            state.q = qs[-1].copy()
    assert_feasible(np.array(qs))


# -- non-finite values --------------------------------------------------------------------
def with_bad_value(kind: str, j: int) -> np.ndarray:
    values = HOME.copy()
    values[j] = BAD_VALUES[kind]
    if kind == "snan":  # make sure the array holds the signalling bit pattern itself
        values.view(np.uint64)[j] = SNAN_BITS
        assert int(values.view(np.uint64)[j]) == SNAN_BITS
    return values


@pytest.mark.parametrize("where", [*range(DOF), "stamp"])
@pytest.mark.parametrize("kind", list(BAD_VALUES))
def test_non_finite_values_are_never_passed(kind, where):
    rig = Rig()
    # Move first, so the refusal has to decelerate a moving arm.
    q = HOME.copy()
    for k in range(1, 31):
        q = q + np.full(DOF, 0.5 * k * DT) * AMAX * DT
        rig.position(q)
    assert set(rig.verdicts) == {"pass"}
    if where == "stamp":
        cmd, out = rig.position(q.copy(), stamp=float(BAD_VALUES[kind]))
    else:
        cmd, out = rig.position(with_bad_value(kind, where))
    assert out is not cmd
    assert np.isfinite(out.values).all()
    assert math.isfinite(out.stamp)
    assert rig.filter.last_verdict == "refused"
    assert rig.codes()[-1] == "non_finite"
    assert rig.filter.counts["non_finite"] == 1
    assert out.mode == "joint_position"
    v, _ = finite_differences(rig.history())
    assert (np.abs(v[-1]) < np.abs(v[-2])).all()  # decelerating
    assert_feasible(rig.history())


@pytest.mark.parametrize("mode", ["joint_velocity", "joint_torque"])
@pytest.mark.parametrize("kind", list(BAD_VALUES))
def test_non_finite_values_are_refused_in_every_mode(mode, kind):
    rig = Rig()
    values = np.zeros(DOF)
    values[3] = BAD_VALUES[kind]
    if kind == "snan":
        values.view(np.uint64)[3] = SNAN_BITS
    _cmd, out = rig.send(mode, values)
    assert np.isfinite(out.values).all()
    assert rig.filter.last_verdict == "refused"
    assert rig.codes() == ["non_finite"]
    np.testing.assert_array_equal(out.values, HOME)  # at rest: the stop holds still


# -- workspace and table -------------------------------------------------------------------
Q_BELOW_TABLE = np.array([0.0, 0.9, 0.0, -2.0, 0.0, 2.4, 0.785398])


def drive_until_refused(rig: Rig, trajectory: list[np.ndarray], extra: int) -> int:
    """Send the trajectory, then its last point `extra` times more; return the first refusal."""
    for q in trajectory + [trajectory[-1]] * extra:
        rig.position(q)
    assert "refused" in rig.verdicts
    return rig.verdicts.index("refused")


def assert_controlled_stop(qs: np.ndarray, refused_index: int) -> None:
    """From the first refused tick (index into the verdicts) on: decelerate, then hold."""
    assert_feasible(qs)
    v, _ = finite_differences(qs)  # v[i] is the velocity of tick i+1, verdict i
    moving = v[refused_index - 1]  # the last velocity that passed
    assert np.abs(moving).max() > 0.01  # the arm was moving when refused
    tail = v[refused_index - 1 :]
    assert (np.abs(np.diff(tail, axis=0)) <= AMAX * DT * (1 + 1e-6)).all()
    assert (np.abs(tail[1:]) <= np.abs(tail[:-1])).all()  # never speeds up
    assert (tail[1:] * tail[:-1] >= 0).all()  # never reverses
    stop_ticks = int(np.ceil((np.abs(moving) / AMAX).max() / DT)) + 2
    assert (tail[stop_ticks:] == 0).all()  # at rest, then held exactly


def first_clipped_after(rig: Rig, first: int) -> int:
    """Index of the first clipped verdict after ``first`` (the end of the first stop)."""
    rest = rig.verdicts[first:]
    return first + rest.index("clipped") if "clipped" in rest else len(rig.verdicts)


def test_command_below_the_table_is_refused_with_a_controlled_stop():
    """Refused while the arm can still brake above the clearance: it never goes below."""
    rig = Rig()
    traj = joint_trajectory(HOME, Q_BELOW_TABLE, 4.0)
    first = drive_until_refused(rig, traj, 200)
    assert set(rig.verdicts[:first]) == {"pass"}
    # Refused before the commanded position itself crosses (the braking look-ahead) ...
    assert ee(traj[first - 1])[2] >= Z_MIN
    # ... and afterwards only moved where it can still stop in time (clipped) or stopped.
    assert set(rig.verdicts[first:]) == {"refused", "clipped"}
    assert set(rig.codes()) == {"table"}  # logged once per 0.5 s of refusals
    assert len(rig.codes()) <= 2 + (len(rig.verdicts) - first) * DT / 0.5
    assert "below the table" in rig.filter.events[0].message
    qs = rig.history()
    # q[first] is the last commanded position that passed: the stop starts from there.
    np.testing.assert_array_equal(qs[first], traj[first - 1])
    assert_controlled_stop(qs[: first_clipped_after(rig, first) + 1], first)
    heights = [ee(q)[2] for q in qs]
    assert min(heights) >= Z_MIN  # no overshoot at all
    assert heights[-1] < Z_MIN + 0.01  # it ends close to the clearance, not far above it
    assert_feasible(qs)


def test_table_clearance_is_part_of_the_rule():
    """Above the table plane but closer than the clearance: never reached."""
    rig = Rig()
    traj = joint_trajectory(HOME, Q_BELOW_TABLE, 4.0)
    first = drive_until_refused(rig, traj, 10)
    assert min(ee(q)[2] for q in traj) < WS.table_z  # the command goes through the table
    assert min(ee(q)[2] for q in rig.q) >= Z_MIN
    assert set(rig.codes()) == {"table"}
    # A raised table moves the rule with it.
    raised = SafetyConfig(workspace=Workspace(table_z=0.2))
    rig2 = Rig(config=raised)
    first2 = drive_until_refused(rig2, traj, 10)
    assert first2 < first
    assert min(ee(q)[2] for q in rig2.q) >= 0.2 + WS.table_clearance
    assert ee(traj[first2 - 1])[2] >= 0.2 + WS.table_clearance


@pytest.mark.parametrize(
    ("q_goal", "axis", "bound"),
    [
        ([2.8, -0.785398, 0.0, -2.356194, 0.0, 1.570796, 0.785398], 0, WS.lower[0]),
        ([1.57, 0.9, 0.0, -0.6, 0.0, 1.5, 0.785398], 1, WS.upper[1]),
        ([0.0, 0.0, 0.0, -0.1, 0.0, 1.6, 0.785398], 2, WS.upper[2]),
    ],
    ids=["behind", "left", "above"],
)
def test_command_outside_the_workspace_box_is_refused_with_a_controlled_stop(q_goal, axis, bound):
    rig = Rig()
    traj = joint_trajectory(HOME, np.array(q_goal), 3.0)
    side = 1.0 if bound > 0 else -1.0  # measure along the axis, toward the face
    assert max(side * ee(q)[axis] for q in traj) > side * bound  # the command leaves the box
    first = drive_until_refused(rig, traj, 100)
    assert set(rig.verdicts[:first]) == {"pass"}
    assert rig.verdicts[first] == "refused"
    assert side * ee(traj[first - 1])[axis] <= side * bound  # refused before it crossed
    assert set(rig.codes()) == {"workspace"}
    assert "workspace box" in rig.filter.events[0].message
    qs = rig.history()
    # Once stopped, only motion it can still stop from inside the box is let through.
    assert set(rig.verdicts[first:]) <= {"refused", "clipped"}
    assert_controlled_stop(qs[: first_clipped_after(rig, first) + 1], first)
    assert max(side * ee(q)[axis] for q in qs) <= side * bound  # it never left the box
    assert_feasible(qs)


def test_velocity_mode_command_leaving_the_workspace_is_refused():
    rig = Rig()
    speeds = ramp_velocities(0, frac=0.5, cruise=3000)  # joint 1 turns the arm around
    for speed in speeds:
        rig.velocity(-unit(0) * speed)
        if rig.filter.last_verdict == "refused":
            break
    assert rig.codes() == ["workspace"]
    assert all(ee(q)[0] >= WS.lower[0] for q in rig.q)
    assert_feasible(rig.history())


def test_arm_can_move_back_inside_after_a_table_stop():
    rig = Rig()
    drive_until_refused(rig, joint_trajectory(HOME, Q_BELOW_TABLE, 4.0), 100)
    stopped = rig.q[-1].copy()
    assert ee(stopped)[2] >= Z_MIN  # the stop stayed above the clearance
    for q in joint_trajectory(stopped, HOME, 3.0) + [HOME] * 100:
        rig.position(q)
    assert rig.filter.last_verdict == "pass"
    np.testing.assert_allclose(rig.q[-1], HOME, atol=1e-9)


def test_arm_reset_below_the_table_can_move_back_inside():
    """Started outside the region (a reset there), a move back in is let through."""
    start = joint_trajectory(HOME, Q_BELOW_TABLE, 4.0)[-1]
    assert ee(start)[2] < WS.table_z
    rig = Rig(start)
    for q in joint_trajectory(start, HOME, 3.0) + [HOME] * 100:
        rig.position(q)
    # (The first ticks of the move, slower than RETURN_PROGRESS, are held.)
    assert rig.verdicts[-200:] == ["pass"] * 200
    assert min(ee(q)[2] for q in rig.q) >= ee(start)[2]  # never further down than it was
    np.testing.assert_allclose(rig.q[-1], HOME, atol=1e-9)


# -- watchdog --------------------------------------------------------------------------------
def test_stale_command_is_refused():
    rig = Rig()
    for _ in range(10):
        rig.position(HOME.copy())
    timeout = SafetyConfig().watchdog_timeout
    cmd, out = rig.position(HOME.copy(), stamp=rig.now + DT - (timeout + 1e-4))
    assert rig.filter.last_verdict == "refused"
    assert rig.codes() == ["stale"]
    assert "ms old" in rig.filter.events[-1].message
    np.testing.assert_array_equal(out.values, HOME)
    # Exactly at the timeout, and younger, a command still passes.
    cmd, out = rig.position(HOME.copy(), stamp=rig.now + DT - timeout)
    assert_passed_unchanged(cmd, out, rig)
    cmd, out = rig.position(HOME.copy(), stamp=rig.now + DT - 0.05)
    assert_passed_unchanged(cmd, out, rig)


def test_watchdog_timeout_is_configurable():
    rig = Rig(config=SafetyConfig(watchdog_timeout=0.005))
    cmd, out = rig.position(HOME.copy(), stamp=rig.now + DT - 0.004)
    assert_passed_unchanged(cmd, out, rig)
    rig.position(HOME.copy(), stamp=rig.now + DT - 0.006)
    assert rig.filter.last_verdict == "refused"
    assert rig.codes() == ["stale"]


def test_stale_commands_while_moving_bring_the_arm_to_a_controlled_stop():
    rig = Rig()
    traj = joint_trajectory(HOME, HOME + 0.4, 1.0)
    for q in traj[:500]:
        rig.position(q)
    frozen = rig.now
    for q in traj[500:]:
        rig.position(q, stamp=frozen)  # the planner stalled: its stamps stop advancing
    first = rig.verdicts.index("refused")
    assert first == 500 + 100  # exactly once the watchdog timeout has elapsed
    assert set(rig.verdicts[first:]) == {"refused"}
    assert rig.codes() == ["stale"]
    assert_controlled_stop(rig.history(), first)


# -- emergency stop --------------------------------------------------------------------------
def test_estop_holds_the_position_exactly_until_reset():
    rig = Rig()
    traj = joint_trajectory(HOME, HOME + 0.3, 1.0)
    for q in traj[:400]:
        rig.position(q)
    held = rig.q[-1].copy()
    rig.filter.estop("operator pressed the button", time=rig.now)
    assert rig.filter.estopped
    nan_cmd = HOME.copy()
    nan_cmd[2] = math.nan
    commands = [*traj[400:], held.copy(), nan_cmd, np.zeros(3)] * 2
    for values in commands:  # valid, trivial and invalid commands alike
        _cmd, out = rig.position(values)
        assert rig.filter.last_verdict == "estop"
        assert out.mode == "joint_position"
        assert out.values.tobytes() == held.tobytes()
    for _ in range(500):
        rig.velocity(np.ones(DOF))
        assert rig.filter.last_verdict == "estop"
    assert rig.outputs[-1].values.tobytes() == held.tobytes()
    assert rig.filter.estopped  # latched
    assert rig.codes() == ["estop"]
    assert rig.filter.events[0].message == "operator pressed the button"
    rig.filter.estop("pressed again")  # already latched: not logged twice
    assert rig.codes() == ["estop"]

    rig.filter.reset_estop()
    assert not rig.filter.estopped
    resume_at = len(rig.q) - 1
    for q in joint_trajectory(held, HOME, 1.0) + [HOME] * 50:
        rig.position(q)
    assert "estop" not in rig.verdicts[resume_at:]
    assert rig.filter.last_verdict == "pass"
    np.testing.assert_array_equal(rig.q[-1], HOME)
    # Motion resumed from rest at the held position, within every limit.
    assert_feasible(rig.history()[resume_at:])


def test_estop_before_the_first_command_holds_the_measured_position():
    f = SafetyFilter(CAPS, KinematicModel(ARM), SafetyConfig())
    f.estop()
    q = HOME + 0.1
    state = RobotState(0.0, q.copy(), np.zeros(DOF), np.zeros(DOF), 0.08)
    out = f.filter(JointCommand("joint_position", HOME.copy(), 0.0), state)
    assert f.last_verdict == "estop"
    np.testing.assert_array_equal(out.values, q)


# -- torque mode --------------------------------------------------------------------------
def test_torques_within_limits_pass_bit_identical():
    rig = Rig()
    for tau in (np.zeros(DOF), 0.999 * TAU_MAX, -0.999 * TAU_MAX, TAU_MAX.copy(), -TAU_MAX):
        cmd, out = rig.send("joint_torque", tau)
        assert_passed_unchanged(cmd, out, rig)


@pytest.mark.parametrize("j", range(DOF))
def test_torque_beyond_the_limit_is_clipped_to_it(j):
    rig = Rig()
    tau = 0.5 * TAU_MAX * np.array([1, -1, 1, -1, 1, -1, 1])
    tau[j] = 1.001 * TAU_MAX[j]
    _, out = rig.send("joint_torque", tau)
    assert rig.filter.last_verdict == "clipped"
    assert out.mode == "joint_torque"
    assert out.values[j] == TAU_MAX[j]
    np.testing.assert_array_equal(np.delete(out.values, j), np.delete(tau, j))
    tau[j] = -1e9
    _cmd, out = rig.send("joint_torque", tau)
    assert rig.filter.last_verdict == "clipped"
    assert out.values[j] == -TAU_MAX[j]
    assert (np.abs(out.values) <= TAU_MAX).all()


def test_torque_mode_watches_the_measured_arm_against_the_workspace():
    rig = Rig()
    rig.state.q = Q_BELOW_TABLE.copy()  # the arm fell below the table (measured)
    rig.state.dq = np.full(DOF, 0.3)
    _, out = rig.send("joint_torque", np.zeros(DOF))
    assert rig.filter.last_verdict == "refused"
    assert rig.codes() == ["table"]
    assert out.mode == "joint_position"  # a controlled stop from the measured motion
    v = (out.values - Q_BELOW_TABLE) / DT
    assert (np.abs(v - 0.3) <= AMAX * DT * (1 + 1e-6)).all()
    assert (np.abs(v) < 0.3).all()


# -- malformed commands -------------------------------------------------------------------
@pytest.mark.parametrize(
    "values",
    [
        np.zeros(6),
        np.zeros(8),
        HOME.reshape(1, DOF),
        HOME.reshape(DOF, 1),
        np.array(1.0),
        list(HOME),
    ],
    ids=["6-values", "8-values", "row-2d", "column-2d", "scalar", "list"],
)
def test_wrong_shape_is_refused(values):
    rig = Rig()
    _cmd, out = rig.position(values)
    assert rig.filter.last_verdict == "refused"
    assert rig.codes() == ["bad_shape"]
    assert "7 joints" in rig.filter.events[0].message
    np.testing.assert_array_equal(out.values, HOME)


def test_unknown_mode_is_refused():
    rig = Rig()
    _cmd, out = rig.send("cartesian_pose", HOME.copy())
    assert rig.filter.last_verdict == "refused"
    assert rig.codes() == ["bad_mode"]
    assert "cartesian_pose" in rig.filter.events[0].message
    np.testing.assert_array_equal(out.values, HOME)


def test_repeated_refusals_are_counted_but_logged_once():
    rig = Rig()
    for _ in range(300):
        rig.position(np.zeros(6))
    assert rig.filter.counts["bad_shape"] == 300
    assert rig.codes() == ["bad_shape"]
    for _ in range(300):  # more than 0.5 s later the same refusal is logged again
        rig.position(np.zeros(6))
    assert rig.codes() == ["bad_shape", "bad_shape"]


# -- resuming after a refusal --------------------------------------------------------------
Q_FAR = HOME + np.array([0.5, 0.4, -0.3, 0.4, 0.3, -0.3, 0.5])


@pytest.mark.parametrize("glitch", ["nan", "stale", "bad_shape"])
def test_motion_resumes_within_limits_after_a_refusal(glitch):
    rig = Rig()
    traj = joint_trajectory(HOME, Q_FAR, 2.0)
    for k, q in enumerate(traj + [Q_FAR] * 600):
        if 700 <= k < 710:  # 10 ms of bad commands in the middle of the motion
            if glitch == "nan":
                q = q.copy()
                q[2] = math.nan
                rig.position(q)
            elif glitch == "stale":
                rig.position(q, stamp=rig.now + DT - 1.0)
            else:
                rig.position(q[:6])
        else:
            rig.position(q)
    assert rig.verdicts[700:710] == ["refused"] * 10
    qs = rig.history()
    assert_feasible(qs)  # the stop and the catch-up are velocity- and acceleration-limited
    v, _ = finite_differences(qs)
    # Decelerating during the refusals, moving again afterwards.
    assert (np.abs(v[700:710]) <= np.abs(v[699:709]) + 1e-12).all()
    assert (np.abs(v[710:760]).max(axis=0) > np.abs(v[709])).any()
    assert rig.verdicts[-1] == "pass"
    np.testing.assert_array_equal(qs[-1], Q_FAR)


def test_step_command_settles_on_its_target_without_overshoot():
    """A position step out of reach is approached braking toward it: a greedy per-tick clip
    would overshoot by ~v^2/2a and oscillate about the target (+-0.15 rad for seconds)."""
    rig = Rig()
    target = HOME + unit(0) * 0.2
    for _ in range(1000):  # 1 s; a time-optimal move takes 0.23 s
        rig.position(target.copy())
    qs = rig.history()
    assert_feasible(qs)
    assert (qs[:, 0] <= target[0] + 1e-3).all()
    assert rig.filter.last_verdict == "pass"
    np.testing.assert_array_equal(qs[-1], target)


def test_short_refusal_mid_motion_is_caught_up_quickly():
    rig = Rig()
    traj = joint_trajectory(HOME, Q_FAR, 2.0)
    for k, q in enumerate(traj):
        rig.position(q, stamp=rig.now + DT - 1.0 if 700 <= k < 710 else None)
    assert rig.verdicts[700:710] == ["refused"] * 10
    assert "clipped" not in rig.verdicts[1000:]  # rejoined within 0.3 s


@pytest.mark.parametrize("j", [0, 1, 6])
def test_position_stream_just_over_the_velocity_limit_is_followed_at_the_limit(j):
    rig = Rig()
    q = HOME.copy()
    speeds = ramp_velocities(j)
    for speed in speeds[: speeds.index(max(speeds)) + 5]:
        q = q + unit(j) * speed * DT
        rig.position(q)
    start = len(rig.verdicts)
    for _ in range(300):
        q = q + unit(j) * 1.001 * VMAX[j] * DT
        rig.position(q)
    assert set(rig.verdicts[start:]) == {"clipped"}
    assert_feasible(rig.history())
    v, _ = finite_differences(rig.history())
    assert (v[start:, j] >= 0.99 * VMAX[j]).all()  # clipped to the limit, not slowed down
    assert q[j] - rig.q[-1][j] < 5e-3  # so it stays close behind the command


@pytest.mark.parametrize("j", [0, 1, 6])
def test_position_stream_just_over_the_acceleration_limit_is_followed_at_the_limit(j):
    rig = Rig()
    q, speed = HOME.copy(), 0.0
    for _ in range(100):
        speed += 1.001 * AMAX[j] * DT
        q = q + unit(j) * speed * DT
        rig.position(q)
    assert set(rig.verdicts) == {"clipped"}
    assert_feasible(rig.history())
    _, a = finite_differences(rig.history())
    assert (a[:, j] >= 0.99 * AMAX[j]).all()
