"""Synthetic calibration data: board images rendered in MuJoCo from cameras we know exactly.

`generate(camera, out, seed)` writes the folder layout that `skillstack calibrate` reads
from a real camera, plus the ground truth to compare against::

    out/intrinsics/view_000.png ...   chessboard (9x6 inner corners, 25 mm) at random poses
    out/handeye/view_000.png ...      ChArUco board (5x7 squares, 40 mm) seen from ~15 poses
    out/handeye/poses.json            the hand pose (T_world_ee) reported for each image
    out/ground_truth.json             true intrinsics, camera mount pose and board pose

Hand–eye scenes contain the simulated Panda (`robot.arms.panda`), moved kinematically to
configurations found by `robot.ik_solve.solve_ik`: for the ``ee``-mounted wrist camera the
camera is a child of the hand body and the board lies on the table (eye-in-hand); for a
``world`` camera the board is a child of the hand body (eye-to-hand). The reported hand
pose is the ``ee`` site from the model at that configuration (optionally with noise), and
the true camera pose is read back from the rendered model, not from the sampling code.

Images are rendered with `mujoco.Renderer` at the camera's resolution and field of view
(`robot.camera.CameraSpec`), then lens distortion (OpenCV model) and pixel noise are added,
so that the calibration sees what a real camera would give it. The boards, the visibility
test and the distortion are backend-neutral (`hw.sim.calibration_boards`).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from skillstack.hw.sim.calibration_boards import (
    BOARD_THICKNESS,
    CHARUCO,
    CHESSBOARD,
    board_in_world,
    board_texture,
    board_visible,
    distort,
    geom_to_board,
    noisy_pose,
)
from skillstack.hw.sim.mujoco.render import RenderUnavailable, rendering_available
from skillstack.robot.arms import get_arm
from skillstack.robot.camera import DEFAULT_CAMERAS, CameraSpec, Intrinsics, look_at
from skillstack.robot.ik_solve import solve_ik
from skillstack.robot.kinematics import KinematicModel
from skillstack.robot.rotations import matrix_to_quat, quat_to_matrix
from skillstack.robot.types import Pose

DISTORTION = (-0.06, 0.02, 0.0, 0.0, 0.0)  # k1 k2 p1 p2 k3: a mild barrel lens
PIXEL_NOISE = 2.0  # grey levels, standard deviation of sensor noise
HAND = "panda_link7"  # the Panda body that carries the hand and the ee site
BOARD_ON_TABLE = (0.5, 0.0)  # m, centre of the board for eye-in-hand
BOARD_BEYOND_EE = 0.03  # m, eye-to-hand board centre ahead of the ee site along its z
MAX_TRIES_PER_VIEW = 40
_FLIP = np.diag([1.0, -1.0, -1.0, 1.0])  # OpenCV camera axes <-> MuJoCo camera axes


def _pose(T: np.ndarray) -> dict:
    return {"pos": T[:3, 3].tolist(), "quat": matrix_to_quat(T[:3, :3]).tolist()}


def _add_board(spec: mujoco.MjSpec, parent, board, T_parent_board: np.ndarray, tmp: Path) -> None:
    """A thin textured box whose pattern frame (OpenCV board frame) is ``T_parent_board``."""
    image, w, h = board_texture(board)
    png = tmp / f"board_{id(board)}.png"
    cv2.imwrite(str(png), image)
    spec.add_texture(name="board", type=mujoco.mjtTexture.mjTEXTURE_2D, file=str(png))
    material = spec.add_material(name="board")
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "board"
    T = T_parent_board @ np.linalg.inv(geom_to_board(board, w, h))
    parent.add_geom(
        name="board",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[w / 2, h / 2, BOARD_THICKNESS / 2],
        material="board",
        contype=0,
        conaffinity=0,
        **_pose(T),
    )


def _add_camera(spec: mujoco.MjSpec, parent, camera: CameraSpec, T_parent_camera: np.ndarray):
    spec.visual.global_.offwidth = max(spec.visual.global_.offwidth, camera.width)
    spec.visual.global_.offheight = max(spec.visual.global_.offheight, camera.height)
    parent.add_camera(name="calib", fovy=camera.fovy_deg, **_pose(T_parent_camera @ _FLIP))


def _world_camera_pose(data: mujoco.MjData) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = data.cam_xmat[0].reshape(3, 3)
    T[:3, 3] = data.cam_xpos[0]
    return T @ _FLIP


class _Scene:
    """A compiled calibration scene with one camera named ``calib`` and a renderer."""

    def __init__(self, spec: mujoco.MjSpec, camera: CameraSpec, intr: Intrinsics, rng):
        spec.stat.extent = 1.0
        spec.visual.map.znear = 0.01  # × extent: 1 cm, the board can come close
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        self.intr, self.rng = intr, rng
        self.renderer = mujoco.Renderer(self.model, camera.height, camera.width)

    def render(self) -> np.ndarray:
        mujoco.mj_forward(self.model, self.data)
        self.renderer.update_scene(self.data, camera="calib")
        bgr = cv2.cvtColor(self.renderer.render(), cv2.COLOR_RGB2BGR)
        bgr = distort(bgr, self.intr).astype(float)
        bgr += self.rng.normal(0.0, PIXEL_NOISE, bgr.shape)
        return np.clip(bgr, 0, 255).astype(np.uint8)

    def close(self) -> None:
        self.renderer.close()


def _chessboard_views(
    camera: CameraSpec,
    intr: Intrinsics,
    n: int,
    rng,
    out: Path,
    tmp: Path,
    progress: Callable[[int], None],
) -> None:
    """A fixed camera and a free-floating chessboard at random poses in front of it."""
    spec = mujoco.MjSpec()
    _add_camera(spec, spec.worldbody, camera, np.eye(4))
    holder = spec.worldbody.add_body(name="holder", mocap=True)
    _add_board(spec, holder, CHESSBOARD, np.eye(4), tmp)
    scene = _Scene(spec, camera, intr, rng)
    bw, bh = (
        (CHESSBOARD.cols + 1) * CHESSBOARD.square_m,
        (CHESSBOARD.rows + 1) * CHESSBOARD.square_m,
    )
    done = 0
    for _ in range(n * MAX_TRIES_PER_VIEW):
        if done == n:
            break
        depth = intr.fy * bh / (rng.uniform(0.35, 0.7) * intr.height)
        centre = (
            np.array(
                [
                    rng.uniform(-0.25, 0.25) * intr.width / intr.fx,
                    rng.uniform(-0.25, 0.25) * intr.height / intr.fy,
                    1.0,
                ]
            )
            * depth
        )
        R = Rotation.from_euler(
            "xyz", [rng.uniform(-40, 40), rng.uniform(-40, 40), rng.uniform(-30, 30)], degrees=True
        ).as_matrix()
        T = np.eye(4)
        T[:3, :3] = R
        T[:3, 3] = centre - R @ [bw / 2, bh / 2, 0.0]
        if not board_visible(T, CHESSBOARD, intr):
            continue
        scene.data.mocap_pos[0], scene.data.mocap_quat[0] = T[:3, 3], matrix_to_quat(R)
        cv2.imwrite(str(out / f"view_{done:03d}.png"), scene.render())
        done += 1
        progress(1)
    scene.close()
    if done < n:
        raise RuntimeError(f"could only place the chessboard in {done} of {n} views")


def _handeye_views(
    camera: CameraSpec,
    intr: Intrinsics,
    n: int,
    rng,
    out: Path,
    tmp: Path,
    noise: tuple[float, float],
    progress: Callable[[int], None],
) -> dict:
    """The Panda moves a wrist camera over a board on the table, or a board before a camera."""
    arm = get_arm("panda")
    spec = arm.build_spec(with_actuators=False)
    spec.worldbody.add_geom(
        name="table", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[2, 2, 0.05], rgba=[0.55, 0.5, 0.45, 1]
    )
    spec.worldbody.add_light(pos=[0.5, 0.5, 2.0], dir=[-0.2, -0.2, -1.0], diffuse=[0.6] * 3)
    hand = spec.body(HAND)
    site = spec.site(arm.ee_site)
    T_hand_ee = np.eye(4)
    T_hand_ee[:3, :3] = quat_to_matrix(site.quat)
    T_hand_ee[:3, 3] = site.pos
    w, h = CHARUCO.size_m
    if camera.mount == "ee":
        _add_camera(spec, hand, camera, T_hand_ee @ camera.T_mount_camera())
        T_world_board = np.eye(4)
        T_world_board[:3, :3] = [[0, 1, 0], [1, 0, 0], [0, 0, -1]]
        centre = np.array([*BOARD_ON_TABLE, BOARD_THICKNESS])
        T_world_board[:3, 3] = centre - T_world_board[:3, :3] @ [w / 2, h / 2, 0]
        _add_board(spec, spec.worldbody, CHARUCO, T_world_board, tmp)
    else:
        _add_camera(spec, spec.worldbody, camera, camera.T_mount_camera())
        T_ee_board = np.eye(4)
        T_ee_board[:3, :3] = np.diag([1.0, -1.0, -1.0])  # pattern faces along the ee z axis
        T_ee_board[:3, 3] = [0, 0, BOARD_BEYOND_EE] - T_ee_board[:3, :3] @ [w / 2, h / 2, 0]
        _add_board(spec, hand, CHARUCO, T_hand_ee @ T_ee_board, tmp)
    scene = _Scene(spec, camera, intr, rng)
    kin, caps = KinematicModel(arm), arm.capabilities
    ee_id = mujoco.mj_name2id(scene.model, mujoco.mjtObj.mjOBJ_SITE, arm.ee_site)
    board_id = mujoco.mj_name2id(scene.model, mujoco.mjtObj.mjOBJ_GEOM, "board")
    poses, truths, done = {}, [], 0
    for attempt in range(n * MAX_TRIES_PER_VIEW):
        if done == n:
            break
        if camera.mount == "ee":
            target = np.array([*BOARD_ON_TABLE, 0.0]) + np.append(rng.uniform(-0.03, 0.03, 2), 0.0)
            polar, azimuth = np.radians(rng.uniform(0, 35)), rng.uniform(0, 2 * np.pi)
            direction = [
                np.sin(polar) * np.cos(azimuth),
                np.sin(polar) * np.sin(azimuth),
                np.cos(polar),
            ]
            roll = np.radians(rng.uniform(-60, 60))
            T_cam = look_at(
                target + rng.uniform(0.3, 0.42) * np.array(direction),
                target,
                (np.cos(roll), np.sin(roll), 0.0),
            )
            T_ee = T_cam @ np.linalg.inv(camera.T_mount_camera())
        else:
            centre = np.array(
                [rng.uniform(0.35, 0.6), rng.uniform(-0.2, 0.2), rng.uniform(0.2, 0.45)]
            )
            T_face = look_at(camera.position, centre)  # board z along the line of sight
            tilt = Rotation.from_rotvec(np.radians(rng.uniform(-35, 35, 3)) * [1, 1, 3])
            T_board = np.eye(4)
            T_board[:3, :3] = T_face[:3, :3] @ tilt.as_matrix()
            T_board[:3, 3] = centre - T_board[:3, :3] @ [w / 2, h / 2, 0]
            T_ee = T_board @ np.linalg.inv(T_ee_board)
        q = solve_ik(
            kin, caps, Pose(T_ee[:3, 3], matrix_to_quat(T_ee[:3, :3])), [arm.home_q], attempt
        )
        if q is None:
            continue
        scene.data.qpos[: len(q)] = q
        mujoco.mj_forward(scene.model, scene.data)
        H = np.eye(4)
        H[:3, :3], H[:3, 3] = scene.data.site_xmat[ee_id].reshape(3, 3), scene.data.site_xpos[ee_id]
        T_world_cam = _world_camera_pose(scene.data)
        T_world_geom = np.eye(4)
        T_world_geom[:3, :3] = scene.data.geom_xmat[board_id].reshape(3, 3)
        T_world_geom[:3, 3] = scene.data.geom_xpos[board_id]
        T_camera_board = np.linalg.inv(T_world_cam) @ board_in_world(T_world_geom)
        if not board_visible(T_camera_board, CHARUCO, intr):
            continue
        name = f"view_{done:03d}.png"
        cv2.imwrite(str(out / name), scene.render())
        reported = noisy_pose(H, rng, *noise)
        poses[name] = {
            "position": reported[:3, 3].tolist(),
            "quat": matrix_to_quat(reported[:3, :3]).tolist(),
        }
        mount_pose = np.linalg.inv(H) @ T_world_cam if camera.mount == "ee" else T_world_cam
        truths.append(mount_pose)
        done += 1
        progress(1)
    scene.close()
    if done < n:
        raise RuntimeError(f"the arm could only show the board in {done} of {n} views")
    (out / "poses.json").write_text(
        json.dumps({"frame": "world", "link": "ee", "poses": poses}, indent=1)
    )
    return {
        "T_mount_camera": truths[0].tolist(),
        "mount_pose_spread_m": float(np.ptp([t[:3, 3] for t in truths], axis=0).max()),
    }


def generate(
    camera: str | CameraSpec,
    out: str | Path,
    seed: int = 0,
    *,
    views: int = 15,
    distortion: tuple[float, ...] = DISTORTION,
    pose_noise: tuple[float, float] = (0.0, 0.0),
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Render intrinsics and hand–eye data sets for ``camera`` into ``out``; return the truth.

    ``pose_noise`` is (metres, degrees): the standard deviation of the noise added to each
    reported hand pose, as a real robot's kinematic calibration error would add.
    """
    ok, reason = rendering_available()
    if not ok:
        raise RenderUnavailable(reason)
    spec = DEFAULT_CAMERAS[camera] if isinstance(camera, str) else camera
    if views < 3:
        raise ValueError(f"need at least 3 views, got {views}")
    k = spec.intrinsics
    intr = Intrinsics(k.width, k.height, k.fx, k.fy, k.cx, k.cy, tuple(distortion))
    rng = np.random.default_rng(seed)
    out = Path(out)
    (out / "intrinsics").mkdir(parents=True, exist_ok=True)
    (out / "handeye").mkdir(parents=True, exist_ok=True)
    counter = [0]

    def tick(step: int) -> None:
        counter[0] += step
        if progress is not None:
            progress(counter[0], 2 * views)

    with tempfile.TemporaryDirectory() as tmp:
        _chessboard_views(spec, intr, views, rng, out / "intrinsics", Path(tmp), tick)
        truth = _handeye_views(spec, intr, views, rng, out / "handeye", Path(tmp), pose_noise, tick)
    truth = {
        "camera": spec.name,
        "mount": spec.mount,
        "intrinsics": {
            "width": intr.width,
            "height": intr.height,
            "fx": intr.fx,
            "fy": intr.fy,
            "cx": intr.cx,
            "cy": intr.cy,
            "distortion": list(intr.distortion),
        },
        **truth,
        "chessboard": CHESSBOARD.describe(),
        "charuco": CHARUCO.describe(),
        "seed": seed,
        "pose_noise": {"m": pose_noise[0], "deg": pose_noise[1]},
    }
    (out / "ground_truth.json").write_text(json.dumps(truth, indent=1))
    return truth
