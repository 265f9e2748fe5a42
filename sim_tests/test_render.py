"""Tests for offscreen rendering and mp4 recording (hw/sim/mujoco/render.py, hw/sim/video.py).

Tests that need a working OpenGL stack skip, with the reason from
``rendering_available()``, only when offscreen rendering is unavailable.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from skillstack.hw.sim import video
from skillstack.hw.sim.mujoco import render

REPO_ROOT = Path(__file__).resolve().parents[1]

PHYSICS_DT_S = 0.001  # 1 kHz, the control-loop rate the recorder must tolerate
VIDEO_FPS = 30
RECORD_DURATION_S = 0.5
# Frames at t = 0, 1/30, ..., 15/30 s: one per grid slot including both ends.
EXPECTED_FRAMES = round(RECORD_DURATION_S * VIDEO_FPS) + 1
FRAME_WIDTH_PX = 320
FRAME_HEIGHT_PX = 240

# A floor, a red falling box and a named camera, small enough to load in ms.
SCENE_MJCF = """
<mujoco model="render_test">
  <option timestep="0.001"/>
  <worldbody>
    <light pos="0 0 3" dir="0 0 -1"/>
    <geom name="floor" type="plane" size="2 2 0.1" rgba="0.7 0.7 0.7 1"/>
    <body name="box" pos="0.45 0 0.3">
      <freejoint/>
      <geom type="box" size="0.05 0.05 0.05" rgba="0.9 0.1 0.1 1"/>
    </body>
    <camera name="front" pos="1.5 0 0.6" xyaxes="0 1 0 -0.3 0 1"/>
  </worldbody>
