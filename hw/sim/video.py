"""mp4 videos of a running simulation, whatever renders the frames.

A `VideoRecorder` films a *frame source*: any callable that returns the current view as an
H x W x 3 uint8 RGB array. Each backend supplies one (MuJoCo's OpenGL renderer in
`hw.sim.mujoco.render`, PyBullet's TinyRenderer in `hw.sim.pybullet.camera`); the recorder
decides when a frame is due (`FrameClock`), writes the caption (`draw_caption`) and encodes
H.264 (`open_mp4_writer`). Both backends frame their videos alike, from the free camera
below (`DEFAULT_LOOKAT_M` ...).

Typical use, with a robot calling ``recorder.maybe_capture(sim_time)`` every tick::

    with VideoRecorder("out/pick.mp4", frames, fps=30, width=640, height=480) as rec:
        while sim_time < 5.0:
            ...                              # step the simulation
            rec.maybe_capture(sim_time)      # cheap no-op between frames
"""

from __future__ import annotations

import contextlib
import math
import os
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = [
    "FrameClock",
    "FrameSource",
    "VideoRecorder",
    "check_video_format",
    "draw_caption",
    "open_mp4_writer",
]

# Free camera used when the caller names none: from the front-right of the workcell, close
# enough that the arm (base at the origin) and the table in front of it fill the frame.
DEFAULT_LOOKAT_M = (0.3, 0.0, 0.32)
DEFAULT_DISTANCE_M = 1.65
DEFAULT_AZIMUTH_DEG = 145.0
DEFAULT_ELEVATION_DEG = -20.0

DEFAULT_FPS = 30.0
DEFAULT_WIDTH_PX = 640
DEFAULT_HEIGHT_PX = 480
# imageio's 0-10 scale; 8 keeps thin links and text crisp while a 640x480
# sim clip stays around 0.1 MB per 10 s (flat-shaded scenes compress well).
DEFAULT_VIDEO_QUALITY = 8
# libx264 with yuv420p chroma subsampling needs even frame dimensions.
_X264_BLOCK_PX = 2

# Simulation time is a sum of float steps; without slack a frame due at
# t = 0.02 s would wait for the next tick when the sum lands at 0.0199999.
_TIME_EPS_S = 1e-9

_CAPTION_ORIGIN_PX = (10, 10)
_CAPTION_COLOR_RGB = (255, 255, 255)
_CAPTION_OUTLINE_RGB = (0, 0, 0)
_CAPTION_OUTLINE_PX = 1
_CAPTION_FONT_SCALE = 0.6
_CAPTION_THICKNESS_PX = 1
_CAPTION_FONT_SIZE_PX = 16
_CAPTION_LINE_PX = 24  # from one caption line to the next


class FrameClock:
    """Decides when to grab a video frame from a stream of simulation times.

    Frames are due on a fixed grid of ``1/fps`` seconds of simulation time
    anchored at the first frame, so the video plays back in real time whatever
    the physics step is (a 1 kHz tick would otherwise round every 33.3 ms
    frame period up to 34 ms). If time jumps forward several periods only one
    frame is taken; if it goes backwards (a reset) the grid re-anchors.
    """

    def __init__(self, fps: float) -> None:
        """Create a clock for ``fps`` frames per second of simulation time."""
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        self.period_s = 1.0 / fps
        self._anchor_s: float | None = None
        self._last_s = -math.inf
        self._next_due_s = -math.inf

    def due(self, sim_time: float) -> bool:
        """Return True (and advance the schedule) if a frame is due at ``sim_time``."""
        if sim_time < self._last_s:
            self._anchor_s = None
        if self._anchor_s is None:
            self._anchor_s = sim_time
        elif sim_time < self._next_due_s - _TIME_EPS_S:
            return False
        slots_done = math.floor((sim_time - self._anchor_s + _TIME_EPS_S) / self.period_s)
        self._next_due_s = self._anchor_s + (slots_done + 1) * self.period_s
        self._last_s = sim_time
        return True


def check_video_format(fps: float, width: int, height: int) -> None:
    """`ValueError` unless H.264 can encode ``width`` x ``height`` frames (positive, even
    sides) at a positive ``fps``; backends call it before they set up any rendering."""
    if width <= 0 or height <= 0 or width % _X264_BLOCK_PX or height % _X264_BLOCK_PX:
        raise ValueError(f"frame size must be positive and even for H.264: {width}x{height}")
    FrameClock(fps)  # raises for fps <= 0


def draw_caption(frame: np.ndarray, text: str) -> np.ndarray:
    """Return ``frame`` with ``text`` drawn top-left, one line per ``\\n``; unchanged if no
    drawing library.

    Uses OpenCV when importable, else Pillow (an imageio dependency)."""
    try:
        import cv2
    except ImportError:
        pass
    else:
        frame = np.ascontiguousarray(frame)
        x, y = _CAPTION_ORIGIN_PX
        for i, line in enumerate(text.split("\n")):
            # cv2 anchors text at its baseline, PIL at its top-left corner.
            baseline_y = y + _CAPTION_FONT_SIZE_PX + i * _CAPTION_LINE_PX
            # A dark outline under the text keeps it legible over bright floors.
            for color, thickness in (
                (_CAPTION_OUTLINE_RGB, _CAPTION_THICKNESS_PX + 2 * _CAPTION_OUTLINE_PX),
                (_CAPTION_COLOR_RGB, _CAPTION_THICKNESS_PX),
            ):
                cv2.putText(
                    frame,
                    line,
                    (x, baseline_y),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    _CAPTION_FONT_SCALE,
                    color,
                    thickness,
                    cv2.LINE_AA,
                )
        return frame
    try:
        # Pillow is always present in practice: imageio depends on it.
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        return frame
    image = Image.fromarray(frame)
    try:
        font = ImageFont.load_default(size=_CAPTION_FONT_SIZE_PX)
    except TypeError:  # Pillow < 10.1 has only the fixed-size bitmap font.
        font = ImageFont.load_default()
    ImageDraw.Draw(image).text(
        _CAPTION_ORIGIN_PX,
        text,
        fill=_CAPTION_COLOR_RGB,
        font=font,
        stroke_width=_CAPTION_OUTLINE_PX,
        stroke_fill=_CAPTION_OUTLINE_RGB,
    )
    return np.asarray(image)


