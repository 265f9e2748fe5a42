"""Seeded work items on every core of this machine, or on a Ray cluster, results in order.

`ordered_map` calls ``fn(*item)`` for every item and yields the results in the order of the
items, each as soon as it and those before it are done. Every episode builds its own
simulation from its own seed, so a benchmark's JSON (a collection's file) is the same
whatever ran it and however many workers did; ``progress(done, total)`` is called as each
item finishes, in whatever order they finish. `ExecutorConfig` says where they run (the
commands' ``--executor``, ``--jobs`` and ``--ray-address``):

* ``local`` (the default): worker processes on this machine, one per core
  (`default_workers`). One worker and no initializer: the items run in this process.
* ``ray``: one Ray task per item, on a local Ray instance or on the cluster at
  ``ray_address`` (`skills.parallel.ray_tasks`; the optional extra ``skillstack[ray]``).

Processes, not threads. A skill's per-tick Python holds the GIL (MuJoCo lets go of it only
inside ``mj_step``), so threads contend instead of adding up. Measured on the idle 2-core
development machine, the first 10 grasp episodes of `skillstack bench skills`
(`skills.bench.run_episode`, identical outcomes in all three): one process 1.55 episodes/s,
2 threads 0.78 (slower than one: the GIL changes hands every tick), 2 processes 2.91 (1.9×).

Not to be confused with `skills.executor`, which executes one skill on a robot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from skillstack.skills.parallel.config import (
    EXECUTORS,
    RAY_INSTALL_HINT,
    ExecutorConfig,
    ExecutorUnavailable,
    Progress,
    WorkerSetup,
    default_workers,
)
from skillstack.skills.parallel.local import local_map

__all__ = [
    "EXECUTORS",
    "RAY_INSTALL_HINT",
    "ExecutorConfig",
    "ExecutorUnavailable",
    "Progress",
    "WorkerSetup",
    "check_executor",
    "default_workers",
    "ordered_map",
]

T = TypeVar("T")


def check_executor(config: ExecutorConfig) -> None:
    """Fail before any work if ``config``'s executor cannot run here (Ray not installed).

    Raises:
        ValueError: a Ray address of a form Ray does not take.
        ExecutorUnavailable: ``ray`` asked for and not installed (the message has the pip
            command). An unreachable cluster is found when the run connects (`ordered_map`).
    """
    if config.executor == "ray":
        from skillstack.skills.parallel.ray_tasks import head_endpoint, import_ray

        if config.ray_address is not None:
            head_endpoint(config.ray_address)
        import_ray()


def ordered_map(
    fn: Callable[..., T],
    items: Iterable[tuple],
    config: ExecutorConfig | None = None,
    *,
    setup: WorkerSetup | None = None,
    progress: Progress | None = None,
) -> Iterator[T]:
    """``fn(*item)`` for every item, yielded in the order of ``items`` (see the module).

    ``fn`` and the items must pickle (module-level functions, `functools.partial` of them,
    plain data). Set-up happens now, before this returns: a Ray cluster is reached and any
    error raised here, so nothing has started when it fails. An exception of ``fn`` is raised
    where its result would have been yielded; the items not yet started are cancelled.

    Raises:
        ExecutorUnavailable: Ray asked for and not installed, or its cluster unreachable.
    """
    config = config or ExecutorConfig()
    setup = setup or WorkerSetup()
    work = list(items)
    if config.executor == "ray":
        from skillstack.skills.parallel.ray_tasks import ray_map

        return ray_map(fn, work, config, setup, progress)
    workers = max(1, min(config.workers or default_workers(), len(work) or 1))
    return local_map(fn, work, workers, setup, progress)
