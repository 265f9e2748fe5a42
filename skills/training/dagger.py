"""DAgger: the scripted expert labels the states a learned policy really reaches.

    skillstack dagger grasp --policy out/bc/grasp.pt --data out/bc --rollouts 100 --out out/dagger

Behaviour cloning only ever sees the expert's own states; a policy that drifts off them
meets states nobody showed it what to do in. DAgger (Ross, Gordon & Bagnell, 2011) asks the
expert there. One round:

1. **Roll the policy out** on ``rollouts`` scenes drawn like the demonstrations' (the same
   scene set, random-start and after-place fractions; seeds of their own, disjoint from
   collection and evaluation seeds), after the same unrecorded set-up, so the policy
   starts where the arm really is after the skills before it.
2. **Mark states.** Every ``every_s`` seconds of each rollout the whole simulation is
   saved (`skills.training.snapshot`), whether the rollout later succeeds or not.
3. **Label them.** From each saved state the scripted skill runs to the end, recorded as
   a demonstration is (`skills.training.collect`). The scripted skill replans from
   wherever the hand is, so its recording is the expert's answer to that state, and to
   every state after it. Continuations the expert fails are kept, marked failed, and not
   trained on.
4. **Aggregate and retrain.** The demonstrations and the new labels go into one dataset
   ``<out>/<skill>.hdf5`` (round ``k``: ``round<k>/``), and a policy with the same head,
   sizes, chunk and epochs as the one rolled out is trained on it. The next round rolls
   that one out.

Measure the result against plain BC with ``skillstack eval`` on the same held-out seeds.
For an image policy (`skills.training.vision`) the labels are recorded with the cameras'
images, the aggregated dataset keeps the demonstrations' images, and the retrained policy
is an image policy again. DAgger matters most there: the corrective augmentation of the
state policies cannot be used on images.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from skillstack.skills.training.collect import (
    COLLECTABLE_SKILLS,
    SEED_STRIDE,
    SETUP_TRIES,
    _call_context,
    _Recorder,
    demonstration_setup,
)
from skillstack.skills.training.dataset import DatasetError, Episode, write_dataset
from skillstack.skills.training.observation import particles_in

SEED_OFFSET = 500_000  # rollout seeds: (SEED_OFFSET + seed + round) × SEED_STRIDE + …, below
# the evaluation seeds (10¹² and up) and above any collection seed of a seed below 500 000
MAX_MARKS = 20  # labelled states per rollout at most

_LEARNED = None  # the learned skill of this worker process


@dataclass
class DaggerRound:
    """What one round produced."""

    policy: str  # the checkpoint rolled out
    rollouts: int
    rollout_success_rate: float  # the policy's own success on the rollout scenes
    labelled_states: int  # expert continuations run
    added: int  # successful ones, added to the dataset
    dataset: Path
    checkpoint: Path
    train_seconds: float


@dataclass
class DaggerReport:
    """Every round, and the wall time of the whole run."""

    rounds: list[DaggerRound] = field(default_factory=list)
    seconds: float = 0.0


def rollout_seeds(rollouts: int, seed: int, round_index: int) -> list[int]:
    """The scene seeds of one round's rollouts."""
    base = (SEED_OFFSET + seed + 1000 * round_index) * SEED_STRIDE
    return [base + i * SETUP_TRIES for i in range(rollouts)]


def _init_worker(policy: str, skill: str) -> None:
    import torch

    from skillstack.skills.training.learned import learned_skill

    global _LEARNED
    torch.set_num_threads(1)
    _LEARNED = learned_skill(policy, skill)


def _rollout(
    skill: str,
    seed: int,
    rate_hz: float,
    random_starts: float,
    scenes: str,
    after_place: float,
    every_s: float,
    image_size: int = 0,
) -> tuple[bool | None, list[Episode]]:
    """Roll the worker's policy out on the scene of ``seed`` and label the marked states:
    (its success, None if the set-up failed; the expert's recorded continuations)."""
    from skillstack.hw.sim.mujoco.robot import MujocoRobot
    from skillstack.skills.executor import execute
    from skillstack.skills.registry import get_skill
    from skillstack.skills.training.snapshot import snapshot

    scene, setup, params, target = demonstration_setup(
        skill, seed, random_starts, scenes, after_place
    )
    marks: list[tuple] = []
    with MujocoRobot(scene) as robot:
        for name, p in setup:
            if not execute(get_skill(name), p, robot).success:
                return None, []
        context = _call_context(skill, scene, robot, params, target)
        fill_of = particles_in(robot, target) if skill == "pour" else None
        tracker = _Recorder(robot, target, rate_hz)  # tracks the gripper command in force
        t0 = robot.read().time

        def mark(state, sent) -> None:
            due = t0 + (len(marks) + 1) * every_s - 1e-9
            if len(marks) < MAX_MARKS and state.time >= due:
                marks.append((snapshot(robot), tracker.gripper_command))

        assert _LEARNED is not None, "the worker set-up loads the policy"
        result = execute(_LEARNED, params, robot, on_tick=mark)
    labelled = [
        _label(skill, snap, command, seed, params, target, context, fill_of, rate_hz, image_size)
        for snap, command in marks
    ]
    return result.success, labelled


