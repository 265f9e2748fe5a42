"""Cameras as data: what a backend renders and what perception and calibration consume.

Every simulated backend (MuJoCo, PyBullet) and, later, every real camera driver produces the
same `RGBDFrame`: an RGB image, a metric depth image, the pinhole intrinsics and the pose of
the camera in the world. Frames follow the OpenCV convention: x right, y down, z forward
(out of the lens), so ``K @ (T_camera_world @ p_world)[:3]`` projects a world point.

Two cameras exist by default (`DEFAULT_CAMERAS`): a fixed ``scene`` camera looking at the
table from the front, and a ``wrist`` camera on the hand looking along the gripper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels (no distortion for simulated cameras)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, ...] = ()  # OpenCV order k1 k2 p1 p2 [k3 ...]; empty = none

    @property
    def K(self) -> np.ndarray:
        """The 3×3 camera matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @staticmethod
    def from_fovy(width: int, height: int, fovy_deg: float) -> Intrinsics:
        """Square pixels, principal point at the image centre, vertical field of view."""
        f = height / 2 / math.tan(math.radians(fovy_deg) / 2)
        return Intrinsics(width, height, f, f, (width - 1) / 2, (height - 1) / 2)


@dataclass(frozen=True)
class CameraSpec:
    """Where a camera is and what it sees.

    ``mount`` is ``"world"`` for a fixed camera, or ``"ee"`` for one carried by the hand, in
    which case ``position``/``look_at``/``up`` are in the end-effector frame.
    """

    name: str
    width: int = 640
    height: int = 480
    fovy_deg: float = 58.0
    near: float = 0.05  # m
    far: float = 3.0  # m
    mount: str = "world"
    position: tuple[float, float, float] = (1.15, 0.0, 0.85)
    look_at: tuple[float, float, float] = (0.42, 0.0, 0.05)
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)

    @property
    def intrinsics(self) -> Intrinsics:
        """The intrinsics this spec renders with."""
        return Intrinsics.from_fovy(self.width, self.height, self.fovy_deg)

    def T_mount_camera(self) -> np.ndarray:
        """4×4 pose of the camera (OpenCV axes) in its mount frame."""
        return look_at(self.position, self.look_at, self.up)


@dataclass
class RGBDFrame:
    """One rendered or captured image pair.

    ``rgb`` is uint8 (H, W, 3); ``depth`` float32 (H, W) in metres along the optical axis
    (z of the camera frame), ``inf`` where nothing was hit; ``T_world_camera`` the 4×4 pose
    of the camera (OpenCV axes) in the world at ``time``.
    """

    camera: str
    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: Intrinsics
    T_world_camera: np.ndarray
    time: float = 0.0
    meta: dict = field(default_factory=dict)

    def points_world(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Back-project the (masked, finite) depth pixels to world points, shape (N, 3)."""
        valid = np.isfinite(self.depth)
        v, u = np.nonzero(valid if mask is None else mask & valid)
        z = self.depth[v, u].astype(float)
        k = self.intrinsics
        cam = np.stack([(u - k.cx) * z / k.fx, (v - k.cy) * z / k.fy, z, np.ones_like(z)])
        return (self.T_world_camera @ cam)[:3].T


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """4×4 pose of an OpenCV camera at ``eye`` looking at ``target`` (z forward, y down)."""
    eye, target, up = (np.asarray(v, dtype=float) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("camera 'up' is parallel to the viewing direction")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, :3] = np.column_stack([x, y, z])
    T[:3, 3] = eye
    return T


DEFAULT_CAMERAS: dict[str, CameraSpec] = {
    # In front of the table, high and steep (about 60 degrees down): it sees into cups and
    # bowls, and the arm at home stays behind the objects (radius 0.38-0.62 m, +-1 rad).
    "scene": CameraSpec("scene", fovy_deg=50.0, position=(1.0, 0.0, 1.0), look_at=(0.4, 0.0, 0.0)),
    # On the hand, 6 cm behind the fingertips and 8 cm off-axis, looking past the fingers.
    "wrist": CameraSpec(
        "wrist",
        width=320,
        height=240,
        fovy_deg=70.0,
        near=0.02,
        far=2.0,
        mount="ee",
        position=(0.08, 0.0, -0.06),
        look_at=(0.0, 0.0, 0.15),
        up=(1.0, 0.0, 0.0),
    ),
}
