"""Declarative factory layout: static objects, docks and people paths, expanded with a seed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import LayoutError

__all__ = [
    'DEFAULT_SPEC',
    'Dock',
    'Layout',
    'PersonPath',
    'StaticObject',
    'build_layout',
]

# The default factory: one hall with two rack rows, a pallet storage area, a short rack block
# and three docking stations on the east wall. Distances in metres, origin at the hall centre.
DEFAULT_SPEC: dict[str, Any] = {
    'size': [24.0, 16.0],
    'wall': {'thickness': 0.2, 'height': 2.5},
    'rack': {'unit_length': 2.5, 'depth': 1.0, 'height': 2.2},
    'rack_rows': [
        {'x0': -10.0, 'y': 6.5, 'units': 5, 'yaw': 0.0},
        {'x0': -10.0, 'y': 3.0, 'units': 5, 'yaw': 0.0},
        {'x0': 6.0, 'y': 3.0, 'units': 2, 'yaw': math.pi / 2},
    ],
    'pallet_area': {'xmin': -10.5, 'xmax': -2.0, 'ymin': -7.2, 'ymax': -4.5, 'count': 6},
    'box_area': {'xmin': 1.0, 'xmax': 8.5, 'ymin': -7.2, 'ymax': -5.0, 'count': 5},
    'docks': [
        {'x': 11.0, 'y': -4.0, 'yaw': 0.0, 'tag': 0},
        {'x': 11.0, 'y': -1.0, 'yaw': 0.0, 'tag': 1},
        {'x': 11.0, 'y': 2.0, 'yaw': 0.0, 'tag': 2},
    ],
    'people_paths': [
        [[-9.0, -1.2], [8.0, -1.2], [8.0, 1.2], [-9.0, 1.2]],
        [[-9.0, 4.75], [2.0, 4.75]],
        [[-1.0, -3.2], [9.0, -3.2]],
        [[4.3, 7.2], [4.3, -2.5]],
    ],
}

PALLET_SIZE = (1.2, 0.8, 0.144)
BOX_SIZES = ((0.4, 0.3, 0.3), (0.6, 0.4, 0.4), (0.5, 0.5, 0.5))
DOCK_PANEL = (0.1, 0.8, 0.9)  # depth, width, height of the charging panel behind a dock
DOCK_STANDOFF = 0.75  # dock pose (robot base) to panel front face
PERSON_RADIUS = 0.22
PERSON_HEIGHT = 1.75


@dataclass(frozen=True)
class StaticObject:
    """A box-shaped static object standing on the floor (or on another object)."""

    name: str
    class_id: str
    x: float
    y: float
    yaw: float
    size: tuple[float, float, float]
    z: float = 0.0  # bottom face height
    rgba: tuple[float, float, float, float] = (0.6, 0.6, 0.6, 1.0)

    def corners(self) -> np.ndarray:
        """Return the (4, 2) footprint corners in the map frame."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        hx, hy = self.size[0] / 2, self.size[1] / 2
        local = np.array([[hx, hy], [-hx, hy], [-hx, -hy], [hx, -hy]])
        rot = np.array([[c, -s], [s, c]])
        return local @ rot.T + np.array([self.x, self.y])


@dataclass(frozen=True)
class Dock:
    """A docking/charging station: robot pose when docked and the panel with its AprilTag."""

    name: str
    x: float
    y: float
    yaw: float
    tag_id: int

    def panel(self) -> StaticObject:
        """Return the panel the robot faces when docked."""
        d = DOCK_STANDOFF + DOCK_PANEL[0] / 2
        return StaticObject(
            name=self.name, class_id='dock', x=self.x + d * math.cos(self.yaw),
            y=self.y + d * math.sin(self.yaw), yaw=self.yaw, size=DOCK_PANEL,
            rgba=(0.2, 0.45, 0.8, 1.0))


