"""The primitives that run a learned policy on the robot, one per learnable skill.

`PolicyPrimitive` is the loop they share: every ``1 / rate_hz`` s of simulated time it
observes the robot and the object, computes the skill's features
(`skills.training.features`), takes the next action of the predicted chunk
(`ChunkExecutor`) and hands it to `PolicyActuator`, which interpolates it to joint targets at
the control rate. The subclasses decide what the gripper command means and when the call
is over:

* `GraspPolicy` opens fully or closes; done once the object rose (nearly) ``lift`` with
  the fingers on it; ``grasp_missed`` when they close on nothing for `MISSED_AFTER_S`.
* `PlacePolicy` keeps the grip until the policy lets go, then opens to the release width
  and never closes again (re-closing would grab the object it just put down); done once
  the hand rose `RETREAT_FRACTION` of the expert's retreat after letting go;
  ``object_slipped`` when the object leaves the fingers before that (the scripted place's
  `Holding` guard, watched until the release). One reflex the expert never needs: when the
  policy lowers the object onto its spot and keeps pressing, the object is pushed up into
  the hand; `TOUCHDOWN_M` of that means it stands on something, and the fingers open at
  once (before the slip guard would call it a slip). It needs the object's pose in the hand
  (simulation, or a tracked object); on a declared world only the policy lets go.
* `VisionGraspPolicy` is `GraspPolicy` for an image policy (`skills.training.vision`): it
  renders the cameras for each chunk and never reads the object's pose, not even to end the
  call (done once the closed fingers hold something and the hand rose the lift).
* `PourPolicy` squeezes the cup as the scripted pour does and never changes the grip; it
  is told how full the cup still is (``object_fill``, counted from the world model) and is
  done once the cup, tilted past level, is back upright and the hand has come to rest;
  ``object_slipped`` when the cup leaves the fingers (the scripted pour's guard).

All fail with ``timeout`` past `HORIZON_FACTOR` × the longest demonstration and are watched
by a collision guard, like any program.
"""

from __future__ import annotations

import numpy as np

from skillstack.robot.types import JointCommand, RobotState
from skillstack.skills.base import Failure, SkillFailure
from skillstack.skills.context import Context
from skillstack.skills.guards import SLIP_PERIOD, Guard, Holding, NoCollision, period_ticks
from skillstack.skills.library.place import RETREAT
from skillstack.skills.program import Primitive
from skillstack.skills.training.actuation import PolicyActuator
from skillstack.skills.training.features import (
    OPEN_FRACTION,
    CallContext,
    PlaceContext,
    features,
    place_features,
)
from skillstack.skills.training.heads import ChunkPolicy
from skillstack.skills.training.images import CameraImages
from skillstack.skills.training.observation import observe_robot
from skillstack.skills.training.policy import ChunkExecutor
from skillstack.skills.training.pour_features import TILTED_CAP_S, PourContext, pour_features
from skillstack.skills.training.vision import color_rgb, vision_features

HORIZON_FACTOR = 1.5  # the policy may take this many times the longest demonstration
LIFT_FRACTION = 0.9  # grasp: done once the object rose this fraction of the requested lift …
SETTLED_SPEED = 0.02  # … and the hand moves slower than this (m/s), or rose the full lift
MISSED_WIDTH = 0.002  # m: closed fingers narrower than this hold nothing …
MISSED_AFTER_S = 0.5  # … for this long: the grasp missed
UPRIGHT_COS = 0.966  # pour: the cup's axis within 15° of vertical counts as upright again
POURED_COS = 0.0  # pour: ... after it tilted past level (its axis below horizontal)
RETREAT_FRACTION = 0.6  # place: done once the hand rose this fraction of `RETREAT` after letting go
HOLD_SLACK = 0.03  # m, how far beyond its seat the held object may be before it counts as lost
TOUCHDOWN_M = 0.002  # m the held object rose in the hand: it stands on something, let go


