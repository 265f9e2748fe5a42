# Over 400 lines: one subcommand per benchmark, each with only its own options.
"""`skillstack bench NAME`: the benchmarks, printed as a table or one JSON object."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable
from typer.core import TyperGroup

from skillstack.planners.cli.common import (
    ARM_HELP,
    PLANNERS,
    SKILL_IMPL_HELP,
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
    err,
    fail,
    make_planner,
    set_llm_options,
    use_skill_impls,
)
from skillstack.planners.cli.executor_options import Executor, RayAddress, executor_config
from skillstack.planners.cli.executor_options import Jobs as EpisodeJobs
from skillstack.planners.cli.output import print_json
from skillstack.planners.cli.run_cmd import load_calibrations

BENCHMARKS = (
    "control",
    "skills",
    "tasks",
    "server",
    "calibration",
    "perception",
    "parity",
    "hil",
    "faults",
    "throughput",
)

# `bench faults`: each area of the fault matrix (issue 17) and the module that measures it.
# Each module's ``run(small, seed)`` returns one entry per criterion: {"fault", "criterion",
# "trials", "worst", "limit", "unit", "passed"}.
FAULT_AREAS = {
    "filter": "skillstack.hw.benchmarks.faults_filter",
    "server": "skillstack.hw.benchmarks.faults_server",
    "sensors": "skillstack.skills.fault_bench_sensors",
    "input": "skillstack.planners.faults_input",
}


class _BenchGroup(TyperGroup):
    """``bench NAME``: an unknown NAME is one line listing the benchmarks (exit 2)."""

    def resolve_command(self, ctx, args):
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            fail(f"unknown benchmark {args[0]!r}; available: {', '.join(BENCHMARKS)}", code=2)
        return super().resolve_command(ctx, args)


bench_app = typer.Typer(
    cls=_BenchGroup,
    help="Run a benchmark and print its figures (a table, or one JSON object with --json).",
    no_args_is_help=True,
)
app.add_typer(bench_app, name="bench")

# The options several benchmarks share, declared once.
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
ControlRate = Annotated[
    float | None,
    typer.Option(
        "--control-rate",
        help="Control ticks per simulated second (default: the arm's own, 1000 for the Panda). "
        "A lower rate (250, 100 ...) runs several 1 ms physics steps per tick: faster to "
        "simulate, same physics, coarser control. Reported as control_rate_hz.",
    ),
]
Seed = Annotated[int, typer.Option(help="Seed of the first randomised episode.")]
Jobs = Annotated[
    int | None, typer.Option("--jobs", "-j", min=1, help="Worker processes (default: every core).")
]
Episodes = Annotated[int, typer.Option(min=1, help="Episodes per skill.")]
Seeds = Annotated[int, typer.Option(min=1, help="Seeds per task.")]
SkillNames = Annotated[str | None, typer.Option(help="Comma-separated skills (default: all).")]
TaskNames = Annotated[str | None, typer.Option(help="Comma-separated tasks (default: all).")]
Backend = Annotated[str, typer.Option(help="Simulator backend: mujoco or pybullet.")]
Arm = Annotated[str, typer.Option(help=ARM_HELP)]
SkillImpls = Annotated[list[str] | None, typer.Option("--skill-impl", help=SKILL_IMPL_HELP)]
Calibration = Annotated[Path | None, typer.Option(help="Camera calibration file.")]


Plot = Annotated[
    Path | None,
    typer.Option(help="Also draw the figure to this .png/.svg/.pdf file (see bench_plots)."),
]


def _check_control_rate(rate: float | None) -> None:
    """A usage error (exit 2) for a control rate that is not whole physics steps per tick."""
    if rate is not None:
        from skillstack.hw.sim.timing import check_control_rate

        try:
            check_control_rate(rate)
        except ValueError as exc:
            fail(f"--control-rate: {exc}", code=2)


def _check_plot(plot: Path | None) -> None:
    """Refuse a plot file of an unknown format before the benchmark runs (exit 2)."""
    if plot is not None and plot.suffix.lower() not in (".png", ".svg", ".pdf"):
        fail(f"--plot takes a .png, .svg or .pdf file, got {plot.name[:80]!r}", code=2)


def _emit(name: str, result: dict, as_json: bool, plot: Path | None = None) -> None:
    """Print ``result`` (one JSON object, or aligned tables), then draw ``plot``."""
    if as_json:
        print_json(result)
    else:
        console = Console()
        for table in _tables(name, result):
            console.print(table)
    if plot is not None:
        from skillstack.planners.bench_plots import plot_result

        try:
            written = plot_result(name, result, plot)
        except (OSError, ValueError) as exc:
            fail(f"could not write the plot: {str(exc)[:300]}")
        err.print(f"plot written to {written}", soft_wrap=True)


PLOT_ONLY = {"particle_landings"}  # for --plot and --json, not a table column


def _tables(name: str, result: dict) -> list[RichTable]:
    """One table of the scalar figures, and one per section (a row per skill, task...)."""
    figures = RichTable(title=f"bench {name}")
    figures.add_column("figure")
    figures.add_column("value", justify="right")
    tables = [figures]
    for key, value in result.items():
        if key.endswith("_histogram"):  # for --plot and --json, not a table
            continue
        if not isinstance(value, dict):
            figures.add_row(key, _cell(value))
        elif value and all(isinstance(v, dict) for v in value.values()):
            columns = [
                k for k in dict.fromkeys(k for v in value.values() for k in v) if k not in PLOT_ONLY
            ]
            section = RichTable(title=key)
            section.add_column("")
            for column in columns:
                section.add_column(column, justify="right", overflow="fold")
            for row, entry in value.items():
                section.add_row(row, *(_cell(entry.get(c, "")) for c in columns))
            tables.append(section)
        elif value:
            section = RichTable(title=key)
            section.add_column("")
            section.add_column("value", justify="right", overflow="fold")
            for row, entry in value.items():
                section.add_row(str(row), _cell(entry))
            tables.append(section)
    return tables


def _cell(value) -> str:
    """A table cell: numbers as they are, short lists inline, mappings as ``k=v`` pairs."""
    if isinstance(value, dict):
        if "edges_us" in value or len(value) > 8:
            return f"({len(value)} entries; --json has them)"
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        if len(value) > 6:
            return f"[{len(value)} values]"
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return "-" if value is None else str(value)


def _names(text: str | None) -> list[str] | None:
    return [n.strip() for n in text.split(",")] if text else None


@bench_app.command("control")
def bench_control(
    ticks: Annotated[int, typer.Option(min=1000, help="Control ticks to time.")] = 20000,
    seed: Seed = 0,
    as_json: Json = False,
    plot: Plot = None,
) -> None:
    """The cost of one 1 kHz control tick against a bare MuJoCo step."""
    _check_plot(plot)
    from skillstack.hw.benchmarks import control

    _emit("control", control.run(ticks=ticks, seed=seed), as_json, plot)


@bench_app.command("throughput")
def bench_throughput(
    episodes: Annotated[
        int, typer.Option(min=1, help="Episodes of each skill (twice that, at least 4, to scale).")
    ] = 5,
    env_steps: Annotated[int, typer.Option(min=10, help="Steps of each gymnasium env.")] = 500,
    ticks: Annotated[int, typer.Option(min=1000, help="Control ticks to time.")] = 10000,
    workers: Annotated[
        str | None,
        typer.Option(help="Worker counts to scale over, e.g. 1,2 (default: 1, 2, every core)."),
    ] = None,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray/--no-ray",
            help="Also time the Ray executor against the local one on this machine (when Ray "
            "is installed; it starts a local Ray instance).",
        ),
    ] = True,
    seed: Seed = 0,
    control_rate: ControlRate = None,
    as_json: Json = False,
) -> None:
    """How fast the simulation runs: skills' real-time factor, env steps/s, loop, scaling."""
    from skillstack.skills import throughput

    _check_control_rate(control_rate)
    if control_rate is not None and (control_rate / 20.0) % 1 > 1e-9:  # the envs' policy rate
        fail(f"--control-rate: {control_rate:g} Hz is not a multiple of the envs' 20 Hz", code=2)
    counts = None
    if workers:
        try:
            counts = sorted({int(w) for w in workers.split(",")})
        except ValueError:
            fail(f"--workers takes whole numbers like 1,2; got {workers[:40]!r}", code=2)
        if counts[0] < 1:
            fail("--workers: every count must be at least 1", code=2)
    result = _with_progress(
        "throughput",
        lambda progress: throughput.run(
            episodes=episodes,
            env_steps=env_steps,
            ticks=ticks,
            seed=seed,
            workers=counts,
            progress=progress,
            control_rate_hz=control_rate,
            ray=ray,
        ),
    )
    _emit("throughput", result, as_json)


