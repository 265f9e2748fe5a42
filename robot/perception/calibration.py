"""Camera calibration: intrinsics from chessboard images, hand–eye from ChArUco views.

Two steps, each a plain function over images already in memory (the `skillstack calibrate`
commands read them from folders, see `planners/cli/calibrate_cmd.py`):

1. `calibrate_intrinsics(images, ChessboardSpec(9, 6, 0.025))` finds the inner corners of a
   printed chessboard in every image (``cv2.findChessboardCorners`` + ``cornerSubPix``) and
   fits the pinhole model with distortion (``cv2.calibrateCamera``). The RMS reprojection
   error in pixels says how well the model fits: well under 1 px is good.
2. `calibrate_hand_eye(views, hand_poses, intrinsics, mount)` takes ChArUco views
   (`detect_charuco`: corners + ``cv2.solvePnP`` per image) together with the pose of the
   hand reported by the robot for each image, and finds where the camera is:

   * ``mount="ee"`` (eye-in-hand): the camera rides on the hand, the board lies still on the
     table; the result is ``T_ee_camera``, the camera in the end-effector frame.
   * ``mount="world"`` (eye-to-hand): the camera is fixed, the board is held by the hand;
     the result is ``T_world_camera``.

   A closed-form solution of ``AX = XB`` (``cv2.calibrateHandEye``, Park's method; a numpy
   version of the same method where the installed OpenCV lacks the Python binding, as
   opencv-python 5.0.0 does: opencv/opencv#29565, hence the ``<5`` pin in pyproject.toml)
   is refined by minimising the reprojection error of every corner in every view over both
   unknown transforms (camera on its mount, board on its own) with
   ``scipy.optimize.least_squares``.

Poses are 4×4 homogeneous matrices; ``T_a_b`` maps coordinates in frame b to frame a.
Camera frames use OpenCV axes (x right, y down, z forward), as in `robot.camera`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from skillstack.robot.camera import Intrinsics

Mount = Literal["world", "ee"]
MOUNTS: tuple[Mount, ...] = ("world", "ee")

MIN_INTRINSICS_VIEWS = 6  # views with the board found; fewer leave the model underdetermined
MIN_FOUND_FRACTION = 0.5  # below this the board spec (size, corners) is probably wrong
MIN_HANDEYE_VIEWS = 6
MIN_CHARUCO_CORNERS = 6  # corners per view for a trustworthy solvePnP
MIN_MOTION_DEG = 10.0  # the hand must rotate at least this much between some views...
MIN_AXIS_SPREAD = 0.15  # ...about at least two clearly different axes (2nd singular value)
SUBPIX_WINDOW = (5, 5)  # px, half-size of the cornerSubPix search window
SUBPIX_CRITERIA = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-4)


class CalibrationError(ValueError):
    """Calibration input that cannot give a trustworthy result; the message says why."""


@dataclass(frozen=True)
class ChessboardSpec:
    """A printed chessboard: ``cols`` × ``rows`` *inner* corners, squares of ``square_m``."""

    cols: int
    rows: int
    square_m: float

    def __post_init__(self) -> None:
        if self.cols < 3 or self.rows < 3 or not self.square_m > 0:
            raise CalibrationError(f"invalid chessboard {self.cols}x{self.rows}, {self.square_m} m")

    @staticmethod
    def parse(text: str, square_m: float) -> ChessboardSpec:
        """``"9x6"`` (inner corners, columns x rows) and the square size in metres."""
        try:
            cols, rows = (int(v) for v in text.lower().split("x"))
        except ValueError:
            raise CalibrationError(
                f"board must look like 9x6 (inner corners), got {text!r}"
            ) from None
        return ChessboardSpec(cols, rows, square_m)

    def object_points(self) -> np.ndarray:
        """Corner coordinates on the board (z = 0), row by row, shape (cols*rows, 3)."""
        grid = np.mgrid[0 : self.cols, 0 : self.rows].T.reshape(-1, 2) * self.square_m
        return np.hstack([grid, np.zeros((len(grid), 1))]).astype(np.float32)

    def describe(self) -> dict:
        """The board as written into a calibration file."""
        return {
            "type": "chessboard",
            "inner_corners": [self.cols, self.rows],
            "square_m": self.square_m,
        }


@dataclass(frozen=True)
class CharucoSpec:
    """A ChArUco board: ``squares_x`` × ``squares_y`` squares with ArUco markers inside.

    ``dictionary`` names a predefined ArUco dictionary without the ``DICT_`` prefix. The
    board frame has its origin at the board's outer top-left corner, x along the rows of
    squares, y down the columns, z into the board (OpenCV's convention).
    """

    squares_x: int = 5
    squares_y: int = 7
    square_m: float = 0.04
    marker_m: float = 0.03
    dictionary: str = "4X4_50"

    def __post_init__(self) -> None:
        if not 0 < self.marker_m < self.square_m:
            raise CalibrationError("ChArUco markers must be smaller than the squares")
        if not hasattr(cv2.aruco, f"DICT_{self.dictionary}"):
            raise CalibrationError(f"unknown ArUco dictionary {self.dictionary!r} (e.g. 4X4_50)")

    def board(self) -> cv2.aruco.CharucoBoard:
        """The OpenCV board object."""
        dictionary = cv2.aruco.getPredefinedDictionary(
            getattr(cv2.aruco, f"DICT_{self.dictionary}")
        )
        return cv2.aruco.CharucoBoard(
            (self.squares_x, self.squares_y), self.square_m, self.marker_m, dictionary
        )

    @property
    def size_m(self) -> tuple[float, float]:
        """Width and height of the squared area in metres."""
        return self.squares_x * self.square_m, self.squares_y * self.square_m

    def describe(self) -> dict:
        """The board as written into a calibration file."""
        return {
            "type": "charuco",
            "squares": [self.squares_x, self.squares_y],
            "square_m": self.square_m,
            "marker_m": self.marker_m,
            "dictionary": self.dictionary,
        }


@dataclass
class IntrinsicsResult:
    """Fitted intrinsics and how well they explain the images."""

    intrinsics: Intrinsics
    rms_px: float
    views_used: list[str]
    views_rejected: list[str]


@dataclass
class BoardView:
    """One image's board detection: matched 3-D/2-D points and the board pose in the camera."""

    name: str
    object_points: np.ndarray  # (N, 3) board frame, m
    image_points: np.ndarray  # (N, 2) px
    T_camera_board: np.ndarray


@dataclass
class HandEyeResult:
    """Where the camera is on its mount, where the board was, and the fit's residuals."""

    mount: Mount
    T_mount_camera: np.ndarray  # T_ee_camera for "ee", T_world_camera for "world"
    T_board: np.ndarray  # T_world_board for "ee", T_ee_board for "world"
    rms_px: float  # reprojection error of all corners after refinement
    views_used: list[str]
    closed_form: np.ndarray = field(repr=False)  # the AX = XB solution before refinement


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image


def _image_size(images: Sequence[tuple[str, np.ndarray]]) -> tuple[int, int]:
    if not images:
        raise CalibrationError("no images to calibrate from")
    sizes = {img.shape[:2] for _, img in images}
    if len(sizes) > 1:
        raise CalibrationError(f"images differ in size: {sorted(sizes)}; use one camera mode")
    h, w = sizes.pop()
    return w, h


def calibrate_intrinsics(
    images: Sequence[tuple[str, np.ndarray]], board: ChessboardSpec
) -> IntrinsicsResult:
    """Fit pinhole intrinsics + distortion (k1 k2 p1 p2 k3) to named chessboard images."""
    width, height = _image_size(images)
    obj, img, used, rejected = [], [], [], []
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
    for name, image in images:
        gray = _gray(image)
        found, corners = cv2.findChessboardCorners(gray, (board.cols, board.rows), flags=flags)
        if not found:
            rejected.append(name)
            continue
        corners = cv2.cornerSubPix(gray, corners, SUBPIX_WINDOW, (-1, -1), SUBPIX_CRITERIA)
        obj.append(board.object_points())
        img.append(corners.reshape(-1, 2).astype(np.float32))
        used.append(name)
    if len(used) < MIN_FOUND_FRACTION * len(images):
        raise CalibrationError(
            f"chessboard {board.cols}x{board.rows} found in only {len(used)} of {len(images)} "
            "images; check --board (inner corners, e.g. 9x6 for a 10x7-square board)"
        )
    if len(used) < MIN_INTRINSICS_VIEWS:
        raise CalibrationError(
            f"chessboard found in {len(used)} images; need at least {MIN_INTRINSICS_VIEWS}"
        )
    rms, K, dist, _, _ = cv2.calibrateCamera(obj, img, (width, height), None, None)
    intr = Intrinsics(
        width,
        height,
        float(K[0, 0]),
        float(K[1, 1]),
        float(K[0, 2]),
        float(K[1, 2]),
        tuple(float(v) for v in np.ravel(dist)[:5]),
    )
    return IntrinsicsResult(intr, float(rms), used, rejected)


def detect_charuco(
    name: str, image: np.ndarray, board: CharucoSpec, intrinsics: Intrinsics
) -> BoardView | None:
    """ChArUco corners in ``image`` and the board pose from them, or None if too few."""
    cv_board = board.board()
    corners, ids, _, _ = cv2.aruco.CharucoDetector(cv_board).detectBoard(_gray(image))
    if ids is None or len(ids) < MIN_CHARUCO_CORNERS:
        return None
    # The stubs want a sequence of corner arrays; OpenCV takes detectBoard's (N, 1, 2) array.
    obj, img = cv_board.matchImagePoints(corners, ids)  # type: ignore[call-overload]
    obj, img = obj.reshape(-1, 3).astype(float), img.reshape(-1, 2).astype(float)
    dist = np.asarray(intrinsics.distortion, dtype=float)
    ok, rvec, tvec = cv2.solvePnP(obj, img, intrinsics.K, dist, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return None
    return BoardView(name, obj, img, _to_matrix(rvec.ravel(), tvec.ravel()))


def calibrate_hand_eye(
    views: Sequence[BoardView],
    hand_poses: Sequence[np.ndarray],
    intrinsics: Intrinsics,
    mount: Mount,
) -> HandEyeResult:
    """Solve for the camera on its mount from board views and the matching hand poses.

    ``hand_poses[i]`` is ``T_world_ee`` when ``views[i]`` was taken (what the robot reports,
    e.g. `hw.robot.Robot.ee_pose`). Raises `CalibrationError` for too few views or motions
    that leave the answer undetermined (rotations about a single axis, or none at all).
    """
    if mount not in MOUNTS:
        raise CalibrationError(f"mount must be one of {MOUNTS}, got {mount!r}")
    if len(views) != len(hand_poses):
        raise CalibrationError(f"{len(views)} board views but {len(hand_poses)} hand poses")
    if len(views) < MIN_HANDEYE_VIEWS:
        raise CalibrationError(
            f"board seen in {len(views)} views; need at least {MIN_HANDEYE_VIEWS} "
            "(15 or more, with varied orientations, is recommended)"
        )
    # Both set-ups read T_camera_board_i = X^-1 @ M_i @ Y with X the camera on its mount:
    # eye-in-hand M_i = T_ee_world (Y = board in the world); eye-to-hand M_i = T_world_ee.
    M = [np.linalg.inv(H) if mount == "ee" else np.asarray(H, float) for H in hand_poses]
    _check_motion([np.linalg.inv(m) for m in M])
    C = [v.T_camera_board for v in views]
    X0 = _closed_form(M, C)
    Y0 = _mean_pose([np.linalg.inv(m) @ X0 @ c for m, c in zip(M, C, strict=True)])
    X, Y, rms = _refine(views, M, X0, Y0, intrinsics)
    return HandEyeResult(mount, X, Y, rms, [v.name for v in views], X0)


def pose_error(T_est: np.ndarray, T_true: np.ndarray) -> tuple[float, float]:
    """Translation error (m) and rotation error (degrees) between two 4×4 poses."""
    dt = float(np.linalg.norm(T_est[:3, 3] - T_true[:3, 3]))
    dR = Rotation.from_matrix(T_est[:3, :3].T @ T_true[:3, :3])
    return dt, float(np.degrees(dR.magnitude()))


def _to_matrix(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(rvec).as_matrix()
    T[:3, 3] = tvec
    return T


def _mean_pose(poses: Sequence[np.ndarray]) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.from_matrix(np.array([p[:3, :3] for p in poses])).mean().as_matrix()
    T[:3, 3] = np.mean([p[:3, 3] for p in poses], axis=0)
    return T


def _check_motion(hand: Sequence[np.ndarray]) -> None:
    """Refuse motions that cannot determine a hand–eye transform (Tsai & Lenz, 1989)."""
    axes = []
    for i in range(len(hand)):
        for j in range(i + 1, len(hand)):
            rotvec = Rotation.from_matrix(hand[i][:3, :3].T @ hand[j][:3, :3]).as_rotvec()
            if np.degrees(np.linalg.norm(rotvec)) >= MIN_MOTION_DEG:
                axes.append(rotvec / np.linalg.norm(rotvec))
    if not axes:
        raise CalibrationError(
            f"degenerate motion: the hand never rotated by {MIN_MOTION_DEG:g}° between views; "
            "tilt the hand differently for each view"
        )
    spread = np.linalg.svd(np.array(axes), compute_uv=False)
    if len(spread) < 2 or spread[1] / spread[0] < MIN_AXIS_SPREAD:
        raise CalibrationError(
            "degenerate motion: the hand rotated about a single axis only; "
            "vary the tilt about at least two axes"
        )


def _closed_form(M: Sequence[np.ndarray], C: Sequence[np.ndarray]) -> np.ndarray:
    """AX = XB over all view pairs, with A = M_j M_i^-1 and B = C_j C_i^-1."""
    solver = getattr(cv2, "calibrateHandEye", None)
    if solver is not None:
        # OpenCV's convention: gripper2base_i = M_i^-1, target2cam_i = C_i, X = cam2gripper.
        G = [np.linalg.inv(m) for m in M]
        R, t = solver(
            [g[:3, :3] for g in G],
            [g[:3, 3] for g in G],
            [c[:3, :3] for c in C],
            [c[:3, 3] for c in C],
            method=cv2.CALIB_HAND_EYE_PARK,
        )
        X = np.eye(4)
        X[:3, :3], X[:3, 3] = R, np.ravel(t)
        return X
    # Park & Martin (1994): the rotation vectors satisfy alpha = R_X beta, solved by SVD
    # (SciPy's align_vectors); the translation is then linear least squares.
    alphas, betas, A_list, B_list = [], [], [], []
    for i in range(len(M)):
        for j in range(i + 1, len(M)):
            A = M[j] @ np.linalg.inv(M[i])
            B = C[j] @ np.linalg.inv(C[i])
            alphas.append(Rotation.from_matrix(A[:3, :3]).as_rotvec())
            betas.append(Rotation.from_matrix(B[:3, :3]).as_rotvec())
            A_list.append(A)
            B_list.append(B)
    R_X = Rotation.align_vectors(np.array(alphas), np.array(betas))[0].as_matrix()
    lhs = np.vstack([A[:3, :3] - np.eye(3) for A in A_list])
    rhs = np.concatenate([R_X @ B[:3, 3] - A[:3, 3] for A, B in zip(A_list, B_list, strict=True)])
    X = np.eye(4)
    X[:3, :3] = R_X
    X[:3, 3] = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    return X


def _refine(
    views: Sequence[BoardView],
    M: Sequence[np.ndarray],
    X0: np.ndarray,
    Y0: np.ndarray,
    intrinsics: Intrinsics,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Minimise the corner reprojection error over X and Y (12 parameters)."""
    K = intrinsics.K
    dist = np.asarray(intrinsics.distortion, dtype=float)

    def unpack(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _to_matrix(p[0:3], p[3:6]), _to_matrix(p[6:9], p[9:12])

    def residuals(p: np.ndarray) -> np.ndarray:
        X, Y = unpack(p)
        X_inv = np.linalg.inv(X)
        out = []
        for view, m in zip(views, M, strict=True):
            T = X_inv @ m @ Y
            rvec = Rotation.from_matrix(T[:3, :3]).as_rotvec()
            proj, _ = cv2.projectPoints(view.object_points, rvec, T[:3, 3], K, dist)
            out.append((proj.reshape(-1, 2) - view.image_points).ravel())
        return np.concatenate(out)

    def pack(T: np.ndarray) -> np.ndarray:
        return np.concatenate([Rotation.from_matrix(T[:3, :3]).as_rotvec(), T[:3, 3]])

    fit = least_squares(residuals, np.concatenate([pack(X0), pack(Y0)]), method="lm")
    X, Y = unpack(fit.x)
    rms = float(np.sqrt(np.mean(np.sum(fit.fun.reshape(-1, 2) ** 2, axis=1))))
    return X, Y, rms
