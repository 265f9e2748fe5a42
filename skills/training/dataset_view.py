"""Looking at a demonstration dataset: a summary of what it holds (`summarize`) and an episode
rendered to mp4 (`replay`).

`replay` shows an episode from its stored camera images when the file has them, else replays
it kinematically in MuJoCo: the scene of the episode's seed (`skills.training.scenes`, the
scenes `skillstack collect` records on), and at every sample the recorded joint positions,
gripper width and target object pose, rendered by `hw.sim.mujoco.render.MujocoVideoRecorder`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Literal

import numpy as np

from skillstack.skills.training.dataset import (
    JOINT_DIM,
    OBS_KEYS,
    OPTIONAL_OBS_KEYS,
    DatasetError,
)
from skillstack.skills.training.dataset_reader import DatasetReader
from skillstack.skills.training.images import IMAGE_KEYS

Source = Literal["auto", "images", "sim"]
SOURCES: tuple[str, ...] = ("auto", "images", "sim")
MIN_REPLAY_SIDE = 256  # stored images are small (84²): replays repeat pixels up to this side


def summarize(reader: DatasetReader) -> dict[str, Any]:
    """What ``reader``'s dataset holds, as one JSON-ready dict.

    Keys: path, skill, episodes, successful, failed, samples, steps (min, mean, max per
    episode), fps (sample rate), control_rate_hz, duration_s, keys (per stored array its
    per-sample shape), images (camera key -> [H, W, 3]), targets (target object kinds and
    counts), params (each call parameter's values and counts), seeds (first, last),
    skillstack_version, format_version, and ``demos``: per episode its name, success, steps,
    seed, params and target.
    """
    episodes = reader.episodes(successful_only=False)
    steps = [e.num_samples for e in episodes]
    env = reader.env_args
    keys: dict[str, list[int]] = {f"obs/{k}": [d] for k, d in OBS_KEYS.items()}
    if episodes:  # skill-specific observations (a pour's object_fill)
        keys |= {f"obs/{k}": [d] for k, d in OPTIONAL_OBS_KEYS.items() if k in episodes[0].obs}
    keys |= {"actions": [len(env.get("action_layout", [])) or 7], "joint_targets": [JOINT_DIM]}
    keys |= {"rewards": [], "dones": []}
    cams = env.get("cameras") or {}
    images = {}
    for key in reader.image_keys:
        if key in cams:
            images[key] = [int(cams[key]["height"]), int(cams[key]["width"]), 3]
        else:
            images[key] = list(reader.images(reader.names[0], [key])[key].shape[1:])
    keys |= {f"obs/{k}": v for k, v in images.items()}
    params: dict[str, Counter] = {}
    for e in episodes:
        for k, v in e.params.items():
            params.setdefault(k, Counter())[_label(v)] += 1
    targets = Counter(str(e.context.get("kind", "?")) for e in episodes)
    rate = reader.rate_hz
    return {
        "path": str(reader.path),
        "skill": reader.skill,
        "episodes": len(episodes),
        "successful": sum(e.success for e in episodes),
        "failed": sum(not e.success for e in episodes),
        "samples": sum(steps),
        "steps": {"min": min(steps), "mean": round(float(np.mean(steps)), 1), "max": max(steps)},
        "fps": rate,
        "control_rate_hz": float(env.get("env_kwargs", {}).get("control_rate_hz", 0.0)),
        "duration_s": round(sum(steps) / rate, 2),
        "keys": keys,
        "images": images,
        "targets": dict(targets.most_common()),
        "params": {k: dict(c.most_common()) for k, c in params.items()},
        "seeds": [episodes[0].seed, episodes[-1].seed],
        "skillstack_version": env.get("skillstack_version", "unknown"),
        "format_version": env.get("format_version"),
        "demos": [
            {
                "name": name,
                "success": e.success,
                "steps": e.num_samples,
                "seed": e.seed,
                "params": e.params,
                "target": e.context.get("kind"),
            }
            for name, e in zip(reader.names, episodes)
        ],
    }


def _label(value: Any) -> str:
    return str(value) if not isinstance(value, list | tuple) else "list"


def replay(
    reader: DatasetReader,
    index: int,
    out: str | Path,
    source: Source = "auto",
    camera: str | None = None,
) -> Path:
    """Render episode ``index`` (0-based, over all demos) of ``reader`` to the mp4 ``out``.

    Args:
        reader: the dataset.
        index: which episode (``demo_<index>`` in file order).
        out: the mp4 to write; its folder is created.
        source: ``images``: the stored camera images; ``sim``: a kinematic MuJoCo replay;
            ``auto``: images where the file has them, else sim.
        camera: with images, the image key or its camera (``scene``, ``wrist``; default: the
            first); with sim, a camera of the model (default: the free view of the videos).

    Returns:
        The path written.

    Raises:
        IndexError: ``index`` is out of range.
        ValueError: an unknown source or camera, or images asked of a file without them.
        hw.sim.mujoco.render.RenderUnavailable: sim replay where offscreen rendering fails.
    """
    if not 0 <= index < len(reader):
        raise IndexError(f"episode {index} is out of range: the dataset has {len(reader)}")
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; sources: {', '.join(SOURCES)}")
    name = reader.names[index]
    episode = reader.episodes(successful_only=False)[index]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if source == "images" or (source == "auto" and reader.image_keys):
        return _replay_images(reader, name, out, camera)
    return _replay_sim(reader, episode, out, camera)


def _image_key(reader: DatasetReader, camera: str | None) -> str:
    if not reader.image_keys:
        raise ValueError(f"{reader.path} has no images (record with collect --images)")
    if camera is None:
        return reader.image_keys[0]
    for key in reader.image_keys:
        if camera in (key, IMAGE_KEYS.get(key)):
            return key
    names = ", ".join(f"{IMAGE_KEYS.get(k, k)} ({k})" for k in reader.image_keys)
    raise ValueError(f"no images of camera {camera!r}; cameras: {names}")


def _replay_images(reader: DatasetReader, name: str, out: Path, camera: str | None) -> Path:
    from skillstack.hw.sim.video import open_mp4_writer

    key = _image_key(reader, camera)
    frames = reader.images(name, [key])[key]
    scale = max(1, -(-MIN_REPLAY_SIDE // max(frames.shape[1:3])))
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        frames = frames.repeat(2, axis=1).repeat(2, axis=2)
    writer = open_mp4_writer(out, reader.rate_hz)
    try:
        for frame in frames:
            writer.append_data(np.ascontiguousarray(frame))
    finally:
        writer.close()
    return out


def _replay_sim(reader: DatasetReader, episode, out: Path, camera: str | None) -> Path:
    import mujoco

    from skillstack.hw.sim.mujoco.render import MujocoVideoRecorder
    from skillstack.hw.sim.mujoco.robot import MujocoRobot
    from skillstack.skills.training.scenes import scene_set_episode

    scenes = str(reader.env_args.get("scenes", "bench"))
    try:
        scene, _, params = scene_set_episode(reader.skill, episode.seed, scenes)
    except (ValueError, RuntimeError) as exc:
        raise DatasetError(f"cannot rebuild the scene of seed {episode.seed}: {exc}") from exc
    # the object the demo observes: a grasp's or place's object, a pour's cup
    target = str(
        episode.params.get("object")
        or episode.params.get("source")
        or params.get("object")
        or params.get("source")
        or ""
    )
    with MujocoRobot(scene) as robot:
        m, d, arm = robot.model, robot.data, robot.arm
        assert m is not None and d is not None  # connected by the with block
        dof = robot.capabilities.dof
        fingers = [m.joint(j).qposadr[0] for j in arm.finger_joints]
        body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, target) if target else -1
        free = None
        if body >= 0 and m.body_jntnum[body] > 0:
            joint = m.body_jntadr[body]
            if m.jnt_type[joint] == mujoco.mjtJoint.mjJNT_FREE:
                free = m.jnt_qposadr[joint]
        recorder = MujocoVideoRecorder(out, m, d, fps=reader.rate_hz, camera=camera)
        try:
            obs = episode.obs
            for t in range(episode.num_samples):
                d.qpos[:dof] = obs["robot0_joint_pos"][t]
                half = float(obs["robot0_gripper_width"][t][0]) / 2
                for adr in fingers:
                    d.qpos[adr] = arm.finger_joint_position(half)
                if free is not None:
                    d.qpos[free : free + 7] = obs["object"][t]
                mujoco.mj_forward(m, d)
                recorder.capture_frame()
        finally:
            recorder.close()
    return out
