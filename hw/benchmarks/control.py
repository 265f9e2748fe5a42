"""`skillstack bench control`: cost of one full control-loop tick against bare `mj_step`.

One tick is everything the loop does at 1 kHz: read the state, sample the Cartesian
trajectory (the stand-in for a skill's target), solve the differential IK, run the safety
filter, send the command and step the physics. The baseline is bare ``mujoco.mj_step`` on
the same compiled model, measured in the same process right before and after the loop, so
the ratio holds on any machine.
"""

from __future__ import annotations

import platform
import time

import mujoco
import numpy as np

from skillstack.hw.sim.mujoco.robot import MujocoRobot
from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.loop import ControlLoop
from skillstack.robot.motion import CartesianMotion
from skillstack.robot.scene import Scene, SceneObject, Table
from skillstack.robot.types import Pose

# A square in a horizontal plane above the table, visited at the default 0.25 m/s peak speed.
WAYPOINTS = ((0.55, 0.15, 0.25), (0.55, -0.15, 0.25), (0.40, -0.15, 0.15), (0.40, 0.15, 0.15))


def bench_scene() -> Scene:
    """Panda + table + one 5 cm box: the scene the benchmark figures refer to."""
    cube = SceneObject("cube", "box", (0.05, 0.05, 0.05), (0.5, 0.0, 0.0), mass=0.1)
    return Scene(Table(), (cube,), name="bench")


def _bare_steps_per_second(
    model: mujoco.MjModel, data: mujoco.MjData, steps: int
) -> tuple[float, float]:
    """Steps per second and median step time (µs) of bare mj_step, in batches of 100."""
    batch = 100
    times = np.empty(steps // batch)
    clock = time.perf_counter
    step = mujoco.mj_step
    for b in range(len(times)):
        t0 = clock()
        for _ in range(batch):
            step(model, data)
        times[b] = (clock() - t0) / batch
    return 1.0 / float(np.mean(times)), float(np.median(times) * 1e6)


def run(ticks: int = 20000, seed: int = 0) -> dict:
    """Run the benchmark and return the figures (see the module docstring)."""
    del seed  # the benchmark is deterministic; accepted for a uniform CLI
    with MujocoRobot(bench_scene()) as robot:
        kin = KinematicModel(robot.arm)
        orientation = robot.ee_pose().quat
        waypoints = [Pose(np.array(p), orientation) for p in WAYPOINTS]
        loop = ControlLoop(robot)

        # Bare baseline on a twin of the loop's model and state, before and after the loop.
        bare_data = mujoco.MjData(robot.model)
        mujoco.mj_copyData(bare_data, robot.model, robot.data)
        bare_before, step_us_before = _bare_steps_per_second(robot.model, bare_data, ticks // 2)

        durations = []
        wall = 0.0
        late = 0
        done_ticks = 0
        while done_ticks < ticks:
            motion = CartesianMotion(kin, robot.capabilities, waypoints, robot.arm.home_q)
            stats = loop.run(
                motion, max_seconds=(ticks - done_ticks) * robot.capabilities.control_dt
            )
            durations.append(stats.tick_seconds)
            wall += float(np.sum(stats.tick_seconds))
            late += stats.late_ticks
            done_ticks += stats.ticks
        tracking = robot.safety.counts.copy()

        mujoco.mj_copyData(bare_data, robot.model, robot.data)
        bare_after, step_us_after = _bare_steps_per_second(robot.model, bare_data, ticks // 2)

    tick_s = np.concatenate(durations)
    bare = 0.5 * (bare_before + bare_after)
    loop_rate = done_ticks / wall
    return {
        "benchmark": "control",
        "tick_us_median": round(float(np.median(tick_s) * 1e6), 2),
        "tick_us_p99": round(float(np.percentile(tick_s, 99) * 1e6), 2),
        "tick_us_max": round(float(np.max(tick_s) * 1e6), 2),
        # Tick times on a log scale, for `bench control --plot`: 40 bins from 1 µs to 100 ms.
        "tick_us_histogram": _histogram(tick_s * 1e6),
        "loop_steps_per_s": round(loop_rate, 1),
        "bare_mj_steps_per_s": round(bare, 1),
        "bare_mj_step_us_median": round(0.5 * (step_us_before + step_us_after), 2),
        "overhead_ratio": round(bare / loop_rate, 3),
        "ticks": done_ticks,
        "late_ticks": late,
        "late_tick_fraction": round(late / done_ticks, 6),
        "control_rate_hz": robot.capabilities.control_rate_hz,
        "safety_interventions": tracking,
        "scene": "panda + table + 5 cm box",
        "mujoco": mujoco.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def _histogram(tick_us: np.ndarray) -> dict[str, list]:
    """Counts of tick times in 40 log-spaced bins from 1 µs to 100 ms (outliers clipped in)."""
    edges = np.logspace(0, 5, 41)
    counts, _ = np.histogram(np.clip(tick_us, edges[0], edges[-1]), bins=edges)
    return {"edges_us": [round(float(e), 3) for e in edges], "counts": counts.tolist()}