@bench_app.command("skills")
def bench_skills(
    episodes: Episodes = 100,
    skills: SkillNames = None,
    backend: Backend = "mujoco",
    arm: Arm = "panda",
    jobs: EpisodeJobs = None,
    executor: Executor = "local",
    ray_address: RayAddress = None,
    seed: Seed = 0,
    skill_impl: SkillImpls = None,
    control_rate: ControlRate = None,
    as_json: Json = False,
    plot: Plot = None,
) -> None:
    """Each skill's success rate on seeded random scenes, judged on the simulator's truth."""
    _check_plot(plot)
    _check_control_rate(control_rate)
    check_backend(backend)
    check_arm(arm)
    config = executor_config(executor, jobs, ray_address)
    use_skill_impls(skill_impl)
    from skillstack.skills import bench
    from skillstack.skills.parallel import ExecutorUnavailable

    try:
        result = _with_progress(
            "skill episodes",
            lambda progress: bench.run(
                episodes,
                seed,
                _names(skills),
                jobs,
                progress,
                arm=arm,
                backend=backend,
                skill_impls=skill_impl,
                executor=config.executor,
                ray_address=config.ray_address,
                control_rate_hz=control_rate,
            ),
        )
    except ValueError as exc:
        fail(str(exc), code=2)
    except ExecutorUnavailable as exc:
        fail(str(exc))
    _emit("skills", result, as_json, plot)


