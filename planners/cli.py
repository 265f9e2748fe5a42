"""The `skillstack` command line: a thin shell over the packages.

Every command exits 0 on success and non-zero with a one-line reason on failure or bad
input; ``--json`` prints exactly one JSON object on stdout (logs go to stderr).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

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

BENCHMARKS = ("control", "skills", "tasks", "server")


def _fail(message: str, code: int = 1) -> None:
    # One plain line on stderr: scripts read it, and rich would wrap it at the terminal width.
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _load_scene(path: Path | None, seed: int | None):
    from robot.scene import SceneError, default_scene, load_scene, random_scene

    try:
        if path is not None:
            return load_scene(path)
        if seed is not None:
            return random_scene(seed, n_objects=3, kinds=("box", "cylinder"))
        return default_scene()
    except SceneError as exc:
        where = f"{exc.source}: " if exc.source else ""
        _fail(where + "; ".join(exc.problems), code=2)


def _open_video(robot, path: Path | None):
    if path is None:
        return
    from hw.sim.render import RenderUnavailable, VideoRecorder

    try:
        robot.recorder = VideoRecorder(path, robot.model, robot.data, camera=None)
    except RenderUnavailable as exc:
        _fail(f"cannot record {path}: {exc}")


def _print_tour(legs, title: str) -> None:
    table = RichTable(title=title)
    for col in (
        "target x y z (m)",
        "time (s)",
        "max err (mm)",
        "end err (mm)",
        "end rot (°)",
        "late",
    ):
        table.add_column(col, justify="right")
    for leg in legs:
        rep = leg.tracking
        table.add_row(
            " ".join(f"{v:.2f}" for v in leg.target),
            f"{leg.duration_s:.2f}",
            f"{rep.max_position_error * 1e3:.2f}",
            f"{rep.final_position_error * 1e3:.3f}",
            f"{rep.final_angle_error * 180 / 3.141592653589793:.3f}",
            str(leg.stats.late_ticks),
        )
    Console().print(table)


def _tour_json(legs) -> list[dict]:
    return [
        {
            "target": list(leg.target),
            "duration_s": round(leg.duration_s, 4),
            "max_tracking_error_mm": round(leg.tracking.max_position_error * 1e3, 4),
            "final_position_error_mm": round(leg.tracking.final_position_error * 1e3, 4),
            "final_angle_error_deg": round(leg.tracking.final_angle_error * 57.29577951308232, 4),
            "ticks": leg.stats.ticks,
            "late_ticks": leg.stats.late_ticks,
        }
        for leg in legs
    ]


@app.command()
def sim(
    scene: Annotated[
        Path | None, typer.Option(help="Scene file (YAML/JSON); default scene if omitted.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random scene from this seed (ignored with --scene).")
    ] = None,
    speed: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="Peak end-effector speed, m/s.")
    ] = 0.25,
    realtime: Annotated[
        bool, typer.Option("--realtime", help="Pace the loop to the wall clock.")
    ] = False,
    video: Annotated[
        Path | None, typer.Option(help="Record an mp4 (needs offscreen OpenGL).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Drive the simulated Panda through Cartesian waypoints and print tracking errors."""
    from hw.sim.mujoco_robot import MujocoRobot, SimulationDiverged
    from hw.sim.tour import run_tour

    scene_obj = _load_scene(scene, seed)
    with MujocoRobot(scene_obj) as robot:
        _open_video(robot, video)
        try:
            legs = run_tour(robot, speed=speed, realtime=realtime)
        except SimulationDiverged as exc:
            _fail(str(exc))
        safety = dict(robot.safety.counts)
    if as_json:
        print(
            json.dumps(
                {
                    "success": True,
                    "scene": scene_obj.name,
                    "legs": _tour_json(legs),
                    "safety_interventions": safety,
                    "video": str(video) if video else None,
                }
            )
        )
        return
    _print_tour(legs, f"Cartesian tour on scene '{scene_obj.name}' at {speed:.2f} m/s")
    if video:
        err.print(f"video written to {video}")


DEMO_INSTRUCTION = "pour the cup into the bowl then put the cup on the plate"
PLANNERS = ("symbolic", "llm")


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
        _fail(f"unknown planner {planner!r}; available: {', '.join(PLANNERS)}", code=2)
    if backend != "mujoco":
        _fail(f"backend {backend!r} is not available yet; available: mujoco", code=2)
    chosen = _make_planner(planner, base_url, model)
    scene_obj = _load_scene(scene, seed) if robot is None else None

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
            _open_video(sim, video)
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
        _fail(str(exc), code=2)
    except (ServerLost, RemoteError) as exc:
        _fail(str(exc))


