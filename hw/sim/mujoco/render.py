"""Offscreen rendering and mp4 recording for MuJoCo simulations.

Headless machines (CI, servers, containers) have no display, so MuJoCo must
render through an offscreen OpenGL backend: EGL (GPU driver, or Mesa's
llvmpipe in software) or OSMesa (pure software). MuJoCo picks its backend from
the ``MUJOCO_GL`` environment variable, and with mujoco 3.x/4.x it reads that
variable exactly once, when ``import mujoco`` runs
(``mujoco/rendering/classic/gl_context.py`` is imported by
``mujoco/__init__.py``). :func:`configure_gl` must therefore run before the
first ``import mujoco`` anywhere in the process; ``hw/sim/__init__.py`` calls it
at import time for that reason (this module imports mujoco only inside
functions). If mujoco was already imported with no backend
chosen, :func:`configure_gl` re-loads MuJoCo's backend module so the choice
still takes effect for every :class:`mujoco.Renderer` built afterwards.

Videos: :class:`MujocoVideoRecorder` is `hw.sim.video.VideoRecorder` filming a
:class:`mujoco.Renderer`. Typical use::

    from skillstack.hw.sim.mujoco.render import MujocoVideoRecorder

    with MujocoVideoRecorder("out/pick.mp4", model, data, fps=30) as rec:
        while data.time < 5.0:
            mujoco.mj_step(model, data)
            rec.maybe_capture(data.time)   # cheap no-op between frames
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import importlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

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

# Preference order: EGL renders on the GPU when there is one (on CPU-only
# machines both end up in Mesa's llvmpipe at about the same speed); OSMesa is
# the fallback because it needs nothing but one library.
_BACKEND_PREFERENCE = ("egl", "osmesa")
_BACKEND_LIBRARIES = {
    "egl": ("libEGL.so.1", "libEGL.so"),
    "osmesa": ("libOSMesa.so.8", "libOSMesa.so.6", "libOSMesa.so"),
}
_FIND_LIBRARY_NAMES = {"egl": "EGL", "osmesa": "OSMesa"}
# libEGL.so.1 is only the glvnd dispatcher; without a vendor (Mesa or NVIDIA)
# registered next to it, EGL device creation fails at context time.
_EGL_VENDOR_DIRS = ("/usr/share/glvnd/egl_vendor.d", "/etc/glvnd/egl_vendor.d")
_EGL_VENDOR_LIBRARIES = ("libEGL_mesa.so.0", "libEGL_nvidia.so.0")
# PyOpenGL's platform class for each backend; once OpenGL.platform is imported
# its platform is fixed for the life of the process.
_PYOPENGL_PLATFORM_CLASS = {"egl": "EGLPlatform", "osmesa": "OSMesaPlatform"}
# Where mujoco keeps the module that reads MUJOCO_GL: 4.x, then 3.x.
_GL_CONTEXT_MODULES = ("mujoco.rendering.classic.gl_context", "mujoco.gl_context")

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


def _library_loadable(backend: str) -> bool:
    """Return True if the shared library behind ``backend`` can be dlopen()ed."""
    names = list(_BACKEND_LIBRARIES[backend])
    found = ctypes.util.find_library(_FIND_LIBRARY_NAMES[backend])
    if found:
        names.insert(0, found)
    for name in names:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


def _egl_vendor_present() -> bool:
    """Return True if some EGL implementation is registered with glvnd."""
    if os.environ.get("__EGL_VENDOR_LIBRARY_FILENAMES") or os.environ.get(
        "__EGL_VENDOR_LIBRARY_DIRS"
    ):
        return True
    for directory in _EGL_VENDOR_DIRS:
        if glob.glob(os.path.join(directory, "*.json")):
            return True
    for name in _EGL_VENDOR_LIBRARIES:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


def _backend_installed(backend: str) -> bool:
    """Return True if the system libraries for ``backend`` look usable."""
    if not _library_loadable(backend):
        return False
    return backend != "egl" or _egl_vendor_present()


def _pick_backend() -> str | None:
    """Choose the first installed offscreen backend, honouring PYOPENGL_PLATFORM."""
    preference = list(_BACKEND_PREFERENCE)
    # A PyOpenGL platform set by the user must match MuJoCo's backend, or
    # mujoco.egl / mujoco.osmesa refuse to import; so only that one can work.
    pyopengl = os.environ.get("PYOPENGL_PLATFORM", "").strip().lower()
    if pyopengl:
        preference = [pyopengl] if pyopengl in preference else []
    for backend in preference:
        if _backend_installed(backend):
            return backend
    return None


def _loaded_gl_context_module() -> Any:
    """Return mujoco's already-imported GL backend module, or None."""
    for name in _GL_CONTEXT_MODULES:
        module = sys.modules.get(name)
        if module is not None:
            return module
    return None