@bench_app.command("tasks")
def bench_tasks(
    seeds: Seeds = 3,
    planner: Annotated[str, typer.Option(help="Planner: symbolic or llm.")] = "symbolic",
    tasks: TaskNames = None,
    jobs: EpisodeJobs = None,
    executor: Executor = "local",
    ray_address: RayAddress = None,
    arm: Arm = "panda",
    backend: Backend = "mujoco",
    perception: Annotated[
        str, typer.Option(help="World model: ground_truth, declared or camera.")
    ] = "ground_truth",
    skill_impl: SkillImpls = None,
    calibration: Calibration = None,
    as_json: Json = False,
    plot: Plot = None,
    base_url: BaseUrl = None,
    model: Model = None,
    llm_timeout: LlmTimeout = None,
    no_tools: NoTools = False,
    llm_log: LlmLog = None,
    llm_record: LlmRecord = None,
    llm_replay: LlmReplay = None,
) -> None:
    """The task suite: instructions planned and executed, judged on the goal in the final world."""
    _check_plot(plot)
    from skillstack.hw.sim.backends import make_sim
    from skillstack.planners import bench
    from skillstack.planners.cli.run_cmd import PERCEPTIONS
    from skillstack.skills.parallel import ExecutorUnavailable

    check_backend(backend)
    check_arm(arm)
    config = executor_config(executor, jobs, ray_address)
    if perception not in PERCEPTIONS:
        fail(f"unknown perception {perception!r}; available: {', '.join(PERCEPTIONS)}", code=2)
    if planner not in PLANNERS:
        fail(f"unknown planner {planner!r}; available: {', '.join(PLANNERS)}", code=2)
    set_llm_options(base_url, model, llm_timeout, no_tools, llm_log, llm_record, llm_replay)
    if planner == "llm":
        make_planner("llm")  # a missing model or a bad option: one line before any work
    if calibration is not None and perception != "camera":
        fail("--calibration applies to bench tasks --perception camera", code=2)
    use_skill_impls(skill_impl)
    calibrations = load_calibrations(calibration, perception)
    try:
        result = _with_progress(
            "task episodes",
            lambda progress: bench.run(
                seeds,
                planner,
                _names(tasks),
                jobs,
                progress,
                arm=arm,
                perception=perception,
                backend=backend,
                skill_impls=skill_impl,
                calibrations=calibrations,
                make_sim=make_sim,
                executor=config.executor,
                ray_address=config.ray_address,
            ),
        )
    except KeyError as exc:
        fail(str(exc.args[0]), code=2)
    except ExecutorUnavailable as exc:
        fail(str(exc))
    _emit("tasks", result, as_json, plot)


