"""Shared pieces of the command line: the app, errors, scenes, planners, robots."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table as RichTable

app = typer.Typer(
    name="skillstack",
    help="Robotics control stack with hierarchical skills: simulate, benchmark, deploy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> None:
    # One plain line on stderr: scripts read it, and rich would wrap it at the terminal width.
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def load_scene(path: Path | None, seed: int | None):
    from robot.scene import SceneError, default_scene, load_scene, random_scene

    try:
        if path is not None:
            return load_scene(path)
        if seed is not None:
            return random_scene(seed, n_objects=3, kinds=("box", "cylinder"))
        return default_scene()
    except SceneError as exc:
        where = f"{exc.source}: " if exc.source else ""
        fail(where + "; ".join(exc.problems), code=2)


def open_video(robot, path: Path | None):
    if path is None:
        return
    from hw.sim.render import RenderUnavailable, VideoRecorder

    if getattr(robot, "client", None) is not None:  # PyBullet: TinyRenderer, no OpenGL
        from hw.sim.pybullet_camera import PybulletVideoRecorder

        robot.recorder = PybulletVideoRecorder(path, robot.client)
        return
    try:
        robot.recorder = VideoRecorder(path, robot.model, robot.data, camera=None)
    except RenderUnavailable as exc:
        fail(f"cannot record {path}: {exc}")


def check_backend(name: str) -> str:
    """``name`` if it is a simulator backend, else a one-line error listing them (exit 2)."""
    from hw.sim.truth import BACKENDS

    if name not in BACKENDS:
        fail(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}", code=2)
    return name


def make_sim(backend: str, scene, arm: str = "panda"):
    """A simulated robot (not connected) of ``backend`` on ``scene`` (a `Scene`)."""
    from hw.sim.truth import make_sim as _make_sim

    try:
        return _make_sim(check_backend(backend), scene, arm=arm)
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
    from skills.training.learned import SkillImplError, apply_skill_impls

    try:
        apply_skill_impls(specs)
    except SkillImplError as exc:
        fail(str(exc), code=2)
    return list(specs)


PLANNERS = ("symbolic", "llm")
ARM_HELP = "Arm model (robot.arms): panda or xarm6."


def check_arm(name: str) -> str:
    """``name`` if it is a known arm, else a one-line error listing the arms (exit 2)."""
    from robot.arms import get_arm

    try:
        return get_arm(name).name
    except ValueError as exc:
        fail(str(exc), code=2)


def make_robot(kind: str, host: str | None, scene: Path | None, arm: str = "panda"):
    if kind == "mujoco":
        from hw.sim.mujoco_robot import MujocoRobot

        return MujocoRobot(load_scene(scene, None), arm=check_arm(arm))
    if kind == "pybullet":
        return make_sim("pybullet", load_scene(scene, None), check_arm(arm))
    try:
        from hw.drivers import make_driver
    except ImportError:
        fail("vendor drivers are not part of this build", code=2)
    if host is None:
        fail(f"--robot {kind} needs --host (the arm's IP address)", code=2)
    try:
        return make_driver(kind, host)
    except (ValueError, RuntimeError) as exc:
        fail(str(exc), code=2)


def make_planner(name: str, base_url: str | None, model: str | None):
    if name == "symbolic":
        from planners.symbolic import SymbolicPlanner

        return SymbolicPlanner()
    from planners.llm import LLMPlanner

    try:
        return LLMPlanner(base_url=base_url, model=model)
    except ValueError as exc:
        fail(str(exc), code=2)


def print_steps(title: str, steps: list[dict]) -> None:
    table = RichTable(title=title)
    for col in ("skill", "template", "outcome", "time (s)", "details"):
        table.add_column(col)
    for s in steps:
        details = s["message"] or ", ".join(f"{k}={v:g}" for k, v in s["metrics"].items())
        table.add_row(s["skill"], s["template"], s["outcome"], f"{s['duration_s']:.1f}", details)
    Console().print(table)
