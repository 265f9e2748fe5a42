"""The robot server (next to the hardware) and its network clients.

skillstack serve --robot mujoco                       # terminal 1
skillstack run "put the cube in the bowl" --robot tcp://127.0.0.1:5555   # terminal 2

The server runs skills and observes the world through callables injected by its builder
(`hw.server.jobs`; the skills side is `skills.jobs.SkillJobs`), so ``hw/`` imports nothing
from ``skills/``; `skills.jobs.RemoteArm` is the executive's arm on a server.
"""

import contextlib
import socket
from collections.abc import Iterator

import zmq


def free_port_pair(host: str = "127.0.0.1") -> int:
    """A free port whose successor (the telemetry port) is free too (for tests, benchmarks)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind((host, 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind((host, port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no pair of free ports")


@contextlib.contextmanager
def scratch_context() -> Iterator[zmq.Context]:
    """A zmq context for hand-made sockets (tests, benchmarks), destroyed on the way out.

    Every socket gets LINGER 0, and the context is closed explicitly in the thread that used
    its sockets. Left to the garbage collector, a context whose sockets are collected in the
    same cycle waits for them forever.
    """
    ctx = zmq.Context()
    ctx.setsockopt(zmq.LINGER, 0)
    try:
        yield ctx
    finally:
        ctx.destroy(linger=0)
