"""RGB-D cameras in the MuJoCo backend: adding `CameraSpec`s to a model and rendering frames.

MuJoCo cameras look along their -z axis with y up; `robot.camera` frames use the OpenCV
convention (z forward, y down). The two differ by a rotation of pi about x, applied both when
a camera is added to the model (`add_cameras`) and when its pose is read back
(`CameraRig.capture`).

Depth comes from `mujoco.Renderer` with depth rendering enabled, which already converts the
OpenGL depth buffer to metres along the optical axis; pixels at or beyond the spec's far
plane (nothing hit) become ``inf``. Each frame also carries ``meta["robot_mask"]``: the pixels
showing the robot itself, from a segmentation render of the robot's geoms at its current
joint state. That is what a robot self-filter computes on real hardware (rendering the arm's
model at the measured joints); perception uses it to ignore the arm.

Rendering needs offscreen OpenGL; where it is missing, `CameraRig.capture` raises
`RenderUnavailable` with the reason and what to install.
"""

from __future__ import annotations

import mujoco
import numpy as np

from skillstack.hw.sim.mujoco.render import RenderUnavailable, rendering_available
from skillstack.robot.camera import CameraSpec, Intrinsics, RGBDFrame
from skillstack.robot.rotations import matrix_to_quat, quat_to_matrix

# OpenCV camera axes expressed in MuJoCo camera axes (and back): a rotation of pi about x.
CV_FROM_MJ = np.diag([1.0, -1.0, -1.0])
NEAR_FRACTION_OF_EXTENT = 0.01  # MuJoCo's znear is relative to the model extent


def _pose_of_site(spec: mujoco.MjSpec, site_name: str) -> tuple[str, np.ndarray]:
    """The parent body of a site and the site's 4x4 pose in that body."""
    site = spec.site(site_name)
    if site is None:
        raise ValueError(f"model has no site {site_name!r} to mount a camera on")
    T = np.eye(4)
    T[:3, :3] = quat_to_matrix(site.quat)
    T[:3, 3] = site.pos
    return site.parent.name, T


def add_cameras(spec: mujoco.MjSpec, cameras: dict[str, CameraSpec], ee_site: str) -> None:
    """Add every camera of ``cameras`` to ``spec``: ``world`` mounts to the world body,
    ``ee`` mounts to the body carrying the end-effector site ``ee_site``."""
    for name, cam in cameras.items():
        if cam.mount == "world":
            body, T_body_mount = spec.worldbody, np.eye(4)
        elif cam.mount == "ee":
            body_name, T_body_mount = _pose_of_site(spec, ee_site)
            body = spec.body(body_name)
        else:
            raise ValueError(f"camera {name!r}: mount must be 'world' or 'ee', not {cam.mount!r}")
        T = T_body_mount @ cam.T_mount_camera()
        body.add_camera(
            name=name,
            pos=T[:3, 3].tolist(),
            quat=matrix_to_quat(T[:3, :3] @ CV_FROM_MJ).tolist(),
            fovy=cam.fovy_deg,
        )
    largest_w = max((c.width for c in cameras.values()), default=0)
    largest_h = max((c.height for c in cameras.values()), default=0)
    spec.visual.global_.offwidth = max(spec.visual.global_.offwidth, largest_w)
    spec.visual.global_.offheight = max(spec.visual.global_.offheight, largest_h)


class CameraRig:
    """Renders `RGBDFrame`s from the cameras of a compiled model.

    One `mujoco.Renderer` per image size, created on first use and freed by `close`.
    ``robot_bodies`` are the body ids of the arm (for the self-filter mask).
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        cameras: dict[str, CameraSpec],
        robot_bodies: set[int],
    ):
        self.model, self.data, self.cameras = model, data, dict(cameras)
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self._robot_geoms = np.array(
            [g for g in range(model.ngeom) if model.geom_bodyid[g] in robot_bodies], dtype=int
        )

    def _renderer(self, width: int, height: int) -> mujoco.Renderer:
        key = (width, height)
        if key not in self._renderers:
            ok, reason = rendering_available()
            if not ok:
                raise RenderUnavailable(reason)
            try:
                self._renderers[key] = mujoco.Renderer(self.model, height=height, width=width)
            except Exception as exc:  # GL context creation failed after all
                raise RenderUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return self._renderers[key]

    def capture(self, name: str) -> RGBDFrame:
        """Render camera ``name`` now: RGB, metric depth, pose and the robot mask."""
        if name not in self.cameras:
            raise KeyError(f"no camera {name!r}; cameras: {', '.join(self.cameras)}")
        spec = self.cameras[name]
        m, d = self.model, self.data
        cam_id = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, name)
        r = self._renderer(spec.width, spec.height)
        r.update_scene(d, camera=cam_id)
        rgb = r.render().copy()
        r.enable_depth_rendering()
        try:
            r.update_scene(d, camera=cam_id)
            depth = r.render().astype(np.float32)
        finally:
            r.disable_depth_rendering()
        r.enable_segmentation_rendering()
        try:
            r.update_scene(d, camera=cam_id)
            seg = r.render()
        finally:
            r.disable_segmentation_rendering()
        geom_ids = np.where(seg[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM), seg[..., 0], -1)
        robot_mask = np.isin(geom_ids, self._robot_geoms)
        depth[(depth >= spec.far) | (depth <= 0) | (geom_ids < 0)] = np.inf
        T = np.eye(4)
        T[:3, :3] = d.cam_xmat[cam_id].reshape(3, 3) @ CV_FROM_MJ
        T[:3, 3] = d.cam_xpos[cam_id]
        return RGBDFrame(
            name,
            rgb,
            depth,
            Intrinsics.from_fovy(spec.width, spec.height, spec.fovy_deg),
            T,
            float(d.time),
            {"robot_mask": robot_mask},
        )

    def close(self) -> None:
        """Free every renderer's GL context."""
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()
