# Over 400 lines: one check per promise of the HAL, each self-contained; the suite reads as a list.
"""The HAL conformance suite: checks that any `Robot` backend must pass.

The same checks run in the test-suite (on the MuJoCo backend, where `wait_for_tick` steps
the physics) and on real hardware, where they move one joint — the last, the wrist —
by at most ``amplitude`` radians at no more than ``speed`` rad/s, and return it::

    from skillstack.hw.conformance import run_conformance
    from skillstack.hw.drivers import make_driver

    with make_driver("ur", "192.168.1.10") as robot:
        results = run_conformance(robot, amplitude=0.05, speed=0.1)
    assert all(r.passed for r in results)

Checks, each bounded in time (a few seconds at most):

``capabilities``  declared limits are consistent and the first reading matches them;
``timestamps``    state times advance monotonically, at about the declared period (judged by
                  the shortest step when this reader is slower than the robot);
``hold``          commanding the current position keeps the arm still;
``move``          a slow, small wrist move reaches its target and comes back, never
                  faster than `SPEED_OVERSHOOT` times the commanded speed;
``joint_limits``  a target beyond a joint limit is clipped: every command actually sent
                  stays within it, and the arm stops at it (tested against a temporary
                  limit ``amplitude/2`` from the wrist, so nothing travels far);
``stop``          within `STOP_TIMEOUT_S` of `Robot.stop` returning, every joint is
                  slower than `STOP_SPEED_TOL`;
``gripper``       the gripper reports its width: open, close a little, open (skipped
                  when the robot has no gripper);
``bad_commands``  NaN targets, wrong shapes and unsupported modes are refused and
                  nothing moves;
``estop``         the e-stop latches (commands are replaced by a hold) until
                  `Robot.reset_estop`.

A check that raises is reported as failed with the exception; the suite then asks the
robot to stop and carries on. Tolerances are module constants, in SI units.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from skillstack.hw.robot import Robot, RobotError
from skillstack.robot.safety import SafetyFilter
from skillstack.robot.types import (
    COMMAND_MODES,
    CommandMode,
    GripperCommand,
    JointCommand,
    RobotState,
)

CHECKS = (
    "capabilities",
    "timestamps",
    "hold",
    "move",
    "joint_limits",
    "stop",
    "gripper",
    "bad_commands",
    "estop",
)

MAX_AMPLITUDE = 0.2  # rad, the largest wrist excursion the suite agrees to make
MAX_SPEED = 0.5  # rad/s, the fastest wrist speed the suite agrees to command

TIMESTAMP_TICKS = 50  # ticks sampled by the timestamp check
PERIOD_TOLERANCE = 2.0  # the mean tick period (or, for a slower reader, the shortest
# step between two states) must be within this factor of the declared one
HOLD_S = 1.0  # s, how long the hold check holds
HOLD_DRIFT_TOL = 2e-3  # rad, largest joint motion allowed while holding or refusing
SETTLE_S = 0.5  # s, holding after a move before measuring where the arm is
REACH_FRACTION = 0.1  # a move must end within this fraction of its amplitude ...
REACH_MIN_TOL = 2e-3  # rad, ... or within this, whichever is larger
OTHER_JOINT_TOL = 5e-3  # rad, how far the joints that are not moved may wander during a move
SPEED_OVERSHOOT = 1.1  # the measured wrist speed may exceed the requested one by this factor
LIMIT_MARGIN = 0.02  # rad, kept between the wrist's moves and its real limits
LIMIT_SLACK = 1e-9  # rad, numerical slack on "the command sent is within the limit"
STOP_MIN_SPEED_FRACTION = 0.5  # the wrist must move at this fraction of `speed` before stop()
STOP_SPEED_TOL = 0.01  # rad/s, every joint slower than this counts as still
STOP_STILL_S = 0.02  # s, ... for this long
STOP_TIMEOUT_S = 0.5  # s, the arm must be still this soon after stop() returns
GRIPPER_SPEED = 0.05  # m/s, finger speed used by the gripper check (or the gripper's maximum)
GRIPPER_FORCE = 20.0  # N, grasp force used by the gripper check (or the gripper's maximum)
GRIPPER_STEP = 0.02  # m, how far "close a little" closes (at most a quarter of the stroke)
GRIPPER_TOL = 0.003  # m, how close the measured width must come to the commanded one
GRIPPER_SETTLE_S = 1.0  # s, allowed on top of the travel time at GRIPPER_SPEED
GRIPPER_STABLE_S = 0.3  # s, the width counts as settled once it changed < 0.1 mm over this
BAD_TICKS = 10  # ticks each bad command is sent for
ESTOP_TICKS = 50  # ticks commanded while the e-stop is latched


@dataclass
class CheckResult:
    """The outcome of one check; ``detail`` says what was measured (or why it was skipped)."""

    name: str
    passed: bool
    detail: str
    duration_s: float
    skipped: bool = False


class CheckFailed(AssertionError):
    """Raised inside a check to fail it with a message."""


class _Skip(Exception):
    """Raised inside a check to skip it with a message."""


def run_conformance(
    robot: Robot,
    *,
    amplitude: float = 0.05,
    speed: float = 0.1,
    log: Callable[[str], object] | None = print,
    checks: Sequence[str] | None = None,
) -> list[CheckResult]:
    """Run the conformance checks on ``robot`` and return one `CheckResult` per check.

    Args:
        robot: any backend; connected here (and disconnected afterwards) if it is not.
            Its e-stop must not be latched (RobotError otherwise).
        amplitude: rad, how far the wrist is moved (at most `MAX_AMPLITUDE`).
        speed: rad/s, the fastest the wrist is commanded to move (at most `MAX_SPEED`).
        log: called with one line per check as it finishes; None for silence.
        checks: names from `CHECKS` to run, in the suite's order; all of them by default.
    """
    if not 0.0 < amplitude <= MAX_AMPLITUDE:
        raise ValueError(f"amplitude must be in (0, {MAX_AMPLITUDE}] rad, got {amplitude}")
    if not 0.0 < speed <= MAX_SPEED:
        raise ValueError(f"speed must be in (0, {MAX_SPEED}] rad/s, got {speed}")
    selected = CHECKS if checks is None else tuple(checks)
    unknown = [name for name in selected if name not in CHECKS]
    if unknown:
        raise ValueError(f"unknown checks {unknown}; valid checks: {', '.join(CHECKS)}")
    say = log if log is not None else (lambda _line: None)
    opened = not robot.connected
    if opened:
        robot.connect()
    caps = robot.capabilities
    say(
        f"conformance: {caps.name}, {caps.dof} joints at {caps.control_rate_hz:g} Hz, "
        f"wrist moves of {amplitude:g} rad at {speed:g} rad/s"
    )
    session = _Session(robot, amplitude, speed)
    results = []
    try:
        if robot.safety.estopped:
            raise RobotError(
                f"{caps.name}: the e-stop is latched; find out why and reset_estop() before "
                "running the conformance suite"
            )
        for name in CHECKS:
            if name in selected:
                result = session.run(name)
                results.append(result)
                tag = "SKIP" if result.skipped else "PASS" if result.passed else "FAIL"
                say(f"[{tag}] {name} ({result.duration_s:.2f} s): {result.detail}")
    except BaseException:  # Ctrl-C included: leave the arm stopped, then report
        session._recover()
        raise
    finally:
        if opened:
            robot.disconnect()
    failed = sum(not r.passed for r in results)
    skipped = sum(r.skipped for r in results)
    say(
        f"{len(results)} checks: {len(results) - failed - skipped} passed, "
        f"{skipped} skipped, {failed} failed"
    )
    return results


class _Session:
    """Shared state and motion helpers of one conformance run."""

    def __init__(self, robot: Robot, amplitude: float, speed: float):
        self.robot = robot
        self.caps = robot.capabilities
        self.amplitude = amplitude
        self.speed = speed
        self.dt = self.caps.control_dt
        self.wrist = self.caps.dof - 1
        self.wrist_name = self.caps.joint_names[self.wrist]

    def run(self, name: str) -> CheckResult:
        start = time.perf_counter()
        try:
            detail = getattr(self, f"check_{name}")()
            passed, skipped = True, False
        except _Skip as exc:
            detail, passed, skipped = f"skipped: {exc}", True, True
        except CheckFailed as exc:
            detail, passed, skipped = str(exc), False, False
        except Exception as exc:  # a check must report, not crash the suite
            detail, passed, skipped = f"raised {type(exc).__name__}: {exc}", False, False
        if not passed:
            self._recover()
        return CheckResult(name, passed, detail, time.perf_counter() - start, skipped)

    # -- motion helpers ------------------------------------------------------------------------
    def ticks(self, seconds: float) -> int:
        """Whole control ticks covering ``seconds`` (at least one)."""
        return max(1, math.ceil(seconds / self.dt - 1e-9))

    def reference(self) -> np.ndarray:
        """Where to hold: the last commanded position if the backend reports it, else q."""
        state = self.robot.read()
        q = state.q_desired if state.q_desired is not None else state.q
        return np.array(q, dtype=float)

    def tick(self, target: np.ndarray, mode: CommandMode = "joint_position") -> JointCommand:
        """Command ``target`` for one tick; returns the command actually sent."""
        state = self.robot.read()
        sent = self.robot.command(JointCommand(mode, np.array(target, dtype=float), state.time))
        self.robot.wait_for_tick()
        return sent

    def hold(self, target: np.ndarray, seconds: float) -> list[RobotState]:
        """Hold ``target`` for ``seconds``; returns the state read after each tick."""
        states = []
        for _ in range(self.ticks(seconds)):
            self.tick(target)
            states.append(self.robot.read())
        return states

    def move_wrist(self, start: np.ndarray, goal: float) -> list[RobotState]:
        """Stream a cosine profile moving the wrist from ``start`` to ``goal`` at ``speed``."""
        delta = goal - start[self.wrist]
        n = self.ticks(math.pi * abs(delta) / (2.0 * self.speed))  # peak speed == self.speed
        states = []
        for k in range(1, n + 1):
            target = start.copy()
            target[self.wrist] = start[self.wrist] + delta * 0.5 * (1.0 - math.cos(math.pi * k / n))
            self.tick(target)
            states.append(self.robot.read())
        return states

    def wrist_direction(self, q: np.ndarray, reach: float) -> float:
        """+1 or -1: the direction in which the wrist has ``reach`` rad of room."""
        j = self.wrist
        up = self.caps.joint_upper[j] - q[j] - LIMIT_MARGIN
        down = q[j] - self.caps.joint_lower[j] - LIMIT_MARGIN
        if max(up, down) < reach:
            raise _Skip(
                f"{self.wrist_name} is within {reach + LIMIT_MARGIN:.3f} rad of both limits"
            )
        return 1.0 if up >= down else -1.0

    def require_position_mode(self) -> None:
        if "joint_position" not in self.caps.command_modes:
            raise CheckFailed("the robot does not accept joint_position commands")

    def reach_tol(self) -> float:
        return max(REACH_FRACTION * self.amplitude, REACH_MIN_TOL)

    def _recover(self) -> None:
        """After a failed check: ask for a controlled stop (the next check starts from rest)."""
        try:
            self.robot.stop()
        except Exception:  # the robot may be beyond help; the next check will say so
            pass

    # -- the checks -----------------------------------------------------------------------------
    def check_capabilities(self) -> str:
        caps, n = self.caps, self.caps.dof
        problems = []
        if not (isinstance(n, int) and n >= 1):
            raise CheckFailed(f"dof must be a positive integer, got {n!r}")
        if len(caps.joint_names) != n or len(set(caps.joint_names)) != n:
            problems.append(f"{n} joints need {n} distinct joint names: {caps.joint_names}")
        arrays = {
            "joint_lower": caps.joint_lower,
            "joint_upper": caps.joint_upper,
            "velocity_limit": caps.velocity_limit,
            "acceleration_limit": caps.acceleration_limit,
            "torque_limit": caps.torque_limit,
        }
        for key, value in arrays.items():
            value = np.asarray(value)
            if value.shape != (n,) or not np.isfinite(value).all():
                problems.append(f"{key} must be {n} finite numbers, got {value}")
            elif key not in ("joint_lower", "joint_upper") and (value <= 0).any():
                problems.append(f"{key} must be positive, got {value}")
        if not problems and not (caps.joint_lower < caps.joint_upper).all():
            problems.append("joint_lower must be below joint_upper for every joint")
        rate = caps.control_rate_hz
        if not (math.isfinite(rate) and rate > 0):
            problems.append(f"control_rate_hz must be positive, got {rate}")
        modes = tuple(caps.command_modes)
        if not modes or len(set(modes)) != len(modes) or not set(modes) <= set(COMMAND_MODES):
            problems.append(f"command_modes must be distinct names from {COMMAND_MODES}: {modes}")
        if "joint_position" not in modes:
            problems.append("every backend must accept joint_position (stop and e-stop use it)")
        spec = caps.gripper
        if spec is not None:
            values = (spec.max_width, spec.max_force, spec.max_speed)
            if not all(math.isfinite(v) and v > 0 for v in values):
                problems.append(f"gripper limits must be positive: {spec}")
        state = self.robot.read()
        for key in ("q", "dq", "tau"):
            value = np.asarray(getattr(state, key))
            if value.shape != (n,) or not np.isfinite(value).all():
                problems.append(f"state.{key} must be {n} finite numbers, got {value}")
        if not problems:
            outside = (state.q < caps.joint_lower - LIMIT_MARGIN) | (
                state.q > caps.joint_upper + LIMIT_MARGIN
            )
            if outside.any():
                names = [caps.joint_names[i] for i in np.flatnonzero(outside)]
                problems.append(f"measured q is outside the declared limits at {names}")
        if not math.isfinite(state.gripper_width):
            problems.append(f"gripper_width must be finite, got {state.gripper_width}")
        elif spec is not None and not -GRIPPER_TOL <= state.gripper_width <= (
            spec.max_width + GRIPPER_TOL
        ):
            problems.append(
                f"gripper_width {state.gripper_width:.4f} m is outside [0, {spec.max_width}] m"
            )
        if problems:
            raise CheckFailed("; ".join(problems))
        grip = f"gripper up to {spec.max_width * 1e3:.0f} mm" if spec else "no gripper"
        return f"{n} joints at {rate:g} Hz, modes {', '.join(modes)}, {grip}"

    def check_timestamps(self) -> str:
        self.require_position_mode()
        q = self.reference()
        times = [self.robot.read().time]
        started = time.perf_counter()
        for _ in range(TIMESTAMP_TICKS):
            self.tick(q)
            times.append(self.robot.read().time)
        reader_period = (time.perf_counter() - started) / TIMESTAMP_TICKS
        steps = np.diff(np.asarray(times, dtype=float))
        if not np.isfinite(times).all():
            raise CheckFailed(f"state times are not finite: {times[:5]}...")
        if (steps <= 0).any():
            k = int(np.flatnonzero(steps <= 0)[0])
            raise CheckFailed(
                f"state time did not advance from tick {k} to {k + 1} "
                f"({times[k]:.6f} s -> {times[k + 1]:.6f} s)"
            )
        mean, shortest = float(steps.mean()), float(steps.min())
        summary = (
            f"{TIMESTAMP_TICKS} ticks, strictly increasing; mean period {mean * 1e3:.3f} ms "
            f"(declared {self.dt * 1e3:.3f} ms), longest {steps.max() * 1e3:.3f} ms"
        )
        if self.within_period_tolerance(mean):
            return summary
        # A reader slower than the robot (a robot behind a network link, on a busy machine)
        # sees only every k-th tick: the mean step is then the reader's period. The robot's
        # own period shows in the shortest step, when the reader kept up at least once.
        if reader_period > self.dt * PERIOD_TOLERANCE and self.within_period_tolerance(shortest):
            return (
                f"{summary}; this reader took {reader_period * 1e3:.3f} ms per tick and saw "
                f"every {mean / shortest:.1f}th tick on average; shortest step "
                f"{shortest * 1e3:.3f} ms"
            )
        raise CheckFailed(
            f"mean tick period {mean * 1e3:.3f} ms is not within a factor "
            f"{PERIOD_TOLERANCE:g} of the declared {self.dt * 1e3:.3f} ms (shortest step "
            f"{shortest * 1e3:.3f} ms, this reader's period {reader_period * 1e3:.3f} ms)"
        )

    def within_period_tolerance(self, period: float) -> bool:
        """Whether ``period`` is within a factor `PERIOD_TOLERANCE` of the declared one."""
        return self.dt / PERIOD_TOLERANCE <= period <= self.dt * PERIOD_TOLERANCE

    def check_hold(self) -> str:
        self.require_position_mode()
        q_ref = self.reference()
        q0 = self.robot.read().q
        states = self.hold(q_ref, HOLD_S)
        drift = max(float(np.abs(s.q - q0).max()) for s in states)
        if drift >= HOLD_DRIFT_TOL:
            raise CheckFailed(
                f"holding the current position, the arm moved {drift:.2e} rad "
                f"(tolerance {HOLD_DRIFT_TOL:.0e} rad) in {HOLD_S:g} s"
            )
        return f"max drift {drift:.2e} rad over {HOLD_S:g} s (tolerance {HOLD_DRIFT_TOL:.0e})"

    def check_move(self) -> str:
        self.require_position_mode()
        j, tol = self.wrist, self.reach_tol()
        start = self.reference()
        q0 = self.robot.read().q
        sign = self.wrist_direction(start, self.amplitude)
        goal = start[j] + sign * self.amplitude
        at_goal = start.copy()
        at_goal[j] = goal
        out = self.move_wrist(start, goal) + self.hold(at_goal, SETTLE_S)
        reached = abs(out[-1].q[j] - goal)
        back = self.move_wrist(self.reference(), start[j]) + self.hold(start, SETTLE_S)
        returned = abs(back[-1].q[j] - start[j])
        peak = max(abs(s.dq[j]) for s in out + back)
        wander = max(float(np.delete(np.abs(s.q - q0), j).max(initial=0.0)) for s in out + back)
        summary = (
            f"{self.wrist_name} {sign * self.amplitude:+.3f} rad: reached within "
            f"{reached * 1e3:.2f} mrad, returned within {returned * 1e3:.2f} mrad "
            f"(tolerance {tol * 1e3:.1f}), peak speed {peak:.3f} rad/s, other joints "
            f"within {wander * 1e3:.2f} mrad"
        )
        if reached > tol or returned > tol:
            raise CheckFailed(f"the wrist did not follow: {summary}")
        if peak > self.speed * SPEED_OVERSHOOT:
            raise CheckFailed(
                f"the wrist moved faster than {SPEED_OVERSHOOT:g}x the commanded "
                f"{self.speed:g} rad/s: {summary}"
            )
        if wander > OTHER_JOINT_TOL:
            raise CheckFailed(f"joints that were not commanded to move did: {summary}")
        return summary

    def check_joint_limits(self) -> str:
        self.require_position_mode()
        robot, caps, j = self.robot, self.caps, self.wrist
        dry = self._dry_run_declared_limit()
        start = self.reference()
        sign = self.wrist_direction(start, self.amplitude)
        limit = start[j] + sign * self.amplitude / 2.0
        lower, upper = caps.joint_lower.copy(), caps.joint_upper.copy()
        (upper if sign > 0 else lower)[j] = limit
        velocity = caps.velocity_limit.copy()
        velocity[j] = min(velocity[j], self.speed)
        narrowed = dataclasses.replace(
            caps, joint_lower=lower, joint_upper=upper, velocity_limit=velocity
        )
        original = robot.safety
        trial = SafetyFilter(narrowed, robot.kinematics, original.config)
        trial.reset(original.q_prev)
        beyond = start.copy()
        beyond[j] = start[j] + sign * 2.0 * self.amplitude
        push = self.amplitude / (2.0 * self.speed) + self.speed / caps.acceleration_limit[j]
        worst = -math.inf
        robot.safety = trial
        try:
            for _ in range(self.ticks(push + SETTLE_S)):
                sent = self.tick(beyond)
                worst = max(worst, sign * (float(sent.values[j]) - limit))
            rest = robot.read().q[j]
        finally:
            robot.safety = original
            original.reset(trial.q_prev)  # continue from the command last sent, at rest
        self.move_wrist(self.reference(), start[j])
        self.hold(start, SETTLE_S)
        sent_note = (
            f"commands sent went up to {worst * 1e3:.3f} mrad PAST it"
            if worst > LIMIT_SLACK
            else f"commands sent came within {max(-worst, 0.0) * 1e3:.3f} mrad of it, never past"
        )
        summary = (
            f"target {1.5 * self.amplitude:.3f} rad beyond a limit set {self.amplitude / 2:.3f} "
            f"rad from {self.wrist_name}: {sent_note}; the wrist stopped "
            f"{abs(rest - limit) * 1e3:.2f} mrad from it; {dry}"
        )
        if worst > LIMIT_SLACK:
            raise CheckFailed(f"a command past the joint limit was sent: {summary}")
        if abs(rest - limit) > self.reach_tol():
            raise CheckFailed(f"the wrist did not go to the limit and stop there: {summary}")
        return summary

    def _dry_run_declared_limit(self) -> str:
        """Without moving: a fresh filter with the declared limits clips a target beyond one."""
        caps, j = self.caps, self.wrist
        config = self.robot.safety.config
        upper = caps.joint_upper[j] - config.position_margin
        dry = SafetyFilter(caps, None, config)  # no kinematics: joint limits only
        q = np.array(self.robot.read().q, dtype=float)
        q[j] = min(max(q[j], caps.joint_lower[j] + config.position_margin), upper)
        dry.reset(q)
        target = q.copy()
        target[j] = caps.joint_upper[j] + 0.5
        span = upper - q[j]
        steps = self.ticks(span / caps.velocity_limit[j] * 2.0 + 1.0)
        highest = -math.inf
        for k in range(steps):
            now = k * self.dt
            state = RobotState(now, dry.q_prev, dry.v_prev, np.zeros(caps.dof), 0.0)
            out = dry.filter(JointCommand("joint_position", target, now), state)
            highest = max(highest, float(out.values[j]))
        if highest > upper + LIMIT_SLACK:
            raise CheckFailed(
                f"with the declared limits, the safety filter let {self.wrist_name} go to "
                f"{highest:.4f} rad, past its upper limit {upper:.4f} rad"
            )
        return (
            f"dry run with the declared limits: {self.wrist_name} clipped at "
            f"{highest:.4f} <= {upper:.4f} rad"
        )

    def check_stop(self) -> str:
        self.require_position_mode()
        robot, j = self.robot, self.wrist
        start = self.reference()
        sign = self.wrist_direction(start, self.amplitude)
        goal = start[j] + sign * self.amplitude
        n = self.ticks(math.pi * self.amplitude / (2.0 * self.speed))
        # Up to the profile's peak speed, then on (at most to three quarters of the way, still
        # well inside the reach) until the wrist is seen moving: an arm behind a network or a
        # busy host follows its commands late.
        moving = robot.read()
        for k in range(1, max(2, 3 * n // 4 + 1)):
            target = start.copy()
            target[j] = start[j] + (goal - start[j]) * 0.5 * (1.0 - math.cos(math.pi * k / n))
            self.tick(target)
            if k >= n // 2:
                moving = robot.read()
                if abs(moving.dq[j]) >= STOP_MIN_SPEED_FRACTION * self.speed:
                    break
        if abs(moving.dq[j]) < STOP_MIN_SPEED_FRACTION * self.speed:
            self._return_to(start)
            raise CheckFailed(
                f"the wrist was not moving before stop() ({abs(moving.dq[j]):.4f} rad/s for a "
                f"commanded {self.speed:g} rad/s), so stopping cannot be tested"
            )
        t_stop = time.perf_counter()
        robot.stop()
        stop_call_s = time.perf_counter() - t_stop
        still_needed = self.ticks(STOP_STILL_S)
        still, elapsed, fastest = 0, 0, math.inf
        state = robot.read()
        while elapsed < self.ticks(STOP_TIMEOUT_S) and still < still_needed:
            robot.wait_for_tick()
            state = robot.read()
            elapsed += 1
            fastest = float(np.abs(state.dq).max())
            still = still + 1 if fastest < STOP_SPEED_TOL else 0
        coast = abs(state.q[j] - moving.q[j])
        self._return_to(start)
        summary = (
            f"moving at {abs(moving.dq[j]):.3f} rad/s; stop() returned in "
            f"{stop_call_s * 1e3:.1f} ms, every joint below {STOP_SPEED_TOL} rad/s "
            f"{(elapsed - still) * self.dt:.3f} s later, {coast * 1e3:.2f} mrad past the "
            f"stop point"
        )
        if still < still_needed:
            raise CheckFailed(
                f"the arm still moved at {fastest:.4f} rad/s {STOP_TIMEOUT_S:g} s after "
                f"stop(): {summary}"
            )
        return summary

    def _return_to(self, start: np.ndarray) -> None:
        self.move_wrist(self.reference(), start[self.wrist])
        self.hold(start, SETTLE_S)

    def check_gripper(self) -> str:
        spec = self.caps.gripper
        if spec is None:
            raise _Skip("the robot declares no gripper")
        self.require_position_mode()
        q = self.reference()
        speed = min(spec.max_speed, GRIPPER_SPEED)
        force = min(spec.max_force, GRIPPER_FORCE)
        step = min(GRIPPER_STEP, spec.max_width / 4.0)

        def go(width: float) -> float:
            self.robot.gripper(GripperCommand(width=width, force=force, speed=speed))
            timeout = abs(self.robot.read().gripper_width - width) / speed + GRIPPER_SETTLE_S
            window = self.ticks(GRIPPER_STABLE_S)
            widths: list[float] = []
            for _ in range(self.ticks(timeout)):
                self.tick(q)
                widths.append(self.robot.read().gripper_width)
                stable = len(widths) > window and abs(widths[-1] - widths[-1 - window]) < 1e-4
                if stable and abs(widths[-1] - width) < GRIPPER_TOL:
                    break
            measured = widths[-1]
            if not abs(measured - width) < GRIPPER_TOL:
                raise CheckFailed(
                    f"asked for {width * 1e3:.1f} mm, the gripper reports "
                    f"{measured * 1e3:.1f} mm after {timeout:.1f} s"
                )
            return measured

        opened = go(spec.max_width)
        closed = go(opened - step)
        reopened = go(spec.max_width)
        return (
            f"opened to {opened * 1e3:.1f} mm, closed to {closed * 1e3:.1f} mm (asked "
            f"{(opened - step) * 1e3:.1f}), reopened to {reopened * 1e3:.1f} mm"
        )

    def check_bad_commands(self) -> str:
        self.require_position_mode()
        robot, n, j = self.robot, self.caps.dof, self.wrist
        q_ref = self.reference()
        q0 = robot.read().q
        nan_target = q_ref.copy()
        nan_target[j] = math.nan
        bad = {
            "a NaN target": nan_target,
            "an inf target": np.where(np.arange(n) == j, math.inf, q_ref),
            f"{n + 1} values for {n} joints": np.append(q_ref, q_ref[-1]),
            f"{n - 1} values for {n} joints": q_ref[:-1].copy(),
        }
        for label, target in bad.items():
            for _ in range(BAD_TICKS):
                sent = self.tick(target)
                values = np.asarray(sent.values)
                if values.shape != (n,) or not np.isfinite(values).all():
                    raise CheckFailed(f"{label} reached the backend as {values}")
        for mode in ("cartesian_pose", "joint_impedance"):
            state = robot.read()
            try:
                robot.command(JointCommand(mode, q_ref, state.time))  # type: ignore[arg-type]
            except RobotError:
                pass
            else:
                raise CheckFailed(f"the unsupported mode {mode!r} was accepted")
            robot.wait_for_tick()
        states = self.hold(q_ref, SETTLE_S / 5.0)
        drift = max(float(np.abs(s.q - q0).max()) for s in states)
        if drift >= HOLD_DRIFT_TOL:
            raise CheckFailed(
                f"the arm moved {drift:.2e} rad while bad commands were refused "
                f"(tolerance {HOLD_DRIFT_TOL:.0e} rad)"
            )
        return (
            f"refused {', '.join(bad)} ({BAD_TICKS} ticks each) and 2 unsupported modes; "
            f"drift {drift:.2e} rad"
        )

    def check_estop(self) -> str:
        self.require_position_mode()
        robot, j = self.robot, self.wrist
        q_ref = self.reference()
        q0 = robot.read().q
        sign = self.wrist_direction(q_ref, self.amplitude)
        target = q_ref.copy()
        target[j] += sign * self.amplitude
        robot.estop("conformance check")
        try:
            held = None
            for k in range(ESTOP_TICKS):
                sent = self.tick(target)
                values = np.asarray(sent.values, dtype=float)
                if held is None:
                    held = values.copy()
                if not np.array_equal(values, held):
                    raise CheckFailed(
                        f"tick {k} after estop(): the command sent changed "
                        f"(wrist {held[j]:.5f} -> {values[j]:.5f} rad); the e-stop did not latch"
                    )
            moved = float(np.abs(robot.read().q - q0).max())
            if moved >= HOLD_DRIFT_TOL:
                raise CheckFailed(f"the arm moved {moved:.2e} rad while e-stopped")
        finally:
            robot.reset_estop()
        resumed = self.reference()
        nudge = resumed.copy()
        nudge[j] += sign * min(self.amplitude, 1e-3)
        sent = self.tick(nudge)
        moved_on = sign * (float(sent.values[j]) - resumed[j]) > 0.0
        self.hold(resumed, SETTLE_S / 5.0)
        if not moved_on:
            raise CheckFailed("after reset_estop() commands are still replaced by a hold")
        return (
            f"{ESTOP_TICKS} ticks of a {self.amplitude:g} rad wrist target after estop() all "
            f"sent the held position; arm moved {moved:.2e} rad; commands pass again after "
            f"reset_estop()"
        )
