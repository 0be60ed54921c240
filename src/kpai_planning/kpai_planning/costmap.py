"""Costmap: static map inflated by the robot radius plus a decaying LaserScan obstacle layer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from .errors import ConfigError
from .mapio import OccupancyMap

__all__ = [
    'FREE_SPACE',
    'INSCRIBED',
    'LETHAL',
    'MAX_NON_OBSTACLE',
    'Costmap',
    'CostmapParams',
    'inflate',
    'scan_points',
]

FREE_SPACE = 0
MAX_NON_OBSTACLE = 252
INSCRIBED = 253
LETHAL = 254


@dataclass(frozen=True)
class CostmapParams:
    """Inflation and obstacle-layer settings (metres, seconds)."""

    robot_radius: float = 0.3
    inflation_radius: float = 1.0
    cost_scaling_factor: float = 3.0
    lethal_threshold: int = 65
    unknown_is_obstacle: bool = False
    obstacle_decay_s: float = 2.0
    max_obstacle_range: float = 8.0
    raytrace_range: float = 10.0

    def validate(self) -> CostmapParams:
        """Return self or raise ConfigError naming the first bad value."""
        if not 0.0 < self.robot_radius < 10.0:
            raise ConfigError(f'robot_radius must be in (0, 10) m, got {self.robot_radius}')
        if not self.inflation_radius >= self.robot_radius:
            raise ConfigError('inflation_radius must be >= robot_radius, got '
                              f'{self.inflation_radius} < {self.robot_radius}')
        if not (math.isfinite(self.cost_scaling_factor) and self.cost_scaling_factor > 0):
            raise ConfigError(f'cost_scaling_factor must be > 0, got {self.cost_scaling_factor}')
        if not 1 <= self.lethal_threshold <= 100:
            raise ConfigError(f'lethal_threshold must be in 1..100, got {self.lethal_threshold}')
        for name in ('obstacle_decay_s', 'max_obstacle_range', 'raytrace_range'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f'{name} must be finite and >= 0, got {value}')
        return self


def inflate(lethal: np.ndarray, resolution: float, *, robot_radius: float,
            inflation_radius: float, cost_scaling_factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (distance to nearest lethal cell in m, uint8 cost) for a boolean lethal mask.

    Cost is LETHAL on obstacles, INSCRIBED within robot_radius, then
    252 * exp(-cost_scaling_factor * (d - robot_radius)) up to inflation_radius, 0 beyond.
    """
    lethal = np.asarray(lethal, dtype=bool)
    if lethal.any():
        distance = ndimage.distance_transform_edt(~lethal) * resolution
    else:
        distance = np.full(lethal.shape, np.inf)
    cost = np.zeros(lethal.shape, dtype=np.uint8)
    eps = 1e-9 * resolution  # cell distances are multiples of resolution: compare robustly
    inscribed = distance <= robot_radius + eps
    ring = ~inscribed & (distance <= inflation_radius + eps)
    decay = MAX_NON_OBSTACLE * np.exp(
        -cost_scaling_factor * np.maximum(distance[ring] - robot_radius, 0.0))
    cost[ring] = np.floor(decay).astype(np.uint8)
    cost[inscribed] = INSCRIBED
    cost[lethal] = LETHAL
    return distance, cost


def scan_points(ranges: Any, *, angle_min: float, angle_increment: float, range_min: float,
                range_max: float, pose: tuple[float, float, float]
                ) -> tuple[np.ndarray, np.ndarray]:
    """Convert LaserScan ranges to world points; return (points Nx2, hit mask N).

    Readings below range_min or NaN are dropped; +inf or beyond range_max become
    non-hits placed at range_max (they only clear space). -inf is REP 117's "an object too
    close to measure": a hit at range_min, since dropping it would leave whatever stands right
    in front of the sensor out of the collision checks.
    """
    r = np.asarray(ranges, dtype=np.float64).ravel()
    angles = angle_min + angle_increment * np.arange(r.size)
    r = np.where(np.isneginf(r), range_min, r)
    valid = ~np.isnan(r) & (r >= range_min)
    hit = valid & np.isfinite(r) & (r <= range_max)
    r = np.where(hit, r, range_max)[valid]
    a = angles[valid] + pose[2]
    pts = np.column_stack((pose[0] + r * np.cos(a), pose[1] + r * np.sin(a)))
    return pts, hit[valid]


