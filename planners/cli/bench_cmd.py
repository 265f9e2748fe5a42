"""`skillstack bench NAME`: the benchmarks, printed as a table or one JSON object."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable

from planners.cli.common import (
    PLANNERS,
    app,
    err,
    fail,
)

BENCHMARKS = ("control", "skills", "tasks", "server")


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
        fail(f"unknown benchmark {name!r}; available: {', '.join(BENCHMARKS)}", code=2)
    if backend != "mujoco":
        fail(f"backend {backend!r} is not available yet; available: mujoco", code=2)
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
        fail(str(exc), code=2)


def _bench_tasks(seeds: int, planner: str, tasks: str | None, jobs: int | None) -> dict:
    from planners import bench

    if planner not in PLANNERS:
        fail(f"unknown planner {planner!r}; available: {', '.join(PLANNERS)}", code=2)
    names = [t.strip() for t in tasks.split(",")] if tasks else None
    try:
        return _with_progress(
            "task episodes", lambda progress: bench.run(seeds, planner, names, jobs, progress)
        )
    except KeyError as exc:
        fail(str(exc.args[0]), code=2)
