"""Find the objects on the table in one RGB-D frame (OpenCV + numpy, no learning).

The pipeline, for a frame whose depth is metric and whose pose in the world is known:

1. Back-project every pixel to a world point (`RGBDFrame.points_world`); drop pixels that show
   the robot (``frame.meta["robot_mask"]``, the self-filter), the table (z below
   `TABLE_MARGIN`) and anything outside the work area.
2. Label each remaining pixel with the nearest colour of a palette (the colours the scene
   declares, plus the colour of `contents` particles), comparing hue and saturation more than
   brightness, which shading changes.
3. Segment in a bird's-eye view: the points are rasterised on a `BEV_CELL` grid over the table
   and connected components are taken there, so an object partly hidden behind another stays
   separate (they are apart in x-y even where they touch in the image). A component holding
   two palette colours is split by colour when they are two objects (a cube on a plate: one
   above the other; a cube in a bowl: two compact footprints), not when they are the lit and
   shaded faces of one (a white bowl's wall in shadow looks grey; see `_separate`).
4. Per object, the footprint's contour decides box (``cv2.minAreaRect`` fills it) or round
   (a circle fills it); boxes get their x-y extents and yaw from the points in the rectangle's
   frame, round objects a least-squares circle. The top is the highest points; the bottom is
   the lowest visible points, snapped to the table or to the top of the object underneath.
   Round objects are told apart by height and hollowness: plate (flat), cup or bowl (the
   middle is well below the rim; bowls are wide), cylinder (solid top).
5. Particle pixels are counted as particles: each pixel covers ``z² / (fx fy)`` m² at depth
   z, one particle shows about ``π r²``.

Everything is returned as plain `Detection`s in world coordinates; naming them after the
scene's objects is `robot.perception.match`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from skillstack.robot.camera import RGBDFrame
from skillstack.robot.rotations import wrap_angle
from skillstack.robot.scene.model import CONTAINER_FLOOR

TABLE_MARGIN = 0.004  # m, points lower than this above the table top are table
MAX_HEIGHT = 0.45  # m, points higher than this are not objects on the table
WORK_AREA = ((-0.05, 0.95), (-0.6, 0.6))  # m, x and y bounds of the default table top
BASE_RADIUS = 0.2  # m, around the robot base (the self-filter's blind spot at the base)
BEV_CELL = 0.002  # m, bird's-eye grid resolution
MIN_OBJECT_POINTS = 40  # fewer points than this is noise (or a particle)
MIN_OBJECT_AREA = 0.012**2  # m^2, smallest visible footprint (a held cup shows little)
MIN_SPLIT_AREA = 0.03**2  # m^2, a colour is its own object beside another from this footprint
MIN_SOLIDITY = 0.7  # ... and this compact (area over convex hull); shaded sides are thin bands
MAX_SHADING_OVERLAP = 0.5  # footprints overlapping more than this (IoU) are one object's faces
STACK_TOLERANCE = 0.005  # m, an object resting on another starts this close to the other's top
MIN_STACKED_HEIGHT = 0.01  # m, an object on another is this tall (a lit top face is flat)
GREY_CHROMA = 8.0  # Lab chroma below which a palette colour is a grey
HOLLOW_DEPTH = 0.015  # m, middle this far below the rim means hollow (cup, bowl)
PLATE_MAX_HEIGHT = 0.03  # m
BOWL_MIN_DIAMETER = 0.1  # m, hollow objects at least this wide are bowls
SUPPORT_SNAP = 0.015  # m, a bottom this close to a support's top rests on it


@dataclass
class Detection:
    """One object seen: centre, size in the scene's layout for its kind, yaw, colour name."""

    kind: str
    color: str
    position: np.ndarray  # geometric centre, world (m)
    size: tuple[float, ...]
    yaw: float = 0.0  # rad about world z
    top: float = 0.0
    bottom: float = 0.0
    n_points: int = 0
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)), repr=False)
    colors: tuple[str, ...] = ()  # every colour seen on it, ``color`` (the most seen) first

    @property
    def radius(self) -> float:
        """Radius of the footprint's bounding circle (m)."""
        if self.kind == "box":
            return 0.5 * math.hypot(self.size[0], self.size[1])
        return 0.5 * self.size[0]


