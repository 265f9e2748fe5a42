"""`skillstack bench NAME`: the benchmarks, printed as a table or one JSON object."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable

from skillstack.planners.cli.common import (
    ARM_HELP,
    PLANNERS,
    SKILL_IMPL_HELP,
    app,
    check_arm,
    check_backend,
    err,
    fail,
    use_skill_impls,
)
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
)
BACKEND_BENCHMARKS = ("skills", "tasks")  # the ones that run in either simulator


@app.command()
def bench(
    name: Annotated[str, typer.Argument(help=f"Benchmark to run: {', '.join(BENCHMARKS)}.")],
    ticks: Annotated[int, typer.Option(min=1000, help="Control ticks to time (control).")] = 20000,
    episodes: Annotated[int, typer.Option(min=1, help="Episodes per skill (skills).")] = 100,
    skills: Annotated[
        str | None, typer.Option(help="Comma-separated skills to run (skills).")
    ] = None,
    backend: Annotated[
        str, typer.Option(help="Simulator backend (skills, tasks): mujoco or pybullet.")
    ] = "mujoco",
    arm: Annotated[str, typer.Option(help=ARM_HELP + " (skills, tasks)")] = "panda",
    jobs: Annotated[int | None, typer.Option(min=1, help="Worker processes.")] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per task (tasks).")] = 3,
    repeats: Annotated[int, typer.Option(min=1, help="Trials per measurement (server).")] = 3,
    planner: Annotated[str, typer.Option(help="Planner (tasks): symbolic or llm.")] = "symbolic",
    tasks: Annotated[str | None, typer.Option(help="Comma-separated tasks (tasks).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for randomised benchmarks.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    perception: Annotated[
        str, typer.Option(help="World model for tasks: ground_truth, declared or camera.")
    ] = "ground_truth",
    host: Annotated[
        str, typer.Option(help="Loopback address franky-sim binds for each episode (hil).")
    ] = "127.0.0.1",
    skill_impl: Annotated[
        list[str] | None, typer.Option("--skill-impl", help=SKILL_IMPL_HELP + " (skills, tasks)")
    ] = None,
    calibration: Annotated[
        Path | None,
        typer.Option(help="Camera calibration file (perception; tasks with --perception camera)."),
    ] = None,
) -> None:
    """Run a benchmark and print its figures."""
    if name not in BENCHMARKS:
        fail(f"unknown benchmark {name!r}; available: {', '.join(BENCHMARKS)}", code=2)
    check_backend(backend)
    if backend != "mujoco" and name not in BACKEND_BENCHMARKS:
        fail(
            f"bench {name} runs on mujoco only; --backend applies to: "
            + ", ".join(BACKEND_BENCHMARKS),
            code=2,
        )
    check_arm(arm)
    if skill_impl and name not in ("skills", "tasks"):
        fail("--skill-impl applies to bench skills and bench tasks", code=2)
    use_skill_impls(skill_impl)
    if calibration is not None and name not in ("tasks", "perception"):
        fail("--calibration applies to bench perception and bench tasks --perception camera", 2)
    calibrations = load_calibrations(calibration, "camera" if name == "perception" else perception)
    if name == "control":
        from skillstack.hw.benchmarks import control

        result = control.run(ticks=ticks, seed=seed)
    elif name == "skills":
        result = _bench_skills(episodes, seed, skills, jobs, arm, backend, skill_impl)
    elif name == "parity":
        result = _bench_parity(episodes, seed, skills, jobs)
    elif name == "calibration":
        from skillstack.hw.benchmarks import calibration

        result = _with_progress("calibration", lambda progress: calibration.run(seed, progress))
    elif name == "perception":
        result = _bench_perception(episodes, seed, seeds, tasks, jobs, calibrations)
    elif name == "hil":
        result = _bench_hil(seeds, tasks, host)
    elif name == "server":
        from skillstack.hw.benchmarks import server as server_bench
        from skillstack.skills.jobs import SkillJobs

        skill_jobs = SkillJobs()
        result = server_bench.run(repeats, run_skill=skill_jobs.run, observe=skill_jobs.observe)
    else:
        result = _bench_tasks(
            seeds, planner, tasks, jobs, arm, perception, backend, skill_impl, calibrations
        )
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


def _bench_skills(
    episodes: int,
    seed: int,
    skills: str | None,
    jobs: int | None,
    arm: str = "panda",
    backend: str = "mujoco",
    skill_impls: list[str] | None = None,
) -> dict:
    from skillstack.skills import bench

    names = [s.strip() for s in skills.split(",")] if skills else None
    try:
        return _with_progress(
            "skill episodes",
            lambda progress: bench.run(
                episodes,
                seed,
                names,
                jobs,
                progress,
                arm=arm,
                backend=backend,
                skill_impls=skill_impls,
            ),
        )
    except ValueError as exc:
        fail(str(exc), code=2)


def _bench_hil(seeds: int, tasks: str | None, host: str) -> dict:
    from skillstack.hw.sim.franky_workcell import INSTALL_HINT, franky_sim_available
    from skillstack.planners import bench_hil

    if not franky_sim_available():
        fail(f"bench hil needs franky-sim: {INSTALL_HINT}", code=2)
    names = [t.strip() for t in tasks.split(",")] if tasks else None
    try:
        return _with_progress(
            "franky-sim episodes (real time)",
            lambda progress: bench_hil.run(seeds, names, host, progress=progress),
        )
    except KeyError as exc:
        fail(str(exc.args[0]), code=2)


def _bench_parity(episodes: int, seed: int, skills: str | None, jobs: int | None) -> dict:
    from skillstack.skills import parity

    names = [s.strip() for s in skills.split(",")] if skills else None
    try:
        return _with_progress(
            "parity episodes (both backends)",
            lambda progress: parity.run(episodes, seed, names, jobs, progress),
        )
    except ValueError as exc:
        fail(str(exc), code=2)


def _bench_perception(
    episodes: int,
    seed: int,
    seeds: int,
    tasks: str | None,
    jobs: int | None,
    calibrations: dict | None = None,
) -> dict:
    from skillstack.hw.sim.render import rendering_available
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
            episodes, seed, seeds, names, jobs, progress, calibrations
        ),
    )


def _bench_tasks(
    seeds: int,
    planner: str,
    tasks: str | None,
    jobs: int | None,
    arm: str = "panda",
    perception: str = "ground_truth",
    backend: str = "mujoco",
    skill_impls: list[str] | None = None,
    calibrations: dict | None = None,
) -> dict:
    from skillstack.planners import bench
    from skillstack.planners.cli.run_cmd import PERCEPTIONS

    if perception not in PERCEPTIONS:
        fail(f"unknown perception {perception!r}; available: {', '.join(PERCEPTIONS)}", code=2)

    if planner not in PLANNERS:
        fail(f"unknown planner {planner!r}; available: {', '.join(PLANNERS)}", code=2)
    names = [t.strip() for t in tasks.split(",")] if tasks else None
    try:
        return _with_progress(
            "task episodes",
            lambda progress: bench.run(
                seeds,
                planner,
                names,
                jobs,
                progress,
                arm=arm,
                perception=perception,
                backend=backend,
                skill_impls=skill_impls,
                calibrations=calibrations,
            ),
        )
    except KeyError as exc:
        fail(str(exc.args[0]), code=2)
