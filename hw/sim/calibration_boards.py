"""Calibration boards as a simulated camera sees them, whatever renders the images.

The printed patterns (`CHESSBOARD` for intrinsics, `CHARUCO` for hand–eye) as textures on a
thin box, where the pattern frame sits on that box, whether a view shows the whole pattern,
and what a real lens and a real robot add: distortion of the image and noise on the reported
hand pose. `hw.sim.mujoco.calibration_synth` renders its data sets with these.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from skillstack.robot.camera import Intrinsics
from skillstack.robot.perception.calibration import CharucoSpec, ChessboardSpec

CHESSBOARD = ChessboardSpec(9, 6, 0.025)
CHARUCO = CharucoSpec()
BOARD_THICKNESS = 0.004  # m
MARGIN_SQUARES = 0.5  # white border around the printed pattern, in squares
TEXTURE_PX_PER_SQUARE = 96


def board_texture(board: ChessboardSpec | CharucoSpec) -> tuple[np.ndarray, float, float]:
    """The printed board as a grey image (with a white margin) and its size in metres."""
    px = TEXTURE_PX_PER_SQUARE
    margin = int(MARGIN_SQUARES * px)
    if isinstance(board, CharucoSpec):
        nx, ny, square = board.squares_x, board.squares_y, board.square_m
        size = (nx * px + 2 * margin, ny * px + 2 * margin)
        image = board.board().generateImage(size, marginSize=margin)
    else:
        nx, ny, square = board.cols + 1, board.rows + 1, board.square_m
        cells = (np.add.outer(np.arange(ny), np.arange(nx)) % 2 == 1).astype(np.uint8) * 255
        image = np.pad(np.kron(cells, np.ones((px, px), np.uint8)), margin, constant_values=255)
    return image, image.shape[1] * square / px, image.shape[0] * square / px


def geom_to_board(board: ChessboardSpec | CharucoSpec, w: float, h: float) -> np.ndarray:
    """T_geom_board: the pattern frame in the frame of the textured box ``w`` × ``h`` m."""
    margin = MARGIN_SQUARES * board.square_m
    # The texture covers the box's +z face with image column -> +x and image row -> -y, so
    # the pattern's top-left corner (the board origin) sits at (-w/2 + margin, h/2 - margin).
    T = np.diag([1.0, -1.0, -1.0, 1.0])
    T[:3, 3] = [-w / 2 + margin, h / 2 - margin, BOARD_THICKNESS / 2]
    return T


def board_in_world(T_world_geom: np.ndarray) -> np.ndarray:
    """The ChArUco pattern frame in the world from the board geom's pose."""
    _, w, h = board_texture(CHARUCO)
    return T_world_geom @ geom_to_board(CHARUCO, w, h)


def board_visible(T_camera_board: np.ndarray, board, intr: Intrinsics, pad: float = 4.0) -> bool:
    """Whether the whole pattern projects inside the image, facing the camera."""
    if isinstance(board, CharucoSpec):
        w, h = board.size_m
    else:
        w, h = (board.cols + 1) * board.square_m, (board.rows + 1) * board.square_m
    corners = np.array([[0, 0, 0], [w, 0, 0], [0, h, 0], [w, h, 0]], dtype=float)
    if T_camera_board[2, 2] < np.cos(np.radians(70)):  # board normal vs. the optical axis
        return False
    pts = (T_camera_board[:3, :3] @ corners.T).T + T_camera_board[:3, 3]
    if np.any(pts[:, 2] < 0.05):
        return False
    rvec = Rotation.from_matrix(T_camera_board[:3, :3]).as_rotvec()
    uv, _ = cv2.projectPoints(
        corners, rvec, T_camera_board[:3, 3], intr.K, np.asarray(intr.distortion)
    )
    uv = uv.reshape(-1, 2)
    return bool(np.all((uv > pad) & (uv < [intr.width - pad, intr.height - pad])))


def distort(image: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """Resample a pinhole image as a lens with ``intr.distortion`` would have formed it."""
    if not any(intr.distortion):
        return image
    u, v = np.meshgrid(np.arange(intr.width), np.arange(intr.height))
    pixels = np.stack([u, v], axis=-1).reshape(-1, 1, 2).astype(np.float64)
    dist = np.asarray(intr.distortion)
    ideal = cv2.undistortPoints(pixels, intr.K, dist, P=intr.K).reshape(intr.height, intr.width, 2)
    return cv2.remap(
        image,
        ideal[..., 0].astype(np.float32),
        ideal[..., 1].astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def noisy_pose(T: np.ndarray, rng, noise_m: float, noise_deg: float) -> np.ndarray:
    """``T`` moved by Gaussian noise: ``noise_m`` metres and ``noise_deg`` degrees (std)."""
    out = T.copy()
    out[:3, 3] += rng.normal(0.0, noise_m, 3)
    out[:3, :3] = (
        Rotation.from_rotvec(np.radians(rng.normal(0.0, noise_deg, 3))).as_matrix() @ T[:3, :3]
    )
    return out
