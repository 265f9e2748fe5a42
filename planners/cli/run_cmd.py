"""`skillstack run`, `demo` and `deploy`: from an instruction to motion."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from planners.cli.common import (
    PLANNERS,
    app,
    err,
    fail,
    load_scene,
    make_planner,
    open_video,
    print_steps,
)

DEMO_INSTRUCTION = "pour the cup into the bowl then put the cup on the plate"


@app.command()
def demo(
    video: Annotated[
        Path | None, typer.Option(help="Record an mp4 (needs offscreen OpenGL).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The default demo, headless and offline: pour the cup into the bowl, then put it away."""
    run(
        DEMO_INSTRUCTION,
        scene=None,
        planner="symbolic",
        backend="mujoco",
        seed=None,
        video=video,
        as_json=as_json,
        interactive=False,
        base_url=None,
        model=None,
        robot=None,
        token=None,
    )


@app.command()
def run(
    instruction: Annotated[
        str, typer.Argument(help='What to do, e.g. "put the cube in the bowl".')
    ],
    scene: Annotated[Path | None, typer.Option(help="Scene file (YAML/JSON).")] = None,
    planner: Annotated[str, typer.Option(help="symbolic (offline) or llm.")] = "symbolic",
    backend: Annotated[str, typer.Option(help="Simulator backend.")] = "mujoco",
    seed: Annotated[int | None, typer.Option(help="Random scene from this seed.")] = None,
    video: Annotated[Path | None, typer.Option(help="Record an mp4.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    interactive: Annotated[
        bool, typer.Option("--interactive", help="Ask for corrections between steps.")
    ] = False,
    base_url: Annotated[
        str | None, typer.Option(help="LLM endpoint (else OPENAI_BASE_URL).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="LLM model (else SKILLSTACK_MODEL).")] = None,
    robot: Annotated[
        str | None, typer.Option(help="A robot server, tcp://HOST:PORT (default: a local sim).")
    ] = None,
    token: Annotated[str | None, typer.Option(help="The robot server's shared token.")] = None,
) -> None:
    """Carry out an instruction: plan, validate, execute, replan on failure."""
    from hw.sim.mujoco_robot import MujocoRobot
    from planners.executive import run_instruction

    if planner not in PLANNERS:
        fail(f"unknown planner {planner!r}; available: {', '.join(PLANNERS)}", code=2)
    if backend != "mujoco":
        fail(f"backend {backend!r} is not available yet; available: mujoco", code=2)
    chosen = make_planner(planner, base_url, model)
    scene_obj = load_scene(scene, seed) if robot is None else None

    def show(step: dict) -> None:
        if not as_json:
            mark = "[green]ok[/]" if step["outcome"] == "success" else f"[red]{step['outcome']}[/]"
            err.print(
                f"  {step['skill']} {step['params']}: {mark} {step['message']}", highlight=False
            )

    ask = _ask_correction if interactive else None
    if robot is not None:
        report = _run_remote(instruction, robot, token, chosen, show, ask)
    else:
        with MujocoRobot(scene_obj) as sim:
            open_video(sim, video)
            report = run_instruction(instruction, sim, chosen, on_step=show, corrections=ask)
    result = report.to_dict()
    result["video"] = str(video) if video else None
    if as_json:
        print(json.dumps(result))
    else:
        _print_report(result)
    if not report.success:
        if not as_json:
            print(f"error: {report.error}", file=sys.stderr)
        raise typer.Exit(1)


def _run_remote(instruction, address, token, planner, show, ask):
    """The executive on this machine, the skills on the robot server."""
    from hw.server.client import RemoteArm, RemoteError, RobotClient, ServerLost
    from planners.executive import run_instruction

    try:
        client = RobotClient(address, token=token)
        with client:
            return run_instruction(
                instruction, RemoteArm(client), planner, on_step=show, corrections=ask
            )
    except ValueError as exc:
        fail(str(exc), code=2)
    except (ServerLost, RemoteError) as exc:
        fail(str(exc))


@app.command()
def deploy(
    instruction: Annotated[str, typer.Argument(help="What to do.")],
    robot: Annotated[str, typer.Option(help="tcp://HOST:PORT of a robot server, or mujoco.")] = (
        "mujoco"
    ),
    token: Annotated[str | None, typer.Option(help="The robot server's shared token.")] = None,
    scene: Annotated[Path | None, typer.Option(help="Scene file (with --robot mujoco).")] = None,
    planner: Annotated[str, typer.Option(help="symbolic (offline) or llm.")] = "symbolic",
    yes: Annotated[bool, typer.Option("--yes", help="Execute without asking.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Plan, rehearse the whole plan in a MuJoCo twin of the current state, then execute."""
    from planners.deploy import deploy as run_deploy

    chosen = make_planner(planner, None, None)

    def confirm(report) -> bool:
        if not as_json:
            print_steps("rehearsal in the simulated twin", report.rehearsal)
        if yes:
            return True
        return typer.confirm(
            f"Rehearsal succeeded. Execute {len(report.plan)} skill calls on {robot}?"
        )

    if robot.startswith("tcp://"):
        from hw.server.client import RemoteArm, RemoteError, RobotClient, ServerLost

        try:
            with RobotClient(robot, token=token) as client:
                report = run_deploy(
                    instruction,
                    RemoteArm(client),
                    chosen,
                    confirm,
                    joints=lambda: client.state()["q"],
                )
        except (ServerLost, RemoteError) as exc:
            fail(str(exc))
    elif robot == "mujoco":
        from hw.sim.mujoco_robot import MujocoRobot
        from skills.arm import LocalArm

        with MujocoRobot(load_scene(scene, None)) as sim:
            report = run_deploy(
                instruction, LocalArm(sim), chosen, confirm, joints=lambda: sim.read().q
            )
    else:
        fail(
            f"deploy needs --robot tcp://HOST:PORT (a robot server) or mujoco, got {robot!r}",
            code=2,
        )
    if as_json:
        print(json.dumps(report.to_dict()))
    elif report.steps:
        print_steps(f"{instruction!r} on {robot}", report.steps)
    if not report.success:
        print(f"error: {report.error}", file=sys.stderr)
        raise typer.Exit(1)


def _ask_correction(step) -> str | None:
    try:
        text = input(f"after {step.call}: correction (Enter to continue)> ").strip()
    except EOFError:
        return None
    return text or None


def _print_report(result: dict) -> None:
    print_steps(repr(result["instruction"]), result["steps"])
    verdict = "[green]success[/]" if result["success"] else "[red]failed[/]"
    Console().print(
        f"{verdict}: {len(result['steps'])} skill calls, {result['replans']} replans, "
        f"planning {sum(result['planning_ms']):.1f} ms"
    )
