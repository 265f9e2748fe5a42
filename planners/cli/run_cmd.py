# Over 400 lines: run, deploy and their shared options: one command family.
"""`skillstack run`, `demo` and `deploy`: from an instruction to motion."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from skillstack.planners.cli.common import (
    ARM_HELP,
    PLANNERS,
    ROBOT_OPTION_HELP,
    SKILL_IMPL_HELP,
    VIEWER_HELP,
    BaseUrl,
    LlmLog,
    LlmRecord,
    LlmReplay,
    LlmTimeout,
    Model,
    NoTools,
    app,
    check_arm,
    check_backend,
    check_video_path,
    connect_robot,
    err,
    fail,
    make_planner,
    make_robot,
    one_line,
    open_video,
    parse_robot_options,
    print_steps,
    scene_for_options,
    set_llm_options,
    sim_robot_for_options,
    use_skill_impls,
)
from skillstack.planners.cli.output import print_json

DEMO_INSTRUCTION = "pour the cup into the bowl then put the cup on the plate"
MAX_INSTRUCTION_CHARS = 10_000  # characters in an instruction on the command line
BACKEND_HELP = "Simulator backend: mujoco or pybullet (videos: TinyRenderer, no OpenGL)."
PERCEPTIONS = ("ground_truth", "declared", "camera")
PERCEPTION_HELP = (
    "The world model's source: ground_truth (the simulator), declared (the scene file, "
    "tracked through the skills and the arm's signals, as on a real arm) or camera."
)
CALIBRATION_HELP = (
    "Camera calibration file (from `skillstack calibrate`) replacing the simulated intrinsics "
    "and camera poses (with --perception camera)."
)


def load_calibrations(path: Path | None, perception: str) -> dict | None:
    """The cameras of calibration file ``path`` checked against the default cameras, or None;
    exits (status 2) with a one-line reason for a bad file, an unknown camera or another
    resolution, or when ``perception`` is not camera."""
    if path is None:
        return None
    from skillstack.robot.camera import DEFAULT_CAMERAS
    from skillstack.robot.perception.calibration_file import load_calibration
    from skillstack.robot.perception.match import check_calibrations

    if perception != "camera":
        fail("--calibration applies to --perception camera", code=2)
    try:
        calibrations = load_calibration(path)
        check_calibrations(calibrations, DEFAULT_CAMERAS)
    except ValueError as exc:
        fail(f"{path}: {exc}" if str(path) not in str(exc) else str(exc), code=2)
    return calibrations


def perceiving_arm(sim, calibrations: dict | None = None, backend: str = "mujoco"):
    """The executive's view through the cameras (`skills.perceive.PerceivingArm`), with the
    given camera calibrations; exits with a one-line reason where MuJoCo's offscreen rendering
    is unavailable (PyBullet renders on the CPU) or a calibration does not fit the cameras."""
    from skillstack.hw.sim.mujoco.render import rendering_available
    from skillstack.skills.perceive import CameraPerception, PerceivingArm

    ok, reason = rendering_available()
    if not ok and backend == "mujoco":
        fail(f"--perception camera needs offscreen rendering: {reason}", code=2)
    try:
        perception = CameraPerception(sim, calibrations=calibrations)
    except ValueError as exc:
        fail(str(exc), code=2)
    return PerceivingArm(sim, perception=perception)


@app.command()
def demo(
    video: Annotated[
        Path | None, typer.Option(help="Record an mp4 (needs offscreen OpenGL).")
    ] = None,
    viewer: Annotated[bool, typer.Option("--viewer", help=VIEWER_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    arm: Annotated[str, typer.Option(help=ARM_HELP)] = "panda",
    perception: Annotated[str, typer.Option(help=PERCEPTION_HELP)] = "ground_truth",
    calibration: Annotated[Path | None, typer.Option(help=CALIBRATION_HELP)] = None,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "mujoco",
    skill_impl: Annotated[
        list[str] | None, typer.Option("--skill-impl", help=SKILL_IMPL_HELP)
    ] = None,
) -> None:
    """The default demo, headless and offline: pour the cup into the bowl, then put it away."""
    run(
        DEMO_INSTRUCTION,
        scene=None,
        planner="symbolic",
        backend=backend,
        seed=None,
        video=video,
        viewer=viewer,
        as_json=as_json,
        interactive=False,
        base_url=None,
        model=None,
        robot=None,
        token=None,
        arm=arm,
        perception=perception,
        skill_impl=skill_impl,
        calibration=calibration,
    )


@app.command()
def run(
    instruction: Annotated[
        str, typer.Argument(help='What to do, e.g. "put the cube in the bowl".')
    ],
    scene: Annotated[Path | None, typer.Option(help="Scene file (YAML/JSON).")] = None,
    planner: Annotated[str, typer.Option(help="symbolic (offline) or llm.")] = "symbolic",
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "mujoco",
    seed: Annotated[int | None, typer.Option(help="Random scene from this seed.")] = None,
    video: Annotated[Path | None, typer.Option(help="Record an mp4.")] = None,
    viewer: Annotated[bool, typer.Option("--viewer", help=VIEWER_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    interactive: Annotated[
        bool, typer.Option("--interactive", help="Ask for corrections between steps.")
    ] = False,
    base_url: BaseUrl = None,
    model: Model = None,
    llm_timeout: LlmTimeout = None,
    no_tools: NoTools = False,
    llm_log: LlmLog = None,
    llm_record: LlmRecord = None,
    llm_replay: LlmReplay = None,
    robot: Annotated[
        str | None,
        typer.Option(
            help="A robot server, tcp://HOST:PORT, or a real arm driven from this process: "
            "franka, ur, xarm (with --host and --scene, the declared workcell). "
            "Default: a local simulation."
        ),
    ] = None,
    token: Annotated[str | None, typer.Option(help="The robot server's shared token.")] = None,
    host: Annotated[str | None, typer.Option(help="A real arm's address (--robot KIND).")] = None,
    robot_option: Annotated[
        list[str] | None, typer.Option("--robot-option", help=ROBOT_OPTION_HELP)
    ] = None,
    arm: Annotated[str, typer.Option(help=ARM_HELP + " (local sim only)")] = "panda",
    perception: Annotated[str, typer.Option(help=PERCEPTION_HELP)] = "ground_truth",
    skill_impl: Annotated[
        list[str] | None, typer.Option("--skill-impl", help=SKILL_IMPL_HELP)
    ] = None,
    calibration: Annotated[Path | None, typer.Option(help=CALIBRATION_HELP)] = None,
) -> None:
    """Carry out an instruction: plan, validate, execute, replan on failure."""
    from skillstack.planners.executive import run_instruction

    if planner not in PLANNERS:
        fail(f"unknown planner {planner!r}; available: {', '.join(PLANNERS)}", code=2)
    if not instruction.strip():
        fail('the instruction is empty; say what to do, e.g. "put the cube in the bowl"', 2)
    if len(instruction) > MAX_INSTRUCTION_CHARS:
        fail(
            f"the instruction has {len(instruction)} characters; at most {MAX_INSTRUCTION_CHARS}", 2
        )
    check_video_path(video)
    check_backend(backend)
    arm = check_arm(arm)
    if perception not in PERCEPTIONS:
        fail(f"unknown perception {perception!r}; available: {', '.join(PERCEPTIONS)}", code=2)
    if perception == "camera" and robot is not None:
        fail("--perception camera needs a local simulation (not --robot)", code=2)
    calibrations = load_calibrations(calibration, perception)
    if skill_impl and robot is not None and robot.startswith("tcp://"):
        fail("--skill-impl swaps skills in this process; with --robot they run on the server", 2)
    use_skill_impls(skill_impl)
    set_llm_options(base_url, model, llm_timeout, no_tools, llm_log, llm_record, llm_replay)
    chosen = make_planner(planner)
    scene_obj = scene_for_options(scene, seed) if robot is None else None
    if viewer and robot is not None:
        fail("--viewer shows a local simulation; it does not go with --robot", code=2)
    if robot_option and (robot is None or robot.startswith("tcp://")):
        fail("--robot-option goes with --robot franka|ur|xarm (a server has its own)", code=2)

    def show(step: dict) -> None:
        if not as_json:
            mark = "[green]ok[/]" if step["outcome"] == "success" else f"[red]{step['outcome']}[/]"
            err.print(
                f"  {step['skill']} {step['params']}: {mark} {step['message']}", highlight=False
            )

    ask = _ask_correction if interactive else None
    if robot is not None and robot.startswith("tcp://"):
        report = _run_remote(instruction, robot, token, chosen, show, ask, as_json)
    elif robot is not None:
        with _driver_arm(robot, host, scene, robot_option) as target:
            report = run_instruction(instruction, target, chosen, on_step=show, corrections=ask)
    else:
        with sim_robot_for_options(backend, scene_obj, arm) as sim:
            open_video(sim, video, viewer)
            target = _local_arm(sim, scene_obj, perception, calibrations, backend)
            report = run_instruction(instruction, target, chosen, on_step=show, corrections=ask)
    result = report.to_dict()
    result["video"] = str(video) if video else None
    if as_json:
        print_json(result)
    else:
        _print_report(result)
        if video:
            err.print(f"video written to {video}", soft_wrap=True)
    if not report.success:
        if not as_json:
            print(f"error: {report.error}", file=sys.stderr)
        raise typer.Exit(1)


def _local_arm(sim, scene, perception: str, calibrations, backend: str):
    """What the executive drives in this process for ``perception``: the simulator itself
    (ground truth), the simulator with a declared world, or the cameras' view."""
    if perception == "camera":
        return perceiving_arm(sim, calibrations, backend)
    if perception == "declared":
        from skillstack.skills.arm import LocalArm
        from skillstack.skills.declared import DeclaredWorld

        return LocalArm(sim, world=DeclaredWorld(sim, scene))
    return sim


