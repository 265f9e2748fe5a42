"""Which OpenGL MuJoCo renders offscreen with: one choice, through ``MUJOCO_GL``.

MuJoCo reads ``MUJOCO_GL`` once, while ``import mujoco`` runs, and then keeps that backend
for the life of the process. `select_backend` therefore runs when the `skillstack` package
is first imported (``skillstack/__init__.py``), before any of its modules imports mujoco:

* ``MUJOCO_GL`` already set: the user's choice, kept as it is (``egl``, ``osmesa``,
  ``glfw`` for a desktop window, or ``disable``);
* otherwise ``egl`` when libEGL and an EGL vendor (Mesa or NVIDIA) are installed, else
  ``osmesa`` when libOSMesa is; ``PYOPENGL_PLATFORM`` is set to match, as MuJoCo requires;
* neither installed: nothing is set (on a desktop MuJoCo then uses GLFW), and recording a
  video says what to install.

A program that imports mujoco *before* skillstack has made MuJoCo's choice already: set
``MUJOCO_GL`` in the environment then. This module imports nothing heavy (no mujoco, no
numpy), so importing skillstack stays cheap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os

__all__ = ["BACKEND_PREFERENCE", "select_backend"]

# Preference order: EGL renders on the GPU when there is one (on CPU-only machines both end up
# in Mesa's llvmpipe at about the same speed); OSMesa is the fallback because it needs nothing
# but one library.
BACKEND_PREFERENCE = ("egl", "osmesa")
_BACKEND_LIBRARIES = {
    "egl": ("libEGL.so.1", "libEGL.so"),
    "osmesa": ("libOSMesa.so.8", "libOSMesa.so.6", "libOSMesa.so"),
}
_FIND_LIBRARY_NAMES = {"egl": "EGL", "osmesa": "OSMesa"}
# libEGL.so.1 is only the glvnd dispatcher; without a vendor (Mesa or NVIDIA) registered next
# to it, EGL device creation fails at context time.
_EGL_VENDOR_DIRS = ("/usr/share/glvnd/egl_vendor.d", "/etc/glvnd/egl_vendor.d")
_EGL_VENDOR_LIBRARIES = ("libEGL_mesa.so.0", "libEGL_nvidia.so.0")
# Backends whose PyOpenGL platform must be named the same (mujoco.egl / mujoco.osmesa check).
_PYOPENGL_BACKENDS = ("egl", "osmesa")


def select_backend() -> str | None:
    """Set ``MUJOCO_GL`` (and ``PYOPENGL_PLATFORM``) unless the user did; never raises.

    Returns:
        The backend in effect (``"egl"``, ``"osmesa"``, or whatever the user set), or None
        if no offscreen backend is installed.
    """
    try:
        backend = os.environ.get("MUJOCO_GL", "").strip().lower() or _pick_backend()
        if backend is None:
            return None
        os.environ["MUJOCO_GL"] = backend
        if backend in _PYOPENGL_BACKENDS:
            os.environ.setdefault("PYOPENGL_PLATFORM", backend)
        return backend
    except Exception:  # runs at import time: a broken GL stack surfaces later, with a hint
        return os.environ.get("MUJOCO_GL") or None


def backend_installed(backend: str) -> bool:
    """Whether the system libraries for ``backend`` look usable."""
    if not _library_loadable(backend):
        return False
    return backend != "egl" or _egl_vendor_present()


def _pick_backend() -> str | None:
    """The first installed offscreen backend, honouring ``PYOPENGL_PLATFORM``."""
    preference = list(BACKEND_PREFERENCE)
    # A PyOpenGL platform set by the user must match MuJoCo's backend, or mujoco.egl /
    # mujoco.osmesa refuse to import; so only that one can work.
    pyopengl = os.environ.get("PYOPENGL_PLATFORM", "").strip().lower()
    if pyopengl:
        preference = [pyopengl] if pyopengl in preference else []
    for backend in preference:
        if backend_installed(backend):
            return backend
    return None


def _library_loadable(backend: str) -> bool:
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
    if os.environ.get("__EGL_VENDOR_LIBRARY_FILENAMES") or os.environ.get(
        "__EGL_VENDOR_LIBRARY_DIRS"
    ):
        return True
    if any(glob.glob(os.path.join(directory, "*.json")) for directory in _EGL_VENDOR_DIRS):
        return True
    for name in _EGL_VENDOR_LIBRARIES:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False
