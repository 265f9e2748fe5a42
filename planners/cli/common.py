"""Shared pieces of the command line: the app, errors, scenes, planners, robots."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table as RichTable

from skillstack.planners.cli.output import (  # noqa: F401  (one_line_bounded: for the commands)
    MAX_ERROR_CHARS,
    json_error,
    one_line_bounded,
)

app = typer.Typer(
    name="skillstack",
    help="Robotics control stack with hierarchical skills: simulate, benchmark, deploy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: MESSAGE`` (one line, at most `MAX_ERROR_CHARS`) and exit with ``code``
    (1 failure, 2 bad input). Under ``--json`` the error is also the one object on stdout:
    ``{"success": false, "error": MESSAGE, "exit_code": CODE}``."""
    # One plain line on stderr: scripts read it, and rich would wrap it at the terminal width.
    print(f"error: {one_line_bounded(message)}", file=sys.stderr)
    json_error(message, code)
    raise typer.Exit(code)


def scene_for_options(path: Path | None, seed: int | None):
    """The scene of ``path`` (a file or a bundled scene's name), a random one from ``seed``,
    or the default; exits 2 with a one-line reason for a missing or bad scene."""
    from skillstack.robot.scene import SceneError, default_scene, load_scene, random_scene
    from skillstack.robot.scene.bundled import find_scene

    try:
        if path is not None:
            try:
                path = find_scene(path)
            except FileNotFoundError as exc:
                fail(str(exc), code=2)
            return load_scene(path)
        if seed is not None:
            return random_scene(seed, n_objects=3, kinds=("box", "cylinder"))
        return default_scene()
    except SceneError as exc:
        where = f"{exc.source}: " if exc.source else ""
        fail(where + "; ".join(exc.problems), code=2)
    except (OSError, ValueError) as exc:  # a path the OS refuses, a seed random refuses
        what = f"scene {one_line_bounded(path, 200)!r}" if path is not None else f"--seed {seed}"
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        fail(f"cannot load {what}: {reason}", code=2)


def check_video_path(path: Path | None) -> None:
    """Exit 2 with one line unless ``path`` (None: no video) is somewhere an mp4 can be
    written: a ``.mp4`` name that is not a folder, under folders that exist or can be made.
    Commands call it before they build a simulation, so that a bad path moves nothing."""
    if path is None:
        return
    shown = repr(one_line_bounded(path, 200))
    try:
        problem = _video_path_problem(path)
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte
        problem = one_line_bounded(exc, 200)
    if problem:
        fail(f"--video {shown}: {problem}", code=2)


def _video_path_problem(path: Path) -> str | None:
    import os

    if path.suffix.lower() != ".mp4":
        return "the file name must end in .mp4"
    if path.is_dir():
        return "a folder; name an .mp4 file in it"
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{one_line_bounded(parent, 200)!r} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot write in {one_line_bounded(parent, 200)!r}"
    return None


VIEWER_HELP = "Watch in MuJoCo's interactive viewer, at wall-clock speed (needs a display)."


def open_video(robot, path: Path | None, viewer: bool = False) -> None:
    """Record ``robot``'s episode to the mp4 ``path`` (None: no video) and/or show it in the
    interactive viewer; exits 2 with one line for a bad path (`check_video_path`) or a viewer
    without a display, and 1 where offscreen rendering is unavailable."""
    recorders = []
    if viewer:
        recorders.append(_open_viewer(robot))
    if path is not None:
        recorders.append(_open_recorder(robot, path))
    if len(recorders) == 1:
        robot.recorder = recorders[0]
    elif recorders:
        from skillstack.hw.sim.mujoco.viewer import Recorders

        robot.recorder = Recorders(*recorders)


def _open_viewer(robot):
    if getattr(robot, "client", None) is not None:
        fail("--viewer shows MuJoCo; use it with --backend mujoco", code=2)
    from skillstack.hw.sim.mujoco.viewer import LiveViewer, ViewerUnavailable

    try:
        return LiveViewer(robot.model, robot.data)
    except ViewerUnavailable as exc:
        fail(str(exc), code=2)


