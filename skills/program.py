# Over 400 lines: the primitives and the program that runs them, guards and sensor checks included.
"""Programs: the control-rate policy of a scripted skill, built from small primitives.

A `Program` is a sequence of `Primitive`s — Cartesian moves, gripper actions, pauses — run
one after the other by the `ControlLoop` at the robot's control rate. Guards are attached
to primitives as data (not if-chains in the loop): while a primitive runs, its guards are
evaluated every few ticks and the first that trips ends the program with a typed failure.

Every reading is also checked for staleness and validity (`robot.sensors.SensorMonitor`)
before anything uses it: a bad reading is never given to a primitive or a guard; the arm
holds the position last commanded, and `robot.sensors.STOP_AFTER` bad readings in a row
end the program with `Failure.SENSOR_FAULT`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np
from scipy.interpolate import CubicSpline

from skillstack.robot.motion import CartesianMotion, JointMotion
from skillstack.robot.sensors import SensorMonitor
from skillstack.robot.types import GripperCommand, JointCommand, Pose, RobotState
from skillstack.skills.base import Failure, SkillFailure
from skillstack.skills.context import Context
from skillstack.skills.guards import GUARD_PERIOD, Guard, period_ticks

REACH_TOLERANCE = 0.005  # m, a move whose commanded pose ends further away is unreachable
GRIPPER_SETTLED = 2e-5  # m per ms: fingers moving slower than this (2 cm/s) have stopped
GRIPPER_WINDOW = 0.06  # s, the width is compared across this much time: real grippers report
# their width slower than the control rate (the Franka Hand's is polled at 20 Hz), so a width
# unchanged between two ticks does not mean the fingers stopped
GRIPPER_MIN_TIME = 0.1  # s, a grip lasts at least this long


# -- primitives -------------------------------------------------------------------------------
class Primitive(ABC):
    """One step of a program: a control-rate policy with a label and optional guards."""

    label: str = ""
    guards: Sequence[Guard] = ()

    @abstractmethod
    def start(self, ctx: Context, state: RobotState) -> None:
        """Begin (may send a gripper command)."""

    @abstractmethod
    def step(self, state: RobotState) -> JointCommand:
        """The joint command for this tick."""

    @property
    @abstractmethod
    def done(self) -> bool:
        """True when finished."""

    def finish(self, ctx: Context, state: RobotState) -> SkillFailure | None:
        """Called once when done; may report a failure (e.g. the goal was not reached)."""
        return None


class Move(Primitive):
    """Move the end effector to ``position`` with orientation ``quat`` along a straight line.

    ``posture`` is a joint configuration at the goal found by the planner (`Context.solve`):
    the IK's null space is pulled toward it, and should the straight line end short of the
    goal (a joint limit in the way), the move finishes in joint space to that configuration.
    """

    def __init__(
        self,
        label: str,
        position,
        quat,
        speed: float = 0.25,
        guards: Sequence[Guard] = (),
        angular_speed: float = 1.0,
        posture: np.ndarray | None = None,
        on_finish: Callable[[Context, RobotState], None] | None = None,
    ):
        self.label = label
        self.posture = posture
        self.on_finish = on_finish  # told when the move ends (a push reports what it moved)
        self.goal = Pose(np.asarray(position, dtype=float), np.asarray(quat, dtype=float))
        self.speed = speed
        self.angular_speed = angular_speed
        self.guards = guards
        self.motion: CartesianMotion | JointMotion | None = None
        self._fallback = False

    def start(self, ctx: Context, state: RobotState) -> None:
        """Plan the straight line from the commanded pose to the goal, the IK's null space
        pulled toward ``posture`` (the home posture if none)."""
        posture = ctx.home_q if self.posture is None else self.posture
        self.motion = CartesianMotion(
            ctx.kin,
            ctx.robot.capabilities,
            [self.goal],
            posture,
            max_linear_speed=self.speed,
            max_angular_speed=self.angular_speed,
        )
        self.motion.reset(state)
        self._fallback = False

    def step(self, state: RobotState) -> JointCommand:
        """The joint target of the line (or of the joint-space fallback) for this tick."""
        assert self.motion is not None, "start() plans the motion before the first step"
        return self.motion.step(state)

    @property
    def done(self) -> bool:
        """True once the motion has ended and the arm has arrived."""
        return self.motion is not None and self.motion.done

    def finish(self, ctx: Context, state: RobotState) -> SkillFailure | None:
        """`UNREACHABLE` if the line ended more than `REACH_TOLERANCE` from the goal and no
        ``posture`` is known; with one, the move goes on in joint space to it (None)."""
        if self._fallback:
            self._finished(ctx, state)  # ended on the planner's configuration
            return None
        line = self.motion
        assert isinstance(line, CartesianMotion), "start() plans a straight line"
        err = float(np.linalg.norm(line.ik.error(line.sample)[:3]))
        if err <= REACH_TOLERANCE:
            self._finished(ctx, state)
            return None
        if self.posture is not None:
            self._fallback = True
            self.motion = JointMotion(self.posture, ctx.robot.capabilities, speed_fraction=0.2)
            self.motion.reset(state)
            return None
        x, y, z = self.goal.position
        return SkillFailure(
            Failure.UNREACHABLE,
            f"{self.label}: cannot reach ({x:.3f}, {y:.3f}, {z:.3f}) m "
            f"(closest {err * 1e3:.0f} mm away)",
        )

    def _finished(self, ctx: Context, state: RobotState) -> None:
        if self.on_finish is not None:
            self.on_finish(ctx, state)


class JointMove(Primitive):
    """Move the joints to a configuration found by the planner (for large reorientations)."""

    def __init__(
        self,
        label: str,
        goal: np.ndarray,
        speed_fraction: float = 0.3,
        guards: Sequence[Guard] = (),
    ):
        self.label, self.goal, self.speed_fraction, self.guards = (
            label,
            goal,
            speed_fraction,
            guards,
        )
        self.motion: JointMotion | None = None

    def start(self, ctx: Context, state: RobotState) -> None:
        """Start a minimum-jerk joint profile from the commanded joints to ``goal``."""
        self.motion = JointMotion(self.goal, ctx.robot.capabilities, self.speed_fraction)
        self.motion.reset(state)

    def step(self, state: RobotState) -> JointCommand:
        """The profile's joint target for this tick."""
        assert self.motion is not None, "start() plans the motion before the first step"
        return self.motion.step(state)

    @property
    def done(self) -> bool:
        """True once the profile has ended and the arm has arrived."""
        return self.motion is not None and self.motion.done


