"""`skillstack bench perception`: how well the cameras see the scene, and what that costs.

Two parts, both seeded:

1. Detection: ``episodes`` random scenes (`robot.scene.random_scene`, every kind, 3-5
   objects), the arm at home; the scene camera's frame goes through `CameraPerception`
   and every declared object's estimate is compared with the simulator's ground truth:
   detected or not, centre error (mm), size error (mm, per dimension), yaw error (boxes,
   degrees, modulo their symmetry) and kind.
2. Tasks: a subset of the task suite (`TASK_SUBSET`) runs through `planners.bench` twice on
   the same seeds, with ground-truth observations and with camera perception; success is
   judged on ground truth both times.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from skillstack.planners.bench import SimFactory

TASK_SUBSET = ("pick_cube", "cube_in_bowl", "pour", "stack_two", "cube_on_plate")
KINDS = ("box", "cylinder", "cup", "bowl", "plate")


def _yaw_error_deg(yaw_est: float, yaw_true: float, sx: float, sy: float) -> float:
    """Box yaw error modulo pi (modulo pi/2 for a near-square top)."""
    period = math.pi / 2 if abs(sx - sy) < 0.005 else math.pi
    d = (yaw_est - yaw_true) % period
    return math.degrees(min(d, period - d))


def _size_error_mm(kind: str, est, true, yaw_est: float, yaw_true: float) -> float:
    """Largest per-dimension size error; a box's x/y swap with a quarter turn."""
    est, true = list(est), list(true)
    if len(est) != len(true):  # seen as box but round, or the reverse: counted as wrong kind
        return float("nan")
    if kind == "box":
        d = (yaw_est - yaw_true) % math.pi
        if math.pi / 4 < d < 3 * math.pi / 4:
            est[0], est[1] = est[1], est[0]
    return 1000 * max(abs(a - b) for a, b in zip(est, true, strict=True))


def detection_episode(
    seed: int, calibrations: dict | None = None, *, make_sim: SimFactory
) -> list[dict]:
    """One random scene: per declared object, what perception got right (worker process),
    judged on the simulator's truth (its MuJoCo robot, built by ``make_sim``)."""
    from skillstack.robot.scene import random_scene
    from skillstack.skills.perceive import CameraPerception

    rng = np.random.default_rng(seed)
    scene = random_scene(seed, n_objects=int(rng.integers(3, 6)), kinds=KINDS)
    rows = []
    with make_sim("mujoco", scene, arm="panda") as robot:
        perception = CameraPerception(robot, cameras=("scene",), calibrations=calibrations)
        world = perception.observe()
        for obj in scene.objects:
            true = robot.object_pose(obj.name).position
            est = world.objects[obj.name]
            det = perception.report.detections.get(obj.name)
            row: dict[str, object] = {"kind": obj.kind, "detected": det is not None}
            if det is not None:
                row["position_error_mm"] = 1000 * float(
                    np.linalg.norm(np.asarray(est.position) - true)
                )
                row["size_error_mm"] = _size_error_mm(
                    obj.kind, det.size, obj.size, det.yaw, obj.yaw
                )
                row["kind_correct"] = det.kind == obj.kind
                if obj.kind == "box":
                    row["yaw_error_deg"] = _yaw_error_deg(det.yaw, obj.yaw, *obj.size[:2])
            rows.append(row)
    return rows


def run(
    episodes: int = 20,
    seed: int = 0,
    task_seeds: int = 2,
    tasks: tuple[str, ...] = TASK_SUBSET,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    calibrations: dict | None = None,
    *,
    make_sim: SimFactory,
) -> dict:
    """Both parts; the JSON-ready result (contract fields: ``detection_rate``,
    ``position_error_mm_median``). ``calibrations`` (camera name -> `CameraCalibration`)
    replace the simulated cameras' intrinsics and poses in both parts; ``make_sim`` builds
    the simulated robots (`skillstack.planners.bench.SimFactory`)."""
    from functools import partial

    from skillstack.planners import bench as task_bench
    from skillstack.skills.parallel import ExecutorConfig, WorkerSetup, ordered_map

    total = episodes + (2 if task_seeds else 0)

    def detected(done: int, _: int) -> None:
        if progress:
            progress(done, total)

    # Spawned: a forked child inherits the parent's OpenGL state and can hang rendering.
    per_scene = ordered_map(
        partial(detection_episode, make_sim=make_sim),
        [(seed + i, calibrations) for i in range(episodes)],
        ExecutorConfig(workers=jobs),
        setup=WorkerSetup(spawn=True),
        progress=detected,
    )
    rows: list[dict] = [row for scene in per_scene for row in scene]
    seen = [r for r in rows if r["detected"]]
    pos = np.array([r["position_error_mm"] for r in seen]) if seen else np.array([np.nan])
    size = np.array([r["size_error_mm"] for r in seen]) if seen else np.array([np.nan])
    size = size[np.isfinite(size)] if np.isfinite(size).any() else size
    yaw = [r["yaw_error_deg"] for r in seen if "yaw_error_deg" in r]
    result = {
        "benchmark": "perception",
        "episodes": episodes,
        "calibrated_cameras": sorted(calibrations or {}),
        "objects": len(rows),
        "detection_rate": round(len(seen) / max(len(rows), 1), 4),
        "position_error_mm_median": round(float(np.median(pos)), 2),
        "position_error_mm_p90": round(float(np.percentile(pos, 90)), 2),
        "size_error_mm_median": round(float(np.median(size)), 2),
        "yaw_error_deg_median": round(float(np.median(yaw)), 2) if yaw else None,
        "kind_accuracy": round(sum(r["kind_correct"] for r in seen) / max(len(seen), 1), 4),
        "per_kind": {
            k: {
                "objects": sum(r["kind"] == k for r in rows),
                "detected": sum(r["kind"] == k for r in seen),
                "position_error_mm_median": round(
                    float(np.median([r["position_error_mm"] for r in seen if r["kind"] == k])), 2
                )
                if any(r["kind"] == k for r in seen)
                else None,
            }
            for k in KINDS
        },
    }
    if task_seeds:
        both = {}
        for i, mode in enumerate(("ground_truth", "camera"), 1):
            cals = calibrations if mode == "camera" else None
            out = task_bench.run(
                task_seeds,
                tasks=list(tasks),
                jobs=jobs,
                perception=mode,
                calibrations=cals,
                make_sim=make_sim,
            )
            both[mode] = out
            if progress:
                progress(episodes + i, total)
        gt, cam = both["ground_truth"], both["camera"]
        result["tasks"] = {
            "tasks": list(tasks),
            "seeds": task_seeds,
            "success_rate_ground_truth": gt["success_rate"],
            "success_rate_camera": cam["success_rate"],
            "per_task_camera": {n: t["success_rate"] for n, t in cam["tasks"].items()},
            "failures_camera": {
                n: t["failures"] for n, t in cam["tasks"].items() if "failures" in t
            },
        }
    return result
