"""Offscreen rendering and mp4 recording for MuJoCo simulations.

Headless machines (CI, servers, containers) have no display, so MuJoCo must
render through an offscreen OpenGL backend: EGL (GPU driver, or Mesa's
llvmpipe in software) or OSMesa (pure software), chosen once per process
through ``MUJOCO_GL`` by `hw.sim.gl` when `skillstack` is imported.
:func:`rendering_available` checks that a frame really renders and says what
to install when not.

Videos: :class:`MujocoVideoRecorder` is `hw.sim.video.VideoRecorder` filming a
:class:`mujoco.Renderer`. Typical use::

    from skillstack.hw.sim.mujoco.render import MujocoVideoRecorder

    with MujocoVideoRecorder("out/pick.mp4", model, data, fps=30) as rec:
        while data.time < 5.0:
            mujoco.mj_step(model, data)
            rec.maybe_capture(data.time)   # cheap no-op between frames
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from skillstack.hw.sim import gl
from skillstack.hw.sim.video import (
    DEFAULT_AZIMUTH_DEG,
    DEFAULT_DISTANCE_M,
    DEFAULT_ELEVATION_DEG,
    DEFAULT_FPS,
    DEFAULT_HEIGHT_PX,
    DEFAULT_LOOKAT_M,
    DEFAULT_VIDEO_QUALITY,
    DEFAULT_WIDTH_PX,
    VideoRecorder,
    check_video_format,
)

if TYPE_CHECKING:
    import mujoco

__all__ = [
    "INSTALL_HINT",
    "MujocoVideoRecorder",
    "RenderUnavailable",
    "configure_gl",
    "rendering_available",
]

INSTALL_HINT = (
    "offscreen OpenGL is not available: install libosmesa6 (Debian) or "
    "libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0, or run `make setup`"
)

# Tiny scene for probing: a lit floor and a box, so a working renderer produces
# more than one colour.
_PROBE_MJCF = """
<mujoco model="render_probe">
  <worldbody>
    <light pos="0 0 2"/>
    <geom type="plane" size="1 1 0.1" rgba="0.8 0.8 0.8 1"/>
    <geom type="box" pos="0 0 0.1" size="0.1 0.1 0.1" rgba="0.9 0.1 0.1 1"/>
  </worldbody>
