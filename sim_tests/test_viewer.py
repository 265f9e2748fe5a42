"""MuJoCo's interactive viewer (`hw.sim.mujoco.viewer`): opened on a virtual display (Xvfb),
paced to the wall clock, beside a video; refused in one line where there is no display."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
from run_cli import REPO

XVFB_RUN = shutil.which("xvfb-run")
needs_display = pytest.mark.skipif(
    XVFB_RUN is None, reason="xvfb-run is not installed (Debian: apt-get install xvfb xauth)"
)


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """``args`` in a session of its own, killed whole (Xvfb, python) if it overruns: a plain
    timeout would kill xvfb-run and then wait forever on the pipes its children hold."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(args[-4:])[:200]} ran over {timeout:g} s: {err[-1500:]}")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def _under_xvfb(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return _run(
        [XVFB_RUN, "-a", "-s", "-screen 0 1024x768x24", sys.executable, "-c", code], timeout
    )


@needs_display
def test_a_skill_plays_in_the_viewer_at_wall_clock_speed_beside_a_video(tmp_path):
    video = tmp_path / "grasp.mp4"
    code = textwrap.dedent(
        f"""
        import time
        from skillstack.hw.sim.mujoco.render import MujocoVideoRecorder
        from skillstack.hw.sim.mujoco.robot import MujocoRobot
        from skillstack.hw.sim.mujoco.viewer import LiveViewer, Recorders
        from skillstack.robot.scene import load_scene
        from skillstack.robot.scene.bundled import find_scene
        from skillstack.skills.arm import LocalArm

        VIDEO = {str(video)!r}
        with MujocoRobot(load_scene(find_scene("blocks"))) as robot:
            viewer = LiveViewer(robot.model, robot.data)
            rec = MujocoVideoRecorder(VIDEO, robot.model, robot.data, width=320, height=240)
            robot.recorder = Recorders(viewer, rec)
            t0 = time.perf_counter()
            result = LocalArm(robot).execute("grasp", {{"object": "red_block"}})
            wall = time.perf_counter() - t0
            print(result.success, robot.read().time, wall, viewer.is_running, rec.frame_count)
        """
    )
    proc = _under_xvfb(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    success, sim_s, wall_s, running, frames = proc.stdout.split()[-5:]
    assert success == "True" and running == "True" and int(frames) > 30
    # Paced to the wall clock: the skill took at least its simulated time (plus the
    # outcome held on screen), not the fraction of it an unpaced simulation takes.
    assert float(wall_s) >= 0.95 * float(sim_s)
    assert video.stat().st_size > 10_000  # the video was written beside the viewer


@needs_display
def test_the_grasp_env_renders_human_through_the_viewer():
    code = textwrap.dedent(
        """
        import numpy as np
        import gymnasium
        import skillstack.skills.training.envs  # noqa: F401

        env = gymnasium.make("skillstack/Grasp-v0", render_mode="human")
        env.reset(seed=3)
        for _ in range(5):
            env.step(np.zeros(7, np.float32))
        print(env.unwrapped._viewer.is_running)
        env.close()
        print(env.unwrapped._viewer is None)
        """
    )
    proc = _under_xvfb(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-2:] == ["True", "True"]


def test_without_a_display_the_viewer_is_refused_in_one_line():
    code = textwrap.dedent(
        """
        import gymnasium
        import skillstack.skills.training.envs  # noqa: F401
        from skillstack.hw.sim.mujoco.robot import MujocoRobot
        from skillstack.hw.sim.mujoco.viewer import LiveViewer, ViewerUnavailable
        from skillstack.robot.scene import default_scene

        with MujocoRobot(default_scene()) as robot:
            try:
                LiveViewer(robot.model, robot.data)
            except ViewerUnavailable as exc:
                print(exc)
        try:
            gymnasium.make("skillstack/Grasp-v0", render_mode="human")
        except ViewerUnavailable as exc:
            print(exc)
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO,
        env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2 and all("display" in line and "xvfb-run" in line for line in lines)


@needs_display
def test_do_with_the_viewer_and_a_video_from_the_command_line(tmp_path):
    video = tmp_path / "do.mp4"
    proc = _run(
        [XVFB_RUN, "-a", "-s", "-screen 0 1024x768x24", sys.executable, "-m", "skillstack",
         "do", "grasp object=red_block", "--scene", "blocks", "--viewer", "--video", str(video),
         "--json"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"success": true' in proc.stdout and video.stat().st_size > 10_000


def test_the_viewer_option_without_a_display_is_one_line_and_exit_2():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run(
        [sys.executable, "-m", "skillstack", "run", "pick up the red block", "--scene", "blocks",
         "--viewer"],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and "xvfb-run" in proc.stderr
