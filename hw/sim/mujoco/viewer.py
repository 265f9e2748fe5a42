"""Watch a MuJoCo simulation live in MuJoCo's own interactive viewer (`mujoco.viewer`).

`LiveViewer` opens ``mujoco.viewer.launch_passive`` on the robot's model and data and
plugs into the robot the way a video recorder does (``robot.recorder``: the robot calls
``maybe_capture(sim_time)`` after every physics step). It redraws at ``fps`` and paces the
simulation to the wall clock, so a skill plays at the speed it would on a real arm;
closing the window lets the simulation run on unpaced. `Recorders` puts a viewer and a
video recorder on one robot.

The viewer needs a display (``DISPLAY`` or ``WAYLAND_DISPLAY``; on a headless machine run
under ``xvfb-run``). Without one, `LiveViewer` raises `ViewerUnavailable` with what to do,
before anything is opened. Offscreen rendering (``MUJOCO_GL=egl``/``osmesa``, videos,
cameras) keeps working beside it: the viewer opens its own GLFW window.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import mujoco

__all__ = ["LiveViewer", "Recorders", "ViewerUnavailable", "display_available"]

DEFAULT_VIEWER_FPS = 60.0  # redraws per second of simulated time
CLOSE_TIMEOUT_S = 5.0  # the longest `LiveViewer.close` waits for the window's thread
OPEN_TIMEOUT_S = 20.0  # the longest opening the window may take


class ViewerUnavailable(RuntimeError):
    """The interactive viewer cannot open here (no display); the message says what to do."""


def display_available() -> bool:
    """Whether a window can be opened: ``DISPLAY`` (X11) or ``WAYLAND_DISPLAY`` is set."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class LiveViewer:
    """MuJoCo's passive viewer on ``model``/``data``, paced to the wall clock.

    Args:
        model: the simulated model.
        data: its live data (what the window shows).
        fps: redraws per second of simulated time.
        realtime: sleep so that simulated time does not run ahead of the wall clock.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        fps: float = DEFAULT_VIEWER_FPS,
        realtime: bool = True,
    ) -> None:
        if not display_available():
            raise ViewerUnavailable(
                "the viewer needs a display and none is set (DISPLAY/WAYLAND_DISPLAY): run on "
                "a desktop, or under `xvfb-run -a skillstack ...`; --video records without one"
            )
        import mujoco.viewer

        before = set(threading.enumerate())
        opened: list[Any] = []

        def launch() -> None:
            try:
                opened.append(
                    mujoco.viewer.launch_passive(
                        model, data, show_left_ui=False, show_right_ui=False
                    )
                )
            except Exception as exc:  # GLFW could not open a window on that display
                opened.append(exc)

        # launch_passive waits for its window thread without a time limit, and that thread
        # never answers if the display goes away while it starts: wait here with one.
        launcher = threading.Thread(target=launch, name="viewer-launch", daemon=True)
        launcher.start()
        launcher.join(OPEN_TIMEOUT_S)
        if not opened:
            raise ViewerUnavailable(
                f"the viewer did not open within {OPEN_TIMEOUT_S:g} s on display "
                f"{os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')!r}"
            )
        if isinstance(opened[0], Exception):
            raise ViewerUnavailable(f"could not open the viewer: {str(opened[0])[:300]}")
        self._handle = opened[0]
        # The window runs on a daemon thread of its own; `close` waits for it to tear its GL
        # context down, or an interpreter exiting meanwhile can crash in the GL driver.
        self._threads = [t for t in threading.enumerate() if t not in before and t is not launcher]
        self.period_s = 1.0 / fps
        self.realtime = realtime
        self.caption: str | None = None
        self._last_s = self._next_s = float("-inf")
        self._start: tuple[float, float] | None = None  # (sim time, wall time) of the anchor

    @property
    def is_running(self) -> bool:
        """Whether the window is still open."""
        return self._handle.is_running()

    def maybe_capture(self, sim_time: float) -> None:
        """Redraw if a frame is due at ``sim_time``, after waiting for the wall clock."""
        if self._last_s <= sim_time < self._next_s - 1e-9:
            return  # not due yet (time going backwards is a reset: due at once)
        self._last_s, self._next_s = sim_time, sim_time + self.period_s
        if not self._handle.is_running():
            return
        now = time.perf_counter()
        if self._start is None or sim_time < self._start[0]:
            self._start = (sim_time, now)
        if self.realtime:
            ahead = (sim_time - self._start[0]) - (now - self._start[1])
            if ahead > 0:
                time.sleep(min(ahead, 1.0))
        self._handle.sync()

    def set_caption(self, text: str | None) -> None:
        """Keep the caption (the window title bar is not ours to write); shown by videos."""
        self.caption = text

    def hold(self, seconds: float) -> None:
        """Pause on the current view for ``seconds`` of wall time (a skill's outcome)."""
        if self._handle.is_running() and self.realtime:
            time.sleep(seconds)
            if self._start is not None:  # the pause is not simulated time to catch up on
                self._start = (self._start[0], self._start[1] + seconds)

    def close(self) -> None:
        """Close the window and wait (up to 5 s) for its thread to end; safe to call twice."""
        self._handle.close()
        for thread in self._threads:
            thread.join(timeout=CLOSE_TIMEOUT_S)


class Recorders:
    """Several recorders on one robot (a `LiveViewer` and a video), called in order."""

    def __init__(self, *recorders: Any) -> None:
        self.recorders = [r for r in recorders if r is not None]

    def maybe_capture(self, sim_time: float) -> None:
        """Pass the tick on to each recorder."""
        for r in self.recorders:
            r.maybe_capture(sim_time)

    def set_caption(self, text: str | None) -> None:
        """Caption every recorder that takes captions."""
        for r in self.recorders:
            if hasattr(r, "set_caption"):
                r.set_caption(text)

    def hold(self, seconds: float) -> None:
        """Hold every recorder that can."""
        for r in self.recorders:
            if hasattr(r, "hold"):
                r.hold(seconds)

    def close(self) -> None:
        """Close every recorder (the video is finalised)."""
        for r in self.recorders:
            r.close()
