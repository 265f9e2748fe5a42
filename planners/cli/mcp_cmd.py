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
        typer.Option(
            help="mujoco or pybullet (simulated), franka, ur, xarm with --host, or "
            "tcp://HOST:PORT of a robot server."
        ),
    ] = "mujoco",
    token: Annotated[str | None, typer.Option(help="The robot server's shared token.")] = None,
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
    if robot.startswith("tcp://"):
        if scene is not None or host is not None or robot_option:
            fail("--scene, --host and --robot-option belong to the robot server", code=2)
        _serve_remote(robot, token, chosen, allow_motion)
        return
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


def _serve_remote(address: str, token: str | None, planner, allow_motion: bool) -> None:
    """The tools over a robot server: skills run there; ``stop`` stops them there."""
    from skillstack.hw.server.client import RemoteError, RobotClient, ServerLost
    from skillstack.planners.mcp_server import RobotTools, serve_stdio
    from skillstack.skills.jobs import RemoteArm

    try:
        client = RobotClient(address, token=token)
    except ValueError as exc:
        fail(str(exc)[:300], code=2)
    try:
        client.connect()  # takes control and keeps the server's heartbeat alive
    except (ServerLost, RemoteError) as exc:
        client.close()
        fail(str(exc)[:300])
    try:
        tools = RobotTools(
            RemoteArm(client), planner, allow_motion=allow_motion,
            stop=client.stop, interrupt=client.stop,
        )  # fmt: skip
        serve_stdio(tools)
    finally:
        client.close()
