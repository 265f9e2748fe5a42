"""Camera images in demonstrations: rendering them while collecting, and checking them on load.

With ``skillstack collect ... --images`` every sample also stores one RGB image per camera of
`robot.camera.DEFAULT_CAMERAS`, under the names robomimic uses (`IMAGE_KEYS`):
``obs/agentview_image`` (the fixed ``scene`` camera) and ``obs/robot0_eye_in_hand_image``
(the ``wrist`` camera on the hand), uint8 ``(T, size, size, 3)``.

Images are rendered at their stored size (84×84 by default, robomimic's convention) rather
than rendered large and shrunk: the model's cameras keep their pose and vertical field of
view, so a square image sees the middle of the wider default view. Shadows are switched off
for these renders: on a CPU-only OpenGL (Mesa) the 4096² shadow map costs about 110 ms a
frame, without it 1.6 ms (84×84). The pose and intrinsics of each camera at the stored size
go into the dataset's ``env_args["cameras"]`` (`cameras_env_args`).

`image_problems` validates image arrays (or HDF5 datasets: only ``shape`` and ``dtype`` are
read), so the dataset loader can check a file's images without loading them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from skillstack.robot.camera import DEFAULT_CAMERAS, CameraSpec

if TYPE_CHECKING:
    import mujoco

# robomimic's observation name -> the skillstack camera it comes from
IMAGE_KEYS: dict[str, str] = {"agentview_image": "scene", "robot0_eye_in_hand_image": "wrist"}
DEFAULT_IMAGE_SIZE = 84  # pixels, square (robomimic's usual image size)
MIN_IMAGE_SIZE = 16
# The model's offscreen buffer fits the largest default camera (640×480): no square image
# larger than its smaller side can be rendered.
MAX_IMAGE_SIZE = min(
    max(c.width for c in DEFAULT_CAMERAS.values()), max(c.height for c in DEFAULT_CAMERAS.values())
)


def check_image_size(size: int) -> None:
    """Raise ValueError unless ``size`` is a square image size that can be rendered."""
    if not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
        raise ValueError(
            f"image size must be {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} pixels, not {size}"
        )


def check_rendering() -> None:
    """Raise `hw.sim.mujoco.render.RenderUnavailable` (with what to install) where offscreen
    rendering does not work in this process."""
    from skillstack.hw.sim.mujoco.render import RenderUnavailable, rendering_available

    ok, reason = rendering_available()
    if not ok:
        raise RenderUnavailable(f"--images needs offscreen rendering: {reason}")


def image_specs(size: int) -> dict[str, CameraSpec]:
    """The camera spec of every image key, at ``size``×``size`` pixels."""
    return {
        key: dataclasses.replace(DEFAULT_CAMERAS[cam], width=size, height=size)
        for key, cam in IMAGE_KEYS.items()
    }


def cameras_env_args(size: int) -> dict[str, dict[str, Any]]:
    """``env_args["cameras"]``: per image key, the camera, its mount, its 4×4 pose in the mount
    frame (OpenCV axes; ``mount`` ``"world"``: the world frame, ``"ee"``: the end-effector
    site's frame) and its intrinsics at the stored size."""
    out = {}
    for key, spec in image_specs(size).items():
        k = spec.intrinsics
        out[key] = {
            "camera": spec.name,
            "mount": spec.mount,
            "width": spec.width,
            "height": spec.height,
            "fovy_deg": spec.fovy_deg,
            "K": k.K.tolist(),
            "T_mount_camera": spec.T_mount_camera().tolist(),
            "shadows": False,
        }
    return out


class CameraImages:
    """Renders the RGB image of every `IMAGE_KEYS` camera of a connected `MujocoRobot`.

    One `mujoco.Renderer` at ``size``×``size`` serves both cameras; it is created on the
    first `render` and freed by `close` (or on leaving a ``with`` block).
    """

    def __init__(self, robot, size: int = DEFAULT_IMAGE_SIZE):
        check_image_size(size)
        self.robot, self.size = robot, size
        self._renderer: mujoco.Renderer | None = None  # created by the first render

    def render(self) -> dict[str, np.ndarray]:
        """Each image key's current view: uint8 (size, size, 3)."""
        import mujoco

        from skillstack.hw.sim.mujoco.render import RenderUnavailable

        model, data = self.robot.model, self.robot.data
        renderer = self._renderer
        if renderer is None:
            check_rendering()
            try:
                renderer = mujoco.Renderer(model, height=self.size, width=self.size)
            except Exception as exc:  # GL context creation failed after all
                raise RenderUnavailable(f"{type(exc).__name__}: {exc}") from exc
            # see the module docstring
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            self._renderer = renderer
        out = {}
        for key, camera in IMAGE_KEYS.items():
            renderer.update_scene(data, camera=camera)
            out[key] = renderer.render().copy()
        return out

    def close(self) -> None:
        """Free the renderer's GL context."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self) -> CameraImages:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def image_problems(images: Mapping[str, Any], num_samples: int) -> list[str]:
    """What is wrong with one demo's images (empty when fine, or when it has none).

    ``images`` maps image keys to arrays or HDF5 datasets (only ``shape``/``dtype`` are
    read). A demo has the images of both cameras or of neither; each is uint8
    ``(num_samples, H, W, 3)``.
    """
    if not images:
        return []
    out = [
        f"obs/{k} is not an image key ({', '.join(IMAGE_KEYS)})"
        for k in images
        if k not in IMAGE_KEYS
    ]
    missing = [k for k in IMAGE_KEYS if k not in images]
    if missing:
        out.append(f"it has images of some cameras but lacks obs/{', obs/'.join(missing)}")
    for key, array in images.items():
        shape = tuple(np.shape(array))  # an HDF5 dataset's shape and dtype: no data read
        dtype = np.dtype(array.dtype if hasattr(array, "dtype") else np.asarray(array).dtype)
        if dtype != np.uint8:
            out.append(f"obs/{key} is {dtype}, expected uint8 RGB")
        if len(shape) != 4 or shape[3] != 3 or min(shape[1:3], default=0) < 1:
            out.append(f"obs/{key} has shape {shape}, expected ({num_samples}, H, W, 3)")
        elif shape[0] != num_samples:
            out.append(f"obs/{key} has {shape[0]} images but the demo has {num_samples} samples")
    return out


def image_shapes(images: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """(H, W) of each image key of one demo (arrays or HDF5 datasets)."""
    return {k: tuple(np.shape(v)[1:3]) for k, v in images.items()}