@app.command()
def serve(
    robot: Annotated[str, typer.Option(help="mujoco, or a real arm: franka, ur, xarm.")] = "mujoco",
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
        _fail(str(exc), code=2)
    arm = _make_robot(robot, host, scene)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with RobotServer(arm, config):
        err.print(
            f"serving {robot} on tcp://{bind_host}:{port} (telemetry on {port + 1}); Ctrl-C stops"
        )
        done.wait()


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

    chosen = _make_planner(planner, None, None)

    def confirm(report) -> bool:
        if not as_json:
            _print_steps("rehearsal in the simulated twin", report.rehearsal)
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
            _fail(str(exc))
    elif robot == "mujoco":
        from hw.sim.mujoco_robot import MujocoRobot
        from skills.arm import LocalArm

        with MujocoRobot(_load_scene(scene, None)) as sim:
            report = run_deploy(
                instruction, LocalArm(sim), chosen, confirm, joints=lambda: sim.read().q
            )
    else:
        _fail(
            f"deploy needs --robot tcp://HOST:PORT (a robot server) or mujoco, got {robot!r}",
            code=2,
        )
    if as_json:
        print(json.dumps(report.to_dict()))
    elif report.steps:
        _print_steps(f"{instruction!r} on {robot}", report.steps)
    if not report.success:
        print(f"error: {report.error}", file=sys.stderr)
        raise typer.Exit(1)


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
) -> None:
    """Run the HAL conformance checks (small, slow wrist motions) and print the results."""
    from hw.conformance import run_conformance

    if robot.startswith("tcp://"):
        from hw.server.client import RemoteRobot, ServerLost

        try:
            arm = RemoteRobot(robot, token=token)
        except (ServerLost, ValueError) as exc:
            _fail(str(exc), code=2)
    else:
        arm = _make_robot(robot, host, None)
    if (
        robot != "mujoco"
        and not yes
        and not typer.confirm(
            f"The wrist of {robot} will move {amplitude} rad at {speed} rad/s. Is the area clear?"
        )
    ):
        _fail("not confirmed; nothing moved")
    try:
        results = run_conformance(arm, amplitude=amplitude, speed=speed, log=err.print)
    except ValueError as exc:
        _fail(str(exc), code=2)
    if any(not r.passed and not r.skipped for r in results):
        raise typer.Exit(1)


def _make_robot(kind: str, host: str | None, scene: Path | None):
    if kind == "mujoco":
        from hw.sim.mujoco_robot import MujocoRobot

        return MujocoRobot(_load_scene(scene, None))
    if kind == "pybullet":
        _fail("the PyBullet backend is not available yet; use --robot mujoco", code=2)
    try:
        from hw.drivers import make_driver
    except ImportError:
        _fail("vendor drivers are not part of this build", code=2)
    if host is None:
        _fail(f"--robot {kind} needs --host (the arm's IP address)", code=2)
    try:
        return make_driver(kind, host)
    except (ValueError, RuntimeError) as exc:
        _fail(str(exc), code=2)


def _make_planner(name: str, base_url: str | None, model: str | None):
    if name == "symbolic":
        from planners.symbolic import SymbolicPlanner

        return SymbolicPlanner()
    from planners.llm import LLMPlanner

    try:
        return LLMPlanner(base_url=base_url, model=model)
    except ValueError as exc:
        _fail(str(exc), code=2)


def _ask_correction(step) -> str | None:
    try:
        text = input(f"after {step.call}: correction (Enter to continue)> ").strip()
    except EOFError:
        return None
    return text or None


def _print_steps(title: str, steps: list[dict]) -> None:
    table = RichTable(title=title)
    for col in ("skill", "template", "outcome", "time (s)", "details"):
        table.add_column(col)
    for s in steps:
        details = s["message"] or ", ".join(f"{k}={v:g}" for k, v in s["metrics"].items())
        table.add_row(s["skill"], s["template"], s["outcome"], f"{s['duration_s']:.1f}", details)
    Console().print(table)


def _print_report(result: dict) -> None:
    _print_steps(repr(result["instruction"]), result["steps"])
    verdict = "[green]success[/]" if result["success"] else "[red]failed[/]"
    Console().print(
        f"{verdict}: {len(result['steps'])} skill calls, {result['replans']} replans, "
        f"planning {sum(result['planning_ms']):.1f} ms"
    )


