"""The ``ray`` executor of `skills.parallel`: one Ray task per work item.

Tasks, not actors. Every item (an episode) builds its own simulation from its seed, so a
Ray worker holds one simulator at a time either way; tasks spread episodes of different
lengths over the cluster by themselves, and a task lost with its node is run again (Ray's
retries) where an actor would take its queue of episodes down with it. Each task asks for
one CPU (``num_cpus=1``): one simulator per CPU. Ray keeps its worker processes from task
to task, so the worker set-up (`WorkerSetup.initializer`: ``--skill-impl`` checkpoints, a
learned policy) runs once per worker process, not once per episode. At most ``workers``
tasks run at once (default: every CPU of the cluster), a few more wait in Ray's queue, and
results come back through ``ray.wait`` as they finish.

Each task carries this process's working directory and its environment variables named in
`FORWARDED_ENV` (the language-model settings, ``MUJOCO_GL``), so relative paths and those
settings mean on a Ray worker what they mean here. On other machines the same paths must
exist: skillstack installed on every node, checkpoints and replay folders at the same path.

Connecting is bounded. ``ray.init`` waits for minutes (and ignores SIGTERM) on an address
where no Ray cluster answers, so an address is first tried over TCP
(`TCP_TIMEOUT_S`), then by a probe process that is killed after `CONNECT_TIMEOUT_S`.
Without an address a local Ray instance is started for the run and stopped after it.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from skillstack.skills.parallel.config import (
    RAY_INSTALL_HINT,
    ExecutorConfig,
    ExecutorUnavailable,
    Progress,
    WorkerSetup,
    default_workers,
)

TCP_TIMEOUT_S = 5.0  # to open a connection to the cluster's head
CONNECT_TIMEOUT_S = 30.0  # for the probe process to connect as a Ray driver
QUEUED_PER_WORKER = 2  # tasks submitted per worker when the workers fill the cluster
FORWARDED_ENV = ("SKILLSTACK_", "OPENAI_", "MUJOCO_GL", "PYOPENGL_PLATFORM")  # name prefixes
ADDRESS_FORMS = "HOST:PORT of the head (`ray start --head` prints it), auto, or ray://HOST:PORT"
TOKEN_HINT = (
    "set RAY_AUTH_MODE=token, with the head's token in ~/.ray/auth_token or RAY_AUTH_TOKEN "
    "(https://docs.ray.io/en/latest/ray-security/token-auth.html)"
)
START_HINT = "start one with `ray start --head`, or leave out --ray-address for a local instance"

# Run in a fresh interpreter: connect as a driver, print the cluster's CPUs, disconnect.
_PROBE = """
import logging, sys
import ray
ray.init(address=sys.argv[1], logging_level=logging.ERROR, log_to_driver=False)
print(int(ray.cluster_resources().get("CPU", 0)))
ray.shutdown()
"""


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        ExecutorUnavailable: Ray is not installed (the message has the pip command).
    """
    try:
        import ray
    except ImportError as exc:
        raise ExecutorUnavailable(
            f"--executor ray needs Ray, which is not installed ({exc}): {RAY_INSTALL_HINT}"
        ) from None
    return ray