def open_mp4_writer(
    path: str | os.PathLike[str], fps: float, quality: int = DEFAULT_VIDEO_QUALITY
) -> Any:
    """An imageio H.264 writer for ``path`` (parent folders created); ``append_data(frame)``
    adds an H x W x 3 uint8 frame with even sides, ``close()`` finalises the file."""
    import imageio.v2 as imageio

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return imageio.get_writer(
        Path(path),
        fps=float(fps),
        codec="libx264",
        quality=quality,
        pixelformat="yuv420p",  # the only chroma layout every player decodes
        macro_block_size=_X264_BLOCK_PX,
        ffmpeg_log_level="error",
        # Flat-shaded sim frames compress well at any preset; the fast one keeps the encoder
        # from competing with the simulation for the CPU (2-3x less encoder time).
        output_params=["-preset", "veryfast"],
    )


class FrameSource(Protocol):
    """What a `VideoRecorder` films: called once per frame."""

    def __call__(self) -> np.ndarray:
        """The current view, H x W x 3 uint8 RGB (the size the recorder was given)."""
        ...


def _release(writer: Any, release: Callable[[], None] | None) -> None:
    """Finalise the file, then free the source; shared by close() and the GC finaliser."""
    try:
        writer.close()
    finally:
        if release is not None:
            release()


class VideoRecorder:
    """Records the frames of ``frames`` to an H.264 mp4 file.

    Call :meth:`maybe_capture` every physics tick (a robot does, when the recorder is its
    ``recorder``); it grabs a frame only when one is due (see :class:`FrameClock`), so the
    per-tick cost is a float comparison. Use as a context manager or call :meth:`close` to
    finalise the file; an unclosed recorder is finalised when garbage-collected or at exit.

    Args:
        path: Output ``.mp4`` file; parent directories are created.
        frames: The frame source (see `FrameSource`).
        fps: Frames per second of simulation time, also the playback rate.
        width: Frame width in pixels (even, for H.264).
        height: Frame height in pixels (even, for H.264).
        quality: imageio/ffmpeg quality, 0 (worst) to 10 (best).
        caption: Optional text drawn on every frame (see :meth:`set_caption`).
        release: Frees what the source holds (a GL context) when the recorder closes, or
            at once if the file cannot be opened; it must not refer to the recorder.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        frames: FrameSource,
        fps: float = DEFAULT_FPS,
        width: int = DEFAULT_WIDTH_PX,
        height: int = DEFAULT_HEIGHT_PX,
        *,
        quality: int = DEFAULT_VIDEO_QUALITY,
        caption: str | None = None,
        release: Callable[[], None] | None = None,
    ) -> None:
        try:
            check_video_format(fps, width, height)
            writer = open_mp4_writer(path, fps, quality)
        except Exception:
            if release is not None:
                release()
            raise
        self.path = Path(path)
        self.fps = float(fps)
        self.width = width
        self.height = height
        self.caption = caption
        self.frame_count = 0
        # Called with the frame count after each frame is written (a progress display).
        self.on_frame: Callable[[int], None] | None = None
        self._frames = frames
        self._clock = FrameClock(fps)
        self._writer = writer
        self._finalizer = weakref.finalize(self, _release, writer, release)

    def set_caption(self, text: str | None) -> None:
        """Draw ``text`` on subsequent frames (None removes it).

        Uses OpenCV when importable, else Pillow (an imageio dependency); if
        neither is present the caption is silently skipped.
        """
        self.caption = text

    def capture_frame(self) -> np.ndarray:
        """Grab the current view, append it to the video and return it (H x W x 3 uint8)."""
        if not self._finalizer.alive:
            raise RuntimeError(f"{type(self).__name__} for {self.path} is closed")
        frame = self._frames()
        if self.caption:
            frame = draw_caption(frame, self.caption)
        self._append(frame)
        return frame

    def hold(self, seconds: float) -> None:
        """Show the current view (and caption) for ``seconds`` of video while the simulation
        waits, e.g. a skill's outcome before the next call; rendered once, so cheap."""
        count = round(seconds * self.fps)
        if count <= 0:
            return
        frame = self.capture_frame()
        for _ in range(count - 1):
            self._append(frame)

    def _append(self, frame: np.ndarray) -> None:
        self._writer.append_data(frame)
        self.frame_count += 1
        if self.on_frame is not None:
            self.on_frame(self.frame_count)

    def maybe_capture(self, sim_time: float) -> None:
        """Capture a frame if one is due at ``sim_time`` (seconds); cheap otherwise."""
        if self._clock.due(sim_time):
            self.capture_frame()

    def close(self) -> Path:
        """Finalise the mp4 and free the frame source; safe to call twice.

        Returns:
            The path of the written video.
        """
        self._finalizer()
        return self.path

    def __enter__(self) -> VideoRecorder:
        """Return self so the recorder can be used in a ``with`` block."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        """Finalise the video, also when the simulation raised."""
        if exc_type is None:
            self.close()
            return
        # Keep the simulation's exception as the one the caller sees.
        with contextlib.suppress(Exception):
            self.close()
