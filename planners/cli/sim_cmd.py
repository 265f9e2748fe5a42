"""`skillstack sim`: drive the arm through Cartesian waypoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable

from skillstack.planners.cli.common import (
    ARM_HELP,
    VIEWER_HELP,
    app,
    check_arm,
    check_backend,
    check_video_path,
    err,
    fail,
    open_video,
    scene_for_options,
    sim_robot_for_options,
)
from skillstack.planners.cli.output import print_json


def _print_tour(legs, title: str) -> None:
    table = RichTable(title=title)
    for col in (
        "target x y z (m)",
        "time (s)",
        "max err (mm)",
        "end err (mm)",
        "end rot (°)",
        "late",
    ):
        table.add_column(col, justify="right")
    for leg in legs:
        rep = leg.tracking
        table.add_row(
            " ".join(f"{v:.2f}" for v in leg.target),
            f"{leg.duration_s:.2f}",
            f"{rep.max_position_error * 1e3:.2f}",
            f"{rep.final_position_error * 1e3:.3f}",
            f"{rep.final_angle_error * 180 / 3.141592653589793:.3f}",
            str(leg.stats.late_ticks),
        )
    Console().print(table)


def _tour_json(legs) -> list[dict]:
    return [
        {
            "target": list(leg.target),
            "duration_s": round(leg.duration_s, 4),
            "max_tracking_error_mm": round(leg.tracking.max_position_error * 1e3, 4),
            "final_position_error_mm": round(leg.tracking.final_position_error * 1e3, 4),
            "final_angle_error_deg": round(leg.tracking.final_angle_error * 57.29577951308232, 4),
            "ticks": leg.stats.ticks,
            "late_ticks": leg.stats.late_ticks,
        }
        for leg in legs
    ]


@app.command()
def sim(
    scene: Annotated[
        Path | None, typer.Option(help="Scene file (YAML/JSON); default scene if omitted.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random scene from this seed (ignored with --scene).")
    ] = None,
    speed: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="Peak end-effector speed, m/s.")
    ] = 0.25,
    realtime: Annotated[
        bool, typer.Option("--realtime", help="Pace the loop to the wall clock.")
    ] = False,
    video: Annotated[
        Path | None, typer.Option(help="Record an mp4 (needs offscreen OpenGL).")
    ] = None,
    viewer: Annotated[bool, typer.Option("--viewer", help=VIEWER_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    arm: Annotated[str, typer.Option(help=ARM_HELP)] = "panda",
    backend: Annotated[str, typer.Option(help="Simulator backend: mujoco or pybullet.")] = (
        "mujoco"
    ),
) -> None:
    """Drive the simulated arm through Cartesian waypoints and print tracking errors."""
    from skillstack.hw.sim.divergence import SimulationDiverged
    from skillstack.hw.sim.tour import run_tour

    arm = check_arm(arm)
    check_backend(backend)
    check_video_path(video)
    scene_obj = scene_for_options(scene, seed)
    with sim_robot_for_options(backend, scene_obj, arm) as robot:
        open_video(robot, video, viewer)
        try:
            legs = run_tour(robot, speed=speed, realtime=realtime)
        except SimulationDiverged as exc:
            fail(str(exc))
        safety = dict(robot.safety.counts)
    if as_json:
        print_json(
            {
                "success": True,
                "scene": scene_obj.name,
                "legs": _tour_json(legs),
                "safety_interventions": safety,
                "video": str(video) if video else None,
            }
        )
        return
    _print_tour(legs, f"Cartesian tour on scene '{scene_obj.name}' at {speed:.2f} m/s")
    if video:
        err.print(f"video written to {video}")