def _sync_loaded_mujoco(backend: str) -> None:
    """Make an already-imported mujoco use ``backend`` for new Renderers.

    mujoco resolves MUJOCO_GL while importing its gl_context module; re-running
    that module rebinds ``gl_context.GLContext``, which ``mujoco.Renderer``
    looks up on every construction. This is only safe while PyOpenGL has not
    yet fixed a different platform, so in that case the process is left alone.
    """
    gl_context = _loaded_gl_context_module()
    if gl_context is None or getattr(gl_context, "_MUJOCO_GL", None) == backend:
        return
    opengl_platform = sys.modules.get("OpenGL.platform")
    if opengl_platform is not None:
        current = type(getattr(opengl_platform, "PLATFORM", None)).__name__
        if current != _PYOPENGL_PLATFORM_CLASS.get(backend):
            return
    importlib.reload(gl_context)
    mujoco_module = sys.modules.get("mujoco")
    if mujoco_module is not None and hasattr(gl_context, "GLContext"):
        mujoco_module.GLContext = gl_context.GLContext  # type: ignore[attr-defined]


def configure_gl() -> str | None:
    """Select MuJoCo's offscreen OpenGL backend; never raises.

    Call this before the first ``import mujoco`` in the process (importing
    ``hw.sim`` does it for you). If ``MUJOCO_GL`` is already set it is respected
    as the user's explicit choice; otherwise ``egl`` is chosen when libEGL and
    an EGL vendor are installed, else ``osmesa`` when libOSMesa is, and both
    ``MUJOCO_GL`` and ``PYOPENGL_PLATFORM`` are set accordingly. When nothing is
    installed the environment is left untouched (on a desktop MuJoCo then falls
    back to GLFW).

    Returns:
        The backend name in effect (``"egl"``, ``"osmesa"``, or whatever the
        user set), or None if no offscreen backend is installed.
    """
    try:
        requested = os.environ.get("MUJOCO_GL", "").strip().lower()
        backend: str | None
        if requested:
            backend = requested
        else:
            backend = _pick_backend()
            if backend is None:
                return None
            os.environ["MUJOCO_GL"] = backend
        if backend in _PYOPENGL_PLATFORM_CLASS:
            os.environ.setdefault("PYOPENGL_PLATFORM", backend)
        _sync_loaded_mujoco(backend)
        return backend
    except Exception:
        # Runs at package import time: a broken GL stack must surface later as
        # RenderUnavailable, never as an ImportError of the whole simulator.
        return os.environ.get("MUJOCO_GL") or None


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
        backend = _effective_backend(backend)
        return False, f"{INSTALL_HINT} (MUJOCO_GL={backend!r}: {type(exc).__name__}: {exc})"
    backend = _effective_backend(backend)
    if pixels.min() == pixels.max():
        return False, f"{INSTALL_HINT} (MUJOCO_GL={backend!r} rendered a blank image)"
    return True, f"offscreen rendering works with MUJOCO_GL={backend!r}"


def _effective_backend(configured: str | None) -> str | None:
    """Return the backend mujoco actually loaded, which differs from the configured
    one when mujoco was imported before configure_gl() and could not be switched."""
    gl_context = _loaded_gl_context_module()
    if gl_context is None:
        return configured
    # An empty value means mujoco fell back to its default, GLFW.
    return getattr(gl_context, "_MUJOCO_GL", None) or "glfw"


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
