"""`skillstack hw franky-sim`: a simulated Franka workcell behind the real libfranka protocol.

Runs franky-sim (a Franka FR3 in MuJoCo, ``pip install franky-sim franky-control``) with
the objects of a scene file in its world (`hw.sim.franky_workcell.FrankySimWorkcell`), so
anything that speaks to a real Franka — franky, or ``skillstack … --robot franka --host
HOST`` — can be pointed at it from another terminal.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from skillstack.planners.cli.common import fail
from skillstack.planners.cli.robot_cmd import hw_app

STATUS_POLL_S = 0.5  # s between checks that franky-sim's loop is still alive


@hw_app.command("franky-sim")
def franky_sim(
    scene: Annotated[
        str | None,
        typer.Option(help="Scene file, or a bundled scene's name (e.g. workcell, blocks, pour)."),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to serve the arm on (libfranka ports 1337, 1338).")
    ] = "127.0.0.1",
    seed: Annotated[int | None, typer.Option(help="Random scene from this seed.")] = None,
) -> None:
    """Run franky-sim: a Franka FR3 behind libfranka's protocol, with a scene's objects."""
    from skillstack.hw.sim.franky_workcell import (
        INSTALL_HINT,
        FrankySimWorkcell,
        franky_sim_available,
    )
    from skillstack.planners.cli.common import scene_for_options

    if not franky_sim_available():
        fail(f"franky-sim is not installed; {INSTALL_HINT}", code=2)
    # An unknown name or a bad scene exits 2 with one line.
    declared = scene_for_options(Path(scene) if scene is not None else None, seed)
    cell = FrankySimWorkcell(declared, host=host)
    try:
        cell.start()
    except OSError as exc:
        fail(str(exc), code=2)
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        names = ", ".join(declared.names) or "no objects"
        print(f"franky-sim: Franka FR3 with scene {declared.name!r} ({names})", flush=True)
        print(f"connect to {cell.host}", flush=True)
        print(
            f"  franky:     franky.Robot({cell.host!r}, "
            "realtime_config=franky.RealtimeConfig.Ignore), "
            f"franky.Gripper({cell.host!r})\n"
            f"  skillstack: hw.drivers.franka.FrankaRobot({cell.host!r}, model='fr3', "
            "robot_options={'realtime_config': franky.RealtimeConfig.Ignore})\n"
            "Ctrl-C stops",
            flush=True,
        )
        while not done.wait(STATUS_POLL_S):
            if not cell.running:
                fail("franky-sim's simulation loop stopped unexpectedly")
    finally:
        cell.stop()
    print("franky-sim stopped", flush=True)
