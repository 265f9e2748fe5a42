# Over 400 lines: five fault injectors, each with the truth it is judged against, and the report.
"""Sensor-health fault benchmark: inject faults into a MuJoCo arm running skills, and measure
what a user would notice against the simulator's truth.

Faults (each injected at a seeded moment while the arm moves):

``frozen``    `Robot.read` keeps returning the last reading (its timestamp stops);
``repeated``  a real driver's payload freezes while it stamps each reading with its clock
              (the robot declares ``readings_always_change``, as `DriverRobot` does);
``nan``       one joint's position reads NaN;
``stuck``     one joint's reading freezes at its value (speed 0) while the arm moves on;
``timestep``  the physics timestep is multiplied by 50 (the integration blows up);
``slip``      the friction between the fingers and a carried cube drops to 0 (or 0.05).

`run` returns one entry per criterion with exactly the keys ``fault``, ``criterion``,
``trials``, ``worst``, ``limit``, ``unit`` and ``passed``. ``python -c "from
skillstack.skills.fault_bench_sensors import run; print(run(small=True))"`` takes < 30 s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from skillstack.hw.sim.divergence import speed_bound
from skillstack.hw.sim.mujoco.robot import MujocoRobot
from skillstack.robot.faults import fault_entry
from skillstack.robot.rotations import quat_conj, quat_rotate
from skillstack.robot.scene import Scene, SceneObject, Table
from skillstack.robot.sensors import HOLD_AFTER, STOP_AFTER
from skillstack.robot.types import JointCommand, RobotState
from skillstack.skills.base import Failure, SkillResult
from skillstack.skills.executor import execute
from skillstack.skills.program import Program
from skillstack.skills.registry import get_skill

READING_FAULTS = ("frozen", "repeated", "nan", "stuck")
TIMESTEP_FACTOR = 50.0  # the timestep fault multiplies the physics timestep by this
SLIP_ONSET = 0.001  # m, the cube moved this far in the hand (truth): it started to leave
SLIP_LIMIT_MS = 50.0  # a slip must be reported within this long of its start
STUCK_LIMIT_MS = 150.0  # a stuck joint moving at move_to speeds is reported within this
CAUGHT_SPEED = 30.0  # rad/s, ~10x the Panda's limits (a blow-up reached 4.8e5 unchecked)
REST_SPEED = 0.01  # rad/s, every joint slower than this 0.3 s after the stop: the arm holds
SETTLE_TICKS = 300  # ticks run after a stop to check that the arm holds
CUBE = SceneObject("cube", "box", (0.05, 0.05, 0.05), (0.5, 0.0, 0.0), mass=0.15)
PLATE = SceneObject("plate", "plate", (0.18, 0.015), (0.45, -0.2, 0.0))


def fault_scene() -> Scene:
    """A cube to carry and a plate to carry it to."""
    return Scene(Table(), (CUBE, PLATE))


class ReadingFault:
    """Corrupts what ``robot.read`` returns from simulator time ``start`` on (a faulty driver).

    Installed on the instance, so the control loop, the safety filter (``_last_state``) and
    the executor all see the corrupted reading; the physics runs on untouched.

    Args:
        robot: a connected `MujocoRobot`.
        kind: one of `READING_FAULTS`.
        start: simulator time (s) of the first corrupted reading.
        joint: the joint (0-based) a ``nan`` or ``stuck`` fault corrupts.
        until: simulator time (s) from which the readings are true again (None: never).
    """

    def __init__(
        self,
        robot: MujocoRobot,
        kind: str,
        start: float,
        joint: int = 3,
        until: float | None = None,
    ):
        if kind not in READING_FAULTS:
            raise ValueError(f"unknown reading fault {kind!r}; faults: {READING_FAULTS}")
        self.robot, self.kind, self.start, self.joint = robot, kind, start, joint
        self.until = until
        self.onset: float | None = None  # simulator time of the first corrupted reading
        self._read = robot.read
        self._prev: RobotState | None = None
        self._stuck = 0.0
        robot.read = self.read  # type: ignore[method-assign]  # the fault is the point

    def read(self) -> RobotState:
        """The true reading until ``start``, then the corrupted one."""
        state = self._read()
        now = self.robot.data.time if self.robot.data is not None else state.time
        if now < self.start or (self.until is not None and now >= self.until):
            self._prev = state
            return state
        if self.onset is None:
            self.onset = now
            self._stuck = float(state.q[self.joint])
        if self.kind == "frozen":
            state = self._prev if self._prev is not None else state
        elif self.kind == "repeated":
            frozen = self._prev if self._prev is not None else state
            self._prev = frozen
            state = RobotState(
                state.time,
                frozen.q.copy(),
                frozen.dq.copy(),
                frozen.tau.copy(),
                frozen.gripper_width,
                frozen.gripper_force,
                frozen.q_desired,
            )
        elif self.kind == "nan":
            state.q[self.joint] = np.nan
        else:
            state.q[self.joint] = self._stuck
            state.dq[self.joint] = 0.0
        self.robot._last_state = state
        return state

    def remove(self) -> None:
        """Give the robot its own `read` back."""
        del self.robot.read


@dataclass
class Trace:
    """What one faulty run did, tick by tick (from the simulator's truth)."""

    commands: list[np.ndarray] = field(default_factory=list)  # the program's own commands
    times: list[float] = field(default_factory=list)  # simulator time after each tick
    speeds: list[float] = field(default_factory=list)  # fastest arm joint over its bound

    def record_program(self, program: Program) -> None:
        """Wrap ``program.step`` to keep every command it returns."""
        step = program.step

        def recorded(state: RobotState) -> JointCommand:
            cmd = step(state)
            self.commands.append(cmd.values.copy())
            return cmd

        program.step = recorded  # type: ignore[method-assign]


def _record_ticks(robot: MujocoRobot, trace: Trace) -> None:
    """Wrap ``robot.wait_for_tick`` to record the truth after every tick, the last included."""
    wait = robot.wait_for_tick
    bound = speed_bound(robot.capabilities)
    n = robot.capabilities.dof

    def recorded() -> None:
        try:
            wait()
        finally:
            d = robot.data
            assert d is not None
            trace.times.append(float(d.time))
            trace.speeds.append(float(np.max(np.abs(d.qvel[:n]) / bound)))

    robot.wait_for_tick = recorded  # type: ignore[method-assign]


def _settle_speed(robot: MujocoRobot) -> float:
    """Let the physics run ``SETTLE_TICKS`` with the last command; the fastest joint after."""
    for _ in range(SETTLE_TICKS):
        robot.wait_for_tick()
    d = robot.data
    assert d is not None
    return float(np.max(np.abs(d.qvel[: robot.capabilities.dof])))


@dataclass
class ReadingRun:
    """One run of ``move_to`` with a reading fault."""

    result: SkillResult
    hold_ticks: int  # bad readings before the program's command stopped changing
    fault_ticks: int  # bad readings until the skill ended
    fault_ms: float  # simulator time from the first bad reading to the end of the skill
    rest_speed: float  # rad/s, the fastest joint 0.3 s after the skill ended


def reading_fault_run(kind: str, seed: int) -> ReadingRun:
    """``move_to`` a seeded goal with ``kind`` injected a seeded moment into the motion."""
    rng = np.random.default_rng(seed)
    goal = [float(rng.uniform(0.35, 0.55)), float(rng.uniform(-0.25, 0.25)), 0.3]
    start = float(rng.uniform(0.3, 1.2))
    joint = int(rng.integers(0, 4))
    with MujocoRobot(fault_scene()) as robot:
        if kind == "repeated":  # a driver's readings: identical ones are stale
            robot.readings_always_change = True  # type: ignore[attr-defined]
        trace = Trace()
        fault = ReadingFault(robot, kind, robot.data.time + start, joint)  # type: ignore[union-attr]
        n_before: list[int] = []

        def on_tick(state: RobotState, sent: JointCommand) -> None:
            if fault.onset is None:
                n_before.append(1)

        result = execute(
            get_skill("move_to"),
            {"position": goal},
            robot,
            on_tick=on_tick,
            on_program=trace.record_program,
        )
        fault.remove()
        d = robot.data
        assert d is not None
        onset = fault.onset if fault.onset is not None else d.time
        first_bad = len(n_before)
        cmds = trace.commands[first_bad:]
        hold = len(cmds)
        while hold > 0 and np.array_equal(cmds[hold - 1], cmds[-1]):
            hold -= 1
        return ReadingRun(
            result,
            hold_ticks=hold,
            fault_ticks=len(cmds),
            fault_ms=(d.time - onset) * 1e3,
            rest_speed=_settle_speed(robot),
        )


@dataclass
class TimestepRun:
    """One run of ``move_to`` whose physics timestep jumps ``TIMESTEP_FACTOR``-fold."""

    result: SkillResult
    ticks_to_detect: int  # control ticks from the change to `SimulationDiverged`
    ticks_over_bound: int  # ticks the truth was over the speed bound before detection
    speed_at_detection: float  # rad/s, the fastest arm joint when it was caught


def timestep_run(seed: int) -> TimestepRun:
    """``move_to`` a seeded goal, the timestep multiplied a seeded moment into the motion."""
    rng = np.random.default_rng(seed)
    goal = [float(rng.uniform(0.35, 0.55)), float(rng.uniform(-0.25, 0.25)), 0.3]
    start = float(rng.uniform(0.1, 1.2))
    with MujocoRobot(fault_scene()) as robot:
        m, d = robot.model, robot.data
        assert m is not None and d is not None
        t_fault = d.time + start
        trace = Trace()
        changed: list[int] = []

        def on_tick(state: RobotState, sent: JointCommand) -> None:
            if not changed and d.time >= t_fault:
                m.opt.timestep *= TIMESTEP_FACTOR
                changed.append(len(trace.times))

        _record_ticks(robot, trace)
        result = execute(get_skill("move_to"), {"position": goal}, robot, on_tick=on_tick)
        first = changed[0] if changed else len(trace.times)
        after = trace.speeds[first:]
        over = [i for i, s in enumerate(after) if s > 1.0]
        detected = len(after) - 1  # the tick that raised is the last recorded
        return TimestepRun(
            result,
            ticks_to_detect=len(after),
            ticks_over_bound=detected - over[0] if over else 0,
            speed_at_detection=float(np.max(np.abs(d.qvel[: robot.capabilities.dof]))),
        )


@dataclass
class SlipRun:
    """One ``place`` of a held cube whose grip loses its friction while carried."""

    result: SkillResult
    from_loss_ms: float  # from the friction loss to the end of the skill
    from_onset_ms: float  # from the cube starting to leave the hand (truth) to the end


def slip_run(seed: int, friction: float = 0.0) -> SlipRun:
    """Grasp the cube, then ``place`` it on the plate, the friction between the cube and the
    finger pads dropped to ``friction`` a seeded moment after the place starts."""
    rng = np.random.default_rng(seed)
    start = float(rng.uniform(0.2, 2.0))
    with MujocoRobot(fault_scene()) as robot:
        grasp = execute(get_skill("grasp"), {"object": "cube"}, robot)
        if not grasp.success:
            raise RuntimeError(f"slip set-up: the grasp failed: {grasp.message}")
        m, d = robot.model, robot.data
        assert m is not None and d is not None
        body = m.body("cube").id
        geoms = [g for g in range(m.ngeom) if m.geom_bodyid[g] == body]
        geoms += list(robot._ids().pads)
        t_loss = d.time + start
        marks: dict[str, float] = {}

        def seat() -> np.ndarray:
            hand = robot.ee_pose()
            return quat_rotate(quat_conj(hand.quat), d.xpos[body] - hand.position)

        seat0 = seat()

        def on_tick(state: RobotState, sent: JointCommand) -> None:
            if "loss" not in marks and d.time >= t_loss:
                m.geom_friction[geoms, 0] = friction
                marks["loss"] = d.time
            if "onset" not in marks and np.linalg.norm(seat() - seat0) > SLIP_ONSET:
                marks["onset"] = d.time

        result = execute(
            get_skill("place"), {"object": "cube", "target": "plate"}, robot, on_tick=on_tick
        )
        end = d.time
        return SlipRun(
            result,
            from_loss_ms=(end - marks.get("loss", end)) * 1e3,
            from_onset_ms=(end - marks.get("onset", end)) * 1e3,
        )


def _entry(
    fault: str, criterion: str, values: list[float], limit: float, unit: str
) -> dict[str, object]:
    worst = float(max(values)) if values else float("nan")
    return fault_entry(fault, criterion, len(values), worst, limit, unit)


def _not(failure: Failure, results: list[SkillResult]) -> list[float]:
    """1.0 for each run that did not end with ``failure`` (success included), else 0.0."""
    return [0.0 if r.failure == failure and not r.success else 1.0 for r in results]


def run(small: bool = False, seed: int = 0) -> list[dict]:
    """Run every fault ``trials`` times (2 when ``small``, < 30 s; else 12) from ``seed``;
    one entry per criterion."""
    trials = 2 if small else 12
    seeds = [seed * 1000 + i for i in range(trials)]
    out: list[dict] = []
    for kind in READING_FAULTS:
        runs = [reading_fault_run(kind, s) for s in seeds]
        results = [r.result for r in runs]
        out.append(
            _entry(
                kind,
                "runs not ending in sensor_fault",
                _not(Failure.SENSOR_FAULT, results),
                0,
                "runs",
            )
        )
        if kind in ("frozen", "nan"):
            out.append(
                _entry(
                    kind,
                    "bad readings before the arm is held",
                    [r.hold_ticks for r in runs],
                    HOLD_AFTER,
                    "ticks",
                )
            )
            out.append(
                _entry(
                    kind,
                    "bad readings before the skill stops",
                    [r.fault_ticks for r in runs],
                    STOP_AFTER,
                    "ticks",
                )
            )
        else:
            out.append(
                _entry(
                    kind,
                    f"first {kind} reading to the skill's stop",
                    [r.fault_ms for r in runs],
                    STUCK_LIMIT_MS,
                    "ms",
                )
            )
        out.append(
            _entry(
                kind,
                "fastest joint 0.3 s after the stop",
                [r.rest_speed for r in runs],
                REST_SPEED,
                "rad/s",
            )
        )
    steps = [timestep_run(s) for s in seeds]
    out.append(
        _entry(
            "timestep",
            "runs not ending in sim_diverged",
            _not(Failure.SIM_DIVERGED, [r.result for r in steps]),
            0,
            "runs",
        )
    )
    out.append(
        _entry(
            "timestep",
            "ticks over the speed bound before detection",
            [r.ticks_over_bound for r in steps],
            1,
            "ticks",
        )
    )
    out.append(
        _entry(
            "timestep",
            "fastest joint when caught",
            [r.speed_at_detection for r in steps],
            CAUGHT_SPEED,
            "rad/s",
        )
    )
    slips = [slip_run(s) for s in seeds]
    partial = [slip_run(s, friction=0.05) for s in seeds[: max(1, trials // 2)]]
    everything = slips + partial
    out.append(
        _entry(
            "slip",
            "runs not ending in object_slipped",
            _not(Failure.OBJECT_SLIPPED, [r.result for r in everything]),
            0,
            "runs",
        )
    )
    out.append(
        _entry(
            "slip",
            "cube leaving the hand (1 mm, truth) to detection",
            [r.from_onset_ms for r in everything],
            SLIP_LIMIT_MS,
            "ms",
        )
    )
    out.append(
        _entry(
            "slip",
            "total friction loss to detection",
            [r.from_loss_ms for r in slips],
            SLIP_LIMIT_MS,
            "ms",
        )
    )
    return out


def format_report(entries: list[dict], write: Callable[[str], None] = print) -> None:
    """One line per criterion."""
    for e in entries:
        mark = "ok  " if e["passed"] else "FAIL"
        write(
            f"{mark} {e['fault']:<9} {e['criterion']:<50} worst {e['worst']:.4g} "
            f"(limit {e['limit']:g} {e['unit']}, {e['trials']} trials)"
        )
