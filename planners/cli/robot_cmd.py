"""`skillstack serve` and `skillstack hw check`: real arms and the robot server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from skillstack.planners.cli.common import (
    ROBOT_OPTION_HELP,
    app,
    connect_robot,
    err,
    fail,
    make_robot,
    one_line,
    parse_robot_options,
    scene_for_options,
)
from skillstack.planners.cli.output import print_json


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
    scene: Annotated[
        Path | None,
        typer.Option(
            help="Scene file or bundled scene name: the simulated scene, or on a real arm the "
            "declared workcell the world model starts from."
        ),
    ] = None,
    heartbeat_timeout: Annotated[
        float, typer.Option(min=0.01, help="Seconds of client silence that stop a skill.")
    ] = 0.1,
    telemetry_hz: Annotated[float, typer.Option(min=1.0, help="Telemetry rate.")] = 50.0,
    robot_option: Annotated[
        list[str] | None, typer.Option("--robot-option", help=ROBOT_OPTION_HELP)
    ] = None,
    perception: Annotated[
        str | None,
        typer.Option(
            help="The world model's source: ground_truth (simulators' default) or declared "
            "(the scene file tracked through the skills; always on a real arm)."
        ),
    ] = None,
) -> None:
    """Serve one robot: the control loop next to the arm, skills run locally, clients anywhere."""
    import logging
    import signal
    import threading

    from skillstack.hw.server.client import parse_address
    from skillstack.hw.server.server import RobotServer, ServerConfig

    try:
        bind_host, port = parse_address(bind)
        config = ServerConfig(bind_host, port, token, heartbeat_timeout, telemetry_hz)
        config.check()
    except ValueError as exc:
        fail(str(exc), code=2)
    world_for = _world_factory(robot, scene, perception)
    arm = make_robot(robot, host, scene, options=parse_robot_options(robot_option))
    connect_robot(arm)  # a refusal is one line (exit 1), not a traceback from the server
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    from skillstack.skills.jobs import SkillJobs

    jobs = SkillJobs(world_for)  # skills and the world, injected: hw/ imports nothing from skills/
    with RobotServer(arm, config, run_skill=jobs.run, observe=jobs.observe):
        err.print(
            f"serving {robot} on tcp://{bind_host}:{port} (telemetry on {port + 1}); Ctrl-C stops"
        )
        done.wait()


def _world_factory(robot: str, scene: Path | None, perception: str | None):
    """``world_for(robot)`` for the server's skills: the simulator's truth, or the declared
    workcell of ``scene`` (required on a real arm); exits 2 with a one-line reason."""
    simulated = robot in ("mujoco", "pybullet")
    perception = perception or ("ground_truth" if simulated else "declared")
    if perception not in ("ground_truth", "declared"):
        fail(f"unknown perception {perception!r}; available: ground_truth, declared", code=2)
    if perception == "ground_truth":
        if not simulated:
            fail(f"--robot {robot} has no ground truth: its world is declared (--scene FILE)", 2)
        return None
    if scene is None and not simulated:
        fail(
            f"--robot {robot} needs --scene FILE: the declared workcell (objects, sizes, poses "
            "as in a simulated scene) the skills start from",
            code=2,
        )
    declared = scene_for_options(scene, None)

    def world_for(arm):
        from skillstack.skills.declared import DeclaredWorld

        return DeclaredWorld(arm, declared)

    return world_for


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
    robot_option: Annotated[
        list[str] | None, typer.Option("--robot-option", help=ROBOT_OPTION_HELP)
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print one JSON object with every check on stdout (progress: stderr)."
        ),
    ] = False,
) -> None:
    """Run the HAL conformance checks (small, slow wrist motions) and print the results."""
    import sys

    from skillstack.hw.conformance import run_conformance

    options = parse_robot_options(robot_option)
    if robot.startswith("tcp://"):
        from skillstack.hw.server.client import RemoteRobot, ServerLost

        if options:
            fail(
                "--robot-option goes to a driver; a robot server (tcp://) got its options "
                "when it was started (skillstack serve --robot-option ...)",
                code=2,
            )
        try:
            device = RemoteRobot(robot, token=token)
        except ValueError as exc:  # not tcp://HOST:PORT
            fail(one_line(exc), code=2)
        except ServerLost as exc:  # nothing answered there
            fail(one_line(exc), code=1)
    else:
        device = make_robot(robot, host, None, arm, options)
    if (
        robot not in ("mujoco", "pybullet")
        and not yes
        and not typer.confirm(
            f"The wrist of {robot} will move {amplitude} rad at {speed} rad/s. Is the area clear?",
            err=True,
        )
    ):
        fail("not confirmed; nothing moved")

    def progress(line: str) -> None:  # plain lines on stderr: stdout is the JSON's
        print(line, file=sys.stderr, flush=True)

    connect_robot(device)
    try:
        results = run_conformance(device, amplitude=amplitude, speed=speed, log=progress)
    except ValueError as exc:
        fail(one_line(exc), code=2)
    except (RuntimeError, OSError) as exc:  # the arm or the server gave up mid-run
        fail(one_line(exc), code=1)
    finally:
        try:
            device.disconnect()
        except Exception as exc:  # gone already: say so, the results still stand
            progress(f"disconnecting failed: {one_line(exc)}")
    failed = sum(not r.passed for r in results)
    if as_json:
        report = {
            "robot": device.capabilities.name,
            "checks": [
                {k: getattr(r, k) for k in ("name", "passed", "skipped", "detail", "duration_s")}
                for r in results
            ],
            "passed": sum(r.passed and not r.skipped for r in results),
            "failed": failed,
        }
        print_json(report)
    if failed:
        raise typer.Exit(1)
