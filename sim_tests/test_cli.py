"""The `skillstack` command line, run as a real process: output contracts and exit codes."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from run_cli import json_error, skillstack

from skillstack.hw.sim.mujoco.render import rendering_available

CONTROL_FIELDS = (
    "tick_us_median",
    "tick_us_p99",
    "loop_steps_per_s",
    "bare_mj_steps_per_s",
    "overhead_ratio",
)


def test_sim_json_reports_tracking_for_every_waypoint():
    proc = skillstack("sim", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["success"] is True and len(out["legs"]) == 4
    for leg in out["legs"]:
        assert leg["final_position_error_mm"] < 2.0
        assert leg["final_angle_error_deg"] < 1.0
        assert leg["max_tracking_error_mm"] < 10.0


def test_sim_prints_a_readable_table():
    proc = skillstack("sim", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    assert "max err (mm)" in proc.stdout and "random-1" in proc.stdout


def _png(path) -> np.ndarray:
    import imageio.v3 as iio

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = iio.imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 600 and image.std() > 10  # drawn on
    return image


def test_bench_control_json_contract(tmp_path):
    plot = tmp_path / "ticks.png"
    proc = skillstack("bench", "control", "--json", "--ticks", "2000", "--plot", str(plot))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert sum(out["tick_us_histogram"]["counts"]) == out["ticks"]
    _png(plot)
    assert f"plot written to {plot}" in proc.stderr
    for field in CONTROL_FIELDS:
        assert isinstance(out[field], float) and out[field] > 0, field
    assert out["ticks"] == 2000
    # The loop does strictly more work than a bare step.
    assert out["overhead_ratio"] > 1.0
    assert out["loop_steps_per_s"] < out["bare_mj_steps_per_s"]


def test_human_output_is_tables_and_a_bad_plot_file_is_refused_before_running():
    proc = skillstack("bench", "control", "--ticks", "1000")
    assert proc.returncode == 0, proc.stderr
    assert "tick_us_median" in proc.stdout and "{" not in proc.stdout  # no dict reprs
    refused = skillstack("bench", "control", "--plot", "figure.txt")
    assert refused.returncode == 2 and "no figure" not in refused.stderr
    assert refused.stderr.strip().count("\n") == 0 and ".png, .svg or .pdf" in refused.stderr


def test_short_help_and_log_levels_like_other_tools():
    for args in (["-h"], ["bench", "skills", "-h"], ["dataset", "show", "-h"]):
        proc = skillstack(*args)
        assert proc.returncode == 0 and "Usage:" in proc.stdout and "skillstack" in proc.stdout, (
            args
        )
    bad = skillstack("--log-level", "loud", "skills")
    assert bad.returncode == 2 and "levels: debug, info, warning, error" in bad.stderr
    ok = skillstack("--log-level", "debug", "skills", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (("sim", "--seed", "many", "--json"), 2, "Invalid value for '--seed'"),
        (("sim", "--jsn"), None, "No such option: --jsn"),  # no --json: no object
        (("run", "put the cube on the plate", "--scene", "nowhere", "--json"), 2, "nowhere"),
        (("bench", "skills", "--episodes", "0", "--json"), 2, "episodes"),
        (("--log-level", "loud", "skills", "--json"), 2, "unknown --log-level 'loud'"),
    ],
)
def test_every_json_error_is_one_object_on_stdout(args, code, expected):
    proc = skillstack(*args)
    if code is None:
        assert proc.returncode == 2 and proc.stdout == ""
        (line,) = proc.stderr.strip().splitlines()  # one line, with the way to help
        assert line.startswith(f"error: {expected}") and "--json" in line  # the likely option
        assert line.endswith("(see 'python -m skillstack sim -h')")
        return
    assert proc.returncode == code, proc.stderr[-2000:]
    assert expected in json_error(proc)


def test_bench_faults_reports_one_entry_per_criterion():
    proc = skillstack("bench", "faults", "--small", "--areas", "input", "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["small"] is True and out["failed"] == 0 and out["passed"] == len(out["faults"])
    for name, entry in out["faults"].items():
        assert entry["area"] == "input" and entry["passed"], name
        assert {"criterion", "trials", "worst", "limit", "unit"} <= set(entry)
    from skillstack.planners.faults_input import run

    criteria = {(e["fault"], e["criterion"]) for e in run(small=True)}
    assert {(e["fault"], e["criterion"]) for e in out["faults"].values()} == criteria
    bad = skillstack("bench", "faults", "--areas", "filter,nope")
    assert bad.returncode == 2 and "unknown area 'nope'" in bad.stderr


def test_unknown_benchmark_is_a_one_line_error():
    proc = skillstack("bench", "nope", "--json")
    assert proc.returncode == 2
    json_error(proc)
    assert proc.stderr.strip().splitlines() == [
        "error: unknown benchmark 'nope'; available: "
        "control, skills, tasks, server, calibration, perception, parity, hil, faults, throughput"
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "objects:\n  - {name: a, kind: mug, size: [0.05], pose: [0.5, 0]}\n",
            "unknown kind 'mug'",
        ),
        (
            "objects:\n"
            "  - {name: a, kind: box, size: [0.05, 0.05, 0.05], pose: [0.5, 0.0]}\n"
            "  - {name: b, kind: box, size: [0.05, 0.05, 0.05], pose: [0.52, 0.0]}\n",
            "overlap",
        ),
        (
            "objects:\n  - {name: far, kind: box, size: [0.05, 0.05, 0.05], pose: [1.5, 0]}\n",
            "reach",
        ),
        ("objects: [\n", "YAML"),
    ],
)
def test_bad_scene_exits_2_with_one_line_before_anything_moves(tmp_path, body, expected):
    path = tmp_path / "scene.yaml"
    path.write_text(body)
    proc = skillstack("sim", "--scene", str(path), "--json")
    assert proc.returncode == 2
    json_error(proc)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert expected.lower() in lines[0].lower()


def test_sim_video(tmp_path):
    ok, reason = rendering_available()
    video = tmp_path / "tour.mp4"
    proc = skillstack("sim", "--speed", "1.0", "--video", str(video), "--json")
    if not ok:
        assert proc.returncode == 1
        assert "cannot record" in proc.stderr and "install" in proc.stderr
        pytest.skip(f"offscreen rendering unavailable: {reason}")
    assert proc.returncode == 0, proc.stderr
    assert video.stat().st_size > 10_000


def test_bench_skills_json_contract(tmp_path):
    proc = skillstack(
        "bench", "skills", "--episodes", "1", "--skills", "pour,home", "--json",
        "--plot", str(tmp_path / "skills.png"), timeout=300,
    )  # fmt: skip
    _png(tmp_path / "skills.png")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out["skills"]) == {"pour", "home"}
    # The spill panel's data: where the cup's particles came down, from the truth; at least
    # those the skill counted in the bowl are inside its rim.
    pour = out["skills"]["pour"]
    landings = np.asarray(pour["particle_landings"]).reshape(-1, 2)
    inside = int((np.hypot(*landings.T) <= 1.0).sum())
    assert len(landings) >= 10 and inside >= pour["particles_in_target"] * len(landings) - 1e-9
    for figures in out["skills"].values():
        for field in ("success_rate", "episodes", "ci95", "mean_duration_s", "failures"):
            assert field in figures
        lo, hi = figures["ci95"]
        assert 0.0 <= lo <= figures["success_rate"] <= hi <= 1.0
    assert out["refusals"]["refused_before_motion"] == out["refusals"]["trials"] > 0
    assert out["control_rate_hz"] == 1000.0  # the Panda's own rate unless asked otherwise


def test_bench_skills_at_a_lower_control_rate():
    proc = skillstack(
        "bench", "skills", "--episodes", "1", "--skills", "grasp,home", "--control-rate", "100",
        "--json", timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["control_rate_hz"] == 100.0
    assert all(f["success_rate"] == 1.0 for f in out["skills"].values()), out["skills"]
    bad = skillstack("bench", "skills", "--control-rate", "0", "--json")
    assert bad.returncode == 2 and "--control-rate" in json_error(bad)


def test_bench_throughput_json_contract():
    proc = skillstack(
        "bench", "throughput", "--episodes", "1", "--env-steps", "20", "--ticks", "1000",
        "--workers", "1,2", "--control-rate", "100", "--json", timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["control_rate_hz"] == 100 and out["physics_steps_per_tick"] == 10
    assert set(out["skills"]) == {"grasp", "place", "push", "pour"}
    for figures in out["skills"].values():
        assert figures["real_time_factor"] > 0 and figures["episodes"] == 1
        assert 0.0 <= figures["success_rate"] <= 1.0
    assert all(e["steps_per_s"] > 0 for e in out["envs"].values()) and len(out["envs"]) == 3
    loop_fields = {"tick_us_median", "tick_us_p99", "bare_mj_step_us_median", "overhead_ratio"}
    assert set(out["loop"]) == loop_fields
    scaling = out["scaling"]
    assert scaling["workers"] == [1, 2] and len(scaling["episodes_per_s"]) == 2
    assert scaling["identical_outcomes"] is True  # the same seeds, the same outcomes
    executors = scaling["executors"]  # a local Ray instance against the local executor
    if importlib.util.find_spec("ray") is None:
        assert "pip install 'skillstack[ray]'" in executors["skipped"]
    else:
        assert executors["workers"] == 2 and executors["identical_outcomes"] is True
        assert executors["local_episodes_per_s"] == scaling["episodes_per_s"][1]
        assert executors["ray_episodes_per_s"] > 0 and executors["ray_vs_local"] > 0
        assert executors["ray_cold_episodes_per_s"] > 0 and executors["ray_start_s"] > 0
    bad = skillstack("bench", "throughput", "--workers", "one", "--json")
    assert bad.returncode == 2 and "--workers" in json_error(bad)
    bad = skillstack("bench", "throughput", "--control-rate", "333", "--json")
    assert bad.returncode == 2 and "1000 Hz divided by a whole number" in json_error(bad)
    bad = skillstack("bench", "throughput", "--control-rate", "250", "--json")
    assert bad.returncode == 2 and "multiple of the envs' 20 Hz" in json_error(bad)


def test_do_validates_every_call_before_the_arm_moves():
    proc = skillstack("do", "grasp object=cube", "place object=cube target=ghost", "home", "--json")
    assert proc.returncode == 2 and "no object named" in json_error(proc)  # nothing ran
    assert "step 2 (place): no object named 'ghost'" in proc.stderr
    assert "nothing moved" in proc.stderr and proc.stderr.count("\n") == 1
    bad = skillstack("do", "fly object=cube")
    assert bad.returncode == 2 and "available skills" in bad.stderr


def test_skills_lists_the_library_as_json_schemas():
    proc = skillstack("skills", "--json")
    assert proc.returncode == 0, proc.stderr
    names = {tool["name"] for tool in json.loads(proc.stdout)["skills"]}
    assert {"grasp", "place", "pour", "push", "move_to", "release", "home"} <= names


def test_demo_pours_the_cup_into_the_bowl():
    proc = skillstack("demo", "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["success"] is True
    assert out["instruction"] == "pour the cup into the bowl then put the cup on the plate"
    assert [s["skill"] for s in out["steps"]] == ["grasp", "pour", "place"]
    assert out["steps"][1]["metrics"]["particles_in_target"] >= 0.8


def test_run_json_contract():
    proc = skillstack("run", "put the red cube in the bowl", "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) >= {"success", "instruction", "plan", "steps", "replans", "error"}
    assert out["success"] is True and out["error"] is None and out["replans"] == 0
    assert [c["skill"] for c in out["plan"]] == ["grasp", "place"]
    for step in out["steps"]:
        assert set(step) >= {"skill", "params", "outcome", "duration_s"}


def test_run_refuses_what_it_cannot_read_without_moving():
    proc = skillstack("run", "juggle the bowl", "--json")
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert out["success"] is False and out["steps"] == [] and "sentences start with" in out["error"]


def test_run_with_an_llm_needs_a_model(monkeypatch):
    monkeypatch.delenv("SKILLSTACK_MODEL", raising=False)
    proc = skillstack("run", "pick up the cube", "--planner", "llm")
    assert proc.returncode == 2 and "SKILLSTACK_MODEL" in proc.stderr


def test_bench_tasks_json_contract():
    proc = skillstack(
        "bench", "tasks", "--tasks", "pick_cube,push_left", "--seeds", "1", "--json", timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["success_rate"] == 1.0 and out["planning_ms_median"] < 20.0
    assert set(out["tasks"]) == {"pick_cube", "push_left"}
    for figures in out["tasks"].values():
        assert {"success_rate", "episodes", "replans"} <= set(figures)


def test_bench_server_json_contract():
    proc = skillstack("bench", "server", "--repeats", "1", "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for field in ("late_tick_fraction", "silence_stop_ms", "estop_ticks", "rtt_ms_median"):
        assert field in out
    assert out["late_tick_fraction"] < 0.05 and out["estop_ticks"] <= 2 and out["rtt_ms_median"] < 5