</mujoco>
"""


def _require_rendering() -> None:
    ok, reason = render.rendering_available()
    if not ok:
        pytest.skip(reason)


@pytest.fixture
def scene():
    """A fresh (model, data) pair of the test scene."""
    mujoco = pytest.importorskip("mujoco")
    model = mujoco.MjModel.from_xml_string(SCENE_MJCF)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    return model, data


def test_rendering_available_always_explains_itself():
    ok, reason = render.rendering_available()
    assert isinstance(ok, bool)
    assert isinstance(reason, str) and reason


def test_reason_names_packages_when_gl_is_disabled():
    # A child process, because mujoco fixes its GL backend at import time.
    code = textwrap.dedent(
        """
        from skillstack.hw.sim.mujoco.render import rendering_available
        ok, reason = rendering_available()
        print(ok)
        print(reason)
        """
    )
    env = {**os.environ, "MUJOCO_GL": "disable"}
    env.pop("PYOPENGL_PLATFORM", None)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    ok, reason = result.stdout.splitlines()[:2]
    assert ok == "False"
    assert "libosmesa6" in reason and "make setup" in reason


def test_no_gl_library_gives_install_hint(monkeypatch):
    for name in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(render.gl, "backend_installed", lambda backend: False)
    assert render.configure_gl() is None
    ok, reason = render.rendering_available.__wrapped__()  # bypass the per-process cache
    assert not ok
    assert "libosmesa6" in reason and "libegl1" in reason


def test_recorder_raises_render_unavailable_with_hint(monkeypatch, tmp_path, scene):
    hint = f"{render.INSTALL_HINT} (simulated failure)"
    monkeypatch.setattr(render, "rendering_available", lambda: (False, hint))
    with pytest.raises(render.RenderUnavailable, match="libosmesa6"):
        render.MujocoVideoRecorder(tmp_path / "never.mp4", *scene)
    assert not (tmp_path / "never.mp4").exists()


@pytest.mark.parametrize(("width", "height"), [(641, 480), (640, 0)])
def test_recorder_rejects_sizes_h264_cannot_encode(tmp_path, scene, width, height):
    with pytest.raises(ValueError, match="even"):
        render.MujocoVideoRecorder(tmp_path / "bad.mp4", *scene, width=width, height=height)


def test_frame_clock_keeps_real_time_at_1khz():
    clock = video.FrameClock(VIDEO_FPS)
    steps = round(RECORD_DURATION_S / PHYSICS_DT_S)
    times = [0.0]
    for _ in range(steps):
        times.append(times[-1] + PHYSICS_DT_S)  # accumulate like mj_step does
    due = [t for t in times if clock.due(t)]
    assert len(due) == EXPECTED_FRAMES
    # Each frame lands on the first tick at or after its 1/fps grid point.
    for k, t in enumerate(due):
        assert k / VIDEO_FPS - 1e-9 <= t < k / VIDEO_FPS + PHYSICS_DT_S


def test_frame_clock_reanchors_after_reset():
    clock = video.FrameClock(VIDEO_FPS)
    assert clock.due(5.0)
    assert not clock.due(5.01)
    assert clock.due(0.0)  # time went backwards: a reset, capture at once
    assert not clock.due(0.01)


def test_frame_clock_rejects_nonpositive_fps():
    with pytest.raises(ValueError):
        video.FrameClock(0)


def test_renders_frames_and_writes_mp4(tmp_path, scene):
    _require_rendering()
    import imageio.v2 as imageio
    import mujoco

    model, data = scene
    path = tmp_path / "clip" / "falling_box.mp4"
    with render.MujocoVideoRecorder(
        path, model, data, fps=VIDEO_FPS, width=FRAME_WIDTH_PX, height=FRAME_HEIGHT_PX
    ) as recorder:
        first = recorder.capture_frame()
        assert first.shape == (FRAME_HEIGHT_PX, FRAME_WIDTH_PX, 3)
        assert first.dtype == np.uint8
        assert len(np.unique(first.reshape(-1, 3), axis=0)) > 1, "frame is one flat colour"
        recorder.maybe_capture(data.time)  # same instant as the forced frame: a new grid
        while data.time < RECORD_DURATION_S - 1e-9:
            mujoco.mj_step(model, data)
            recorder.maybe_capture(data.time)
        # One forced frame plus the grid frames at 0, 1/30, ... 0.5 s.
        assert recorder.frame_count == EXPECTED_FRAMES + 1
    assert recorder.close() == path  # idempotent
    assert path.stat().st_size > 0

    with imageio.get_reader(path) as reader:
        decoded = [frame for frame in reader]
    assert len(decoded) == recorder.frame_count
    assert decoded[0].shape == (FRAME_HEIGHT_PX, FRAME_WIDTH_PX, 3)


def test_named_camera_and_caption(tmp_path, scene):
    _require_rendering()
    model, data = scene
    with render.MujocoVideoRecorder(
        tmp_path / "named.mp4",
        model,
        data,
        width=FRAME_WIDTH_PX,
        height=FRAME_HEIGHT_PX,
        camera="front",
    ) as recorder:
        plain = recorder.capture_frame()
        recorder.set_caption("grasp: approach")
        captioned = recorder.capture_frame()
    assert plain.std() > 0
    # Caption drawing is best-effort (needs OpenCV or Pillow); when it ran it
    # changed only the top-left corner.
    changed = np.any(plain != captioned, axis=2)
    if changed.any():
        rows, cols = np.nonzero(changed)
        assert rows.max() < FRAME_HEIGHT_PX // 2 and cols.min() < FRAME_WIDTH_PX // 2


def test_unknown_camera_is_rejected(tmp_path, scene):
    _require_rendering()
    with pytest.raises(ValueError, match="no camera named"):
        render.MujocoVideoRecorder(tmp_path / "x.mp4", *scene, camera="nope")


def test_a_skill_on_video_ends_with_its_outcome_held_on_screen(tmp_path):
    _require_rendering()
    from skillstack.hw.sim.mujoco.robot import MujocoRobot
    from skillstack.robot.scene import load_scene
    from skillstack.robot.scene.bundled import find_scene
    from skillstack.skills.arm import OUTCOME_HOLD_S, LocalArm

    with MujocoRobot(load_scene(find_scene("blocks"))) as robot:
        recorder = render.MujocoVideoRecorder(
            tmp_path / "grasp.mp4", robot.model, robot.data, width=320, height=240
        )
        robot.recorder = recorder
        result = LocalArm(robot).execute("grasp", {"object": "red_block"})
        captions = recorder.caption.split("\n")
        frames_after_skill = recorder.frame_count
        sim_frames = round(robot.read().time * recorder.fps) + 1
        recorder.close()
    assert result.success
    assert captions[0] == "grasp(object=red_block)"
    assert captions[1].startswith("success") and "lifted_m=" in captions[1]
    # The outcome stays on screen for OUTCOME_HOLD_S of video beyond the simulated time.
    assert frames_after_skill - sim_frames == pytest.approx(OUTCOME_HOLD_S * recorder.fps, abs=2)
