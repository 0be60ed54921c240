"""2D polygon helpers: convex hull, point inside, distance to a polygon."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ['convex_hull', 'distance_to_polygon', 'point_in_polygon']


def convex_hull(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Return the convex hull (counter-clockwise, no repeated end point) of 2D points."""
    pts = sorted({(float(p[0]), float(p[1])) for p in np.asarray(points).reshape(-1, 2)})
    if len(pts) <= 2:
        return np.array(pts).reshape(-1, 2)

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def point_in_polygon(x: float, y: float, polygon: np.ndarray) -> bool:
    """Return whether (x, y) is inside polygon or on its boundary (even-odd rule)."""
    if distance_to_polygon(x, y, polygon, signed=False) < 1e-12:
        return True
    inside = False
    n = len(polygon)
    for i in range(n):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % n]
        if (y1 > y) != (y2 > y):
            xc = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < xc:
                inside = not inside
    return inside


def distance_to_polygon(x: float, y: float, polygon: np.ndarray, *, signed: bool = True
                        ) -> float:
    """Return the distance from (x, y) to the polygon's boundary; 0 inside when signed."""
    p = np.asarray(polygon, dtype=np.float64)
    a = p
    b = np.roll(p, -1, axis=0)
    ab = b - a
    ap = np.array([x, y]) - a
    denom = np.einsum('ij,ij->i', ab, ab)
    t = np.clip(np.einsum('ij,ij->i', ap, ab) / np.where(denom > 0, denom, 1.0), 0.0, 1.0)
    closest = a + ab * t[:, None]
    dist = float(np.min(np.hypot(closest[:, 0] - x, closest[:, 1] - y)))
    if signed and point_in_polygon(x, y, p):
        return 0.0
    return dist