def _open_recorder(robot, path: Path):
    check_video_path(path)
    from skillstack.hw.sim.mujoco.render import MujocoVideoRecorder, RenderUnavailable
    from skillstack.hw.sim.video import VideoRecorder

    recorder: VideoRecorder
    try:
        if getattr(robot, "client", None) is not None:  # PyBullet: TinyRenderer, no OpenGL
            from skillstack.hw.sim.pybullet.camera import PybulletVideoRecorder

            recorder = PybulletVideoRecorder(path, robot.client)
        else:
            recorder = MujocoVideoRecorder(path, robot.model, robot.data, camera=None)
    except RenderUnavailable as exc:
        fail(f"cannot record {path}: {exc}")
    except (OSError, ValueError) as exc:
        fail(f"cannot record {path}: {exc}", code=2)
    if err.is_terminal:  # a progress line while frames are written (not in logs or CI)

        def progress(frames: int) -> None:
            if frames % 15 == 0:
                seconds = frames / recorder.fps
                err.print(f"recording {path.name}: {frames} frames, {seconds:.1f} s", end="\r")

        recorder.on_frame = progress
    return recorder


def check_backend(name: str) -> str:
    """``name`` if it is a simulator backend, else a one-line error listing them (exit 2)."""
    from skillstack.hw.sim.backends import BACKENDS

    if name not in BACKENDS:
        fail(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}", code=2)
    return name


def sim_robot_for_options(backend: str, scene, arm: str = "panda"):
    """A simulated robot (not connected) of ``backend`` on ``scene`` (a `Scene`)."""
    from skillstack.hw.sim.backends import make_sim

    try:
        return make_sim(check_backend(backend), scene, arm=arm)
    except ValueError as exc:
        fail(str(exc), code=2)


SKILL_IMPL_HELP = (
    "Swap a skill's implementation: SKILL=learned:CHECKPOINT or SKILL=scripted (repeatable)."
)


def use_skill_impls(specs: list[str] | None) -> list[str]:
    """Validate every ``--skill-impl`` spec and load its checkpoint, then install them all
    (or none: a bad spec exits 2 with a one-line reason before anything moves)."""
    if not specs:
        return []
    from skillstack.skills.training.learned import SkillImplError, apply_skill_impls

    try:
        apply_skill_impls(specs)
    except SkillImplError as exc:
        fail(str(exc), code=2)
    return list(specs)


PLANNERS = ("symbolic", "llm")
ARM_HELP = "Arm model: any arm registered in skillstack.robot.arms (panda, xarm6, ...)."


def check_arm(name: str) -> str:
    """``name`` if it is a known arm, else a one-line error listing the arms (exit 2)."""
    from skillstack.robot.arms import get_arm

    try:
        return get_arm(name).name
    except ValueError as exc:
        fail(str(exc), code=2)


SIM_ROBOTS = ("mujoco", "pybullet")
ROBOT_OPTION_HELP = (
    "A real arm's driver option KEY=VALUE (repeatable), e.g. model=fr3, "
    "realtime_config=ignore for the Franka; a wrong key lists the valid ones."
)


def one_line(text: object) -> str:
    """``text`` on one line (SDK messages sometimes span several)."""
    return " ".join(str(text).split())


def parse_robot_options(values: list[str] | None) -> dict[str, str]:
    """``["model=fr3", "gripper=false"]`` -> ``{"model": "fr3", "gripper": "false"}``.

    The values stay text: the driver reads them (`hw.drivers.parse_driver_options`). An
    item that is not KEY=VALUE, or a key given twice with different values, exits 2.
    """
    options: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key.isidentifier() or not value:
            fail(
                f"--robot-option {item!r} is not KEY=VALUE (e.g. --robot-option model=fr3)",
                code=2,
            )
        if options.get(key, value) != value:
            fail(f"--robot-option {key} given twice: {options[key]!r} and {value!r}", code=2)
        options[key] = value
    return options


def make_robot(
    kind: str,
    host: str | None,
    scene: Path | None,
    arm: str = "panda",
    options: dict[str, str] | None = None,
):
    """The robot ``kind`` from command-line options, not connected: `skillstack.hw.factory`'s
    `make_robot` with its errors as one line (bad input exits 2; a vendor SDK that is not
    installed exits 1 with the pip command)."""
    from skillstack.hw.drivers import DriverUnavailable
    from skillstack.hw.factory import DRIVER_KINDS, RobotSpecError
    from skillstack.hw.factory import make_robot as build

    try:
        if kind in DRIVER_KINDS:
            return build(kind, host=host, options=options)
        if options:
            build(kind, options=options)  # refused, with the reason
        return build(kind, scene=scene_for_options(scene, None), arm=check_arm(arm))
    except DriverUnavailable as exc:
        fail(one_line(exc), code=1)
    except RobotSpecError as exc:
        fail(one_line(exc), code=2)


