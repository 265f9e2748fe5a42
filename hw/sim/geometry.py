"""Geometry and inertia that both scene builders (MuJoCo and PyBullet) give the objects.

Cups and bowls are hollow in both engines: a floor disc of `FLOOR_THICKNESS` and a ring of
`CUP_SEGMENTS` wall boxes `CUP_WALL` thick. Every object's inertia is that of its solid
shape about the geometric centre (`box_inertia`, `cylinder_inertia`).
"""

from __future__ import annotations

from skillstack.robot.scene.model import CONTAINER_FLOOR, CONTAINER_WALL

CUP_WALL = CONTAINER_WALL  # m
FLOOR_THICKNESS = CONTAINER_FLOOR  # m
CUP_SEGMENTS = 12  # wall boxes around a cup or bowl


def box_inertia(m: float, size: tuple[float, ...]) -> list[float]:
    """Principal moments of inertia of a solid box of mass ``m`` and full ``size`` (x, y, z)."""
    x, y, z = size
    return [m * (y * y + z * z) / 12, m * (x * x + z * z) / 12, m * (x * x + y * y) / 12]


def cylinder_inertia(m: float, r: float, height: float) -> list[float]:
    """Principal moments of inertia of a solid cylinder (axis z) of mass ``m``."""
    side = m * (3 * r * r + height * height) / 12
    return [side, side, m * r * r / 2]
