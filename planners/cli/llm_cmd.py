"""`skillstack llm check`: is a chat endpoint and model fit to plan, before a robot waits?"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from skillstack.planners.cli.common import (
    BaseUrl,
    LlmTimeout,
    Model,
    app,
    err,
    fail,
    make_planner,
    set_llm_options,
)
from skillstack.planners.cli.output import print_json

llm_app = typer.Typer(help="Language-model endpoints: check one before planning with it.")
app.add_typer(llm_app, name="llm")


@llm_app.command("check")
def llm_check(
    base_url: BaseUrl = None,
    model: Model = None,
    llm_timeout: LlmTimeout = None,
    scene: Annotated[
        str, typer.Option(help="Bundled scene (or file) whose planning prompt is measured.")
    ] = "workcell",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Does the endpoint answer, serve the model, honour tool calls, fit the prompt?"""
    from skillstack.planners.llm_check import check_endpoint, report
    from skillstack.robot.scene import SceneError, load_scene
    from skillstack.robot.scene.bundled import find_scene
    from skillstack.skills.declared import scene_world

    set_llm_options(base_url, model, llm_timeout)
    planner = make_planner("llm")
    try:
        world = scene_world(load_scene(find_scene(scene)))
    except (FileNotFoundError, SceneError) as exc:
        fail(" ".join(str(exc).split()), code=2)
    checks = check_endpoint(planner, world)
    out = {"base_url": planner.base_url, "model": planner.model, **report(checks)}
    if as_json:
        print_json(out)
    else:
        for c in checks:
            mark = "[green]PASS[/]" if c.passed else "[red]FAIL[/]"
            err.print(f"{mark} {c.name}: {c.detail}", highlight=False)
        Console().print(f"{out['passed']} passed, {out['failed']} failed")
    if out["failed"]:
        raise typer.Exit(1)
