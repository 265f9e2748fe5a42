# Over 400 lines: the env's episode, step, reward, spaces and pickling belong together.
"""`SkillEnv`: the machinery shared by the skill environments of `skills.training.envs`.

A `SkillEnv` builds the seeded random episode of its skill (`skills.episodes.episode_setup`),
runs the set-up skills unrecorded (restoring a cached `skills.training.snapshot` when the
same episode was set up before in this process), applies policy actions through
`PolicyActuator`, watches for collisions, safety refusals, divergence and dropped objects,
and asks the skill's own ``verify`` for success. Subclasses say what the goal vectors are.

Gymnasium conventions: float32 spaces; actions normalised to [-1, 1] per dimension (the
scale to dataset units is `SkillEnv.action_low` / `action_high`, and `action_to_dataset` /
`action_from_dataset` convert); the flattened observation's layout is
`SkillEnv.observation_names`; ``max_episode_steps`` is in each registered spec.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import gymnasium
import numpy as np
from gymnasium import spaces

from skillstack.hw.sim.mujoco.render import RenderUnavailable
from skillstack.hw.sim.video import DEFAULT_HEIGHT_PX, DEFAULT_WIDTH_PX
from skillstack.skills.guards import period_ticks
from skillstack.skills.training import goals
from skillstack.skills.training.actuation import (
    DEFAULT_GRIP_FORCE,
    MAX_STEP_M,
    MAX_STEP_RAD,
    PolicyActuator,
)
from skillstack.skills.training.collect import SETUP_TRIES  # seeds tried until a set-up succeeds
from skillstack.skills.training.observation import (
    OBS_DIM,
    flatten_observation,
    observation_names,
    observe_robot,
)
from skillstack.skills.training.snapshot import restore, snapshot

if TYPE_CHECKING:
    import mujoco

    from skillstack.hw.sim.mujoco.robot import MujocoRobot
    from skillstack.skills.context import Context

DEFAULT_RATE_HZ = 20.0  # policy steps per simulated second (the rate of the datasets)
REST_SPEED = 0.02  # m/s: a released object slower than this is at rest
REST_STEPS = 3  # policy steps at rest, out of the hand, before it counts as dropped
FELL_BELOW_Z = -0.05  # m: an object this far below the table top fell off it
SETUP_CACHE_SIZE = 32  # set-ups (per process) kept to restore instead of re-simulating
GUARD_TICKS = 20  # ticks at 1 kHz between collision checks (`skills.guards.GUARD_PERIOD`)


class SkillEnv(gymnasium.Env):
    """One skill as a goal-conditioned gymnasium environment (see the module docstring).

    Args:
        render_mode: None or ``"rgb_array"`` (offscreen MuJoCo; `RenderUnavailable` with
            the reason when this machine cannot render).
        rate_hz: policy steps per simulated second; must divide the control rate.
        control_rate_hz: control ticks per simulated second (None: the arm's 1 kHz). A lower
            rate (e.g. 100) runs several 1 ms physics steps per control tick, as robosuite's
            and real drivers' control rates do: faster to simulate, the same physics, coarser
            control (see the README's "Control rate").
        time_limit_s: simulated seconds before truncation (default: the skill's time-out).
        reward_type: ``"sparse"`` (1 on success) or ``"dense"`` (success minus distance).
        episodes: draw every episode from these seeds (a fixed training or evaluation
            set) instead of from all seeds; ``reset(seed=s)`` then seeds the draw.
        width, height: rendered frame size in pixels.
    """

    skill_name: ClassVar[str]
    env_id: ClassVar[str]
    target_param: ClassVar[str]  # the parameter naming the object the observation tracks
    goal_dim: ClassVar[int]
    grip_force: ClassVar[float] = DEFAULT_GRIP_FORCE  # N, what the scripted skill squeezes with
    # An instance attribute in gymnasium.Env (not a ClassVar); __init__ gives each env a copy.
    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": DEFAULT_RATE_HZ}  # noqa: RUF012
    _achieved: np.ndarray  # these three are set by each subclass's `_set_goals`
    _desired: np.ndarray
    _region: np.ndarray | None  # None for goals without a region

    def __init__(
        self,
        render_mode: Literal["rgb_array", "human"] | None = None,
        rate_hz: float = DEFAULT_RATE_HZ,
        time_limit_s: float | None = None,
        reward_type: Literal["sparse", "dense"] = "sparse",
        episodes: Sequence[int] | None = None,
        width: int = DEFAULT_WIDTH_PX,
        height: int = DEFAULT_HEIGHT_PX,
        control_rate_hz: float | None = None,
    ):
        from skillstack.robot.arms import get_arm
        from skillstack.skills.registry import get_skill

        self._init_kwargs = dict(
            render_mode=render_mode,
            rate_hz=rate_hz,
            time_limit_s=time_limit_s,
            reward_type=reward_type,
            episodes=episodes,
            width=width,
            height=height,
            control_rate_hz=control_rate_hz,
        )
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(
                f"render_mode must be None, 'rgb_array' or 'human', not {str(render_mode)[:40]!r}"
            )
        if reward_type not in ("sparse", "dense"):
            raise ValueError(f"reward_type must be 'sparse' or 'dense', not {reward_type!r}")
        control_hz = float(control_rate_hz or get_arm("panda").capabilities.control_rate_hz)
        if control_rate_hz is not None:
            from skillstack.hw.sim.timing import check_control_rate

            check_control_rate(control_rate_hz)
        ticks = control_hz / rate_hz if math.isfinite(rate_hz) and rate_hz > 0 else 0.5
        if ticks < 1 or abs(ticks - round(ticks)) > 1e-9:
            raise ValueError(
                f"rate_hz must divide the {control_hz:g} Hz control rate (e.g. 10, 20, 50), "
                f"not {rate_hz}"
            )
        self.control_rate_hz = control_rate_hz
        if render_mode == "human":
            from skillstack.hw.sim.mujoco.viewer import ViewerUnavailable, display_available

            if not display_available():
                raise ViewerUnavailable(
                    "render_mode='human' opens MuJoCo's viewer and needs a display "
                    "(DISPLAY/WAYLAND_DISPLAY; headless: xvfb-run); 'rgb_array' needs none"
                )
        elif render_mode is not None:
            from skillstack.hw.sim.mujoco.render import rendering_available

            ok, reason = rendering_available()
            if not ok:
                raise RenderUnavailable(reason)
        if episodes is not None and len(episodes) == 0:
            raise ValueError("episodes must name at least one episode seed (or be None)")
        self.episodes = None if episodes is None else tuple(int(e) for e in episodes)
        self.skill = get_skill(self.skill_name)
        self.render_mode = render_mode
        self.reward_type = reward_type
        self.rate_hz = float(rate_hz)
        self.time_limit_s = float(time_limit_s or self.skill.timeout_s)
        self.max_steps = max(1, round(self.time_limit_s * self.rate_hz))
        self.width, self.height = int(width), int(height)
        self.metadata = {**self.metadata, "render_fps": self.rate_hz}
        self.robot: MujocoRobot | None = None
        self.actuator: PolicyActuator | None = None
        self._renderer: mujoco.Renderer | None = None
        self._viewer: Any = None  # a LiveViewer in render_mode "human"
        self._ctx: Context | None = None
        self._stale = False  # the simulation diverged: reset() before stepping again
        goal = spaces.Box(-np.inf, np.inf, (self.goal_dim,), np.float32)
        self.observation_space = spaces.Dict(
            {
                "observation": spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32),
                "achieved_goal": goal,
                "desired_goal": goal,
            }
        )
        gripper = get_arm("panda").capabilities.gripper
        assert gripper is not None, "the Panda has its Hand"
        step = [MAX_STEP_M] * 3 + [MAX_STEP_RAD] * 3
        # Dataset units of the action at -1 and +1 (`skills.training.dataset.ACTION_LAYOUT`).
        self.action_low = np.array([-s for s in step] + [0.0])
        self.action_high = np.array([*step, gripper.max_width])
        self.action_space = spaces.Box(-1.0, 1.0, (len(self.action_low),), np.float32)

    # -- the episode ---------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Build the random episode of ``seed`` (or one drawn from the env's generator).

        The set-up skills run first, unrecorded (or a cached set-up of the same episode is
        restored); if they fail (rare), the next seeds are tried, as `skillstack collect`
        does; ``info["episode_seed"]`` is the one used. With ``episodes`` the episode is
        drawn from that list instead.
        """
        super().reset(seed=seed)
        from skillstack.skills.context import Context
        from skillstack.skills.world import observe

        self._close_sim()
        if self.episodes is not None:
            base = int(self.episodes[int(self.np_random.integers(len(self.episodes)))])
        else:
            base = seed if seed is not None else int(self.np_random.integers(2**31 - 1))
        self.robot, params, self.episode_seed = self._set_up(base)
        before = observe(self.robot)
        self.params, parsed = params, self.skill.parse(params)
        self._parsed = parsed
        self.target = params[self.target_param]
        self._before = before
        self._program = SimpleNamespace(
            template=self.skill.template_for(before, parsed)
            if hasattr(self.skill, "template_for")
            else self.skill.templates[0],
            initial_contents=before.contents.get(self.target, 0),
        )
        self._ctx = Context.for_robot(self.robot)
        self._collision = self._collision_guard()
        self.actuator = PolicyActuator(self.robot, self.rate_hz, self.grip_force)
        self.actuator.reset(self.robot.read())
        self._steps, self._rest_steps, self._stale = 0, 0, False
        self._was_held = before.held == self.target
        self._last_position = np.asarray(self.robot.object_pose(self.target).position)
        self._refusals = self._refusal_count()
        self._set_goals(before)
        self._last_obs = self._observation()
        if self.render_mode == "human":
            self.render()
        return self._last_obs, self._info(False, None, "")

    def step(self, action):
        """Apply one action for ``1 / rate_hz`` s; see the module docstring for the rest."""
        if self.robot is None:
            raise RuntimeError(f"{self.env_id}: call reset() before step()")
        if self._stale:
            raise RuntimeError(f"{self.env_id}: the simulation diverged; call reset()")
        from skillstack.hw.sim.divergence import SimulationDiverged
        from skillstack.skills.base import Failure
        from skillstack.skills.world import observe

        robot, actuator = self.robot, self.actuator
        # ActionError (shape, NaN) before anything moves.
        actuator.apply(self.action_to_dataset(action), robot.read())
        failure = None
        guard_ticks = period_ticks(GUARD_TICKS, robot.capabilities.control_dt)
        try:
            for tick in range(1, actuator.ticks_per_action + 1):
                state = robot.read()
                robot.command(actuator.step(state))
                robot.wait_for_tick()
                if tick % guard_ticks == 0 or tick == actuator.ticks_per_action:
                    if (hit := self._collision.check(self._ctx, robot.read())) is not None:
                        failure = (hit.failure, hit.message)
                        break
        except SimulationDiverged as exc:
            self._stale = True
            return self._last_obs, 0.0, True, False, self._info(False, Failure.SIM_DIVERGED, exc)
        self._steps += 1
        if (refusals := self._refusal_count()) > self._refusals:
            event = robot.safety.events[-1].message if robot.safety.events else ""
            failure = (Failure.SAFETY_STOP, f"the safety filter refused a command ({event})")
            self._refusals = refusals
        world = observe(robot)
        outcome = self.skill.verify(self._before, world, self._parsed, self._program)
        self._set_goals(world)
        if failure is None and not outcome.success:
            failure = self._dropped(world, outcome)
        obs = self._last_obs = self._observation()
        info = self._info(outcome.success, *(failure or (None, "")))
        info["metrics"] = dict(outcome.metrics)
        reward = float(self.compute_reward(self._achieved, self._desired, info))
        terminated = outcome.success or failure is not None
        truncated = not terminated and self._steps >= self.max_steps
        if self.render_mode == "human":
            self.render()
        return obs, reward, terminated, truncated, info

    def action_to_dataset(self, action) -> np.ndarray:
        """A normalised action (each dimension in [-1, 1], clipped) in dataset units; an
        action of the wrong shape is passed on for the actuator to refuse."""
        a = np.asarray(action, dtype=float)
        if a.shape != self.action_low.shape:
            return a
        span = self.action_high - self.action_low
        return self.action_low + (np.clip(a, -1.0, 1.0) + 1.0) * 0.5 * span

    def action_from_dataset(self, action) -> np.ndarray:
        """A dataset action (``ACTION_LAYOUT`` units) as the env's normalised float32 action."""
        a = np.asarray(action, dtype=float)
        span = self.action_high - self.action_low
        return (2.0 * (a - self.action_low) / span - 1.0).astype(np.float32)

    @property
    def observation_names(self) -> tuple[str, ...]:
        """What each entry of ``obs["observation"]`` is, e.g. ``eef_pos[2]``."""
        return observation_names()

    def compute_reward(self, achieved_goal, desired_goal, info) -> Any:
        """The reward of reaching ``achieved_goal`` when ``desired_goal`` was asked, for one
        goal or a batch (leading dimensions); ``info`` is one dict, a sequence of dicts (one
        per goal, as hindsight replay buffers pass them), or None for this episode's."""
        reached = self._reached(achieved_goal, desired_goal, info)
        reward = reached.astype(float)
        if self.reward_type == "dense":
            reward = reward - self._distance(achieved_goal, desired_goal, info)
        return reward if np.ndim(reward) else float(reward)

    def render(self) -> np.ndarray | None:
        """The current scene as an ``(height, width, 3)`` uint8 image (``rgb_array`` mode), or
        drawn in MuJoCo's viewer at the policy rate, paced to the wall clock (``human``)."""
        if self.render_mode is None:
            return None
        if self.robot is None:
            raise RuntimeError(f"{self.env_id}: call reset() before render()")
        if self.render_mode == "human":
            from skillstack.hw.sim.mujoco.viewer import LiveViewer

            if self._viewer is None:  # each episode is a new simulation: a new window
                self._viewer = LiveViewer(self.robot.model, self.robot.data, fps=self.rate_hz)
            self._viewer.maybe_capture(self.robot.read().time)
            return None
        import mujoco

        from skillstack.hw.sim import video

        renderer = self._renderer
        if renderer is None:
            model = self.robot.model
            assert model is not None, "reset() connects the robot"
            vis = model.vis.global_
            vis.offwidth, vis.offheight = (
                max(vis.offwidth, self.width),
                max(vis.offheight, self.height),
            )
            renderer = self._renderer = mujoco.Renderer(model, self.height, self.width)
            self._camera = mujoco.MjvCamera()
            self._camera.type = mujoco.mjtCamera.mjCAMERA_FREE
            self._camera.lookat[:] = video.DEFAULT_LOOKAT_M
            self._camera.distance = video.DEFAULT_DISTANCE_M
            self._camera.azimuth = video.DEFAULT_AZIMUTH_DEG
            self._camera.elevation = video.DEFAULT_ELEVATION_DEG
        renderer.update_scene(self.robot.data, camera=self._camera)
        return renderer.render().copy()

    def close(self) -> None:
        """Free the simulation and the renderer; safe to call twice."""
        self._close_sim()

    # -- pickling: an environment travels as its constructor arguments ---------------------------
    def __getstate__(self) -> dict:
        return {"init_kwargs": self._init_kwargs}

    def __setstate__(self, state: dict) -> None:
        type(self).__init__(self, **state["init_kwargs"])

    # -- per-skill parts ----------------------------------------------------------------------
    def _set_goals(self, world) -> None:
        """Set ``self._achieved``, ``self._desired`` (and the goal region) from ``world``."""
        raise NotImplementedError

    def _reached(self, achieved, desired, info) -> np.ndarray:
        return goals.region_reached(achieved, desired, self._regions(info, achieved))

    def _distance(self, achieved, desired, info) -> np.ndarray:
        return goals.region_distance(achieved, desired, self._regions(info, achieved))

    def _collision_guard(self):
        from skillstack.skills.guards import NoCollision

        return NoCollision(set())

    # -- helpers ---------------------------------------------------------------------------------
    def _set_up(self, base: int):
        """A connected robot after the set-up of episode ``base`` (or the next seeds, if its
        set-up fails), its parameters and the seed used; from `_SETUPS` when cached."""
        from skillstack.hw.sim.mujoco.robot import MujocoRobot
        from skillstack.skills.episodes import episode_setup
        from skillstack.skills.executor import execute
        from skillstack.skills.registry import get_skill
        from skillstack.skills.world import observe

        key = (self.skill_name, base, self.control_rate_hz)
        if key in _SETUPS:
            _SETUPS.move_to_end(key)
            snap, params, used = _SETUPS[key]
            return restore(snap), params, used
        for episode_seed in range(base, base + SETUP_TRIES):
            scene, setup, params = episode_setup(self.skill_name, episode_seed)
            robot = MujocoRobot(scene, control_rate_hz=self.control_rate_hz)
            robot.connect()
            if all(execute(get_skill(n), p, robot).success for n, p in setup) and (
                self.skill.check(observe(robot), self.skill.parse(params)) is None
            ):
                if setup:  # worth caching: a scripted skill ran
                    _SETUPS[key] = (snapshot(robot), params, episode_seed)
                    while len(_SETUPS) > SETUP_CACHE_SIZE:
                        _SETUPS.popitem(last=False)
                return robot, params, episode_seed
            robot.disconnect()
        raise RuntimeError(
            f"{self.skill_name}: no episode could be set up on seeds {base}..{episode_seed}"
        )

    def _regions(self, info, achieved) -> np.ndarray:
        if isinstance(info, dict) or info is None:
            region = (info or {}).get("goal_region", self._region)
            assert region is not None, "skills with a goal region set it in _set_goals"
            return np.broadcast_to(region, (*np.shape(achieved)[:-1], 3))
        return np.stack([i.get("goal_region", self._region) for i in np.ravel(info)]).reshape(
            (*np.shape(achieved)[:-1], 3)
        )

    def _observation(self) -> dict[str, np.ndarray]:
        flat = flatten_observation(observe_robot(self.robot, self.target))
        return {
            "observation": flat.astype(np.float32),
            "achieved_goal": self._achieved.astype(np.float32),
            "desired_goal": self._desired.astype(np.float32),
        }

    def _info(self, success: bool, failure, message) -> dict:
        assert self.robot is not None, "reset() connects the robot"
        info = {
            "is_success": bool(success),
            "failure": failure.value if failure is not None else None,
            "message": str(message),
            "skill": self.skill_name,
            "params": dict(self.params),
            "episode_seed": self.episode_seed,
            "sim_time": float(self.robot.read().time),
        }
        if (region := getattr(self, "_region", None)) is not None:
            info["goal_region"] = region.copy()
        return info

    def _dropped(self, world, outcome):
        """A failure if the object left the hand and has come to rest (or fell off the table)."""
        from skillstack.skills.base import Failure

        position = np.asarray(world.object(self.target).position)
        speed = np.linalg.norm(position - self._last_position) * self.rate_hz
        self._last_position = position
        held = world.held == self.target
        self._was_held |= held
        if position[2] < FELL_BELOW_Z:
            return Failure.OBJECT_SLIPPED, f"{self.target} fell off the table"
        if held or not self._was_held or speed > REST_SPEED:
            self._rest_steps = 0
            return None
        self._rest_steps += 1
        if self._rest_steps < REST_STEPS:
            return None
        message = outcome.message or f"{self.target} left the gripper"
        return outcome.failure or Failure.OBJECT_SLIPPED, f"dropped: {message}"

    def _refusal_count(self) -> int:
        from skillstack.skills.executor import REFUSAL_CODES

        assert self.robot is not None, "reset() connects the robot"
        return sum(self.robot.safety.counts.get(c, 0) for c in REFUSAL_CODES)

    def _close_sim(self) -> None:
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        if self.robot is not None:
            self.robot.disconnect()
            self.robot = None


_SETUPS: OrderedDict = OrderedDict()  # (skill, seed, rate) -> (Snapshot, params, seed used)


def clear_setup_cache() -> None:
    """Forget the cached set-ups of this process (the next resets simulate them again)."""
    _SETUPS.clear()
