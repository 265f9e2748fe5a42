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

    try:
        robot.recorder = VideoRecorder(path, robot.model, robot.data, camera=None)
    except RenderUnavailable as exc:
        fail(f"cannot record {path}: {exc}")


PLANNERS = ("symbolic", "llm")


def make_robot(kind: str, host: str | None, scene: Path | None):
    if kind == "mujoco":
        from hw.sim.mujoco_robot import MujocoRobot

        return MujocoRobot(load_scene(scene, None))
    if kind == "pybullet":
        fail("the PyBullet backend is not available yet; use --robot mujoco", code=2)
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