class JointPath(Primitive):
    """Follow joint configurations checked by the planner, smoothly, in ``duration`` seconds.

    A cubic spline through the waypoints, timed by a minimum-jerk law so that it starts and
    ends at rest. For motions whose every intermediate pose matters (tilting a cup near the
    table): the path executed is the path that was checked.
    """

    def __init__(
        self,
        label: str,
        waypoints: Sequence[np.ndarray],
        duration: float,
        guards: Sequence[Guard] = (),
    ):
        self.label, self.duration, self.guards = label, duration, guards
        points = np.asarray(waypoints, dtype=float)
        self._spline = CubicSpline(np.arange(len(points)), points, bc_type="clamped")
        self._last = len(points) - 1
        self._t0 = 0.0
        self._done = False

    def start(self, ctx: Context, state: RobotState) -> None:
        """Start the path's clock."""
        self._t0, self._done = state.time, False

    def step(self, state: RobotState) -> JointCommand:
        """The spline's joint target at this tick's minimum-jerk time."""
        t = state.time - self._t0
        tau = min(t / self.duration, 1.0)
        s = tau**3 * (10.0 - 15.0 * tau + 6.0 * tau * tau)
        self._done = t >= self.duration + 0.1
        return JointCommand("joint_position", self._spline(s * self._last), state.time)

    @property
    def done(self) -> bool:
        """True 0.1 s after ``duration`` (time for the arm to settle on the last waypoint)."""
        return self._done


