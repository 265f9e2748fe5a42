"""The robot server (next to the hardware) and its network clients.

skillstack serve --robot mujoco                       # terminal 1
skillstack run "put the cube in the bowl" --robot tcp://127.0.0.1:5555   # terminal 2

The server runs skills and observes the world through callables injected by its builder
(`hw.server.jobs`; the skills side is `skills.jobs.SkillJobs`), so ``hw/`` imports nothing
from ``skills/``; `skills.jobs.RemoteArm` is the executive's arm on a server.
"""

import socket


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
