"""Figures for `skillstack bench … --plot FILE`: what a person would rather look at than JSON.

* ``skills`` / ``tasks``: success rate per skill (or task) with its 95 % Wilson interval;
  with pour in the run, a second panel shows where its particles came down (the spills);
* ``parity``: MuJoCo and PyBullet success rates side by side, per skill;
* ``control``: the histogram of control-tick times (log scale), with the 1 ms period marked.

Each takes the benchmark's own JSON result, so a saved ``--json`` file can be plotted again
(`plot_result`). matplotlib runs headless (the Agg backend); the format follows the file's
extension (``.png``, ``.svg``, ``.pdf``).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

PLOTTABLE = ("skills", "tasks", "parity", "control")


def plot_result(name: str, result: dict[str, Any], path: str | Path) -> Path:
    """Draw benchmark ``name``'s ``result`` into ``path``; `ValueError` if it has no figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    draw = {"skills": _rates, "tasks": _rates, "parity": _parity, "control": _ticks}.get(name)
    if draw is None:
        raise ValueError(f"bench {name} has no plot; plots: {', '.join(PLOTTABLE)}")
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise ValueError(f"--plot takes a .png, .svg or .pdf file, got {path.name[:80]!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    landings = result.get("skills", {}).get("pour", {}).get("particle_landings")
    if name == "skills" and landings:
        fig, (ax, spill_ax) = plt.subplots(
            1, 2, figsize=(11.5, 4.4), layout="constrained", width_ratios=(1.7, 1)
        )
        _spills(spill_ax, result["skills"]["pour"])
    else:
        fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
    try:
        draw(ax, name, result)
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path


def _rates(ax, name: str, result: dict[str, Any]) -> None:
    from skillstack.skills.bench import wilson_interval

    entries = result[name]
    labels = list(entries)
    rates = [100 * entries[k]["success_rate"] for k in labels]
    lows, highs = [], []
    for k, rate in zip(labels, rates, strict=True):
        ci = entries[k].get("ci95")
        if ci is None:  # tasks: the interval from the episode count
            n = entries[k]["episodes"]
            ci = wilson_interval(round(entries[k]["success_rate"] * n), n)
        lows.append(rate - 100 * ci[0])
        highs.append(100 * ci[1] - rate)
    ax.bar(labels, rates, yerr=[lows, highs], capsize=4, color="#4878a8")
    ax.set_ylim(0, 105)
    ax.set_ylabel("success rate [%] (95 % Wilson interval)")
    episodes = sorted({entries[k]["episodes"] for k in labels})
    ax.set_title(f"bench {name}: success per {name[:-1]} ({'/'.join(map(str, episodes))} episodes)")
    ax.tick_params(axis="x", rotation=30 if len(labels) > 6 else 0)


def _parity(ax, name: str, result: dict[str, Any]) -> None:
    import numpy as np

    skills = list(result["skills"])
    x = np.arange(len(skills))
    for i, backend in enumerate(("mujoco", "pybullet")):
        rates = [100 * result["skills"][s][backend] for s in skills]
        ax.bar(x + (i - 0.5) * 0.38, rates, 0.38, label=backend)
    ax.set_xticks(x, skills)
    ax.set_ylim(0, 105)
    ax.set_ylabel("success rate [%]")
    ax.set_title(
        f"bench parity: the same seeded episodes on both simulators, seed {result['seed']}"
    )
    ax.legend()


def _ticks(ax, name: str, result: dict[str, Any]) -> None:
    hist = result["tick_us_histogram"]
    edges, counts = hist["edges_us"], hist["counts"]
    widths = [b - a for a, b in itertools.pairwise(edges)]
    ax.bar(edges[:-1], counts, widths, align="edge", color="#4878a8")
    ax.set_xscale("log")
    ax.set_yscale("log")
    period_us = 1e6 / result["control_rate_hz"]
    ax.axvline(period_us, color="#c44e52", linestyle="--", label=f"control period {period_us:g} µs")
    ax.axvline(result["tick_us_median"], color="#55a868", label="median")
    ax.set_xlabel("tick time [µs]")
    ax.set_ylabel("ticks")
    ax.set_title(
        f"bench control: {result['ticks']} ticks, median {result['tick_us_median']:g} µs, "
        f"p99 {result['tick_us_p99']:g} µs"
    )
    ax.legend()


def _spills(ax, pour: dict[str, Any]) -> None:
    """Top view of where the poured particles came down, in target radii (rim = circle)."""
    import numpy as np

    xy = np.asarray(pour["particle_landings"], dtype=float).reshape(-1, 2)
    inside = np.hypot(xy[:, 0], xy[:, 1]) <= 1.0
    ax.scatter(*xy[inside].T, s=6, color="#4878a8", label=f"in the target ({inside.sum()})")
    ax.scatter(*xy[~inside].T, s=8, color="#c44e52", label=f"spilled ({(~inside).sum()})")
    t = np.linspace(0.0, 2.0 * np.pi, 200)
    ax.plot(np.cos(t), np.sin(t), color="black", linewidth=1.0)
    reach = max(1.5, float(np.abs(xy).max()) * 1.05) if len(xy) else 1.5
    ax.set_xlim(-reach, reach)
    ax.set_ylim(-reach, reach)
    ax.set_aspect("equal")
    ax.set_xlabel("x [target radii]")
    ax.set_ylabel("y [target radii]")
    ax.set_title(f"pour: {len(xy)} particles landed ({pour['episodes']} episodes)")
    ax.legend(loc="upper right", fontsize="small")