class PolicyPrimitive(Primitive):
    """Runs a policy: features → action chunk → one action per policy step → actuator.

    Subclasses compute the features (`features_now`), turn the predicted gripper value into
    a command (`gripper_command`) and end the call (`check_end`)."""

    label = "policy"

    def __init__(self, model: ChunkPolicy, obj_name: str, context: CallContext, force: float):
        self.model, self.config = model, model.config
        self.object, self.context, self.force = obj_name, context, force
        self.horizon_s = HORIZON_FACTOR * self.config.max_duration_s
        self.guards: tuple[Guard, ...] = (NoCollision(),)
        self.actuator: PolicyActuator | None = None
        self.failure: SkillFailure | None = None
        self._done = False

    def start(self, ctx: Context, state: RobotState) -> None:
        """Start the actuator and the chunk executor at the current state."""
        self.robot, self.ctx = ctx.robot, ctx
        self.actuator = PolicyActuator(ctx.robot, self.config.rate_hz, grip_force=self.force)
        self.actuator.reset(state)
        cfg = self.config
        self.executor = ChunkExecutor(
            cfg.chunk, cfg.execution, cfg.execute_steps, cfg.ensemble_decay
        )
        self.open_width = self.config.gripper_open_width
        self.command = self.initial_command(state)
        self.t0, self.ticks = state.time, 0
        self.last_ee = ctx.world.ee_pose().position.copy()
        self.failure, self._done = None, False

    def initial_command(self, state: RobotState) -> float:
        """The gripper command in force when the policy starts."""
        return self.open_width if state.gripper_width > OPEN_FRACTION * self.open_width else 0.0

    def step(self, state: RobotState) -> JointCommand:
        """Query the policy every ``ticks_per_action`` ticks; the actuator's joint target."""
        actuator = self.actuator
        assert actuator is not None, "start() creates the actuator before the first step"
        if self.ticks % actuator.ticks_per_action == 0:
            self._act(state, actuator)
        self.ticks += 1
        return actuator.step(state)

    def _act(self, state: RobotState, actuator: PolicyActuator) -> None:
        """One policy step: observe, predict a chunk when one is needed, act."""
        obs = {k: v[None] for k, v in observe_robot(self.robot, self.object).items()}
        x = self.features_now(obs)
        action = self.executor.action(lambda: self.predict(x))
        action[6] = self.gripper_command(float(action[6]))
        actuator.apply(action, state)
        self.command = float(action[6])
        ee = obs["robot0_eef_pos"][0]
        hand_speed = float(np.linalg.norm(ee - self.last_ee)) * self.config.rate_hz
        self.last_ee = ee.copy()
        self.check_end(state, obs, hand_speed)

    def features_now(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The policy input for observation ``obs`` (each key (1, dim))."""
        return features(obs, np.array([self.command]), self.context, self.open_width)[0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The policy's chunk (chunk, 7) for features ``x``."""
        return self.model.predict(x)

    def gripper_command(self, predicted: float) -> float:
        """The demonstrations only open fully or close: snap to the nearer of the two."""
        return self.open_width if predicted > OPEN_FRACTION * self.open_width else 0.0

    def check_end(self, state: RobotState, obs: dict[str, np.ndarray], hand_speed: float) -> None:
        """End the call (set ``done``, and ``failure`` if it failed) when it is over."""
        raise NotImplementedError

    def timed_out(self, elapsed: float, what: str) -> bool:
        """Fail with ``timeout`` past the horizon (the policy did not ``what``); True if so."""
        if elapsed <= self.horizon_s:
            return False
        self.end(Failure.TIMEOUT, f"the policy did not {what} within {self.horizon_s:.1f} s")
        return True

    def end(self, failure: Failure, message: str) -> None:
        """End the call with ``failure``."""
        self.failure, self._done = SkillFailure(failure, message), True

    @property
    def done(self) -> bool:
        """True once the call is over, successfully or not."""
        return self._done

    def finish(self, ctx: Context, state: RobotState) -> SkillFailure | None:
        """The failure that ended the policy, if any."""
        return self.failure


class GraspPolicy(PolicyPrimitive):
    """A learned grasp: done once the object is lifted, with the fingers on it."""

    def __init__(self, model: ChunkPolicy, obj, context: CallContext, lift: float, force: float):
        super().__init__(model, obj.name, context, force)
        self.lift, self.start_z = lift, float(obj.position[2])
        self.missed_since: float | None = None  # s into the policy when the grip came up empty

    def start(self, ctx: Context, state: RobotState) -> None:
        """As `PolicyPrimitive.start`; no missed grip yet."""
        super().start(ctx, state)
        self.missed_since = None

    rising = "it"  # what `risen` measures, for the timeout message

    def risen(self, obs: dict[str, np.ndarray], closed: bool) -> float:
        """How far the object rose since the call started (m)."""
        return float(obs["object"][0, 2]) - self.start_z

    def check_end(self, state: RobotState, obs: dict[str, np.ndarray], hand_speed: float) -> None:
        """Done once lifted; fail on closed-on-nothing or past the horizon."""
        elapsed = state.time - self.t0
        closed = self.command < OPEN_FRACTION * self.open_width
        rose = self.risen(obs, closed)
        empty = closed and state.gripper_width < MISSED_WIDTH
        if (
            closed
            and not empty
            and (
                rose >= self.lift
                or (rose >= LIFT_FRACTION * self.lift and hand_speed < SETTLED_SPEED)
            )
        ):
            self._done = True
        elif empty:
            self.missed_since = self.missed_since if self.missed_since is not None else elapsed
            if elapsed - self.missed_since >= MISSED_AFTER_S:
                self.end(Failure.GRASP_MISSED, "the fingers closed on nothing")
        else:
            self.timed_out(elapsed, f"lift {self.object} ({self.rising} rose {rose * 1e3:.0f} mm)")
        if not empty:
            self.missed_since = None


class _UntilReleased(Guard):
    """``guard`` while the policy still holds the object; nothing once it let go."""

    def __init__(self, policy: PlacePolicy, guard: Guard):
        self.policy, self.guard, self.period = policy, guard, guard.period

    def check(self, ctx: Context, state: RobotState) -> SkillFailure | None:
        """The wrapped guard's verdict, until the release."""
        return None if self.policy.released else self.guard.check(ctx, state)


class PlacePolicy(PolicyPrimitive):
    """A learned place: carries the held object, lets go of it, rises clear."""

    context: PlaceContext

    def __init__(self, model: ChunkPolicy, obj, ee_position, context: PlaceContext):
        super().__init__(model, obj.name, context, force=20.0)
        seat = float(np.linalg.norm(np.asarray(obj.position) - np.asarray(ee_position)))
        holding = Holding(obj.name, min_width=0.005, max_distance=seat + HOLD_SLACK)
        self.guards = (NoCollision({obj.name}), _UntilReleased(self, holding))
        self.released = False
        self.release_z = 0.0  # m, the hand's height when it let go

    def start(self, ctx: Context, state: RobotState) -> None:
        """As `PolicyPrimitive.start`, holding the object where it sits in the hand now."""
        super().start(ctx, state)
        self.released = False
        self.touchdown_every = period_ticks(SLIP_PERIOD, ctx.robot.capabilities.control_dt)
        self.seat_z = self._seat_z()

    def _seat_z(self) -> float | None:
        """The held object's height above the hand (None on a declared world)."""
        world = self.ctx.world
        if world.source == "declared":
            return None
        return float(world.object_pose(self.object).position[2] - world.ee_pose().position[2])

    def step(self, state: RobotState) -> JointCommand:
        """As `PolicyPrimitive.step`; lets go when the object is pushed up into the hand."""
        if not self.released and self.seat_z is not None and self.ticks % self.touchdown_every == 0:
            seat_z = self._seat_z()
            if seat_z is not None and seat_z - self.seat_z > TOUCHDOWN_M:
                self._let_go(float(self.ctx.world.ee_pose().position[2]))
                assert self.actuator is not None, "start() creates the actuator"
                self.actuator.grip(self.context.release_width)
                self.command = self.context.release_width
        return super().step(state)

    def _let_go(self, hand_z: float) -> None:
        self.released, self.release_z = True, hand_z

    def initial_command(self, state: RobotState) -> float:
        """The place starts with the object gripped."""
        return 0.0

    def features_now(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The place features (`skills.training.features.place_features`)."""
        return place_features(obs, np.array([self.command]), self.context)[0]

    def gripper_command(self, predicted: float) -> float:
        """Closed until the policy opens past half the release width; open after that."""
        width = self.context.release_width
        if not self.released and predicted > OPEN_FRACTION * width:
            self._let_go(float(self.last_ee[2]))
        return width if self.released else 0.0

    def check_end(self, state: RobotState, obs: dict[str, np.ndarray], hand_speed: float) -> None:
        """Done once the hand rose clear after letting go; fail past the horizon."""
        rose = float(obs["robot0_eef_pos"][0, 2]) - self.release_z
        if self.released and rose >= RETREAT_FRACTION * RETREAT:
            self._done = True
        else:
            self.timed_out(state.time - self.t0, f"put {self.object} down and rise clear")


class PourPolicy(PolicyPrimitive):
    """A learned pour: carries the held cup over the target, tilts it, brings it back."""

    context: PourContext  # type: ignore[assignment]  # a pour's own context

    def __init__(self, model: ChunkPolicy, cup, target: str, context: PourContext, initial: int):
        from skillstack.skills.library.pour import POUR_GRIP_FORCE

        super().__init__(model, cup.name, context, force=POUR_GRIP_FORCE)  # type: ignore[arg-type]
        self.target, self.initial = target, initial
        holding = Holding(cup.name, min_width=cup.size[0] - 0.015, max_distance=cup.height)
        self.guards = (NoCollision({cup.name}), holding)
        self.poured = False
        self.tipped_at: float | None = None  # s, sim time the cup first tipped past level

    def start(self, ctx: Context, state: RobotState) -> None:
        """As `PolicyPrimitive.start`; the cup has not been tilted yet."""
        super().start(ctx, state)
        self.poured, self.tipped_at = False, None
        self.now = state.time

    def initial_command(self, state: RobotState) -> float:
        """The cup is gripped (and squeezed harder by the first action)."""
        return 0.0

    def features_now(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The pour features, with how full the cup is now."""
        inside = self.ctx.world.observe().contents.get(self.object, 0)
        obs["object_fill"] = np.array([[inside / self.initial if self.initial else 0.0]])
        _, x, y, _ = (float(v) for v in obs["object"][0, 3:7])
        if self.tipped_at is None and 1.0 - 2.0 * (x * x + y * y) < 0.0:
            self.tipped_at = self.now
        since = 0.0 if self.tipped_at is None else self.now - self.tipped_at
        obs["tilted_for"] = np.array([[min(since, TILTED_CAP_S)]])
        return pour_features(obs, self.context)[0]

    def step(self, state: RobotState) -> JointCommand:
        """As `PolicyPrimitive.step`, keeping the clock of ``tilted_for``."""
        self.now = state.time
        return super().step(state)

    def gripper_command(self, predicted: float) -> float:
        """Always the closed, squeezing grip."""
        return 0.0

    def check_end(self, state: RobotState, obs: dict[str, np.ndarray], hand_speed: float) -> None:
        """Done once the cup, tilted past level, is upright again and the hand at rest."""
        _, x, y, _ = (float(v) for v in obs["object"][0, 3:7])
        axis_z = 1.0 - 2.0 * (x * x + y * y)  # the cup axis's vertical component
        self.poured = self.poured or axis_z < POURED_COS
        if self.poured and axis_z > UPRIGHT_COS and hand_speed < SETTLED_SPEED:
            self._done = True
        else:
            self.timed_out(state.time - self.t0, f"pour {self.object} into {self.target}")


class VisionGraspPolicy(GraspPolicy):
    """A grasp by an image policy: renders the cameras for each chunk; never reads the object.

    Done once the closed fingers hold something and the hand rose the lift from where they
    closed; ``grasp_missed`` as for `GraspPolicy`."""

    def __init__(self, model: ChunkPolicy, obj, context: CallContext, lift, force):
        super().__init__(model, obj, context, lift, force)
        self.color = color_rgb(obj.color)
        self.close_z: float | None = None
        self.cameras: CameraImages | None = None

    def start(self, ctx: Context, state: RobotState) -> None:
        """As `GraspPolicy.start`, and a renderer for the cameras of ``ctx.robot``."""
        super().start(ctx, state)
        self.close_z = None
        self.cameras = CameraImages(ctx.robot, size=self.config.image_size)

    def features_now(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The hand and the call (the object's pose in ``obs`` is not used)."""
        command = np.array([self.command])
        return vision_features(obs, command, self.context, self.color, self.open_width)[0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Render both cameras and run the policy on them and ``x``."""
        assert self.cameras is not None, "start() creates the renderer"
        return self.model.predict(x, self.cameras.render())  # type: ignore[call-arg]

    rising = "the hand"

    def risen(self, obs: dict[str, np.ndarray], closed: bool) -> float:
        """How far the hand rose since the fingers closed (m): the object is not read."""
        z = float(obs["robot0_eef_pos"][0, 2])
        if not closed:
            self.close_z = None
        elif self.close_z is None:
            self.close_z = z
        return z - self.close_z if self.close_z is not None else 0.0

    def finish(self, ctx: Context, state: RobotState) -> SkillFailure | None:
        """Free the renderer; the failure that ended the policy, if any."""
        if self.cameras is not None:
            self.cameras.close()
            self.cameras = None
        return super().finish(ctx, state)
