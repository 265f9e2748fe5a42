"""The options that say where the episodes of `collect`, `eval`, `bench skills` and `bench
tasks` run (`skills.parallel`), declared once for all four."""

from __future__ import annotations

from typing import Annotated

import typer

from skillstack.planners.cli.common import fail

Jobs = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        "-j",
        min=1,
        help="Worker processes (default: every core); with --executor ray, the episodes run at "
        "once (default: every CPU of the cluster).",
    ),
]
Executor = Annotated[
    str,
    typer.Option(
        "--executor",
        help="Where the episodes run: local (worker processes on this machine) or ray (Ray "
        "tasks, see --ray-address; pip install 'skillstack\\[ray]'). Same episodes, seeds and "
        "results either way.",
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        metavar="ADDR",
        help="With --executor ray: the cluster's head as HOST:PORT (what `ray start --head` "
        "prints), auto, or ray://HOST:PORT (default: a local Ray instance for this run).",
    ),
]


def executor_config(executor: str, jobs: int | None, ray_address: str | None):
    """The `skills.parallel.ExecutorConfig` of ``--executor``, ``--jobs``, ``--ray-address``:
    a bad choice exits 2 and Ray not installed exits 1, each with one line, before any work."""
    from skillstack.skills.parallel import ExecutorConfig, ExecutorUnavailable, check_executor

    try:
        config = ExecutorConfig(executor, jobs, ray_address)
        check_executor(config)
    except ValueError as exc:
        fail(str(exc), code=2)
    except ExecutorUnavailable as exc:
        fail(str(exc), code=1)
    return config