class Costmap:
    """A static map inflated by the robot radius, with LaserScan obstacles that decay."""

    def __init__(self, grid: OccupancyMap, params: CostmapParams | None = None) -> None:
        self.grid = grid
        self.params = (params or CostmapParams()).validate()
        data = np.asarray(grid.data)
        self.unknown = data < 0
        self.static_lethal = data >= self.params.lethal_threshold
        if self.params.unknown_is_obstacle:
            self.static_lethal |= self.unknown
        self._marks = np.full(data.shape, -np.inf)
        self._active = np.zeros(data.shape, dtype=bool)
        self.static_distance, self.static_cost = self._inflate(self.static_lethal)
        self.distance, self.cost = self.static_distance, self.static_cost
        self.version = 0

    @property
    def resolution(self) -> float:
        return self.grid.resolution

    @property
    def shape(self) -> tuple[int, int]:
        return (self.grid.height, self.grid.width)

    def _inflate(self, lethal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        return inflate(lethal, self.grid.resolution, robot_radius=p.robot_radius,
                       inflation_radius=p.inflation_radius,
                       cost_scaling_factor=p.cost_scaling_factor)

    def mark_scan(self, origin: tuple[float, float], points: np.ndarray, hits: np.ndarray,
                  stamp: float) -> None:
        """Clear marks the rays pass through, then mark hit endpoints at time stamp."""
        p = self.params
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        hits = np.asarray(hits, dtype=bool).ravel()
        if points.shape[0] == 0:
            return
        d = points - origin
        length = np.hypot(d[:, 0], d[:, 1])
        self._clear_seen(origin, d, length)
        mark = hits & (length <= p.max_obstacle_range)
        self._set_marks(points[mark, 0], points[mark, 1], float(stamp))

    def _clear_seen(self, origin: tuple[float, float], d: np.ndarray, length: np.ndarray) -> None:
        """Clear every marked cell a ray passes through, short of the ray's endpoint.

        Works from the marked cells (few) rather than by walking the rays (360 rays of up to
        raytrace_range each): a cell is seen through when the ray of one of the two beams next
        to it in angle crosses its square, with its centre at least one cell before that ray's
        endpoint and within raytrace_range.
        """
        rows, cols = np.nonzero(np.isfinite(self._marks))
        if rows.size == 0:
            return
        res = self.resolution
        cx, cy = self.grid.cell_to_world(rows, cols)
        rx, ry = cx - origin[0], cy - origin[1]
        order = np.argsort(np.arctan2(d[:, 1], d[:, 0]))
        beam_angle = np.arctan2(d[order, 1], d[order, 0])
        unit = d[order] / np.maximum(length[order], 1e-9)[:, None]
        reach = np.minimum(length[order] - res, self.params.raytrace_range)
        nearest = np.searchsorted(beam_angle, np.arctan2(ry, rx))
        seen = np.zeros(rows.size, dtype=bool)
        for k in (nearest - 1, nearest):
            k = k % len(order)
            along = rx * unit[k, 0] + ry * unit[k, 1]
            across = np.abs(rx * unit[k, 1] - ry * unit[k, 0])
            # the ray's line crosses the cell's square (half-width along the ray's normal)
            half = 0.5 * res * (np.abs(unit[k, 0]) + np.abs(unit[k, 1])) + 1e-9
            seen |= (along > 0.0) & (along <= reach[k]) & (across <= half)
        self._marks[rows[seen], cols[seen]] = -np.inf

    def clear_footprint(self, x: float, y: float) -> None:
        """Clear scan marks within the robot radius of (x, y), where the robot itself stands.

        As Nav2's obstacle layer does with footprint_clearing_enabled: whatever a scan saw
        there (a person brushing past, an echo of the robot's own body) cannot be inside the
        robot, and left marked it makes the start of every plan "occupied".
        """
        if not (math.isfinite(x) and math.isfinite(y)):
            return
        res, r = self.resolution, self.params.robot_radius
        row, col = self.grid.world_to_cell(x, y)
        n = int(math.ceil(r / res)) + 1
        r0, r1 = max(int(row) - n, 0), min(int(row) + n + 1, self.shape[0])
        c0, c1 = max(int(col) - n, 0), min(int(col) + n + 1, self.shape[1])
        if r0 >= r1 or c0 >= c1:
            return
        rows, cols = np.mgrid[r0:r1, c0:c1]
        cx, cy = self.grid.cell_to_world(rows, cols)
        inside = np.hypot(cx - x, cy - y) <= r
        block = self._marks[r0:r1, c0:c1]
        block[inside] = -np.inf

    def _set_marks(self, xs: np.ndarray, ys: np.ndarray, value: float) -> None:
        rows, cols = self.grid.world_to_cell(xs, ys)
        ok = self.grid.in_bounds(rows, cols)
        self._marks[rows[ok], cols[ok]] = value

    def dynamic_obstacles(self, now: float) -> np.ndarray:
        """Return the boolean mask of scan obstacles younger than obstacle_decay_s."""
        return self._marks >= now - self.params.obstacle_decay_s

    def update(self, now: float) -> bool:
        """Apply decay and re-inflate if the obstacle set changed; return True if it did."""
        active = self.dynamic_obstacles(now) & ~self.static_lethal
        if np.array_equal(active, self._active):
            return False
        self._active = active
        if active.any():
            self.distance, self.cost = self._inflate(self.static_lethal | active)
        else:
            self.distance, self.cost = self.static_distance, self.static_cost
        self.version += 1
        return True

    def _sample(self, field: np.ndarray, x: Any, y: Any, outside: float) -> np.ndarray:
        rows, cols = self.grid.world_to_cell(x, y)
        ok = self.grid.in_bounds(rows, cols)
        out = np.full(np.shape(rows), outside, dtype=field.dtype)
        out[ok] = field[rows[ok], cols[ok]]
        return out

    def cost_at(self, x: Any, y: Any, *, static_only: bool = False) -> np.ndarray:
        """Return costs at world points (LETHAL outside the map); static_only: without the
        scan obstacles."""
        return self._sample(self.static_cost if static_only else self.cost, x, y, LETHAL)

    def distance_at(self, x: Any, y: Any, *, static_only: bool = False) -> np.ndarray:
        """Return distance (m) to the nearest obstacle at world points (0 outside the map)."""
        field = self.static_distance if static_only else self.distance
        return self._sample(field, x, y, 0.0)