@contextlib.contextmanager
def _driver_arm(kind: str, host: str | None, scene: Path | None, options: list[str] | None):
    """A real arm driven from this process (no server), its world the declared workcell
    ``scene``; connected for the block, stopped and released after it."""
    from skillstack.skills.arm import LocalArm
    from skillstack.skills.declared import DeclaredWorld

    if scene is None:
        fail(
            f"--robot {kind} needs --scene FILE: the declared workcell (objects, sizes, poses "
            "as in a simulated scene) the skills start from",
            code=2,
        )
    from skillstack.hw.robot import RobotError

    declared = scene_for_options(scene, None)
    robot = make_robot(kind, host, None, options=parse_robot_options(options))
    connect_robot(robot)
    try:
        yield LocalArm(robot, world=DeclaredWorld(robot, declared))
    except RobotError as exc:  # the driver failed mid-run: one line, not a traceback
        with contextlib.suppress(Exception):
            robot.stop()
        fail(f"{kind} at {host}: {one_line(exc)}")
    finally:
        with contextlib.suppress(Exception):
            robot.disconnect()


def _run_remote(instruction, address, token, planner, show, ask, as_json: bool = False):
    """The executive on this machine, the skills on the robot server. A server that stops
    answering, or a robot that faults, ends the run with one line (with ``as_json``: the
    run's JSON object, its steps so far and that line as ``error``), exit status 1."""
    from skillstack.hw.server.client import RemoteError, RobotClient, ServerLost
    from skillstack.planners.executive import run_instruction
    from skillstack.skills.jobs import RemoteArm

    steps: list[dict] = []

    def record(step: dict) -> None:
        steps.append(step)
        show(step)

    try:
        client = RobotClient(address, token=token)
        with client:
            return run_instruction(
                instruction, RemoteArm(client), planner, on_step=record, corrections=ask
            )
    except ValueError as exc:
        fail(str(exc), code=2)
    except (ServerLost, RemoteError) as exc:
        if as_json:
            report = {
                "success": False,
                "instruction": instruction,
                "plan": [],
                "steps": steps,
                "goal": "unverified",
            }
            print_json({**report, "replans": 0, "error": str(exc)})
            raise typer.Exit(1) from None
        fail(str(exc))