class Grip(Primitive):
    """Open or close the gripper, holding the arm still until the fingers stop."""

    def __init__(
        self,
        label: str,
        width: float,
        force: float,
        max_wait: float = 1.5,
        guards: Sequence[Guard] = (),
        expect_width: float | None = None,
        target: str | None = None,
    ):
        self.label, self.width, self.force, self.max_wait = label, width, force, max_wait
        self.guards = guards
        self.expect_width = expect_width  # closing must stop at least this wide (on an object)
        self.target = target  # the object a closing grip takes (the world model tracks it)
        self._closing = False
        self._q: np.ndarray | None = None  # the joints held still, latched by start
        self._t0 = 0.0
        self._widths: deque[tuple[float, float]] = deque()
        self._done = False

    def start(self, ctx: Context, state: RobotState) -> None:
        """Send the gripper command and latch the arm's commanded joints."""
        self._closing = self.width < state.gripper_width
        ctx.robot.gripper(GripperCommand(width=self.width, force=self.force))
        self._q = (state.q if state.q_desired is None else state.q_desired).copy()
        self._t0 = state.time
        self._widths.clear()
        self._done = False

    def step(self, state: RobotState) -> JointCommand:
        """Hold the arm still while watching the finger width for the fingers to stop."""
        elapsed = state.time - self._t0
        widths = self._widths
        widths.append((state.time, state.gripper_width))
        while len(widths) > 2 and state.time - widths[1][0] >= GRIPPER_WINDOW:
            widths.popleft()  # keep the oldest sample at least a window old
        span = state.time - widths[0][0]
        moved = abs(state.gripper_width - widths[0][1])
        settled = span >= GRIPPER_WINDOW and moved <= GRIPPER_SETTLED * 1e3 * span
        self._done = (elapsed > GRIPPER_MIN_TIME and settled) or elapsed >= self.max_wait
        assert self._q is not None, "start() latches the joints before the first step"
        return JointCommand("joint_position", self._q, state.time)

    @property
    def done(self) -> bool:
        """True once the fingers have stopped (at least `GRIPPER_MIN_TIME` s), or after
        ``max_wait`` s."""
        return self._done

    def finish(self, ctx: Context, state: RobotState) -> SkillFailure | None:
        """Tell the world model about the grip; `GRASP_MISSED` if a closing grip stopped
        narrower than ``expect_width`` (m)."""
        missed = self.expect_width is not None and state.gripper_width < self.expect_width
        ctx.world.note_grip(self._closing, self.target, state, ok=not missed)
        if missed:
            return SkillFailure(
                Failure.GRASP_MISSED,
                f"the fingers closed to {state.gripper_width * 1e3:.1f} mm: "
                "nothing was between them",
            )
        return None


class Pause(Primitive):
    """Hold still for ``seconds``."""

    def __init__(self, label: str, seconds: float, guards: Sequence[Guard] = ()):
        self.label, self.seconds, self.guards = label, seconds, guards
        self._q: np.ndarray | None = None  # the joints held still, latched by start
        self._t0 = 0.0
        self._done = False

    def start(self, ctx: Context, state: RobotState) -> None:
        """Latch the commanded joints and start the clock."""
        self._q = (state.q if state.q_desired is None else state.q_desired).copy()
        self._t0, self._done = state.time, False

    def step(self, state: RobotState) -> JointCommand:
        """Command the latched joints."""
        self._done = state.time - self._t0 >= self.seconds
        assert self._q is not None, "start() latches the joints before the first step"
        return JointCommand("joint_position", self._q, state.time)

    @property
    def done(self) -> bool:
        """True once ``seconds`` have passed."""
        return self._done


