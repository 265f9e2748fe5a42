"""`skillstack serve` and `skillstack hw check`: real arms and the robot server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planners.cli.common import (
    app,
    err,
    fail,
    make_robot,
)


@app.command()
def serve(
    robot: Annotated[
        str, typer.Option(help="A simulator (mujoco, pybullet) or a real arm: franka, ur, xarm.")
    ] = "mujoco",
    bind: Annotated[str, typer.Option(help="HOST:PORT to listen on (telemetry: PORT+1).")] = (
        "127.0.0.1:5555"
    ),
    token: Annotated[str | None, typer.Option(help="Shared token, required off loopback.")] = None,
    host: Annotated[str | None, typer.Option(help="The real arm's address.")] = None,
    scene: Annotated[Path | None, typer.Option(help="Scene file for the simulated arm.")] = None,
    heartbeat_timeout: Annotated[
        float, typer.Option(min=0.01, help="Seconds of client silence that stop a skill.")
    ] = 0.1,
    telemetry_hz: Annotated[float, typer.Option(min=1.0, help="Telemetry rate.")] = 50.0,
) -> None:
    """Serve one robot: the control loop next to the arm, skills run locally, clients anywhere."""
    import logging
    import signal
    import threading

    from hw.server.client import parse_address
    from hw.server.server import RobotServer, ServerConfig

    try:
        bind_host, port = parse_address(bind)
        config = ServerConfig(bind_host, port, token, heartbeat_timeout, telemetry_hz)
        config.check()
    except ValueError as exc:
        fail(str(exc), code=2)
    arm = make_robot(robot, host, scene)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with RobotServer(arm, config):
        err.print(
            f"serving {robot} on tcp://{bind_host}:{port} (telemetry on {port + 1}); Ctrl-C stops"
        )
        done.wait()


hw_app = typer.Typer(help="Hardware tools: check a robot against the HAL conformance suite.")
app.add_typer(hw_app, name="hw")


@hw_app.command("check")
def hw_check(
    robot: Annotated[str, typer.Option(help="mujoco, franka, ur, xarm, or tcp://HOST:PORT.")] = (
        "mujoco"
    ),
    host: Annotated[str | None, typer.Option(help="The real arm's address.")] = None,
    token: Annotated[str | None, typer.Option(help="A robot server's shared token.")] = None,
    amplitude: Annotated[float, typer.Option(help="Wrist test motion, rad (max 0.2).")] = 0.05,
    speed: Annotated[float, typer.Option(help="Wrist test speed, rad/s (max 0.5).")] = 0.1,
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask before moving a real arm.")
    ] = False,
    arm: Annotated[str, typer.Option(help="Arm model for --robot mujoco: panda or xarm6.")] = (
        "panda"
    ),
) -> None:
    """Run the HAL conformance checks (small, slow wrist motions) and print the results."""
    from hw.conformance import run_conformance

    if robot.startswith("tcp://"):
        from hw.server.client import RemoteRobot, ServerLost

        try:
            arm = RemoteRobot(robot, token=token)
        except (ServerLost, ValueError) as exc:
            fail(str(exc), code=2)
    else:
        arm = make_robot(robot, host, None, arm)
    if (
        robot not in ("mujoco", "pybullet")
        and not yes
        and not typer.confirm(
            f"The wrist of {robot} will move {amplitude} rad at {speed} rad/s. Is the area clear?"
        )
    ):
        fail("not confirmed; nothing moved")
    try:
        results = run_conformance(arm, amplitude=amplitude, speed=speed, log=err.print)
    except ValueError as exc:
        fail(str(exc), code=2)
    if any(not r.passed and not r.skipped for r in results):
        raise typer.Exit(1)