@dataclass(frozen=True)
class PersonPath:
    """A person walking a closed polyline at constant speed, starting at a given arc length."""

    name: str
    waypoints: tuple[tuple[float, float], ...]
    speed: float
    phase: float  # metres along the loop at t = 0

    def loop_length(self) -> float:
        """Return the length of the closed loop (back to the first waypoint)."""
        pts = np.array(self.waypoints + self.waypoints[:1])
        return float(np.sum(np.linalg.norm(np.diff(pts, axis=0), axis=1)))

    def pose_at(self, t: float) -> tuple[float, float, float]:
        """Return (x, y, heading) of the person at time t, walking without stops."""
        return self.pose_along(self.speed * t)

    def pose_along(self, walked: float) -> tuple[float, float, float]:
        """Return (x, y, heading) after walking `walked` metres from the start phase."""
        pts = np.array(self.waypoints + self.waypoints[:1], dtype=float)
        seg = np.diff(pts, axis=0)
        lengths = np.linalg.norm(seg, axis=1)
        total = float(lengths.sum())
        s = (self.phase + walked) % total
        for i, length in enumerate(lengths):
            if s <= length or i == len(lengths) - 1:
                f = s / length if length > 0 else 0.0
                p = pts[i] + f * seg[i]
                return float(p[0]), float(p[1]), math.atan2(seg[i][1], seg[i][0])
            s -= length
        raise AssertionError('unreachable')


@dataclass(frozen=True)
class Layout:
    """The expanded world: hall size, walls, static objects, docks and people."""

    width: float
    depth: float
    wall_thickness: float
    wall_height: float
    objects: tuple[StaticObject, ...]
    docks: tuple[Dock, ...]
    people: tuple[PersonPath, ...]
    seed: int = 0
    walls: tuple[StaticObject, ...] = field(default=())

    def obstacles(self) -> tuple[StaticObject, ...]:
        """Return everything static that blocks motion: walls, objects and dock panels."""
        return self.walls + self.objects + tuple(d.panel() for d in self.docks)


def _walls(width: float, depth: float, t: float, h: float) -> tuple[StaticObject, ...]:
    grey = (0.75, 0.75, 0.72, 1.0)
    return (
        StaticObject('wall_north', 'wall', 0.0, depth / 2 + t / 2, 0.0, (width + 2 * t, t, h),
                     rgba=grey),
        StaticObject('wall_south', 'wall', 0.0, -depth / 2 - t / 2, 0.0,
                     (width + 2 * t, t, h), rgba=grey),
        StaticObject('wall_east', 'wall', width / 2 + t / 2, 0.0, 0.0, (t, depth, h),
                     rgba=grey),
        StaticObject('wall_west', 'wall', -width / 2 - t / 2, 0.0, 0.0, (t, depth, h),
                     rgba=grey),
    )


def _overlaps(a: StaticObject, b: StaticObject, margin: float) -> bool:
    """Separating-axis test of two footprints grown by margin."""
    pa, pb = a.corners(), b.corners()
    for poly in (pa, pb):
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            axis = np.array([-edge[1], edge[0]]) / (np.linalg.norm(edge) or 1.0)
            ra, rb = pa @ axis, pb @ axis
            if ra.max() + margin < rb.min() or rb.max() + margin < ra.min():
                return False
    return True


def _scatter(rng: np.random.Generator, area: dict[str, float], sizes: list[tuple[float, ...]],
             prefix: str, class_id: str, placed: list[StaticObject],
             rgba: tuple[float, float, float, float]) -> list[StaticObject]:
    """Place objects at random free poses inside area (axis-aligned or quarter-turned)."""
    out: list[StaticObject] = []
    for k, size in enumerate(sizes):
        for _ in range(200):
            yaw = float(rng.choice([0.0, math.pi / 2]))
            cand = StaticObject(
                f'{prefix}{k + 1}', class_id, float(rng.uniform(area['xmin'], area['xmax'])),
                float(rng.uniform(area['ymin'], area['ymax'])), yaw,
                (float(size[0]), float(size[1]), float(size[2])), rgba=rgba)
            if all(not _overlaps(cand, o, 0.6) for o in placed + out):
                out.append(cand)
                break
        else:
            raise LayoutError(f'no free place for {prefix}{k + 1} in {area}')
    return out