@dataclass
class FrameDetections:
    """What one frame shows: objects and particle pixels (world points and pixel areas)."""

    camera: str
    objects: list[Detection]
    particle_points: np.ndarray  # (N, 3) world
    particle_area: np.ndarray  # (N,) m^2 each pixel covers, perpendicular to its ray


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab of float rgb in [0, 1], shape (..., 3)."""
    arr = np.asarray(rgb, dtype=np.float32).reshape(-1, 1, 3)
    return cv2.cvtColor(arr, cv2.COLOR_RGB2Lab).reshape(-1, 3)


def classify_colors(rgb: np.ndarray, palette: dict[str, tuple[float, ...]]) -> np.ndarray:
    """Index into ``palette`` of the nearest colour for each rgb (uint8, shape (N, 3)).

    The rendered colour of a face is its albedo times the light it gets, so hue and
    saturation decide first: each pixel is compared (Lab a, b) with every palette colour
    scaled to the pixel's own brightness. Greys (white, gray, black) differ only in
    brightness; a pixel that lands on a grey goes to the grey of nearest absolute lightness.
    """
    px = rgb.reshape(-1, 3).astype(np.float32) / 255.0
    if len(px) == 0:  # nothing on the table in view (a wrist camera looking past it)
        return np.zeros(0, dtype=int)
    names = list(palette)
    ref = np.array([palette[n][:3] for n in names], dtype=np.float32)
    lab_px = _lab(px)
    lab_ref_abs = _lab(ref)
    grey = np.hypot(lab_ref_abs[:, 1], lab_ref_abs[:, 2]) < GREY_CHROMA
    dist = np.empty((len(px), len(names)))
    for i, col in enumerate(ref):
        scale = px.max(axis=1, keepdims=True) / max(float(col.max()), 1e-3)
        d = lab_px - _lab(np.clip(col[None, :] * scale, 0.0, 1.0))
        dist[:, i] = d[:, 1] ** 2 + d[:, 2] ** 2
    out = np.argmin(dist, axis=1)
    greys = np.nonzero(grey)[0]
    if len(greys) > 1:
        on_grey = grey[out]
        light = np.abs(lab_px[on_grey, 0][:, None] - lab_ref_abs[greys, 0][None, :])
        out[on_grey] = greys[np.argmin(light, axis=1)]
    return out


def detect(
    frame: RGBDFrame,
    palette: dict[str, tuple[float, ...]],
    particle_color: str | None = None,
    work_area: tuple[tuple[float, float], tuple[float, float]] = WORK_AREA,
) -> FrameDetections:
    """Objects and particles in ``frame``; ``palette`` maps colour names to rgb(a) in [0, 1]
    (include ``particle_color`` when the scene has particles); ``work_area`` is
    ``((x_min, x_max), (y_min, y_max))`` of the table top (objects stand only there)."""
    h, w = frame.depth.shape
    valid = np.isfinite(frame.depth)
    robot = frame.meta.get("robot_mask")
    if robot is not None:
        valid &= ~np.asarray(robot, dtype=bool)
    pts = np.full((h, w, 3), np.nan)
    pts[valid] = frame.points_world(valid)
    x, y, z = pts[..., 0], pts[..., 1], pts[..., 2]
    with np.errstate(invalid="ignore"):
        keep = (
            valid
            & (z > TABLE_MARGIN)
            & (z < MAX_HEIGHT)
            & (x > work_area[0][0])
            & (x < work_area[0][1])
            & (y > work_area[1][0])
            & (y < work_area[1][1])
            & (np.hypot(x, y) > BASE_RADIUS)
        )
    v, u = np.nonzero(keep)
    P = pts[v, u]
    names = list(palette)
    labels = classify_colors(frame.rgb[v, u], palette)
    k = frame.intrinsics
    depth = frame.depth[v, u].astype(float)
    pixel_area = depth**2 / (k.fx * k.fy)
    is_particle = np.zeros(len(P), dtype=bool)
    if particle_color is not None and particle_color in palette:
        is_particle = labels == names.index(particle_color)
    objects = _segment(P[~is_particle], labels[~is_particle], names)
    _snap_bottoms(objects)
    return FrameDetections(frame.camera, objects, P[is_particle], pixel_area[is_particle])


def _segment(P: np.ndarray, labels: np.ndarray, names: list[str]) -> list[Detection]:
    """Connected components on the bird's-eye grid, split into objects by colour, measured."""
    if len(P) < MIN_OBJECT_POINTS:
        return []
    lo = P[:, :2].min(axis=0)
    cells = np.floor((P[:, :2] - lo) / BEV_CELL).astype(int)
    grid = np.zeros(cells.max(axis=0)[::-1] + 1, dtype=np.uint8)
    grid[cells[:, 1], cells[:, 0]] = 1
    grid = cv2.morphologyEx(grid, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    n, comp = cv2.connectedComponents(grid, connectivity=8)
    point_comp = comp[cells[:, 1], cells[:, 0]]
    out: list[Detection] = []
    for c in range(1, n):
        idx = np.nonzero(point_comp == c)[0]
        if len(idx) < MIN_OBJECT_POINTS:
            continue
        for group, colors in _color_groups(P[idx], labels[idx], names):
            det = _measure(P[idx[group]], colors[0])
            if det is not None:
                det.colors = colors
                out.append(det)
    return out


@dataclass
class _ColorRegion:
    """The points of one colour in one component: where they are and what shape they make."""

    label: int
    index: np.ndarray  # into the component's points
    z_lo: float
    z_hi: float
    mask: np.ndarray  # filled bird's-eye footprint on the component's grid
    solidity: float  # footprint area over its convex hull's

    @property
    def area(self) -> float:
        return float(self.mask.sum()) * BEV_CELL**2


def _color_regions(P: np.ndarray, labels: np.ndarray) -> list[_ColorRegion]:
    """One `_ColorRegion` per colour with at least `MIN_OBJECT_POINTS` points, most first."""
    lo = P[:, :2].min(axis=0) - 2 * BEV_CELL
    cells = np.floor((P[:, :2] - lo) / BEV_CELL).astype(int)
    shape = cells.max(axis=0)[::-1] + 3
    counts = np.bincount(labels)
    out = []
    for label in np.argsort(-counts):
        if counts[label] < MIN_OBJECT_POINTS:
            break
        index = np.nonzero(labels == label)[0]
        grid = np.zeros(shape, dtype=np.uint8)
        grid[cells[index, 1], cells[index, 0]] = 255
        grid = cv2.morphologyEx(grid, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
        contours, _ = cv2.findContours(grid, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        mask = np.zeros(shape, dtype=np.uint8)
        cv2.drawContours(mask, contours, -1, 1, thickness=cv2.FILLED)
        hull = cv2.convexHull(np.concatenate(contours)) if contours else None
        hull_area = cv2.contourArea(hull) if hull is not None else 0.0
        solidity = float(sum(cv2.contourArea(k) for k in contours)) / max(hull_area, 1.0)
        z = P[index, 2]
        z_lo, z_hi = np.percentile(z, [5, 95])  # robust to a few mislabelled pixels
        out.append(_ColorRegion(int(label), index, float(z_lo), float(z_hi), mask > 0, solidity))
    return out


def _separate(a: _ColorRegion, b: _ColorRegion) -> bool:
    """Whether two colours of one component are two objects rather than one object's lit and
    shaded faces. Shading darkens a face (a box's sides, a bowl's wall, a cup's inside) but
    the face belongs to the same body: it spans the same heights and, seen from above, is a
    thin band along the outline or covers the same footprint. Two objects either sit one on
    the other (the upper one's points all lie above the lower one's, and it has a height of
    its own, unlike a box's top face) or each has a compact footprint of its own."""
    lower, upper = (a, b) if a.z_hi <= b.z_hi else (b, a)
    if (
        upper.z_lo >= lower.z_hi - STACK_TOLERANCE and upper.z_hi - upper.z_lo >= MIN_STACKED_HEIGHT
    ):  # the lower one may show only its sides (a block under a block of the same size)
        return True
    compact = all(r.area >= MIN_SPLIT_AREA and r.solidity >= MIN_SOLIDITY for r in (a, b))
    overlap = np.logical_and(a.mask, b.mask).sum() / max(np.logical_or(a.mask, b.mask).sum(), 1)
    return compact and overlap < MAX_SHADING_OVERLAP


def _color_groups(
    P: np.ndarray, labels: np.ndarray, names: list[str]
) -> list[tuple[np.ndarray, tuple[str, ...]]]:
    """Split one component's points into objects: colours that are not `_separate` are one
    object. Each object gets all its points and its colours, the most frequent first (the
    shaded faces of a white object may be labelled grey or black; matching accepts any)."""
    regions = _color_regions(P, labels)
    if len(regions) <= 1:
        return [(np.arange(len(P)), (names[regions[0].label] if regions else names[0],))]
    group = list(range(len(regions)))  # union-find over regions, most points first

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    for i in range(len(regions)):
        for j in range(i):
            if root(i) != root(j) and not _separate(regions[i], regions[j]):
                group[root(i)] = root(j)
    roots = sorted({root(i) for i in range(len(regions))})
    if len(roots) == 1:  # one object: every point, stragglers of rare colours too
        return [(np.arange(len(P)), tuple(names[r.label] for r in regions))]
    out = []
    for r in roots:
        members = [regions[i] for i in range(len(regions)) if root(i) == r]
        index = np.concatenate([m.index for m in members])
        out.append((index, tuple(names[m.label] for m in members)))
    return out


def _footprint(xy: np.ndarray) -> np.ndarray | None:
    """The outer contour (metres) of the points' bird's-eye footprint, holes filled."""
    lo = xy.min(axis=0) - 2 * BEV_CELL
    cells = np.floor((xy - lo) / BEV_CELL).astype(int)
    grid = np.zeros(cells.max(axis=0)[::-1] + 3, dtype=np.uint8)
    grid[cells[:, 1], cells[:, 0]] = 255
    grid = cv2.morphologyEx(grid, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(grid, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    contour = max(contours, key=cv2.contourArea)
    return (contour.reshape(-1, 2).astype(float) + 0.5) * BEV_CELL + lo


def _fit_circle(xy: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares (Kasa) circle through 2-D points: centre and radius."""
    A = np.column_stack([2 * xy, np.ones(len(xy))])
    b = (xy**2).sum(axis=1)
    (cx, cy, c), *_ = np.linalg.lstsq(A, b, rcond=None)
    return np.array([cx, cy]), math.sqrt(max(c + cx * cx + cy * cy, 0.0))


def _measure(P: np.ndarray, color: str) -> Detection | None:
    """Kind, centre, size and yaw of one object's points."""
    contour = _footprint(P[:, :2])
    if contour is None or len(contour) < 5:
        return None
    area = cv2.contourArea(contour.astype(np.float32))
    if area < MIN_OBJECT_AREA:
        return None
    rect = cv2.minAreaRect(contour.astype(np.float32))
    (_, _), radius = cv2.minEnclosingCircle(contour.astype(np.float32))
    rect_fill = area / max(rect[1][0] * rect[1][1], 1e-12)
    circle_fill = area / (math.pi * radius * radius)
    top = float(np.percentile(P[:, 2], 99))
    bottom = max(float(np.percentile(P[:, 2], 1)) - TABLE_MARGIN, 0.0)
    if bottom < 2 * TABLE_MARGIN:
        bottom = 0.0
    if rect_fill > circle_fill:
        yaw = math.radians(rect[2])
        c, s = math.cos(yaw), math.sin(yaw)
        local = (P[:, :2] - np.asarray(rect[0])) @ np.array([[c, -s], [s, c]])
        lo, hi = np.percentile(local, 0.5, axis=0), np.percentile(local, 99.5, axis=0)
        mid = (lo + hi) / 2
        centre = np.asarray(rect[0]) + np.array([[c, -s], [s, c]]) @ mid
        sx, sy = hi - lo
        return Detection(
            "box",
            color,
            np.array([centre[0], centre[1], (top + bottom) / 2]),
            (float(sx), float(sy), top - bottom),
            wrap_angle(yaw, math.pi),  # a box looks the same turned by pi
            top,
            bottom,
            len(P),
            P,
        )
    centre, r = _fit_circle(contour)
    d = 2 * r
    inner = np.hypot(*(P[:, :2] - centre).T) < 0.6 * r
    hollow = not inner.any() or float(np.median(P[inner, 2])) < top - HOLLOW_DEPTH
    if top - bottom < PLATE_MAX_HEIGHT and d > BOWL_MIN_DIAMETER:
        kind = "plate"
    elif hollow:
        kind = "bowl" if d >= BOWL_MIN_DIAMETER else "cup"
    else:
        kind = "cylinder"
    return Detection(
        kind,
        color,
        np.array([centre[0], centre[1], (top + bottom) / 2]),
        (d, top - bottom),
        0.0,
        top,
        bottom,
        len(P),
        P,
    )


def _snap_bottoms(objects: list[Detection]) -> None:
    """Rest each object on the table, on the top of the object under its centre, or on the
    floor of the cup or bowl it stands in (its lower part hidden by the wall)."""
    for o in objects:
        under = [
            s
            for s in objects
            if s is not o
            and math.dist(s.position[:2], o.position[:2]) < s.radius
            and (
                s.top < o.top - 0.005  # o on top of s
                or (s.kind in ("cup", "bowl") and o.radius < s.radius)  # o inside s, maybe low
            )
        ]
        supports = [0.0] + [s.top for s in under if s.kind not in ("cup", "bowl")]
        supports += [s.bottom + CONTAINER_FLOOR for s in under if s.kind in ("cup", "bowl")]
        best = min(supports, key=lambda t: abs(t - o.bottom))
        if abs(best - o.bottom) <= SUPPORT_SNAP or o.bottom < best:
            o.bottom = best
        height = o.top - o.bottom
        o.position[2] = (o.top + o.bottom) / 2
        o.size = (*o.size[:-1], height)
