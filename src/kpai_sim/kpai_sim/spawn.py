"""Spawn poses for robots: distinct, collision-free, away from people paths; seeded."""

from __future__ import annotations

import math
import re

import numpy as np

from .errors import ConfigError, LayoutError
from .factory import RobotPose
from .layout import Layout
from .mapgen import rasterize

__all__ = ['ROBOT_NAME', 'choose_spawn_poses', 'parse_pose', 'validate_robot_names']

ROBOT_NAME = re.compile(r'^robot[1-9][0-9]{0,2}$')


def validate_robot_names(names: list[str]) -> tuple[str, ...]:
    """Check robot names follow robot1, robot2, ... and are unique; return them."""
    if not names:
        raise ConfigError('at least one robot is needed')
    for name in names:
        if not ROBOT_NAME.match(name):
            raise ConfigError(f'unknown robot name {name!r}: robots are named robot1, robot2, ...')
    if len(set(names)) != len(names):
        raise ConfigError(f'duplicate robot names in {names}')
    return tuple(names)


def parse_pose(text: str) -> tuple[float, float, float]:
    """Parse 'x y yaw' (metres, radians) into a finite tuple."""
    try:
        values = tuple(float(v) for v in text.replace(',', ' ').split())
    except ValueError as err:
        raise ConfigError(f'spawn pose {text!r} is not three numbers "x y yaw"') from err
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise ConfigError(f'spawn pose {text!r} is not three finite numbers "x y yaw"')
    return values[0], values[1], values[2]


def _path_distance(layout: Layout, x: float, y: float) -> float:
    best = math.inf
    p = np.array([x, y])
    for person in layout.people:
        pts = np.array(person.waypoints + person.waypoints[:1], dtype=float)
        for a, b in zip(pts[:-1], pts[1:], strict=True):
            ab = b - a
            f = float(np.clip(np.dot(p - a, ab) / max(float(np.dot(ab, ab)), 1e-12), 0, 1))
            best = min(best, float(np.linalg.norm(p - (a + f * ab))))
    return best


def choose_spawn_poses(layout: Layout, names: tuple[str, ...], *, seed: int,
                       clearance: float = 0.8, separation: float = 2.0,
                       fixed: dict[str, tuple[float, float, float]] | None = None,
                       ) -> tuple[RobotPose, ...]:
    """Return one pose per robot: fixed ones as given, the others sampled on free floor."""
    fixed = fixed or {}
    grid = rasterize(layout, 0.1)
    free = grid.clearance() >= clearance
    rows, cols = np.nonzero(free)
    if rows.size == 0:
        raise LayoutError(f'no floor cell with {clearance} m clearance')
    rng = np.random.default_rng(seed + 7919)
    poses: list[RobotPose] = []
    for name in names:
        if name in fixed:
            x, y, yaw = fixed[name]
            r, c = grid.world_to_cell(x, y)
            inside = 0 <= r < free.shape[0] and 0 <= c < free.shape[1]
            if not inside or grid.clearance()[r, c] < 0.35:
                raise ConfigError(f'spawn pose of {name} ({x}, {y}) is inside or next to an '
                                  'obstacle or outside the hall')
            poses.append(RobotPose(name, x, y, yaw))
            continue
        for _ in range(5000):
            k = int(rng.integers(rows.size))
            x, y = grid.cell_centre(int(rows[k]), int(cols[k]))
            if _path_distance(layout, x, y) < 0.9:
                continue
            if any(math.hypot(x - p.x, y - p.y) < separation for p in poses):
                continue
            if any(math.hypot(x - fx, y - fy) < separation for fx, fy, _ in fixed.values()):
                continue
            yaw = float(rng.uniform(-math.pi, math.pi))
            poses.append(RobotPose(name, round(x, 3), round(y, 3), round(yaw, 4)))
            break
        else:
            raise LayoutError(f'no free spawn pose left for {name}')
    return tuple(poses)