def _run_calls(
    calls: list[tuple[str, dict]], scene, video: Path | None, as_json: bool, title: str
) -> None:
    """Execute skill calls in order on a simulated arm; print a table or one JSON object."""
    from hw.sim.mujoco_robot import MujocoRobot
    from skills.executor import execute
    from skills.registry import get_skill

    for name, _ in calls:
        try:
            get_skill(name)
        except KeyError as exc:
            _fail(str(exc.args[0]), code=2)
    steps = []
    with MujocoRobot(scene) as robot:
        _open_video(robot, video)
        for name, params in calls:
            result = execute(get_skill(name), params, robot)
            steps.append(result.to_dict())
            if not as_json:
                mark = "[green]ok[/]" if result.success else f"[red]{result.failure.value}[/]"
                err.print(f"{name} {params}: {mark} {result.message}", highlight=False)
            if not result.success:
                break
    success = len(steps) == len(calls) and all(s["success"] for s in steps)
    if as_json:
        print(
            json.dumps({"success": success, "steps": steps, "video": str(video) if video else None})
        )
    else:
        _print_steps(title, steps)
        if video:
            err.print(f"video written to {video}")
    if not success:
        raise typer.Exit(1)


@app.command("skills")
def list_skills(
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON Schemas.")] = False,
) -> None:
    """List the skills with their parameters (``--json``: the tool schemas a planner sees)."""
    from skills.registry import schemas

    tools = schemas()
    if as_json:
        print(json.dumps(tools))
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


def _parse_call(text: str) -> tuple[str, dict]:
    """``"place object=cube target=bowl offset=[0.01,0]"`` -> ("place", {...})."""
    import yaml

    name, *pairs = text.split()
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            _fail(f"cannot read {pair!r} in {text!r}: write parameters as key=value", code=2)
        params[key] = yaml.safe_load(value)
    return name, params


@app.command()
def do(
    calls: Annotated[list[str], typer.Argument(help='Skill calls, e.g. "grasp object=cube".')],
    scene: Annotated[Path | None, typer.Option(help="Scene file (YAML/JSON).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random scene from this seed.")] = None,
    video: Annotated[Path | None, typer.Option(help="Record an mp4.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run skill calls in order on the simulated arm, stopping at the first failure."""
    parsed = [_parse_call(c) for c in calls]
    _run_calls(parsed, _load_scene(scene, seed), video, as_json, "skill calls")


@app.command()
def bench(
    name: Annotated[str, typer.Argument(help=f"Benchmark to run: {', '.join(BENCHMARKS)}.")],
    ticks: Annotated[int, typer.Option(min=1000, help="Control ticks to time (control).")] = 20000,
    episodes: Annotated[int, typer.Option(min=1, help="Episodes per skill (skills).")] = 100,
    skills: Annotated[
        str | None, typer.Option(help="Comma-separated skills to run (skills).")
    ] = None,
    backend: Annotated[str, typer.Option(help="Simulator backend.")] = "mujoco",
    jobs: Annotated[int | None, typer.Option(min=1, help="Worker processes.")] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per task (tasks).")] = 3,
    repeats: Annotated[int, typer.Option(min=1, help="Trials per measurement (server).")] = 3,
    planner: Annotated[str, typer.Option(help="Planner (tasks): symbolic or llm.")] = "symbolic",
    tasks: Annotated[str | None, typer.Option(help="Comma-separated tasks (tasks).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for randomised benchmarks.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run a benchmark and print its figures."""
    if name not in BENCHMARKS:
        _fail(f"unknown benchmark {name!r}; available: {', '.join(BENCHMARKS)}", code=2)
    if backend != "mujoco":
        _fail(f"backend {backend!r} is not available yet; available: mujoco", code=2)
    if name == "control":
        from hw.benchmarks import control

        result = control.run(ticks=ticks, seed=seed)
    elif name == "skills":
        result = _bench_skills(episodes, seed, skills, jobs)
    elif name == "server":
        from hw.benchmarks import server as server_bench

        result = server_bench.run(repeats)
    else:
        result = _bench_tasks(seeds, planner, tasks, jobs)
    if as_json:
        print(json.dumps(result))
        return
    table = RichTable(title=f"bench {name}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, str(value))
    Console().print(table)


def _with_progress(description: str, work):
    """Run ``work(progress)`` under a progress bar on stderr; progress(done, total)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(description, total=None)
        return work(lambda done, total: bar.update(task, completed=done, total=total))


def _bench_skills(episodes: int, seed: int, skills: str | None, jobs: int | None) -> dict:
    from skills import bench

    names = [s.strip() for s in skills.split(",")] if skills else None
    try:
        return _with_progress(
            "skill episodes", lambda progress: bench.run(episodes, seed, names, jobs, progress)
        )
    except ValueError as exc:
        _fail(str(exc), code=2)


def _bench_tasks(seeds: int, planner: str, tasks: str | None, jobs: int | None) -> dict:
    from planners import bench

    if planner not in PLANNERS:
        _fail(f"unknown planner {planner!r}; available: {', '.join(PLANNERS)}", code=2)
    names = [t.strip() for t in tasks.split(",")] if tasks else None
    try:
        return _with_progress(
            "task episodes", lambda progress: bench.run(seeds, planner, names, jobs, progress)
        )
    except KeyError as exc:
        _fail(str(exc.args[0]), code=2)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
