"""Collect demonstrations: the scripted skills as experts on randomised, seeded scenes.

Each episode builds a random scene from its own seed (`skills.episodes`: the scenes of
`skillstack bench skills`), runs the skill through the executor exactly as a planner would,
and samples observations and commands every ``1 / rate_hz`` seconds of simulated time from
the executor's ``on_tick`` hook. Skills that need something in hand (place, pour) are set up with an
unrecorded grasp first; a set-up that fails is retried on the next seed of that episode.
Failed expert episodes are kept, marked ``success=False`` and listed in ``mask/failed``.
With ``image_size`` every sample also holds the camera images of `skills.training.images`.
``scenes="mixed"`` draws part of the episodes from task-like scenes
(`skills.training.scenes`: for grasp a block on a plate, in a bowl, on another block,
square blocks at yaw near 0; for place a block onto another block, a cup onto a plate or
the table). ``after_place`` starts part of the grasps where a place of another block left
the hand.
Every episode stores its call context (the object's kind and extents, the template; for
place also the spot, the release and carrying heights and the opening that lets go; for
pour the cup's and the target's sizes and where the target is). Pour samples also record
``object_fill``, the fraction of the cup's particles still in it.

Episodes run on every core (or a Ray cluster: `skills.parallel`), which return arrays; the
parent writes each episode to the file in seed order as soon as it and those before it are
done, so a long collection with images never holds them all in memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from skillstack.skills.parallel import ExecutorConfig, WorkerSetup, ordered_map
from skillstack.skills.training.dataset import (
    DEFAULT_CONTROL_RATE_HZ,
    OBS_KEYS,
    OPTIONAL_OBS_KEYS,
    Episode,
    actions_from_path,
    write_dataset,
)
from skillstack.skills.training.features import context_from_object, place_context
from skillstack.skills.training.images import (
    CameraImages,
    cameras_env_args,
    check_image_size,
    check_rendering,
)
from skillstack.skills.training.observation import cup_fill, observe_robot, particles_in
from skillstack.skills.training.pour_features import pour_context
from skillstack.skills.training.scenes import SCENE_SETS, scene_set_episode

COLLECTABLE_SKILLS = ("grasp", "place", "pour")
DEFAULT_RATE_HZ = 20.0  # samples per second of simulated time
SETUP_TRIES = 10  # seeds tried per episode until a set-up (the grasp before a place) succeeds
SEED_STRIDE = 1_000_000  # episode seeds: seed * SEED_STRIDE + index * SETUP_TRIES + try
TIME_EPS_S = 1e-9
# Where the hand starts in episodes with a random start (m; yaw in degrees): the poses a
# task leaves it in (above a bowl or plate after a place, a few centimetres above a stack
# it built, ...), not only the home pose; at least START_CLEARANCE above every object.
START_BOX = ((0.30, 0.62), (-0.35, 0.35), (0.12, 0.45))
START_CLEARANCE = 0.06  # m
START_YAW_DEG = 90.0
# Grasps that start where a place left the hand (``after_place``): another block is first
# grasped and put on the table at a random spot (polar, m and rad about the robot base) ...
AFTER_PLACE_RADIUS = (0.35, 0.62)
AFTER_PLACE_ANGLE = 1.2
AFTER_PLACE_GAP = 0.04  # m, ... this far from every other object's footprint
AFTER_PLACE_TRIES = 30
MOVABLE_KINDS = ("box", "cylinder")


def demonstration_setup(
    skill: str,
    seed: int,
    random_starts: float = 0.0,
    scenes: str = "bench",
    after_place: float = 0.0,
) -> tuple:
    """The random scene, unrecorded set-up calls, skill parameters and target object name
    (with ``scenes="bench"`` the same episodes as `skillstack bench skills`; see
    `skills.training.scenes`).

    With probability ``after_place`` (grasp only, drawn from ``seed``) the set-up first
    grasps another block and places it on the table (`after_place_setup`), so the
    demonstration starts where a place leaves the hand, as in a task that clears a plate.
    Otherwise, with probability ``random_starts``, the set-up ends with an unrecorded
    `move_to` to a random hand pose (`START_BOX`), so the demonstration starts from there
    instead of the home pose.
    """
    if skill not in COLLECTABLE_SKILLS:
        raise ValueError(
            f"cannot collect {skill!r}; collectable skills: {', '.join(COLLECTABLE_SKILLS)}"
        )
    scene, setup, params = scene_set_episode(skill, seed, scenes)
    if skill == "grasp" and after_place > 0.0:
        first = np.random.default_rng([seed, 13])
        if first.random() < after_place:
            moves = after_place_setup(scene, params["object"], first)
            if moves:
                return scene, [*setup, *moves], params, params["object"]
    rng = np.random.default_rng([seed, 11])
    if rng.random() < random_starts:
        position = [round(float(rng.uniform(lo, hi)), 3) for lo, hi in START_BOX]
        clear = max(o.top() for o in scene.objects) + START_CLEARANCE
        position[2] = round(max(position[2], clear), 3)
        yaw = round(float(rng.uniform(-START_YAW_DEG, START_YAW_DEG)), 1)
        setup = [*setup, ("move_to", {"position": position, "yaw": yaw})]
    return scene, setup, params, params.get("object") or params["source"]


def after_place_setup(scene, target: str, rng: np.random.Generator) -> list[tuple[str, dict]]:
    """A grasp of a block other than ``target`` with nothing on it, and a place of it on the
    table at a free random spot; [] when the scene has no such block or spot."""

    def free(obj) -> bool:
        r = obj.footprint_radius()
        return not any(
            o is not obj
            and o.position[2] >= obj.top() - 0.01
            and math.dist(o.position[:2], obj.position[:2]) < r
            for o in scene.objects
        )

    movers = [o for o in scene.objects if o.name != target and o.kind in MOVABLE_KINDS and free(o)]
    if not movers:
        return []
    mover = movers[int(rng.integers(len(movers)))]
    for _ in range(AFTER_PLACE_TRIES):
        r, a = rng.uniform(*AFTER_PLACE_RADIUS), rng.uniform(-AFTER_PLACE_ANGLE, AFTER_PLACE_ANGLE)
        spot = (round(float(r * math.cos(a)), 3), round(float(r * math.sin(a)), 3))
        if all(
            math.dist(spot, o.position[:2])
            >= o.footprint_radius() + mover.footprint_radius() + AFTER_PLACE_GAP
            for o in scene.objects
            if o is not mover
        ):
            return [
                ("grasp", {"object": mover.name}),
                ("place", {"object": mover.name, "target": "table", "position": list(spot)}),
            ]
    return []


class _Recorder:
    """Samples the robot every ``1 / rate_hz`` s of sim time; tracks the gripper command.
    ``cameras`` (optional) renders the images of each sample."""

    def __init__(self, robot, target: str, rate_hz: float, cameras: CameraImages | None = None):
        self.robot, self.target, self.period = robot, target, 1.0 / rate_hz
        self.rows: dict[str, list] = {k: [] for k in (*OBS_KEYS, "joint_targets", "gripper")}
        self.cameras = cameras
        self.images: dict[str, list[np.ndarray]] = {}  # camera key -> one image per sample
        self.t0: float | None = None
        self.fill_of: int | None = None  # pour: the particles in the cup when it started
        self.gripper_command = 2 * robot.arm.finger_travel  # reset() opens the gripper
        send = robot.gripper

        def gripper(cmd):
            sent = send(cmd)
            self.gripper_command = float(sent.width)
            return sent

        robot.gripper = gripper  # this robot instance only: it lives for one episode

    def on_tick(self, state, sent) -> None:
        if self.t0 is None:
            self.t0 = state.time
        if state.time + TIME_EPS_S >= self.t0 + len(self.rows["joint_targets"]) * self.period:
            self.sample()

    def sample(self) -> None:
        """Record the state after the tick: all observations are of the same instant."""
        robot, rows = self.robot, self.rows
        state = robot.read()
        for key, value in observe_robot(robot, self.target).items():
            rows[key].append(value)
        if self.fill_of is not None:
            rows.setdefault("object_fill", []).append(cup_fill(robot, self.target, self.fill_of))
        q_desired = state.q_desired if state.q_desired is not None else state.q
        rows["joint_targets"].append(q_desired)
        rows["gripper"].append(self.gripper_command)
        if self.cameras is not None:
            for key, image in self.cameras.render().items():
                self.images.setdefault(key, []).append(image)

    def episode(self, success: bool, seed: int, params: dict, context: dict) -> Episode:
        if not self.rows["joint_targets"]:  # refused before any motion: one sample
            self.sample()
        keys = [*OBS_KEYS, *(k for k in OPTIONAL_OBS_KEYS if k in self.rows)]
        obs = {k: np.asarray(self.rows[k], dtype=float) for k in keys}
        n = len(self.rows["joint_targets"])
        rewards, dones = np.zeros(n), np.zeros(n, dtype=np.uint8)
        rewards[-1], dones[-1] = float(success), 1
        actions = actions_from_path(
            obs["robot0_eef_pos"], obs["robot0_eef_quat"], np.asarray(self.rows["gripper"])
        )
        return Episode(
            obs,
            actions,
            np.asarray(self.rows["joint_targets"], dtype=float),
            rewards,
            dones,
            success,
            seed,
            params,
            {k: np.stack(v) for k, v in self.images.items()},
            context,
        )


def _call_context(skill: str, scene, robot, params: dict, target: str) -> dict:
    """The call context a demonstration stores (`skills.training.features`), taken just
    before the skill runs, as the learned skill takes it at run time."""
    from skillstack.skills.world import observe

    if skill == "pour":
        return pour_context(observe(robot), params["source"], params["target"]).to_dict()
    if skill == "place":
        gripper = robot.capabilities.gripper
        assert gripper is not None, "the simulated arms have grippers"
        return place_context(observe(robot), params, gripper.max_width).to_dict()
    approach = params.get("approach", "top")
    template = "top" if approach == "auto" else approach
    obj = scene.object(target)
    ctx = context_from_object(obj, template)
    # the object's colour names it in images (`skills.training.vision`)
    color = [float(c) for c in obj.color[:3]]
    return {
        "kind": ctx.kind,
        "extents": list(ctx.extents),
        "template": ctx.template,
        "color": color,
    }


def record_episode(
    skill: str,
    seed: int,
    rate_hz: float = DEFAULT_RATE_HZ,
    random_starts: float = 0.0,
    image_size: int | None = None,
    scenes: str = "bench",
    after_place: float = 0.0,
) -> Episode | None:
    """One expert episode on the scene of ``seed``; None if its set-up failed.
    ``image_size``: also record ``image_size``² camera images at every sample."""
    from skillstack.hw.sim.mujoco.robot import MujocoRobot
    from skillstack.skills.executor import execute
    from skillstack.skills.registry import get_skill

    scene, setup, params, target = demonstration_setup(
        skill, seed, random_starts, scenes, after_place
    )
    with MujocoRobot(scene) as robot:
        cameras = CameraImages(robot, image_size) if image_size else None
        try:
            recorder = _Recorder(robot, target, rate_hz, cameras)
            for name, p in setup:
                if not execute(get_skill(name), p, robot).success:
                    return None
            context = _call_context(skill, scene, robot, params, target)
            if skill == "pour":
                recorder.fill_of = particles_in(robot, target)
            result = execute(get_skill(skill), params, robot, on_tick=recorder.on_tick)
            return recorder.episode(result.success, seed, params, context)
        finally:
            if cameras is not None:
                cameras.close()


def _episode(
    skill: str,
    base_seed: int,
    rate_hz: float,
    random_starts: float,
    image_size: int | None,
    scenes: str = "bench",
    after_place: float = 0.0,
) -> Episode:
    for attempt in range(SETUP_TRIES):
        episode = record_episode(
            skill, base_seed + attempt, rate_hz, random_starts, image_size, scenes, after_place
        )
        if episode is not None:
            return episode
    raise RuntimeError(
        f"{skill}: the set-up failed on {SETUP_TRIES} seeds from {base_seed}; "
        "the scripted expert is broken"
    )


def collect(
    skill: str,
    episodes: int,
    seed: int,
    out_dir: str | Path,
    jobs: int | None = None,
    rate_hz: float = DEFAULT_RATE_HZ,
    progress: Callable[[int, int], None] | None = None,
    random_starts: float = 0.0,
    image_size: int | None = None,
    scenes: str = "bench",
    executor: str = "local",
    ray_address: str | None = None,
    after_place: float = 0.0,
) -> Path:
    """Collect ``episodes`` expert demonstrations of ``skill`` into ``<out_dir>/<skill>.hdf5``.

    The same ``seed`` gives the same file contents, whatever runs the episodes: ``jobs``
    worker processes (None: every core; 1: this process), or with ``executor="ray"`` Ray
    tasks on ``ray_address`` (None: a local Ray instance; `skills.parallel`).
    ``progress(done, total)`` is called as they finish.
    ``random_starts``: the fraction of episodes that start from a random hand pose.
    ``after_place``: the fraction of grasp episodes that start after a place of another block.
    ``image_size``: also record square camera images of this size (`skills.training.images`).
    ``scenes``: the scene set (`skills.training.scenes.SCENE_SETS`; "mixed" for grasp and place).

    Raises:
        ValueError: an unknown skill, no episodes, a rate the control loop cannot sample, or
            an image size that cannot be rendered.
        hw.sim.mujoco.render.RenderUnavailable: images asked for where rendering does not work
            (checked before any episode runs).
        skills.parallel.ExecutorUnavailable: Ray asked for and not installed or not reachable
            (before any episode runs or the file is opened).
    """
    if skill not in COLLECTABLE_SKILLS:
        raise ValueError(
            f"cannot collect {skill!r}; collectable skills: {', '.join(COLLECTABLE_SKILLS)}"
        )
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, not {episodes}")
    if episodes * SETUP_TRIES >= SEED_STRIDE:
        raise ValueError(f"at most {SEED_STRIDE // SETUP_TRIES - 1} episodes per collection")
    if not 0 < rate_hz <= DEFAULT_CONTROL_RATE_HZ:
        raise ValueError(f"rate_hz must be in (0, {DEFAULT_CONTROL_RATE_HZ:g}] Hz, not {rate_hz}")
    for name, fraction in (("random_starts", random_starts), ("after_place", after_place)):
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"{name} is a fraction in [0, 1], not {fraction}")
    if after_place and skill != "grasp":
        raise ValueError(f"after_place starts are for grasp only, not {skill!r}")
    if scenes not in SCENE_SETS:
        raise ValueError(f"unknown scene set {scenes!r}; sets: {', '.join(SCENE_SETS)}")
    if image_size is not None:
        check_image_size(image_size)
        check_rendering()
    config = ExecutorConfig(executor, jobs, ray_address)
    seeds = [seed * SEED_STRIDE + i * SETUP_TRIES for i in range(episodes)]
    items = [(skill, s, rate_hz, random_starts, image_size, scenes, after_place) for s in seeds]
    # Rendering workers are spawned: a forked child inherits this process's OpenGL state
    # (the rendering check made a context) and can hang.
    setup = WorkerSetup(spawn=image_size is not None)
    in_seed_order = ordered_map(_episode, items, config, setup=setup, progress=progress)
    return write_dataset(
        Path(out_dir) / f"{skill}.hdf5",
        skill,
        in_seed_order,
        rate_hz,
        cameras=cameras_env_args(image_size) if image_size else None,
        scenes=scenes,
    )