def connect_robot(robot) -> None:
    """Connect ``robot``, or exit 1 with one line saying what failed and what to check."""
    try:
        robot.connect()
    except (RuntimeError, OSError) as exc:  # RobotError, DriverConnectionError, ServerLost
        fail(one_line(exc), code=1)


# The language-model options, declared once for every command that plans (run, deploy,
# bench tasks). They go into the environment, where each planner reads them, benchmark
# worker processes included (`LLMPlanner.from_env`).
BaseUrl = Annotated[str | None, typer.Option(help="LLM endpoint (else OPENAI_BASE_URL).")]
Model = Annotated[str | None, typer.Option(help="LLM model (else SKILLSTACK_MODEL).")]
LlmTimeout = Annotated[
    float | None, typer.Option("--llm-timeout", min=0.1, help="Seconds per model request (30).")
]
NoTools = Annotated[
    bool, typer.Option("--no-tools", help="Ask the model for JSON plans; never offer tools.")
]
LlmLog = Annotated[
    Path | None,
    typer.Option("--llm-log", help="Append every model exchange to this JSON-lines file."),
]
LlmRecord = Annotated[
    Path | None, typer.Option("--llm-record", help="Store every model exchange in this folder.")
]
LlmReplay = Annotated[
    Path | None,
    typer.Option(
        "--llm-replay", help="Answer from the exchanges recorded in this folder (no network)."
    ),
]


def set_llm_options(
    base_url: str | None = None,
    model: str | None = None,
    timeout: float | None = None,
    no_tools: bool = False,
    log: Path | None = None,
    record: Path | None = None,
    replay: Path | None = None,
) -> None:
    """Put the given LLM options in the environment (exits 2 on a contradiction)."""
    import os

    from skillstack.planners import llm, llm_exchanges

    if record and replay:
        fail("--llm-record and --llm-replay exclude each other", code=2)
    if replay is not None and not replay.is_dir():
        fail(f"--llm-replay: no folder {str(replay)[:200]!r}", code=2)
    values = {
        llm.ENV_BASE_URL: base_url,
        llm.ENV_MODEL: model,
        llm.ENV_TIMEOUT: None if timeout is None else str(timeout),
        llm.ENV_NO_TOOLS: "1" if no_tools else None,
        llm_exchanges.ENV_LOG: str(log) if log else None,
        llm_exchanges.ENV_RECORD: str(record) if record else None,
        llm_exchanges.ENV_REPLAY: str(replay) if replay else None,
    }
    for key, value in values.items():
        if value is not None:
            os.environ[key] = value
    if replay is not None:
        os.environ.setdefault(llm.ENV_BASE_URL, "http://replay.invalid/v1")  # never contacted


def make_planner(name: str, base_url: str | None = None, model: str | None = None):
    """The planner ``name`` (``symbolic`` or ``llm``, configured by `set_llm_options` and the
    environment); a bad LLM configuration exits 2 with one line."""
    if name == "symbolic":
        from skillstack.planners.symbolic import SymbolicPlanner

        return SymbolicPlanner()
    from skillstack.planners.llm import LLMPlanner

    set_llm_options(base_url, model)
    try:
        return LLMPlanner.from_env()
    except ValueError as exc:
        fail(str(exc), code=2)


def print_steps(title: str, steps: list[dict]) -> None:
    """The executed steps as a table on stdout (nothing when no step ran)."""
    if not steps:
        return
    table = RichTable(title=title)
    for col in ("skill", "template", "outcome", "time (s)", "details"):
        table.add_column(col)
    for s in steps:
        details = s["message"] or ", ".join(f"{k}={v:g}" for k, v in s["metrics"].items())
        table.add_row(s["skill"], s["template"], s["outcome"], f"{s['duration_s']:.1f}", details)
    Console().print(table)