def head_endpoint(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a Ray address (``HOST:PORT``, ``ray://HOST:PORT``); None for
    ``auto`` (Ray finds the cluster itself).

    Raises:
        ValueError: an address of another form.
    """
    if address == "auto":
        return None
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--ray-address {address[:80]!r} is not {ADDRESS_FORMS}")
    return host.strip("[]"), int(port)


def check_address(address: str) -> int:
    """Whether a Ray cluster answers at ``address``, within `TCP_TIMEOUT_S` +
    `CONNECT_TIMEOUT_S`; returns its number of CPUs.

    Raises:
        ValueError: a malformed address.
        ExecutorUnavailable: nothing listens there, or what listens is not a Ray cluster
            (or not one this Ray can join), each as one line naming the address.
    """
    endpoint = head_endpoint(address)
    if endpoint is not None:
        try:
            socket.create_connection(endpoint, timeout=TCP_TIMEOUT_S).close()
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise ExecutorUnavailable(
                f"cannot reach a Ray cluster at {address}: {reason} ({START_HINT})"
            ) from None
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE, address],
            capture_output=True,
            text=True,
            timeout=CONNECT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:  # run() has killed the probe
        raise ExecutorUnavailable(
            f"no Ray cluster answered at {address} within {CONNECT_TIMEOUT_S:.0f} s: give the "
            "head's GCS port (6379 unless `ray start --head --port` said otherwise), and run "
            "on a machine of the cluster (`ray start --address HEAD:PORT` there)"
        ) from None
    if probe.returncode != 0:
        if "InvalidAuthToken" in probe.stderr:
            raise ExecutorUnavailable(
                f"the Ray cluster at {address} asks for its token: {TOKEN_HINT}"
            )
        lines = [line for line in probe.stderr.splitlines() if "Error" in line]
        reason = " ".join((lines or probe.stderr.splitlines() or ["no reason given"])[-1].split())
        raise ExecutorUnavailable(f"cannot connect to the Ray cluster at {address}: {reason}")
    return int(probe.stdout.split()[-1])


@dataclass(frozen=True)
class _TaskContext:
    """What every task of one map brings to its Ray worker (see the module)."""

    setup: WorkerSetup
    cwd: str
    env: tuple[tuple[str, str], ...]


_SET_UP: set[str] = set()  # the worker set-ups this Ray worker process has run


def _run_item(fn: Callable[..., Any], context: _TaskContext, item: tuple) -> Any:
    """One work item in a Ray worker process, after the map's set-up (once per process)."""
    os.environ.update(context.env)
    if os.path.isdir(context.cwd):
        os.chdir(context.cwd)
    setup = context.setup
    if setup.initializer is not None:
        key = repr((setup.initializer.__module__, setup.initializer.__qualname__, setup.initargs))
        if key not in _SET_UP:
            setup.initializer(*setup.initargs)
            _SET_UP.add(key)
    return fn(*item)


def _connect(ray: Any, config: ExecutorConfig) -> bool:
    """Start or join Ray for ``config``; True if this call did (and the run must leave)."""
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if config.ray_address is None:
        workers = config.workers or default_workers()
        ray.init(address="local", num_cpus=workers, include_dashboard=False, **quiet)
        return True
    check_address(config.ray_address)
    try:
        ray.init(address=config.ray_address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise ExecutorUnavailable(
            f"cannot connect to the Ray cluster at {config.ray_address}: {reason}"
        ) from None
    return True


@contextmanager
def ray_session(config: ExecutorConfig) -> Iterator[Any]:
    """Ray started or joined for ``config`` (the ``ray`` module), left at the end; maps run
    inside it share it (e.g. to time them without Ray's start-up)."""
    ray = import_ray()
    started = _connect(ray, config)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def ray_map(
    fn: Callable[..., Any],
    work: Sequence[tuple],
    config: ExecutorConfig,
    setup: WorkerSetup,
    progress: Progress | None,
) -> Iterator[Any]:
    """`skills.parallel.ordered_map` on Ray: connects now, returns the results' iterator."""
    ray = import_ray()
    started = _connect(ray, config)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
    except Exception:
        if started:
            ray.shutdown()
        raise
    env = tuple((k, v) for k, v in os.environ.items() if k.startswith(FORWARDED_ENV))
    context = _TaskContext(setup, os.getcwd(), env)
    workers = max(1, config.workers or cpus)
    # As many tasks again wait in Ray's queue, so a CPU that finishes starts the next one at
    # once, not after this process has taken the result (and its caller written it); with
    # fewer workers than CPUs, a queued task would run at once: exactly `workers` then.
    in_flight = QUEUED_PER_WORKER * workers if workers >= cpus else workers
    return _results(ray, fn, work, context, in_flight, progress, started)


def _results(
    ray: Any,
    fn: Callable[..., Any],
    work: Sequence[tuple],
    context: _TaskContext,
    in_flight: int,
    progress: Progress | None,
    started: bool,
) -> Iterator[Any]:
    task = ray.remote(num_cpus=1)(_run_item)
    pending: dict[Any, int] = {}  # object ref -> position
    ready: dict[int, Any] = {}
    submitted = done = next_index = 0
    try:
        while next_index < len(work):
            while submitted < len(work) and len(pending) < in_flight:
                pending[task.remote(fn, context, work[submitted])] = submitted
                submitted += 1
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            ready[pending.pop(ref)] = _get(ray, ref)
            done += 1
            if progress:
                progress(done, len(work))
            while next_index in ready:
                yield ready.pop(next_index)
                next_index += 1
    finally:  # an error or an early stop: nothing keeps running on the cluster
        for ref in pending:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # already finished, or the cluster is gone
                pass
        if started:
            ray.shutdown()


def _get(ray: Any, ref: Any) -> Any:
    """The task's result; its own exception as raised in the task, Ray's losses as one line."""
    from ray.exceptions import RayError, RayTaskError

    try:
        return ray.get(ref)
    except RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, Exception):
            raise cause from exc
        raise
    except RayError as exc:  # a worker or node died, an object was lost
        reason = " ".join(str(exc).split())[:300]
        raise ExecutorUnavailable(f"the Ray cluster lost an episode: {reason}") from exc
