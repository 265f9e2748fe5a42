"""What `skills.parallel` runs on: the executor's configuration, the workers' set-up, errors."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

ExecutorName = Literal["local", "ray"]
EXECUTORS: tuple[str, ...] = get_args(ExecutorName)
RAY_INSTALL_HINT = "pip install 'skillstack[ray]'"
Progress = Callable[[int, int], None]
"""``progress(done, total)``: called as each work item finishes."""


class ExecutorUnavailable(RuntimeError):
    """The chosen executor cannot run here: Ray is not installed, or its cluster is out of
    reach or lost. The message is one line that says what to do."""


@dataclass(frozen=True)
class ExecutorConfig:
    """Where work items run: ``executor`` (`EXECUTORS`), on at most ``workers`` workers
    (None: every core here, or every CPU of the Ray cluster), and for ``ray`` the cluster's
    address (None: a local Ray instance started for the run, and stopped after it).

    Raises:
        ValueError: an unknown executor, fewer than one worker, or an address without Ray.
    """

    executor: str = "local"
    workers: int | None = None
    ray_address: str | None = None

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ValueError(
                f"unknown executor {str(self.executor)[:40]!r}; executors: {', '.join(EXECUTORS)}"
            )
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be at least 1, not {self.workers}")
        if self.ray_address is not None and self.executor != "ray":
            raise ValueError("--ray-address needs --executor ray")


@dataclass(frozen=True)
class WorkerSetup:
    """What each worker process does before its first item: ``initializer(*initargs)``
    (module-level, so it pickles; e.g. installing ``--skill-impl`` implementations), and
    whether local workers are spawned instead of forked (a forked child inherits this
    process's OpenGL and torch thread state, and rendering or torch can then hang)."""

    initializer: Callable[..., Any] | None = None
    initargs: tuple = ()
    spawn: bool = False


def default_workers() -> int:
    """Every core of this machine."""
    return os.cpu_count() or 1
