"""RGB-D cameras and mp4 videos of a PyBullet simulation, rendered with TinyRenderer.

TinyRenderer is PyBullet's CPU rasteriser: it needs no OpenGL context, so it works on every
headless machine. Cameras follow `robot.camera`: a `CameraSpec` gives the pose (fixed in
the world, or carried by the end effector) and the pinhole model; `capture` returns an
`RGBDFrame` with OpenCV axes. The OpenGL matrices PyBullet wants are derived from the same
spec: the view matrix is the inverse camera pose with the y and z axes flipped (OpenGL
cameras look down -z with y up), and the projection has the spec's vertical field of view,
aspect ratio and clip planes, which puts the principal point at ((W-1)/2, (H-1)/2) in pixel
indices, as `Intrinsics.from_fovy` does. Depth comes from the depth buffer ``b`` in [0, 1]
as ``z = far * near / (far - (far - near) * b)`` (metres along the optical axis), ``inf``
where nothing was hit before the far plane.

`PybulletVideoRecorder` is `hw.sim.video.VideoRecorder` (frame clock, captions, mp4 writer)
filming TinyRenderer frames from the free camera MuJoCo's videos use (`default_view`).
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import numpy as np
import pybullet as pb

from skillstack.hw.sim.pybullet.scene import BuiltScene
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
from skillstack.robot.camera import DEFAULT_CAMERAS, CameraSpec, RGBDFrame
from skillstack.robot.rotations import quat_to_matrix
from skillstack.robot.types import Pose

_CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])  # OpenCV camera axes -> OpenGL camera axes
_DEPTH_BACKGROUND = 1.0 - 1e-7  # depth-buffer values at or above this hit nothing


def render(
    cid: int,
    spec: CameraSpec,
    T_world_camera: np.ndarray,
    time: float = 0.0,
    segmentation: bool = True,
) -> RGBDFrame:
    """Render ``spec`` posed at ``T_world_camera`` (OpenCV axes) in client ``cid``.

    ``meta["segmentation"]`` holds PyBullet's per-pixel body ids (-1: background), when
    ``segmentation`` is asked for.
    """
    view = np.linalg.inv(T_world_camera @ _CV_TO_GL)
    proj = pb.computeProjectionMatrixFOV(
        spec.fovy_deg, spec.width / spec.height, spec.near, spec.far
    )
    _, _, rgba, buf, seg = pb.getCameraImage(
        spec.width,
        spec.height,
        viewMatrix=view.T.ravel().tolist(),  # column-major, as OpenGL
        projectionMatrix=proj,
        renderer=pb.ER_TINY_RENDERER,
        flags=0 if segmentation else pb.ER_NO_SEGMENTATION_MASK,
        physicsClientId=cid,
    )
    rgb = np.asarray(rgba, dtype=np.uint8).reshape(spec.height, spec.width, 4)[..., :3].copy()
    buf = np.asarray(buf, dtype=np.float64).reshape(spec.height, spec.width)
    near, far = spec.near, spec.far
    depth = far * near / (far - (far - near) * buf)
    depth[buf >= _DEPTH_BACKGROUND] = np.inf
    meta: dict = {"backend": "pybullet"}
    if segmentation:
        meta["segmentation"] = np.asarray(seg, dtype=np.int64).reshape(spec.height, spec.width)
    return RGBDFrame(
        spec.name,
        rgb,
        depth.astype(np.float32),
        spec.intrinsics,
        T_world_camera.copy(),
        time,
        meta,
    )


class PybulletCameras:
    """Mixin of `PybulletRobot`: ``cameras`` (name -> `CameraSpec`) and `capture`."""

    cameras: dict[str, CameraSpec]

    if TYPE_CHECKING:  # provided by the host robot

        @property
        def sim_time(self) -> float:
            """Simulated seconds since the last reset: each frame's timestamp."""
            ...

        def ee_pose(self) -> Pose:
            """Ground-truth end-effector pose: where the wrist camera is mounted."""
            ...

        def _require_scene(self) -> tuple[int, BuiltScene]: ...

    def _init_cameras(self, cameras: dict[str, CameraSpec] | None) -> None:
        self.cameras = dict(DEFAULT_CAMERAS if cameras is None else cameras)

    def camera_pose(self, name: str) -> np.ndarray:
        """4x4 pose (OpenCV axes) of camera ``name`` in the world now."""
        spec = self._camera_spec(name)
        if spec.mount == "world":
            return spec.T_mount_camera()
        if spec.mount != "ee":
            raise ValueError(f"camera {name!r}: unknown mount {spec.mount!r}; use world or ee")
        ee = self.ee_pose()
        T = np.eye(4)
        T[:3, :3] = quat_to_matrix(ee.quat)
        T[:3, 3] = ee.position
        return T @ spec.T_mount_camera()

    def capture(self, name: str) -> RGBDFrame:
        """An RGB-D frame of camera ``name`` now (the wrist camera follows the hand).

        ``meta["segmentation"]`` holds body ids; ``meta["object_ids"]`` maps scene object
        names to them; ``meta["robot_mask"]`` marks the pixels showing the arm (its body id
        in the segmentation buffer: what a self-filter computes from the joint state), which
        perception ignores, as on the MuJoCo backend.
        """
        cid, built = self._require_scene()
        frame = render(cid, self._camera_spec(name), self.camera_pose(name), self.sim_time)
        frame.meta["object_ids"] = dict(built.objects)
        frame.meta["robot_mask"] = frame.meta["segmentation"] == built.arm
        return frame

    def _camera_spec(self, name: str) -> CameraSpec:
        try:
            return self.cameras[name]
        except KeyError:
            raise KeyError(
                f"no camera {name!r}; cameras: {', '.join(self.cameras) or '(none)'}"
            ) from None


def default_view(width: int = DEFAULT_WIDTH_PX, height: int = DEFAULT_HEIGHT_PX) -> tuple:
    """The MuJoCo recorder's free camera (look-at point, distance, azimuth, elevation) as a
    `CameraSpec` and its pose, so both backends' videos are framed alike."""
    az, el = math.radians(DEFAULT_AZIMUTH_DEG), math.radians(DEFAULT_ELEVATION_DEG)
    forward = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    eye = np.asarray(DEFAULT_LOOKAT_M) - DEFAULT_DISTANCE_M * forward
    spec = CameraSpec(
        "video", width=width, height=height, fovy_deg=45.0, near=0.05, far=10.0,
        position=tuple(eye), look_at=DEFAULT_LOOKAT_M,
    )  # fmt: skip
    return spec, spec.T_mount_camera()


class PybulletVideoRecorder(VideoRecorder):
    """Records a live PyBullet simulation to an H.264 mp4 (TinyRenderer, no OpenGL needed).

    A `hw.sim.video.VideoRecorder` whose frame source renders client ``client`` from
    `default_view`: call `maybe_capture` every tick (the robot does, when set as its
    ``recorder``); frames are taken on a fixed grid of simulation time. `set_caption` writes
    text (the running skill) on the following frames.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        client: int,
        fps: float = DEFAULT_FPS,
        width: int = DEFAULT_WIDTH_PX,
        height: int = DEFAULT_HEIGHT_PX,
        *,
        quality: int = DEFAULT_VIDEO_QUALITY,
        caption: str | None = None,
    ) -> None:
        check_video_format(fps, width, height)
        spec, pose = default_view(width, height)

        def frames() -> np.ndarray:
            return render(client, spec, pose, segmentation=False).rgb

        super().__init__(path, frames, fps, width, height, quality=quality, caption=caption)