@bench_app.command("server")
def bench_server(
    repeats: Annotated[int, typer.Option(min=1, help="Trials per measurement.")] = 3,
    as_json: Json = False,
) -> None:
    """The robot server: late ticks under load, silence and e-stop latency, round trips."""
    from skillstack.hw.benchmarks import server as server_bench
    from skillstack.skills.jobs import SkillJobs

    skill_jobs = SkillJobs()
    result = server_bench.run(repeats, run_skill=skill_jobs.run, observe=skill_jobs.observe)
    _emit("server", result, as_json)


@bench_app.command("calibration")
def bench_calibration(seed: Seed = 0, as_json: Json = False) -> None:
    """Hand-eye calibration on synthetic images against the cameras' true poses."""
    from skillstack.hw.benchmarks import calibration

    result = _with_progress("calibration", lambda progress: calibration.run(seed, progress))
    _emit("calibration", result, as_json)


@bench_app.command("perception")
def bench_perception(
    episodes: Annotated[int, typer.Option(min=1, help="Random scenes to detect.")] = 100,
    seeds: Seeds = 3,
    tasks: TaskNames = None,
    jobs: Jobs = None,
    seed: Seed = 0,
    calibration: Calibration = None,
    as_json: Json = False,
) -> None:
    """Camera perception: detection rate and pose error, and tasks through the cameras."""
    result = _bench_perception(
        episodes, seed, seeds, tasks, jobs, load_calibrations(calibration, "camera")
    )
    _emit("perception", result, as_json)


@bench_app.command("parity")
def bench_parity(
    episodes: Episodes = 100,
    skills: SkillNames = None,
    jobs: Jobs = None,
    seed: Seed = 0,
    as_json: Json = False,
    plot: Plot = None,
) -> None:
    """The same seeded skill episodes on MuJoCo and PyBullet, success compared."""
    _check_plot(plot)
    from skillstack.skills import parity

    try:
        result = _with_progress(
            "parity episodes (both backends)",
            lambda progress: parity.run(episodes, seed, _names(skills), jobs, progress),
        )
    except ValueError as exc:
        fail(str(exc), code=2)
    _emit("parity", result, as_json, plot)


@bench_app.command("hil")
def bench_hil(
    seeds: Seeds = 3,
    tasks: TaskNames = None,
    host: Annotated[
        str, typer.Option(help="Loopback address franky-sim binds for each episode.")
    ] = "127.0.0.1",
    as_json: Json = False,
) -> None:
    """Tasks over franky-sim (the real libfranka protocol), judged on its own MuJoCo state."""
    _emit("hil", _bench_hil(seeds, tasks, host), as_json)


