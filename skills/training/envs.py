"""Gymnasium environments, one per skill: ``skillstack/Grasp-v0``, ``Place-v0``, ``Pour-v0``.

Importing this module registers them::

    import gymnasium
    import skillstack.skills.training.envs  # noqa: F401  (registers skillstack/*)

    env = gymnasium.make("skillstack/Grasp-v0")
    obs, info = env.reset(seed=3)       # the random episode 3 of `skillstack bench skills`
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

(``gymnasium.make("skills.training.envs:skillstack/Grasp-v0")`` imports it for you.)

An episode is the seeded random episode of `skills.episodes.episode_setup`, the same one
`skillstack bench skills` and `skillstack collect` run; set-up skills (the grasp before a
place or a pour) run unrecorded inside `reset`. Each `step` applies one action in the
dataset layout (`skills.training.dataset.ACTION_LAYOUT`: end-effector Δposition, Δrotation
vector, gripper width) at the policy rate through `PolicyActuator`, then runs the control
ticks until the next action. Observations are goal-conditioned (gymnasium-robotics GoalEnv
convention, usable with hindsight experience replay):

* ``observation``: the dataset observation (`skills.training.observation`) flattened;
* ``achieved_goal`` / ``desired_goal``: see `skills.training.goals`;

and ``compute_reward(achieved_goal, desired_goal, info)`` is vectorised. The reward is
sparse by default (1.0 when the skill's own ``verify`` would report success, else 0.0);
``reward_type="dense"`` adds minus the distance to the goal region. An episode terminates on
success or on an unrecoverable failure (collision, safety refusal, diverged simulation, a
dropped object), with the reason in ``info["failure"]`` and ``info["message"]``, and is
truncated after the skill's time-out (``time_limit_s``).
"""

from __future__ import annotations

import gymnasium
import numpy as np

from skillstack.skills.library.pour import POUR_GRIP_FORCE
from skillstack.skills.training import goals
from skillstack.skills.training.skill_env import SkillEnv

__all__ = ["SKILL_ENVS", "GraspEnv", "PlaceEnv", "PourEnv", "SkillEnv", "register_envs"]


class GraspEnv(SkillEnv):
    """``skillstack/Grasp-v0``: pick the target object up and lift it.

    Goal ``[x, y, z, held]`` of the object; desired: held, at least half the grasp's lift
    (10 cm) above where it stood (`skills.library.grasp.Grasp.verify`).
    """

    skill_name, env_id, target_param = "grasp", "skillstack/Grasp-v0", "object"
    goal_dim = goals.POSITION_GOAL_DIM

    def _set_goals(self, world) -> None:
        start = self._before.object(self.target).position
        self._region = goals.grasp_region(self._parsed.lift)
        self._desired = goals.position_goal(
            (start[0], start[1], start[2] + self._parsed.lift), held=True
        )
        self._achieved = goals.position_goal(
            world.object(self.target).position, world.held == self.target
        )


class PlaceEnv(SkillEnv):
    """``skillstack/Place-v0``: put the held object on a plate, into a bowl or on the table.

    The episode starts with the object grasped. Goal ``[x, y, z, held]`` of the object;
    desired: released, resting on / in the target (`skills.library.place.Place.verify`). The
    desired goal follows the target if it is pushed.
    """

    skill_name, env_id, target_param = "place", "skillstack/Place-v0", "object"
    goal_dim = goals.POSITION_GOAL_DIM

    def _set_goals(self, world) -> None:
        p = self._parsed
        target = None if p.target == "table" else world.object(p.target)
        self._desired, self._region = goals.place_goal(
            world.object(self.target), target, p.position
        )
        self._achieved = goals.position_goal(
            world.object(self.target).position, world.held == self.target
        )

    def _collision_guard(self):
        from skillstack.skills.guards import NoCollision

        return NoCollision({self.target})


class PourEnv(SkillEnv):
    """``skillstack/Pour-v0``: pour the held cup's particles into the bowl.

    The episode starts with the cup grasped by its rim. Goal ``[fraction, held]``: the
    fraction of the cup's particles that landed in the bowl, and whether the cup is still
    held; desired: at least `skills.library.pour.MIN_FRACTION`, still held
    (`skills.library.pour.Pour.verify`).
    """

    skill_name, env_id, target_param = "pour", "skillstack/Pour-v0", "source"
    goal_dim = goals.POUR_GOAL_DIM
    grip_force = POUR_GRIP_FORCE  # N, as the scripted pour: a full cup twists in the fingers
    _region = None

    def _set_goals(self, world) -> None:
        from skillstack.skills.library.pour import MIN_FRACTION

        bowl = self._parsed.target
        landed = world.contents.get(bowl, 0) - self._before.contents.get(bowl, 0)
        n = self._program.initial_contents
        self._desired = np.array([MIN_FRACTION, 1.0])
        self._achieved = np.array([landed / n if n else 0.0, float(world.held == self.target)])

    def _reached(self, achieved, desired, info) -> np.ndarray:
        return goals.fraction_reached(achieved, desired)

    def _distance(self, achieved, desired, info) -> np.ndarray:
        return goals.fraction_distance(achieved, desired)

    def _collision_guard(self):
        from skillstack.skills.guards import NoCollision

        return NoCollision({self.target})


SKILL_ENVS: dict[str, type[SkillEnv]] = {
    cls.skill_name: cls for cls in (GraspEnv, PlaceEnv, PourEnv)
}


def register_envs() -> None:
    """Register every skill environment with gymnasium (idempotent; runs on import)."""
    from skillstack.skills.registry import get_skill
    from skillstack.skills.training.skill_env import DEFAULT_RATE_HZ

    for cls in SKILL_ENVS.values():
        if cls.env_id not in gymnasium.registry:
            # The skill's own time-out at the default policy rate (the env truncates there too).
            steps = max(1, round(get_skill(cls.skill_name).timeout_s * DEFAULT_RATE_HZ))
            gymnasium.register(
                id=cls.env_id,
                entry_point=f"{__name__}:{cls.__name__}",
                max_episode_steps=steps,
            )


register_envs()
