# Over 400 lines: one seeded fault-injection harness per safety-filter criterion of issue 17.
"""Fault injection of the safety filter (`robot.safety.SafetyFilter`), seeded.

`run` returns one entry per criterion (``fault``, ``criterion``, ``trials``, ``worst``,
``limit``, ``unit``, ``passed``):

* ``filter_non_finite`` / ``filter_non_finite_no_model`` — fuzzed commands (the ±1e308
  alternation, huge, tiny and denormal values, NaN and ±inf, random dtypes, shapes, stamps and
  modes) through a filter with and without a kinematic model; ``worst`` counts outputs
  holding a non-finite value (or that are not a real float array) that a backend would have
  received, plus exceptions raised instead of an output.
* ``filter_bad_input`` — of those, the malformed commands (wrong dtype, shape, stamp type or
  mode): ``worst`` counts the ones not refused with a `SafetyEvent` (or that raised).
* ``filter_in_limit_identical`` — smooth position and velocity streams inside every limit,
  far from the workspace boundary: ``worst`` counts commands not passed bit-identical.
* ``workspace_streams_penetrating`` / ``workspace_penetration`` — fuzzed streams driving the
  hand toward random configurations (most outside the region: below the table, out of the
  box) at random speeds, from random starts inside it; every commanded output is judged by
  an independent forward kinematics (MuJoCo's ``mj_kinematics`` on the full simulation
  model, not the filter's kinematic model): streams that leave the region, and the deepest
  excursion (mm) beyond the box or below the table plus its clearance.
* ``torque_speed`` / ``torque_position`` — random torque sequences (piecewise constant,
  bang-bang and beyond the torque limits) on a MuJoCo rollout through `MujocoRobot`: the
  largest measured joint speed as a multiple of its limit, and the largest measured
  excursion beyond the joint range (rad).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import mujoco
import numpy as np

from skillstack.hw.sim.divergence import SimulationDiverged
from skillstack.hw.sim.mujoco.robot import MujocoRobot
from skillstack.hw.sim.mujoco.scene import build_model
from skillstack.robot.arms import get_arm
from skillstack.robot.arms.panda import FINGER_BODIES, HAND_BODY, LINK_BODIES
from skillstack.robot.faults import fault_entry
from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.safety import SafetyConfig, SafetyFilter
from skillstack.robot.scene import Scene, Table
from skillstack.robot.types import CommandMode, JointCommand, RobotState

ARM = get_arm("panda")
CAPS = ARM.capabilities
DOF = CAPS.dof
DT = CAPS.control_dt
HOME = ARM.home_q.copy()
LOWER, UPPER = CAPS.joint_lower, CAPS.joint_upper
VMAX, AMAX, TAU_MAX = CAPS.velocity_limit, CAPS.acceleration_limit, CAPS.torque_limit
WS = SafetyConfig().workspace
MALFORMED_CODES = {"bad_type", "bad_shape", "bad_mode", "non_finite"}

FULL = {"commands": 100_000, "streams": 10_000, "in_limit": 20_000, "torque_ticks": 60_000}
SMALL = {"commands": 3_000, "streams": 40, "in_limit": 2_000, "torque_ticks": 3_000}
STREAM_TICKS = 300


def _state(q: np.ndarray, t: float) -> RobotState:
    return RobotState(t, q.copy(), np.zeros(DOF), np.zeros(DOF), 0.08)


def _is_clean(out: Any) -> bool:
    """True if ``out`` is a command a backend can take: real float values, all finite."""
    values = getattr(out, "values", None)
    if not isinstance(values, np.ndarray) or values.shape != (DOF,):
        return False
    if values.dtype.kind not in "fiu":
        return False
    with np.errstate(over="ignore"):
        ok = bool(np.isfinite(values.astype(np.float64)).all())
    stamp = getattr(out, "stamp", math.nan)
    return ok and isinstance(stamp, int | float) and math.isfinite(stamp)


# -- commands ------------------------------------------------------------------------------
def _odd_values(rng: np.random.Generator) -> Any:
    """A malformed command value: a wrong dtype, array type or shape."""
    base = rng.uniform(LOWER, UPPER)
    kind = int(rng.integers(12))
    if kind == 0:
        return base.astype(np.complex128) + 1j * rng.normal(size=DOF)
    if kind == 1:
        return np.array([*base[:-1].tolist(), None], dtype=object)
    if kind == 2:
        return base.astype(object)
    if kind == 3:
        return np.array([str(x) for x in base])
    if kind == 4:
        return np.zeros(DOF, dtype=[("q", "f8"), ("v", "f8")])
    if kind == 5:
        return rng.integers(0, 2, DOF).astype(bool)
    if kind == 6:
        return np.array(["2026-01-01"] * DOF, dtype="datetime64[s]")
    if kind == 7:
        return np.ma.masked_array(base, mask=rng.integers(0, 2, DOF).astype(bool))
    if kind == 8:
        return base[: int(rng.integers(0, DOF))]
    if kind == 9:
        return np.tile(base, (2, 1))
    if kind == 10:
        return base.tolist()
    return base.astype(np.complex64)


def _odd_stamp(rng: np.random.Generator, now: float) -> Any:
    return [math.nan, math.inf, -math.inf, "0.1", None, 1j, 10**400, b"x", [now]][
        int(rng.integers(9))
    ]


def _odd_mode(rng: np.random.Generator) -> Any:
    return ["cartesian_pose", "", None, 3, np.array(["joint_position"] * 2), b"joint_position"][
        int(rng.integers(6))
    ]


def _numeric(rng: np.random.Generator, last: np.ndarray, tick: int, mode: str) -> np.ndarray:
    """A real-typed command value, often extreme (finite or not)."""
    kind = int(rng.integers(10))
    sign = np.where(np.arange(DOF) % 2 == 0, 1.0, -1.0) * (1.0 if tick % 2 else -1.0)
    if kind == 0:  # the reported overflow: [1e308, -1e308, ...] then [-1e308, 1e308, ...]
        values = 1e308 * sign
    elif kind == 1:  # huge, of random magnitude and sign
        values = rng.choice([-1.0, 1.0], DOF) * 10.0 ** rng.uniform(0.0, 308.2, DOF)
    elif kind == 2:  # tiny and denormal
        values = rng.choice([5e-324, -5e-324, 1e-310, 2.2e-308, 0.0, -0.0, 1e-300], DOF)
    elif kind == 3:  # sensible, with some elements replaced by extremes
        values = last + rng.normal(0.0, 0.05, DOF)
        where = rng.random(DOF) < 0.3
        extremes = rng.choice([1e308, -1e308, math.nan, math.inf, -math.inf, 5e-324, 1e200], DOF)
        values[where] = extremes[where]
    elif kind == 4:  # jumps across (and beyond) the joint range
        values = rng.uniform(LOWER - 2.0, UPPER + 2.0)
    elif kind == 5:  # one huge joint, the rest where the arm is
        values = last.copy()
        values[rng.integers(DOF)] = rng.choice([1e308, -1e308, 1.7976931348623157e308])
    else:  # ordinary commands near the arm
        values = (
            last + rng.normal(0.0, 0.01, DOF)
            if mode == "joint_position"
            else (rng.normal(0.0, 0.5, DOF) * VMAX)
        )
    dtypes = ["f8"] * 6 + ["f4", "f2", "i8", "i1", "u8", "g"]
    chosen = np.dtype(dtypes[int(rng.integers(len(dtypes)))])
    with np.errstate(over="ignore", invalid="ignore"):
        if chosen.kind in "iu":
            info = np.iinfo(chosen)
            values = np.nan_to_num(values, nan=0.0, posinf=info.max, neginf=info.min)
            return np.clip(values, info.min, info.max).astype(chosen)
        return values.astype(chosen)


def fuzz_non_finite(kinematics: bool, n: int, seed: int) -> dict[str, int]:
    """Drive one filter with ``n`` fuzzed commands; count unclean outputs and mishandling.

    The "backend" follows every output exactly (positions set, velocities integrated), so a
    poisoned output is also what the filter reads back on the next tick.
    """
    rng = np.random.default_rng(seed)
    kin = KinematicModel(ARM) if kinematics else None
    f = SafetyFilter(CAPS, kin, SafetyConfig())
    f.reset(HOME)
    q = HOME.copy()
    unclean = raised = malformed = unrefused = 0
    modes = ["joint_position"] * 5 + ["joint_velocity"] * 3 + ["joint_torque"]
    for tick in range(1, n + 1):
        now = tick * DT
        mode: Any = modes[int(rng.integers(len(modes)))]
        stamp: Any = now
        odd = rng.random()
        bad = True
        if odd < 0.08:
            values: Any = _odd_values(rng)
        elif odd < 0.11:
            values, stamp = _numeric(rng, q, tick, mode), _odd_stamp(rng, now)
        elif odd < 0.14:
            values, mode = _numeric(rng, q, tick, "joint_position"), _odd_mode(rng)
        else:
            values, bad = _numeric(rng, q, tick, mode), False
        events_before = sum(f.counts.get(c, 0) for c in MALFORMED_CODES)
        try:
            out = f.filter(JointCommand(mode, values, stamp), _state(q, now))
        except Exception:  # any exception is a finding: counted
            raised += 1
            malformed += bad
            unrefused += bad
            continue
        if bad:
            malformed += 1
            refused = sum(f.counts.get(c, 0) for c in MALFORMED_CODES) > events_before
            unrefused += not (refused and f.last_verdict == "refused")
        if not _is_clean(out):
            unclean += 1
            continue
        if out.mode == "joint_position":
            q = np.asarray(out.values, dtype=np.float64).copy()
        elif out.mode == "joint_velocity":
            q = q + np.asarray(out.values, dtype=np.float64) * DT
    return {
        "commands": n,
        "unclean": unclean,
        "raised": raised,
        "malformed": malformed,
        "unrefused": unrefused,
    }


# -- in-limit streams ----------------------------------------------------------------------
def fuzz_in_limit(n: int, seed: int) -> dict[str, int]:
    """Smooth streams inside every limit, near home: count commands not passed unchanged."""
    rng = np.random.default_rng(seed)
    kin = KinematicModel(ARM)
    changed = sent = 0
    while sent < n:
        f = SafetyFilter(CAPS, kin if rng.random() < 0.7 else None, SafetyConfig())
        f.reset(HOME)
        amp = rng.uniform(0.0, 0.12, DOF) * rng.choice([-1.0, 1.0], DOF)
        # Frequencies that keep |v| <= 0.95 vmax and |a| <= 0.95 amax for A (1 - cos wt).
        w_max = np.minimum(
            0.95 * VMAX / np.maximum(np.abs(amp), 1e-9),
            np.sqrt(0.95 * AMAX / np.maximum(np.abs(amp), 1e-9)),
        )
        w = rng.uniform(0.1, 1.0, DOF) * w_max
        mode: CommandMode = "joint_position" if rng.random() < 0.6 else "joint_velocity"
        ticks = min(1000, n - sent)
        t = np.arange(1, ticks + 1) * DT
        qs = HOME + amp * (1.0 - np.cos(np.outer(t, w)))
        qs = np.vstack([HOME, qs])
        state = _state(HOME, 0.0)
        for k in range(1, ticks + 1):
            state.time = k * DT
            values = qs[k].copy() if mode == "joint_position" else (qs[k] - qs[k - 1]) / DT
            cmd = JointCommand(mode, values, state.time)
            out = f.filter(cmd, state)
            if out is not cmd or out.values is not values or f.last_verdict != "pass":
                changed += 1
            state.q = qs[k].copy() if mode == "joint_position" else state.q + out.values * DT
        sent += ticks
    return {"commands": sent, "changed": changed}


# -- workspace streams ---------------------------------------------------------------------
class IndependentFK:
    """End-effector positions from the full simulation model (not the filter's model)."""

    def __init__(self) -> None:
        self.model = build_model(Scene(Table(), (), name="faults"), ARM)
        self.data = mujoco.MjData(self.model)
        self.adr = [self.model.joint(n).qposadr[0] for n in CAPS.joint_names]
        self.site = self.model.site(ARM.ee_site).id
        self.data.qpos[:] = self.model.qpos0

    def ee(self, q: np.ndarray) -> np.ndarray:
        """The end-effector site position at arm configuration ``q``."""
        self.data.qpos[self.adr] = q
        mujoco.mj_kinematics(self.model, self.data)
        return self.data.site_xpos[self.site]


def excursion(p: np.ndarray) -> float:
    """How far (m) a point lies outside the box or below the table clearance (0 inside)."""
    x, y, z = p
    lo, hi = WS.lower, WS.upper
    return max(
        0.0,
        lo[0] - x,
        x - hi[0],
        lo[1] - y,
        y - hi[1],
        lo[2] - z,
        z - hi[2],
        WS.table_z + WS.table_clearance - z,
    )


def _random_inside(rng: np.random.Generator, fk: IndependentFK, margin: float) -> np.ndarray:
    while True:
        q = rng.uniform(LOWER + 0.05, UPPER - 0.05)
        if excursion(fk.ee(q)) == 0.0 and fk.ee(q)[2] > WS.table_clearance + margin:
            return q


def _goal(rng: np.random.Generator, fk: IndependentFK) -> np.ndarray:
    """A goal configuration, most often one whose hand is outside (below the table: half)."""
    for _ in range(200):
        q = rng.uniform(LOWER, UPPER)
        p = fk.ee(q)
        if rng.random() < 0.5:
            if p[2] < WS.table_z:
                return q
        elif excursion(p) > 0.0 or rng.random() < 0.2:
            return q
    return rng.uniform(LOWER, UPPER)


def _stream(
    rng: np.random.Generator, start: np.ndarray, goal: np.ndarray
) -> Iterator[tuple[CommandMode, np.ndarray]]:
    """Commands from ``start`` toward ``goal``: min-jerk at random speed, a step, or velocities."""
    kind = int(rng.integers(4))
    if kind <= 1:  # min-jerk of random duration (fast ones are clipped to the limits)
        seconds = rng.uniform(0.05, 1.2)
        for k in range(1, STREAM_TICKS + 1):
            s = min(1.0, k * DT / seconds)
            yield "joint_position", start + (10 * s**3 - 15 * s**4 + 6 * s**5) * (goal - start)
    elif kind == 2:  # a step to the goal, held
        for _ in range(STREAM_TICKS):
            yield "joint_position", goal.copy()
    else:  # a constant velocity toward the goal, at up to twice the limits
        v = np.clip((goal - start) / rng.uniform(0.1, 1.0), -2.0 * VMAX, 2.0 * VMAX)
        for _ in range(STREAM_TICKS):
            yield "joint_velocity", v


def fuzz_workspace(n: int, seed: int) -> dict[str, float]:
    """``n`` streams toward the region's boundary; judge every output with `IndependentFK`."""
    rng = np.random.default_rng(seed)
    fk = IndependentFK()
    kin = KinematicModel(ARM)
    penetrating = 0
    worst = 0.0
    for _ in range(n):
        start = _random_inside(rng, fk, 0.02)
        goal = _goal(rng, fk)
        f = SafetyFilter(CAPS, kin, SafetyConfig())
        f.reset(start)
        state = _state(start, 0.0)
        q = start.copy()
        deepest = 0.0
        for k, (mode, values) in enumerate(_stream(rng, start, goal), start=1):
            state.time = k * DT
            out = f.filter(JointCommand(mode, values, state.time), state)
            q = out.values.copy() if out.mode == "joint_position" else q + out.values * DT
            state.q = q
            deepest = max(deepest, excursion(fk.ee(q)))
        penetrating += deepest > 1e-9
        worst = max(worst, deepest)
    return {"streams": n, "penetrating": penetrating, "worst_m": worst}


# -- torque mode ---------------------------------------------------------------------------
def _torques(rng: np.random.Generator) -> Iterator[tuple[int, np.ndarray]]:
    """(ticks, torque) pieces: random, bang-bang, beyond the limits, or zero."""
    while True:
        kind = int(rng.integers(4))
        if kind == 0:
            tau = rng.uniform(-1.0, 1.0, DOF) * TAU_MAX
        elif kind == 1:
            tau = rng.choice([-1.0, 1.0], DOF) * TAU_MAX
        elif kind == 2:
            tau = rng.choice([-3.0, 3.0], DOF) * TAU_MAX
        else:
            tau = np.zeros(DOF)
        yield int(rng.integers(1, 400)), tau


def fuzz_torque(ticks: int, seed: int) -> dict[str, float]:
    """Random torques on a MuJoCo arm through the filter; the largest speed and excursion.

    Rollouts of 2 s each start near home (random offsets up to 0.3 rad per joint). Ticks
    on which an arm link other than the hand strikes the table are kept apart: that impact
    is outside what the end-effector workspace rule governs (``worst_speed_impact``).
    """
    rng = np.random.default_rng(seed)
    worst_speed = worst_impact = worst_position = 0.0
    impacts = diverged = done = 0
    with MujocoRobot(Scene(Table(), (), name="faults")) as robot:
        m, d = robot.model, robot.data
        assert m is not None and d is not None
        hand = {m.body(b).id for b in (HAND_BODY, *FINGER_BODIES)}
        arm_bodies = {m.body(b).id for b in LINK_BODIES} - hand
        world_geoms = {g for g in range(m.ngeom) if m.geom_bodyid[g] == 0}
        while done < ticks:
            start = np.clip(HOME + rng.uniform(-0.3, 0.3, DOF), LOWER, UPPER)
            robot.reset(start if done else None)
            pieces = _torques(rng)
            count, tau = next(pieces)
            for _ in range(min(2000, ticks - done)):
                if count == 0:
                    count, tau = next(pieces)
                count -= 1
                state = robot.read()
                robot.command(JointCommand("joint_torque", tau.copy(), state.time))
                done += 1
                try:
                    robot.wait_for_tick()
                except SimulationDiverged:
                    diverged += 1
                    break
                state = robot.read()
                speed = float((np.abs(state.dq) / VMAX).max())
                struck = any(
                    (c.geom1 in world_geoms and m.geom_bodyid[c.geom2] in arm_bodies)
                    or (c.geom2 in world_geoms and m.geom_bodyid[c.geom1] in arm_bodies)
                    for c in d.contact[: d.ncon]
                )
                if struck:
                    impacts += 1
                    worst_impact = max(worst_impact, speed)
                else:
                    worst_speed = max(worst_speed, speed)
                beyond = np.maximum(LOWER - state.q, state.q - UPPER).max()
                worst_position = max(worst_position, float(beyond))
    return {
        "ticks": ticks,
        "worst_speed": math.inf if diverged else worst_speed,
        "worst_speed_impact": worst_impact,
        "impact_ticks": impacts,
        "worst_position": worst_position,
    }


# -- the figures ---------------------------------------------------------------------------
def _entry(
    fault: str, criterion: str, trials: float, worst: float, limit: float, unit: str
) -> dict:
    return fault_entry(fault, criterion, int(trials), worst, limit, unit)


def run(small: bool = False, seed: int = 0) -> list[dict]:
    """Every fault criterion of the safety filter, measured (see the module docstring).

    ``small`` runs a few seconds' worth (for CI); otherwise the full counts (1e5 fuzzed
    commands per filter configuration, 1e4 workspace streams), which take minutes.
    """
    counts = SMALL if small else FULL
    entries = []
    bad_total = unrefused_total = 0
    steps: list[tuple[str, bool, Callable[[], dict[str, int]]]] = [
        ("filter_non_finite", True, lambda: fuzz_non_finite(True, counts["commands"], seed)),
        (
            "filter_non_finite_no_model",
            False,
            lambda: fuzz_non_finite(False, counts["commands"], seed + 1),
        ),
    ]
    for fault, with_model, measure in steps:
        figures = measure()
        bad_total += figures["malformed"]
        unrefused_total += figures["unrefused"]
        where = "with" if with_model else "without"
        entries.append(
            _entry(
                fault,
                f"No fuzzed command (±1e308 alternation, huge, tiny, denormal, NaN/inf, random "
                f"dtypes, shapes, stamps and modes) makes the filter {where} a kinematic model "
                "hand a backend a non-finite or non-real value, or raise.",
                figures["commands"],
                figures["unclean"] + figures["raised"],
                0,
                "outputs",
            )
        )
    entries.append(
        _entry(
            "filter_bad_input",
            "Every malformed command (wrong dtype, array type, shape, stamp or mode) is refused "
            "with a SafetyEvent, never an exception.",
            bad_total,
            unrefused_total,
            0,
            "commands",
        )
    )
    in_limit = fuzz_in_limit(counts["in_limit"], seed + 2)
    entries.append(
        _entry(
            "filter_in_limit_identical",
            "Smooth position and velocity commands inside every limit pass bit-identical.",
            in_limit["commands"],
            in_limit["changed"],
            0,
            "commands",
        )
    )
    ws = fuzz_workspace(counts["streams"], seed + 3)
    entries.append(
        _entry(
            "workspace_streams_penetrating",
            "No fuzzed command stream takes the commanded hand out of the workspace box or below "
            "the table clearance (independent forward kinematics of every output).",
            ws["streams"],
            ws["penetrating"],
            0,
            "streams",
        )
    )
    entries.append(
        _entry(
            "workspace_penetration",
            "The deepest excursion of a commanded hand beyond the box or below the table "
            "clearance, over all fuzzed streams, is zero.",
            ws["streams"],
            1e3 * ws["worst_m"],
            0.0,
            "mm",
        )
    )
    torque = fuzz_torque(counts["torque_ticks"], seed + 4)
    entries.append(
        _entry(
            "torque_speed",
            "Random torque commands on a simulated arm never drive a joint faster than its "
            "velocity limit (ticks free of arm-link impacts on the table).",
            torque["ticks"],
            torque["worst_speed"],
            1.0,
            "x velocity limit",
        )
    )
    entries.append(
        _entry(
            "torque_speed_link_impact",
            "On ticks where an arm link (not the hand) strikes the table, the impact still "
            "leaves every joint within its velocity limit (not governed by the workspace rule).",
            torque["impact_ticks"],
            torque["worst_speed_impact"],
            1.0,
            "x velocity limit",
        )
    )
    entries.append(
        _entry(
            "torque_position",
            "Random torque commands on a simulated arm never drive a joint beyond its range.",
            torque["ticks"],
            torque["worst_position"],
            0.0,
            "rad",
        )
    )
    return entries
