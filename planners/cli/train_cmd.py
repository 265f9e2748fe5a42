"""`skillstack collect SKILL`: record expert demonstrations into a robomimic-style HDF5 file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from planners.cli.bench_cmd import _with_progress
from planners.cli.common import app, fail


@app.command()
def collect(
    skill: Annotated[str, typer.Argument(help="Skill to demonstrate (grasp, place).")],
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to record.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the random scenes.")] = 0,
    out: Annotated[Path, typer.Option(help="Folder for <skill>.hdf5.")] = Path("data"),
    jobs: Annotated[int | None, typer.Option(min=1, help="Worker processes.")] = None,
) -> None:
    """Run the scripted skill as the expert on random scenes and save the demonstrations."""
    from skills.training import collect as collecting
    from skills.training.dataset import DatasetError, open_dataset

    if skill not in collecting.COLLECTABLE_SKILLS:
        fail(
            f"cannot collect {skill!r}; collectable skills: "
            f"{', '.join(collecting.COLLECTABLE_SKILLS)}",
            code=2,
        )
    start = time.perf_counter()
    try:
        path = _with_progress(
            f"{skill} demonstrations",
            lambda progress: collecting.collect(
                skill, episodes, seed, out, jobs=jobs or collecting.DEFAULT_JOBS, progress=progress
            ),
        )
        reader = open_dataset(path, skill)
    except (ValueError, DatasetError, OSError) as exc:
        fail(str(exc))
    seconds = time.perf_counter() - start
    demos = reader.episodes(successful_only=False)
    wins = sum(e.success for e in demos)
    samples = sum(e.num_samples for e in demos)
    print(
        f"collected {len(demos)} {skill} episodes ({wins} successful, {samples} samples) "
        f"→ {path} in {seconds:.1f} s"
    )