@app.command()
def deploy(
    instruction: Annotated[str, typer.Argument(help="What to do.")],
    robot: Annotated[
        str,
        typer.Option(
            help="tcp://HOST:PORT of a robot server, mujoco, or a real arm driven from this "
            "process: franka, ur, xarm (with --host and --scene)."
        ),
    ] = "mujoco",
    token: Annotated[str | None, typer.Option(help="The robot server's shared token.")] = None,
    scene: Annotated[
        Path | None,
        typer.Option(help="Scene file: the simulated scene, or a real arm's declared workcell."),
    ] = None,
    host: Annotated[str | None, typer.Option(help="A real arm's address.")] = None,
    robot_option: Annotated[
        list[str] | None, typer.Option("--robot-option", help=ROBOT_OPTION_HELP)
    ] = None,
    planner: Annotated[str, typer.Option(help="symbolic (offline) or llm.")] = "symbolic",
    yes: Annotated[bool, typer.Option("--yes", help="Execute without asking.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    base_url: BaseUrl = None,
    model: Model = None,
    llm_timeout: LlmTimeout = None,
    no_tools: NoTools = False,
    llm_log: LlmLog = None,
    llm_record: LlmRecord = None,
    llm_replay: LlmReplay = None,
) -> None:
    """Plan, rehearse the whole plan in a MuJoCo twin of the current state, then execute."""
    from skillstack.planners.deploy import deploy as run_deploy

    if robot_option and robot not in ("franka", "ur", "xarm"):
        fail("--robot-option goes with --robot franka|ur|xarm (a server has its own)", code=2)

    set_llm_options(base_url, model, llm_timeout, no_tools, llm_log, llm_record, llm_replay)
    chosen = make_planner(planner)

    def confirm(report) -> bool:
        if not as_json:
            print_steps("rehearsal in the simulated twin", report.rehearsal)
        if yes:
            return True
        return typer.confirm(
            f"Rehearsal succeeded. Execute {len(report.plan)} skill calls on {robot}?"
        )

    if robot.startswith("tcp://"):
        from skillstack.hw.server.client import RemoteError, RobotClient, ServerLost
        from skillstack.skills.jobs import RemoteArm

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
        from skillstack.hw.sim.mujoco.robot import MujocoRobot
        from skillstack.skills.arm import LocalArm

        with MujocoRobot(scene_for_options(scene, None)) as sim:
            report = run_deploy(
                instruction, LocalArm(sim), chosen, confirm, joints=lambda: sim.read().q
            )
    elif robot in ("franka", "ur", "xarm"):
        with _driver_arm(robot, host, scene, robot_option) as target:
            report = run_deploy(
                instruction, target, chosen, confirm, joints=lambda: target.robot.read().q
            )
    else:
        fail(
            "deploy needs --robot tcp://HOST:PORT (a robot server), mujoco, or franka, ur, "
            f"xarm (with --host), got {robot[:100]!r}",
            code=2,
        )
    if as_json:
        print_json(report.to_dict())
    else:
        result = report.to_dict()
        if report.steps:
            print_steps(f"{instruction!r} on {robot}", report.steps)
        _print_summary(result, f"{len(report.steps)} skill calls on {robot}")
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
    _print_summary(result, f"{len(result['steps'])} skill calls, {result['replans']} replans")


def _print_summary(result: dict, what: str) -> None:
    """One line: the verdict, ``what`` ran, planning and model time, rejections, the goal."""
    verdict = "[green]success[/]" if result["success"] else "[red]failed[/]"
    goal = result.get("goal", "unverified")
    goal_text = ", ".join(goal) if isinstance(goal, list) else goal
    if result.get("goal_source") == "planner":
        goal_text += " (stated by the planner)"
    model = ""
    if result.get("model"):  # a language model: its time apart from the planner's own
        tokens = result.get("tokens", {}).get("total")
        model = (
            f", model {result['model']} {result['llm_latency_s']:.1f} s "
            f"({result['llm_requests']} requests, {tokens} tokens)"
        )
    rejected = f", {result['rejected_plans']} proposals rejected" if result.get("rejected") else ""
    Console().print(
        f"{verdict}: {what}, planning {sum(result['planning_ms']):.1f} ms{model}{rejected}; "
        f"goal: {goal_text}",
        markup=True,
        highlight=False,
        soft_wrap=True,  # one line, however narrow the terminal or pipe
    )
