"""The ``local`` executor of `skills.parallel`: worker processes on this machine."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any

from skillstack.skills.parallel.config import Progress, WorkerSetup


def local_map(
    fn: Callable[..., Any],
    work: Sequence[tuple],
    workers: int,
    setup: WorkerSetup,
    progress: Progress | None,
) -> Iterator[Any]:
    """``fn(*item)`` of every item on ``workers`` processes, yielded in order; one worker and
    no initializer: in this process (no process to start, nothing to pickle)."""
    if workers == 1 and setup.initializer is None:
        return _in_this_process(fn, work, progress)
    return _in_processes(fn, work, workers, setup, progress)


def _in_this_process(fn: Callable[..., Any], work: Sequence[tuple], progress) -> Iterator[Any]:
    for done, item in enumerate(work, 1):
        result = fn(*item)
        if progress:
            progress(done, len(work))
        yield result


def _in_processes(
    fn: Callable[..., Any], work: Sequence[tuple], workers: int, setup: WorkerSetup, progress
) -> Iterator[Any]:
    context = multiprocessing.get_context("spawn") if setup.spawn else None
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=setup.initializer, initargs=setup.initargs
    )
    try:
        futures = {pool.submit(fn, *item): i for i, item in enumerate(work)}
        yield from _in_order(as_completed(futures), futures, len(work), progress)
    finally:  # an error or an early stop: the items not yet started never start
        pool.shutdown(wait=True, cancel_futures=True)


def _in_order(
    finished: Iterable[Future], index: dict[Future, int], total: int, progress: Progress | None
) -> Iterator[Any]:
    """Results in submission order from futures ``finished`` in completion order (``index``:
    future -> position), each as soon as those before it are; ``progress`` as each finishes."""
    ready: dict[int, Any] = {}
    next_index = 0
    for done, future in enumerate(finished, 1):
        ready[index[future]] = future.result()
        if progress:
            progress(done, total)
        while next_index in ready:
            yield ready.pop(next_index)
            next_index += 1
