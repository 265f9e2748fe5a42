"""`skillstack skills` and `skillstack do`: the skill library from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable

from skillstack.planners.cli.common import (
    ARM_HELP,
    SKILL_IMPL_HELP,
    VIEWER_HELP,
    app,
    check_arm,
    check_backend,
    check_video_path,
    err,
    fail,
    open_video,
    print_steps,
    scene_for_options,
    sim_robot_for_options,
    use_skill_impls,
)
from skillstack.planners.cli.output import print_json


def _run_calls(
    calls: list[tuple[str, dict]],
    scene,
    video: Path | None,
    as_json: bool,
    title: str,
    arm: str = "panda",
    backend: str = "mujoco",
    viewer: bool = False,
) -> None:
    """Execute skill calls in order on a simulated arm; print a table or one JSON object.

    Every call is validated first, as a plan (`planners.validator.validate_plan`: skill,
    parameters, objects, preconditions and each skill's own checks on the predicted world):
    a bad call anywhere exits 2 with one line before the arm moves.
    """
    from skillstack.skills.arm import LocalArm
    from skillstack.skills.registry import get_skill

    for name, _ in calls:
        try:
            get_skill(name)
        except KeyError as exc:
            fail(str(exc.args[0]), code=2)
    steps = []
    with sim_robot_for_options(backend, scene, arm) as robot:
        _validate_calls(calls, robot)
        open_video(robot, video, viewer)
        runner = LocalArm(robot)  # captions a video with each call and its outcome
        for name, params in calls:
            result = runner.execute(name, params)
            steps.append(result.to_dict())
            if not as_json:
                failure = result.failure.value if result.failure else "failure"
                mark = "[green]ok[/]" if result.success else f"[red]{failure}[/]"
                err.print(f"{name} {params}: {mark} {result.message}", highlight=False)
            if not result.success:
                break
    success = len(steps) == len(calls) and all(s["success"] for s in steps)
    if as_json:
        print_json({"success": success, "steps": steps, "video": str(video) if video else None})
    else:
        print_steps(title, steps)
        if video:
            err.print(f"video written to {video}")
    if not success:
        raise typer.Exit(1)


@app.command("skills")
def list_skills(
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON Schemas.")] = False,
) -> None:
    """List the skills with their parameters (``--json``: ``{"skills": [...]}``, the tool
    schemas a planner sees)."""
    from skillstack.skills.registry import schemas

    tools = schemas()
    if as_json:
        print_json({"skills": tools})  # one object, as every --json prints
        return
    table = RichTable(title="skills")
    table.add_column("skill")
    table.add_column("parameters")
    table.add_column("description")
    for tool in tools:
        props = tool["parameters"]["properties"]
        required = set(tool["parameters"]["required"])
        params = ", ".join(k if k in required else f"{k}={props[k].get('default')}" for k in props)
        table.add_row(tool["name"], params, tool["description"])
    Console().print(table)


def _validate_calls(calls: list[tuple[str, dict]], robot) -> None:
    """Exit 2 with the problems of the calls, taken together as one plan, before any moves."""
    from skillstack.planners.types import Plan, SkillCall
    from skillstack.planners.validator import validate_plan
    from skillstack.skills.registry import all_skills
    from skillstack.skills.world_model import default_world

    world = default_world(robot).observe()
    plan = Plan([SkillCall(name, params) for name, params in calls], planner="do")
    problems = validate_plan(plan, world, all_skills())
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        fail(f"{'; '.join(problems[:3])}{more}; nothing moved", code=2)


MAX_CALL_CHARS = 2000  # characters in one skill call on the command line


def _parse_call(text: str) -> tuple[str, dict]:
    """``"place object=cube target=bowl offset=[0.01,0]"`` -> ("place", {...}); exits 2 with
    one line for an empty call, a pair that is not key=value or a value that is not YAML."""
    from skillstack.robot.scene import SceneError
    from skillstack.robot.scene.io import load_yaml

    shown = repr(text if len(text) <= 80 else text[:77] + "...")
    if len(text) > MAX_CALL_CHARS:
        fail(f"the skill call {shown} has {len(text)} characters; at most {MAX_CALL_CHARS}", 2)
    if not text.split():
        fail('an empty skill call; write e.g. "grasp object=cube"', code=2)
    name, *pairs = text.split()
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"cannot read {pair[:80]!r} in {shown}: write parameters as key=value", code=2)
        if key in params:
            fail(f"parameter {key[:80]!r} given twice in {shown}", code=2)
        try:
            params[key] = load_yaml(value, max_nodes=1000)
        except SceneError as exc:  # aliases, syntax, nesting: one short line
            fail(f"parameter {key[:80]!r} in {shown}: {'; '.join(exc.problems)}", code=2)
    return name, params


@app.command()
def do(
    calls: Annotated[list[str], typer.Argument(help='Skill calls, e.g. "grasp object=cube".')],
    scene: Annotated[Path | None, typer.Option(help="Scene file (YAML/JSON).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random scene from this seed.")] = None,
    video: Annotated[Path | None, typer.Option(help="Record an mp4.")] = None,
    viewer: Annotated[bool, typer.Option("--viewer", help=VIEWER_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    arm: Annotated[str, typer.Option(help=ARM_HELP)] = "panda",
    skill_impl: Annotated[
        list[str] | None, typer.Option("--skill-impl", help=SKILL_IMPL_HELP)
    ] = None,
    backend: Annotated[str, typer.Option(help="Simulator backend: mujoco or pybullet.")] = (
        "mujoco"
    ),
) -> None:
    """Run skill calls in order on the simulated arm, stopping at the first failure.

    All calls are validated together before the arm moves; any bad call exits 2.
    """
    arm = check_arm(arm)
    check_backend(backend)
    check_video_path(video)
    use_skill_impls(skill_impl)
    parsed = [_parse_call(c) for c in calls]
    _run_calls(
        parsed, scene_for_options(scene, seed), video, as_json, "skill calls", arm, backend, viewer
    )
