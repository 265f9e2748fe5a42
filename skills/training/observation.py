"""The low-dimensional observation of a robot and one target object, as the datasets store it.

One function, `observe_robot`, reads what `skills.training.dataset.OBS_KEYS` lists from a
connected simulated robot; demonstration collection (`skills.training.collect`) and the
gymnasium environments (`skills.training.envs`) both call it, so a policy trained on the
datasets sees the same numbers in the environments. `flatten_observation` concatenates the
keys in `OBS_KEYS` order into one vector (the ``"observation"`` entry of the environments).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from skillstack.skills.training.dataset import OBS_KEYS

OBS_DIM = sum(OBS_KEYS.values())  # length of the flattened observation


def observation_names() -> tuple[str, ...]:
    """The name of each entry of the flattened observation (``eef_pos[0]`` ...), in order."""
    return tuple(f"{key}[{i}]" for key, size in OBS_KEYS.items() for i in range(size))


def observe_robot(robot, target: str) -> dict[str, np.ndarray]:
    """The observation keys of `OBS_KEYS` now: joints, end-effector pose, gripper and the
    pose of ``target`` (all float64, 1-D, world frame, quaternions ``w x y z``)."""
    state = robot.read()
    ee, obj = robot.ee_pose(), robot.object_pose(target)
    return {
        "robot0_joint_pos": np.asarray(state.q, dtype=float).copy(),
        "robot0_joint_vel": np.asarray(state.dq, dtype=float).copy(),
        "robot0_eef_pos": np.asarray(ee.position, dtype=float).copy(),
        "robot0_eef_quat": np.asarray(ee.quat, dtype=float).copy(),
        "robot0_gripper_width": np.array([state.gripper_width], dtype=float),
        "object": np.concatenate([obj.position, obj.quat]).astype(float),
    }


def particles_in(robot, container: str) -> int:
    """How many particles are inside ``container`` now (the simulator's count)."""
    from skillstack.skills.world import observe

    return int(observe(robot).contents.get(container, 0))


def cup_fill(robot, cup: str, initial: int) -> np.ndarray:
    """``object_fill``: the fraction of the ``initial`` particles still in ``cup``."""
    return np.array([particles_in(robot, cup) / initial if initial else 0.0])


def flatten_observation(obs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Concatenate the keys of `OBS_KEYS`, in that order, into one vector of `OBS_DIM`."""
    missing = [k for k in OBS_KEYS if k not in obs]
    if missing:
        raise KeyError(f"observation lacks {', '.join(missing)}; keys: {', '.join(OBS_KEYS)}")
    return np.concatenate([np.asarray(obs[k], dtype=float).reshape(-1) for k in OBS_KEYS])
