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

`PybulletVideoRecorder` has the interface of `hw.sim.render.VideoRecorder`
(``maybe_capture``, ``set_caption``, ``close``) and reuses its frame clock, caption drawing
and mp4 writer.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pybullet as pb

from skillstack.hw.sim.render import (
    DEFAULT_AZIMUTH_DEG,
    DEFAULT_DISTANCE_M,
    DEFAULT_ELEVATION_DEG,
    DEFAULT_FPS,
    DEFAULT_HEIGHT_PX,
    DEFAULT_LOOKAT_M,
    DEFAULT_VIDEO_QUALITY,
    DEFAULT_WIDTH_PX,
    FrameClock,
    draw_caption,
    open_mp4_writer,
)
from skillstack.robot.camera import DEFAULT_CAMERAS, CameraSpec, RGBDFrame

_CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])  # OpenCV camera axes -> OpenGL camera axes
_DEPTH_BACKGROUND = 1.0 - 1e-7  # depth-buffer values at or above this hit nothing


def quat_to_matrix(quat_xyzw) -> np.ndarray:
    """3x3 rotation of a Bullet quaternion (x, y, z, w)."""
    return np.array(pb.getMatrixFromQuaternion(quat_xyzw)).reshape(3, 3)


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
        w, x, y, z = ee.quat
        T[:3, :3] = quat_to_matrix([x, y, z, w])
        T[:3, 3] = ee.position
        return T @ spec.T_mount_camera()

    def capture(self, name: str) -> RGBDFrame:
        """An RGB-D frame of camera ``name`` now (the wrist camera follows the hand).

        ``meta["segmentation"]`` holds body ids; ``meta["object_ids"]`` maps scene object
        names to them; ``meta["robot_mask"]`` marks the pixels showing the arm (its body id
        in the segmentation buffer: what a self-filter computes from the joint state), which
        perception ignores, as on the MuJoCo backend.
        """
        cid, arm_body = self._require()
        frame = render(cid, self._camera_spec(name), self.camera_pose(name), self.sim_time)
        frame.meta["object_ids"] = dict(self.built.objects)
        frame.meta["robot_mask"] = frame.meta["segmentation"] == arm_body
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


class PybulletVideoRecorder:
    """Records a live PyBullet simulation to an H.264 mp4 (TinyRenderer, no OpenGL needed).

    Call `maybe_capture` every tick (the robot does, when set as its ``recorder``); frames
    are taken on a fixed grid of simulation time. `set_caption` writes text (the running
    skill) on the following frames.
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
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"frame size must be positive and even for H.264: {width}x{height}")
        self.path = Path(path)
        self.caption = caption
        self.frame_count = 0
        self._client = client
        self._clock = FrameClock(fps)
        self._spec, self._pose = default_view(width, height)
        self._writer = open_mp4_writer(self.path, fps, quality)

    def set_caption(self, text: str | None) -> None:
        """Draw ``text`` on subsequent frames (None removes it)."""
        self.caption = text

    def capture_frame(self) -> np.ndarray:
        """Render the current state, append it to the video and return it (H x W x 3)."""
        if self._writer is None:
            raise RuntimeError(f"video recorder for {self.path} is closed")
        frame = render(self._client, self._spec, self._pose, segmentation=False).rgb
        if self.caption:
            frame = draw_caption(frame, self.caption)
        self._writer.append_data(frame)
        self.frame_count += 1
        return frame

    def maybe_capture(self, sim_time: float) -> None:
        """Capture a frame if one is due at ``sim_time`` (seconds); cheap otherwise."""
        if self._clock.due(sim_time):
            self.capture_frame()

    def close(self) -> Path:
        """Finalise the mp4; safe to call twice."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return self.path