def build_layout(spec: dict[str, Any] | None = None, *, seed: int = 0,
                 people: int | None = None) -> Layout:
    """Expand a declarative spec into a Layout; the same spec and seed give the same world."""
    spec = DEFAULT_SPEC if spec is None else spec
    rng = np.random.default_rng(seed)
    try:
        width, depth = (float(v) for v in spec['size'])
        wall = spec['wall']
        rack = spec['rack']
    except (KeyError, TypeError, ValueError) as err:
        raise LayoutError(f'layout spec lacks size/wall/rack: {err}') from err
    if width <= 2 or depth <= 2:
        raise LayoutError(f'hall size {width}x{depth} m is too small')
    walls = _walls(width, depth, float(wall['thickness']), float(wall['height']))
    objects: list[StaticObject] = []
    unit = float(rack['unit_length'])
    for r, row in enumerate(spec.get('rack_rows', [])):
        c, s = math.cos(row['yaw']), math.sin(row['yaw'])
        for u in range(int(row['units'])):
            along = unit * (u + 0.5)
            objects.append(StaticObject(
                f'rack{r + 1}_{u + 1}', 'rack', row['x0'] + along * c, row['y'] + along * s,
                float(row['yaw']), (unit, float(rack['depth']), float(rack['height'])),
                rgba=(0.15, 0.3, 0.65, 1.0)))
    docks = tuple(
        Dock(f'dock{i + 1}', float(d['x']), float(d['y']), float(d['yaw']), int(d['tag']))
        for i, d in enumerate(spec.get('docks', [])))
    fixed = objects + [d.panel() for d in docks]
    if 'pallet_area' in spec:
        area = spec['pallet_area']
        pallets = _scatter(rng, area, [PALLET_SIZE] * int(area['count']), 'pallet', 'pallet',
                           fixed, (0.72, 0.55, 0.33, 1.0))
        objects += pallets
        # some pallets carry a box
        for p in pallets:
            if rng.random() < 0.5:
                size = BOX_SIZES[int(rng.integers(len(BOX_SIZES)))]
                objects.append(StaticObject(
                    f'box_on_{p.name}', 'box', p.x, p.y, p.yaw, size, z=PALLET_SIZE[2],
                    rgba=(0.78, 0.62, 0.4, 1.0)))
    if 'box_area' in spec:
        area = spec['box_area']
        sizes = [BOX_SIZES[int(rng.integers(len(BOX_SIZES)))] for _ in range(int(area['count']))]
        objects += _scatter(rng, area, list(sizes), 'box', 'box', objects + fixed[len(objects):],
                            (0.78, 0.62, 0.4, 1.0))
    paths = [tuple((float(x), float(y)) for x, y in p) for p in spec.get('people_paths', [])]
    n_people = len(paths) if people is None else int(people)
    if n_people < 0:
        raise LayoutError(f'people count must be >= 0, got {n_people}')
    if n_people and not paths:
        raise LayoutError('people requested but the layout has no people_paths')
    walkers = []
    for i in range(n_people):
        pts = paths[i % len(paths)]
        probe = PersonPath(f'person{i + 1}', pts, 1.0, 0.0)
        walkers.append(PersonPath(
            f'person{i + 1}', pts, float(rng.uniform(0.8, 1.3)),
            float(rng.uniform(0.0, probe.loop_length()))))
    return Layout(width, depth, float(wall['thickness']), float(wall['height']),
                  tuple(objects), docks, tuple(walkers), seed, walls)