@bench_app.command("faults")
def bench_faults(
    small: Annotated[
        bool, typer.Option("--small", help="The quick version CI runs (fewer trials).")
    ] = False,
    areas: Annotated[
        str | None,
        typer.Option(help=f"Comma-separated areas (default: all): {', '.join(FAULT_AREAS)}."),
    ] = None,
    seed: Seed = 0,
    as_json: Json = False,
) -> None:
    """The fault matrix: each injected fault class, its trials, worst case and pass/fail."""
    import importlib
    import time

    chosen = _names(areas) or list(FAULT_AREAS)
    unknown = [a for a in chosen if a not in FAULT_AREAS]
    if unknown:
        fail(f"unknown area {unknown[0][:40]!r}; areas: {', '.join(FAULT_AREAS)}", code=2)
    faults: dict[str, dict] = {}
    t0 = time.perf_counter()

    def measure(progress) -> None:
        for i, area in enumerate(chosen):
            progress(i, len(chosen))
            module = importlib.import_module(FAULT_AREAS[area])
            for entry in module.run(small=small, seed=seed):
                key = entry["fault"]  # a fault judged by several criteria: one entry each
                if key in faults:
                    key = f"{entry['fault']} ({entry['criterion']})"
                faults[key] = {"area": area, **entry}
        progress(len(chosen), len(chosen))

    _with_progress("fault classes", measure)
    passed = sum(f["passed"] for f in faults.values())
    result = {
        "faults": faults,
        "passed": passed,
        "failed": len(faults) - passed,
        "small": small,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if as_json:
        print_json(result)
    else:
        table = RichTable(title="bench faults" + (" (small)" if small else ""))
        for column in ("fault", "criterion", "trials", "worst", "limit", ""):
            table.add_column(column, justify="right" if column in ("trials", "worst") else "left")
        for name, f in faults.items():
            verdict = "[green]pass[/]" if f["passed"] else "[red]FAIL[/]"
            worst = f"{f['worst']:.4g} {f['unit']}"
            limit = f"{f['limit']:.4g} {f['unit']}"
            table.add_row(name, f["criterion"], str(f["trials"]), worst, limit, verdict)
        Console().print(table)
    if result["failed"]:
        raise typer.Exit(1)


def _with_progress(description: str, work):
    """Run ``work(progress)`` under a progress bar on stderr; ``progress(done, total)``, or
    ``progress(done, total, stage)`` to rename the bar for a new stage of the work."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        "eta",
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int, stage: str | None = None) -> None:
            bar.update(task, completed=done, total=total, description=stage or description)

        return work(update)


def _bench_hil(seeds: int, tasks: str | None, host: str) -> dict:
    from skillstack.hw.sim.franky_workcell import (
        INSTALL_HINT,
        FrankySimWorkcell,
        franky_sim_available,
    )
    from skillstack.planners import bench_hil

    if not franky_sim_available():
        fail(f"bench hil needs franky-sim: {INSTALL_HINT}", code=2)
    rig = bench_hil.HilRig(workcell=FrankySimWorkcell, arm=_franka_for_franky_sim)
    names = [t.strip() for t in tasks.split(",")] if tasks else None
    try:
        return _with_progress(
            "franky-sim episodes (real time)",
            lambda progress: bench_hil.run(rig, seeds, names, host, progress=progress),
        )
    except KeyError as exc:
        fail(str(exc.args[0]), code=2)


def _bench_perception(
    episodes: int,
    seed: int,
    seeds: int,
    tasks: str | None,
    jobs: int | None,
    calibrations: dict | None = None,
) -> dict:
    from skillstack.hw.sim.backends import make_sim
    from skillstack.hw.sim.mujoco.render import rendering_available
    from skillstack.planners import bench_perception
    from skillstack.planners.tasks import get_task

    ok, reason = rendering_available()
    if not ok:
        fail(f"bench perception needs offscreen rendering: {reason}", code=2)
    names = tuple(t.strip() for t in tasks.split(",")) if tasks else bench_perception.TASK_SUBSET
    try:
        for n in names:
            get_task(n)
    except KeyError as exc:
        fail(str(exc.args[0]), code=2)
    return _with_progress(
        "perception episodes",
        lambda progress: bench_perception.run(
            episodes, seed, seeds, names, jobs, progress, calibrations, make_sim=make_sim
        ),
    )


def _franka_for_franky_sim(host: str, model: str):
    """The Franka driver as `bench hil` connects it to franky-sim (no real-time kernel)."""
    from skillstack.hw.factory import make_robot

    return make_robot("franka", host=host, options={"model": model, "realtime_config": "ignore"})
