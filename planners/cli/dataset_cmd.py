"""`skillstack dataset export|show|replay`: a collected demonstration file exported to
LeRobotDataset v3, summarised, or one episode rendered to mp4."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable

from skillstack.planners.cli.common import app, fail
from skillstack.planners.cli.output import print_json

dataset_app = typer.Typer(
    help="Export, summarise or replay a demonstration dataset (HDF5 from `skillstack collect`).",
    no_args_is_help=True,
)
app.add_typer(dataset_app, name="dataset")

DatasetArg = Annotated[Path, typer.Argument(help="The HDF5 demonstration file.")]


def _open(path: Path):
    """The validated dataset, or exit 2 with a one-line reason (missing, not HDF5, invalid)."""
    from skillstack.skills.training.dataset import DatasetError
    from skillstack.skills.training.dataset_reader import open_dataset

    try:
        return open_dataset(path)
    except DatasetError as exc:
        fail(str(exc), code=2)


@dataset_app.command()
def export(
    dataset: DatasetArg,
    out: Annotated[Path, typer.Option(help="Folder for the exported dataset (new or empty).")],
    format: Annotated[str, typer.Option("--format", help="Export format: lerobot.")] = "lerobot",
    include_failed: Annotated[
        bool, typer.Option("--include-failed", help="Also export failed demonstrations.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace OUT if it is not empty.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Write DATASET as a LeRobotDataset v3 (parquet + mp4 + meta) in OUT."""
    from skillstack.skills.training.lerobot_export import (
        FORMATS,
        LeRobotExportError,
        export_lerobot,
    )

    if format not in FORMATS:
        fail(f"unknown format {format!r}; formats: {', '.join(FORMATS)}", code=2)
    reader = _open(dataset)
    try:
        summary = export_lerobot(reader, out, include_failed=include_failed, overwrite=overwrite)
    except LeRobotExportError as exc:
        fail(str(exc), code=2)
    except ImportError as exc:  # pyarrow missing: not the input's fault
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {out}: {exc}")
    left_out = (
        f"{summary.excluded_failed} failed demonstrations left out (--include-failed exports them)"
        if summary.excluded_failed
        else "no demonstrations left out"
    )
    if as_json:
        print_json(
            {
                "out": str(summary.out),
                "format": format,
                "episodes": summary.episodes,
                "frames": summary.frames,
                "fps": summary.fps,
                "tasks": summary.tasks,
                "videos": summary.video_keys,
                "excluded_failed": summary.excluded_failed,
            }
        )
        return
    videos = f", videos {', '.join(summary.video_keys)}" if summary.video_keys else ""
    print(
        f"exported {summary.episodes} episodes ({summary.frames} frames at {summary.fps} fps, "
        f"{len(summary.tasks)} tasks{videos}); {left_out} → {summary.out}"
    )


@dataset_app.command()
def show(
    dataset: DatasetArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Summarise DATASET: episodes, successes, steps, rate, keys with shapes, skill, scenes."""
    from skillstack.skills.training.dataset_view import summarize

    info = summarize(_open(dataset))
    if as_json:
        print_json(info)
        return
    steps = info["steps"]
    rows = [
        ("file", info["path"]),
        ("skill", info["skill"]),
        (
            "episodes",
            f"{info['episodes']} ({info['successful']} successful, {info['failed']} failed)",
        ),
        ("samples", f"{info['samples']} ({info['duration_s']:g} s)"),
        ("steps per episode", f"min {steps['min']}, mean {steps['mean']:g}, max {steps['max']}"),
        ("fps", f"{info['fps']:g} (control {info['control_rate_hz']:g} Hz)"),
        ("seeds", f"{info['seeds'][0]} … {info['seeds'][1]}"),
        ("targets", _counts(info["targets"])),
    ]
    rows += [(f"param {k}", _counts(v)) for k, v in info["params"].items()]
    rows += [(k, "×".join(["T", *map(str, shape)])) for k, shape in info["keys"].items()]
    rows.append(("skillstack", f"{info['skillstack_version']} (format {info['format_version']})"))
    table = RichTable(title=f"dataset {Path(info['path']).name}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for field, value in rows:
        table.add_row(field, str(value))
    Console(width=max(100, Console().width)).print(table)


def _counts(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"


@dataset_app.command()
def replay(
    dataset: DatasetArg,
    out: Annotated[Path, typer.Option(help="The mp4 to write.")],
    episode: Annotated[int, typer.Option(help="Episode index (demo_N), from 0.")] = 0,
    source: Annotated[
        str,
        typer.Option(
            help="images: the stored camera images; sim: replay the recorded joints in "
            "MuJoCo; auto: images when the file has them."
        ),
    ] = "auto",
    camera: Annotated[
        str | None,
        typer.Option(help="Images: scene or wrist (default: the first); sim: a model camera."),
    ] = None,
) -> None:
    """Render one episode of DATASET to an mp4 and print its path."""
    from skillstack.hw.sim.mujoco.render import RenderUnavailable
    from skillstack.skills.training.dataset import DatasetError
    from skillstack.skills.training.dataset_view import SOURCES
    from skillstack.skills.training.dataset_view import replay as render_episode

    if source not in SOURCES:
        fail(f"unknown source {source!r}; sources: {', '.join(SOURCES)}", code=2)
    reader = _open(dataset)
    if not 0 <= episode < len(reader):
        fail(
            f"episode {episode} is out of range: {dataset} has {len(reader)} (0-{len(reader) - 1})",
            code=2,
        )
    try:
        path = render_episode(reader, episode, out, source, camera)  # type: ignore[arg-type]
    except ValueError as exc:
        fail(str(exc), code=2)
    except (RenderUnavailable, DatasetError, OSError) as exc:
        fail(str(exc))
    print(path)
