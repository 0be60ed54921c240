"""A tiny kinematic diff-drive world for tests: unicycle motion, grid ray casting, contacts."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .mapio import OccupancyMap

__all__ = ['KinematicWorld', 'SimRobot']


@dataclass
class SimRobot:
    """One robot's state and command."""

    name: str
    x: float
    y: float
    yaw: float
    v: float = 0.0
    w: float = 0.0
    radius: float = 0.25
    odometer: float = 0.0


class KinematicWorld:
    """Robots on an occupancy map; obstacles are map cells >= 65 and the other robots."""

    def __init__(self, grid: OccupancyMap, robots: list[SimRobot], *, max_v: float = 1.0,
                 max_w: float = 2.0) -> None:
        self.grid = grid
        self.robots = {r.name: r for r in robots}
        self.occupied = np.asarray(grid.data) >= 65
        self.max_v = max_v
        self.max_w = max_w

    def command(self, name: str, v: float, w: float) -> bool:
        """Set a robot's velocity; non-finite values are ignored (returns False)."""
        if not (math.isfinite(v) and math.isfinite(w)):
            return False
        r = self.robots[name]
        r.v = min(max(v, -self.max_v), self.max_v)
        r.w = min(max(w, -self.max_w), self.max_w)
        return True

    def step(self, dt: float) -> None:
        """Integrate every robot's unicycle motion for dt seconds."""
        for r in self.robots.values():
            r.x += r.v * math.cos(r.yaw) * dt
            r.y += r.v * math.sin(r.yaw) * dt
            r.yaw = math.atan2(math.sin(r.yaw + r.w * dt), math.cos(r.yaw + r.w * dt))
            r.odometer += abs(r.v) * dt

    def contacts(self) -> list[tuple[str, str]]:
        """Return (robot, other) pairs in contact ('map' for static obstacles)."""
        out: list[tuple[str, str]] = []
        res = self.grid.resolution
        for r in self.robots.values():
            n = int(math.ceil(r.radius / res))
            ang = np.linspace(0, 2 * math.pi, 8 * n + 8, endpoint=False)
            rows, cols = self.grid.world_to_cell(r.x + 0.98 * r.radius * np.cos(ang),
                                                 r.y + 0.98 * r.radius * np.sin(ang))
            inside = self.grid.in_bounds(rows, cols)
            if not inside.all() or self.occupied[rows[inside], cols[inside]].any():
                out.append((r.name, 'map'))
            for o in self.robots.values():
                if o.name != r.name and math.hypot(o.x - r.x, o.y - r.y) < r.radius + o.radius:
                    out.append((r.name, o.name))
        return out

    def scan(self, name: str, *, beams: int = 360, range_max: float = 8.0,
             range_min: float = 0.05) -> np.ndarray:
        """Return ranges (inf for no return) of a 360-degree scan centred on the robot."""
        r = self.robots[name]
        ang = r.yaw - math.pi + (2 * math.pi / beams) * np.arange(beams)
        step = 0.5 * self.grid.resolution
        t = np.arange(range_min, range_max, step)
        xs = r.x + np.cos(ang)[:, None] * t
        ys = r.y + np.sin(ang)[:, None] * t
        rows, cols = self.grid.world_to_cell(xs, ys)
        inside = self.grid.in_bounds(rows, cols)
        hit = ~inside
        hit[inside] = self.occupied[rows[inside], cols[inside]]
        first = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
        ranges = np.where(first >= 0, t[np.maximum(first, 0)], np.inf)
        for o in self.robots.values():  # other robots as circles
            if o.name == name:
                continue
            dx, dy = o.x - r.x, o.y - r.y
            proj = dx * np.cos(ang) + dy * np.sin(ang)
            perp2 = dx * dx + dy * dy - proj * proj
            ok = (proj > 0) & (perp2 < o.radius ** 2)
            d = proj - np.sqrt(np.maximum(o.radius ** 2 - perp2, 0.0))
            ranges = np.where(ok & (d < ranges) & (d >= range_min), d, ranges)
        return ranges
