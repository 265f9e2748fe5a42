"""`skillstack mcp`: the skills as Model Context Protocol tools over stdio."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from skillstack.planners.cli.common import (
    ARM_HELP,
    ROBOT_OPTION_HELP,
    app,
    check_arm,
    connect_robot,
    fail,
    make_planner,
    make_robot,
    parse_robot_options,
)


@app.command()
def mcp(
    robot: Annotated[
        str,
        typer.Option(help="mujoco or pybullet (simulated), or franka, ur, xarm with --host."),
    ] = "mujoco",
    scene: Annotated[
        Path | None,
        typer.Option(help="Scene: the simulated one, or a real arm's declared workcell."),
    ] = None,
    host: Annotated[str | None, typer.Option(help="A real arm's address.")] = None,
    robot_option: Annotated[
        list[str] | None, typer.Option("--robot-option", help=ROBOT_OPTION_HELP)
    ] = None,
    arm: Annotated[str, typer.Option(help=ARM_HELP + " (simulators)")] = "panda",
    planner: Annotated[str, typer.Option(help="symbolic (offline) or llm.")] = "symbolic",
    allow_motion: Annotated[
        bool,
        typer.Option(
            "--allow-motion", help="Let tools move the arm without confirm=true on each call."
        ),
    ] = False,
) -> None:
    """Serve the skills, observe, plan, run and stop as MCP tools on stdin/stdout."""
    try:
        from skillstack.planners.mcp_server import RobotTools, serve_stdio
    except ImportError:  # pragma: no cover - mcp is in the dev extra
        fail("skillstack mcp needs the MCP SDK: pip install 'skillstack[mcp]'", code=2)
    from skillstack.skills.arm import LocalArm

    chosen = make_planner(planner)
    real = robot in ("franka", "ur", "xarm")
    if real and scene is None:
        fail(f"--robot {robot} needs --scene FILE: the declared workcell", code=2)
    device = make_robot(robot, host, None if real else scene, check_arm(arm),
                        parse_robot_options(robot_option))  # fmt: skip
    connect_robot(device)
    try:
        world = None
        if real and scene is not None:
            from skillstack.robot.scene import load_scene
            from skillstack.robot.scene.bundled import find_scene
            from skillstack.skills.declared import DeclaredWorld

            world = DeclaredWorld(device, load_scene(find_scene(scene)))
        tools: RobotTools
        target = LocalArm(device, world=world, abort=lambda: tools.abort())
        tools = RobotTools(target, chosen, allow_motion=allow_motion, stop=device.stop)
        serve_stdio(tools)
    finally:
        device.disconnect()