</mujoco>
"""
_PROBE_SIZE_PX = 32


class RenderUnavailable(RuntimeError):
    """Raised when offscreen rendering cannot work in this process.

    The message always says what to install, so a user seeing it in a
    traceback knows how to fix their machine.
    """


def configure_gl() -> str | None:
    """Select MuJoCo's offscreen OpenGL backend (`hw.sim.gl.select_backend`); never raises.

    Importing `skillstack` already does this, before any of its modules imports mujoco.

    Returns:
        The backend name in effect, or None if no offscreen backend is installed.
    """
    return gl.select_backend()


@functools.cache
def rendering_available() -> tuple[bool, str]:
    """Check, once per process, that an offscreen frame can really be rendered.

    Builds a tiny inline MJCF model and renders one small frame with
    :class:`mujoco.Renderer`. The result is cached because creating a GL
    context costs tens to hundreds of milliseconds.

    Returns:
        ``(True, description of the backend)`` or ``(False, reason)``, where
        the reason says what failed and what to install.
    """
    backend = configure_gl()
    if backend is None and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False, f"{INSTALL_HINT} (no display and no EGL/OSMesa library found)"
    try:
        import mujoco

        model = mujoco.MjModel.from_xml_string(_PROBE_MJCF)
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        with mujoco.Renderer(model, height=_PROBE_SIZE_PX, width=_PROBE_SIZE_PX) as renderer:
            renderer.update_scene(data)
            pixels = renderer.render()
    except Exception as exc:
        return False, f"{INSTALL_HINT} (MUJOCO_GL={backend!r}: {type(exc).__name__}: {exc})"
    if pixels.min() == pixels.max():
        return False, f"{INSTALL_HINT} (MUJOCO_GL={backend!r} rendered a blank image)"
    return True, f"offscreen rendering works with MUJOCO_GL={backend!r}"


class MujocoVideoRecorder(VideoRecorder):
    """Records frames of a live MuJoCo simulation to an H.264 mp4 file.

    A `hw.sim.video.VideoRecorder` whose frame source is a :class:`mujoco.Renderer`
    showing ``data``: call :meth:`maybe_capture` every physics tick; :meth:`close` (or the
    end of a ``with`` block, or garbage collection) finalises the file and frees the GL
    context.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        model: mujoco.MjModel,
        data: mujoco.MjData,
        fps: float = DEFAULT_FPS,
        width: int = DEFAULT_WIDTH_PX,
        height: int = DEFAULT_HEIGHT_PX,
        camera: str | int | None = None,
        *,
        quality: int = DEFAULT_VIDEO_QUALITY,
        caption: str | None = None,
    ) -> None:
        """Open the renderer and the mp4 writer.

        Args:
            path: Output ``.mp4`` file; parent directories are created.
            model: The model being simulated. Its offscreen framebuffer
                (``model.vis.global_.offwidth/offheight``) is enlarged in place
                if smaller than the requested frame.
            data: The live data; each captured frame shows its current state.
            fps: Frames per second of simulation time, also the playback rate.
            width: Frame width in pixels (even, for H.264).
            height: Frame height in pixels (even, for H.264).
            camera: Name or id of a camera in the model, or None for a free
                camera looking at the table from the front-right.
            quality: imageio/ffmpeg quality, 0 (worst) to 10 (best).
            caption: Optional text drawn on every frame (see :meth:`set_caption`).

        Raises:
            RenderUnavailable: Offscreen rendering does not work here; the
                message says what to install.
            ValueError: Bad size, fps, or unknown camera.
        """
        check_video_format(fps, width, height)
        ok, reason = rendering_available()
        if not ok:
            raise RenderUnavailable(reason)

        import mujoco

        view = self._resolve_camera(mujoco, model, camera)
        offscreen = model.vis.global_
        offscreen.offwidth = max(offscreen.offwidth, width)
        offscreen.offheight = max(offscreen.offheight, height)

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Software renderers (llvmpipe, OSMesa) spend most of a frame on shadow maps and
        # multisampling: without them a 640x480 frame costs ~11 ms instead of ~360 ms, which
        # keeps a recorded run within about 2x its time without video. Multisampling is
        # fixed when the GL context is made, so the model's own setting is restored after.
        samples = model.vis.quality.offsamples
        model.vis.quality.offsamples = 0
        try:
            renderer = mujoco.Renderer(model, height=height, width=width)
        finally:
            model.vis.quality.offsamples = samples

        def frames() -> np.ndarray:
            renderer.update_scene(data, camera=view)
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            return renderer.render()

        super().__init__(
            path,
            frames,
            fps,
            width,
            height,
            quality=quality,
            caption=caption,
            release=renderer.close,
        )

    @staticmethod
    def _resolve_camera(
        mujoco_module: Any, model: mujoco.MjModel, camera: str | int | None
    ) -> mujoco.MjvCamera | int:
        """Validate ``camera`` and return a camera id or a configured free camera."""
        if camera is None:
            free = mujoco_module.MjvCamera()
            free.type = mujoco_module.mjtCamera.mjCAMERA_FREE
            free.lookat[:] = DEFAULT_LOOKAT_M
            free.distance = DEFAULT_DISTANCE_M
            free.azimuth = DEFAULT_AZIMUTH_DEG
            free.elevation = DEFAULT_ELEVATION_DEG
            return free
        if isinstance(camera, str):
            camera_id = mujoco_module.mj_name2id(model, mujoco_module.mjtObj.mjOBJ_CAMERA, camera)
            if camera_id < 0:
                raise ValueError(f"model has no camera named {camera!r}")
            return camera_id
        if not -1 <= camera < model.ncam:
            raise ValueError(f"camera id {camera} out of range [-1, {model.ncam})")
        return camera