class Program:
    """Runs primitives in order as one `robot.loop.Policy`; stops at the first failure."""

    def __init__(
        self,
        primitives: Sequence[Primitive],
        ctx: Context,
        template: str = "",
        guards: Sequence[Guard] = (),
    ):
        if not primitives:
            raise ValueError("a program needs at least one primitive")
        self.primitives = list(primitives)
        self.ctx = ctx
        self.template = template
        self.guards = list(guards)  # watched during the whole program
        self._control_dt = ctx.robot.capabilities.control_dt  # guard periods scale with it
        self._track_every = period_ticks(GUARD_PERIOD, self._control_dt)
        self.allowed_contacts: set[str] = set()  # bodies the hand may touch (the held object)
        # optional callable checked every tick: a reason to stop, or None
        self.abort: Callable[[], str | None] | None = None
        self.failure: SkillFailure | None = None
        self.index = 0
        self._ticks = 0
        self._done = False
        # Judges every reading; a real driver's readings never repeat exactly, a simulator's
        # at rest may (`hw.drivers.base.DriverRobot.readings_always_change`).
        self.sensors = SensorMonitor(
            ctx.robot.capabilities,
            identical_is_stale=bool(getattr(ctx.robot, "readings_always_change", False)),
        )
        self._hold: JointCommand | None = None  # the last position command, held on bad ticks
        self._good_time = 0.0  # the time of the latest good reading
        self._started = False  # whether the first primitive has started

    @property
    def label(self) -> str:
        """What the program is doing now (for logs and video captions)."""
        return self.primitives[min(self.index, len(self.primitives) - 1)].label

    def reset(self, state: RobotState) -> None:
        """Start the first primitive (at the first good reading, should this one be bad)."""
        self.index, self._ticks, self._done, self.failure = 0, 0, False, None
        self.sensors.reset()
        self._hold = None
        self._good_time = state.time
        # never start from a bad reading; the loop's first tick may read this one again
        self._started = self.sensors.check(state, again=True)
        if self._started:
            self.primitives[0].start(self.ctx, state)

    @property
    def done(self) -> bool:
        """True when every primitive finished, or one failed."""
        return self._done

    def step(self, state: RobotState) -> JointCommand:
        """Check the reading, advance through finished primitives, check guards, return this
        tick's command; on a stale or invalid reading, hold the arm instead."""
        if self._done:  # ended by a sensor fault: hold
            return self._sensor_hold(state)
        if not self.sensors.check(state, None if self._hold is None else self._hold.values):
            reason = self.abort() if self.abort is not None else None
            if reason:  # supervision still stops a held arm
                self.failure, self._done = SkillFailure(Failure.SAFETY_STOP, reason), True
            elif self.sensors.fault:
                self._sensor_failure(self.sensors.fault)
            return self._sensor_hold(state)
        self._good_time = state.time
        if not self._started:  # the first reading was bad: start at the first good one
            self._started = True
            self.primitives[0].start(self.ctx, state)
        cmd = self._step(state)
        if cmd.mode == "joint_position":
            self._hold = cmd
        return cmd

    def _sensor_hold(self, state: RobotState) -> JointCommand:
        """Hold the position last commanded (the reading itself cannot be trusted)."""
        stamp = state.time if math.isfinite(state.time) else self._good_time
        if self._hold is not None:
            return JointCommand("joint_position", self._hold.values.copy(), stamp)
        q = state.q if state.q_desired is None else state.q_desired
        return JointCommand("joint_position", q.copy(), stamp)

    def _sensor_failure(self, message: str) -> None:
        self.failure = SkillFailure(Failure.SENSOR_FAULT, message)
        self._done = True

    def _step(self, state: RobotState) -> JointCommand:
        current = self.primitives[self.index]
        while current.done:
            failure = current.finish(self.ctx, state)
            if failure is not None:
                return self._fail(failure, current, state)
            self.index += 1
            if self.index == len(self.primitives):
                self._done = True
                return current.step(state)
            current = self.primitives[self.index]
            current.start(self.ctx, state)
        self._ticks += 1
        if self.abort is not None:
            reason = self.abort()
            if reason:
                return self._fail(SkillFailure(Failure.SAFETY_STOP, reason), current, state)
        ticks, dt = self._ticks, self._control_dt
        if ticks % self._track_every == 0:
            self.ctx.world.track(state)
        for guards in (self.guards, current.guards):
            for guard in guards:
                if ticks % period_ticks(guard.period, dt) == 0:
                    failure = guard.check(self.ctx, state)
                    if failure is not None:
                        return self._fail(failure, current, state)
        return current.step(state)

    def _fail(self, failure: SkillFailure, current: Primitive, state: RobotState) -> JointCommand:
        self.failure = failure
        self._done = True
        q = state.q if state.q_desired is None else state.q_desired
        return JointCommand("joint_position", q.copy(), state.time)