def _label(
    skill, snap, command, seed, params, target, context, fill_of, rate_hz, image_size
) -> Episode:
    """The scripted skill from a saved state, recorded as a demonstration (with the
    cameras' images when ``image_size``)."""
    from skillstack.skills.executor import execute
    from skillstack.skills.training.images import CameraImages
    from skillstack.skills.training.learned import scripted_skill
    from skillstack.skills.training.snapshot import restore

    robot = restore(snap)
    cameras = CameraImages(robot, image_size) if image_size else None
    try:
        recorder = _Recorder(robot, target, rate_hz, cameras)
        recorder.gripper_command = command
        recorder.fill_of = fill_of
        result = execute(scripted_skill(skill), params, robot, on_tick=recorder.on_tick)
        return recorder.episode(result.success, seed, params, context)
    finally:
        if cameras is not None:
            cameras.close()
        robot.disconnect()


def dagger(
    policy: str | Path,
    data: str | Path,
    out_dir: str | Path,
    rollouts: int = 100,
    rounds: int = 1,
    every_s: float = 1.0,
    seed: int = 0,
    random_starts: float = 0.0,
    after_place: float = 0.0,
    jobs: int | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> DaggerReport:
    """Run ``rounds`` rounds of DAgger from the checkpoint ``policy`` and its demonstrations
    ``data`` (see the module docstring); ``progress(stage, done, total)`` as work finishes.

    Raises:
        PolicyError: the checkpoint cannot be loaded.
        DatasetError: the dataset cannot be read or is of another skill.
        ValueError: bad counts, or a skill that cannot be collected.
        skills.parallel.ExecutorUnavailable: Ray asked for and not reachable.
    """
    from skillstack.skills.parallel import ExecutorConfig, WorkerSetup, ordered_map
    from skillstack.skills.training.dataset_reader import open_dataset
    from skillstack.skills.training.learned import learned_skill
    from skillstack.skills.training.train import resolve_data, train

    start = time.perf_counter()
    model = learned_skill(policy).policy
    cfg = model.config
    skill = cfg.skill
    if skill not in COLLECTABLE_SKILLS:
        raise ValueError(f"cannot run the expert of {skill!r}")
    if not 1 <= rollouts * SETUP_TRIES < SEED_STRIDE or not 1 <= rounds <= 10:
        raise ValueError("rollouts must be ≥ 1 (and fewer than 100 000) and rounds 1 to 10")
    if not 0.05 <= every_s <= 60.0:
        raise ValueError(f"every_s must be 0.05 to 60 s, not {every_s}")
    path = resolve_data(data, skill)
    reader = open_dataset(path, skill)
    size = int(cfg.image_size) if cfg.images else 0
    if cfg.images and not reader.image_keys:
        raise DatasetError(f"{path}: an image policy's dataset must hold the images")
    scenes = str(reader.env_args.get("scenes") or "bench")
    cameras = reader.env_args.get("cameras") if size else None
    named = reader.named_episodes(successful_only=False)
    episodes: list = [(reader, name) for name, _ in named] if size else [e for _, e in named]
    config = ExecutorConfig(executor, jobs, ray_address)
    report = DaggerReport()
    current = Path(policy)
    for k in range(rounds):
        seeds = rollout_seeds(rollouts, seed, k)
        items = [
            (skill, s, reader.rate_hz, random_starts, scenes, after_place, every_s, size)
            for s in seeds
        ]
        setup = WorkerSetup(_init_worker, (str(current), skill), spawn=True)
        tick = _stage(progress, f"round {k + 1} rollouts")
        results = list(ordered_map(_rollout, items, config, setup=setup, progress=tick))
        valid = [ok for ok, _ in results if ok is not None]
        labels = [e for _, labelled in results for e in labelled]
        episodes = [*episodes, *labels]  # (reader, name) pairs stand for demos with images
        folder = Path(out_dir) / (f"round{k + 1}" if rounds > 1 else "")
        dataset = write_dataset(
            folder / f"{skill}.hdf5",
            skill,
            (_with_images(e) for e in episodes),
            reader.rate_hz,
            cameras=cameras,
            scenes=scenes,
        )
        trained = train(
            dataset,
            folder / f"{skill}.pt",
            skill,
            epochs=cfg.epochs,
            chunk=cfg.chunk,
            seed=cfg.seed,
            head=cfg.head,
            hidden=cfg.hidden,
            layers=cfg.layers,
            images=bool(cfg.images),
            progress=_stage(progress, f"round {k + 1} training"),
        )
        report.rounds.append(
            DaggerRound(
                str(current),
                len(valid),
                round(sum(valid) / len(valid), 4) if valid else 0.0,
                len(labels),
                sum(e.success for e in labels),
                dataset,
                trained.checkpoint,
                round(trained.seconds, 1),
            )
        )
        current = trained.checkpoint
        if size:  # the next round reads the images back from this round's file
            reader = open_dataset(dataset, skill)
            episodes = [(reader, name) for name in reader.names]
    report.seconds = round(time.perf_counter() - start, 1)
    return report


def _stage(progress, stage: str) -> Callable[..., None] | None:
    """``progress`` with its stage bound (further arguments ignored), or None."""
    if progress is None:
        return None
    return lambda done, total, *_: progress(stage, done, total)


def _with_images(item) -> Episode:
    """An episode; a (reader, demo name) pair is read back with its images."""
    if isinstance(item, Episode):
        return item
    reader, name = item
    episode = dict(reader.named_episodes(successful_only=False))[name]
    return dataclasses.replace(episode, images=reader.images(name))
