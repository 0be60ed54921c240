"""Image-space tracks -> floor positions in a fixed frame, with per-track velocity (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kpai_perception.errors import PerceptionError
from kpai_perception.geometry.camera import CameraModel
from kpai_perception.geometry.ground import pixel_to_ground, ray_plane_intersection
from kpai_perception.geometry.transform import Transform

__all__ = ['LocalizerConfig', 'VelocityFilter', 'contact_pixel', 'locate_box']


@dataclass(frozen=True)
class LocalizerConfig:
    """Ground plane height, range limit and velocity smoothing."""

    plane_z: float = 0.0          # floor height in the target frame (m)
    max_range: float = 30.0       # floor points farther than this (m) are refused
    velocity_alpha: float = 0.4   # weight of the newest finite difference in the EMA
    forget_after: float = 2.0     # s without an update before a track's history is dropped
    # smallest plausible height (m) of the person classes: places a person whose feet are cut
    # off by the bottom image edge from the top of the box, never farther than the truth
    person_min_height: float = 1.4
    person_min_width: float = 0.3     # m; ranges a person cut off at both image edges
    person_classes: tuple[str, ...] = ('person',)

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.plane_z, self.max_range,
                                               self.velocity_alpha, self.forget_after,
                                               self.person_min_height,
                                               self.person_min_width)):
            raise PerceptionError('localizer parameters must be finite')
        if min(self.max_range, self.forget_after, self.person_min_height,
               self.person_min_width) <= 0:
            raise PerceptionError('max_range, forget_after, person_min_height and '
                                  'person_min_width must be > 0')
        if not 0.0 < self.velocity_alpha <= 1.0:
            raise PerceptionError(f'velocity_alpha must be in (0, 1], got {self.velocity_alpha}')


def contact_pixel(cx: float, cy: float, width: float, height: float,
                  camera: CameraModel) -> tuple[float, float] | None:
    """Return the pixel where the object touches the floor: its box's bottom centre.

    The point is clamped into the image (a box cut off at the bottom edge gives the farthest
    place its foot point can be). None if the box is not finite or lies outside the image.
    """
    if not all(math.isfinite(v) for v in (cx, cy, width, height)) or width <= 0 or height <= 0:
        return None
    u, v = cx, cy + height / 2
    if not camera.contains(cx, cy, margin=width / 2 + height / 2):
        return None
    u = min(max(u, 0.0), camera.width - 1.0)
    v = min(max(v, 0.0), camera.height - 1.0)
    return u, v


def locate_box(camera: CameraModel, world_from_camera: Transform, cx: float, cy: float,
               width: float, height: float, config: LocalizerConfig,
               class_id: str = '') -> np.ndarray | None:
    """Return the floor position (world frame) of a box's contact point, or None.

    A person box cut off at the bottom image edge is nearer than its clamped foot point. It is
    placed where the top of the box meets a person of config.person_min_height; with the top
    cut off too, at the depth where the box is as wide as a person of config.person_min_width.
    Either way never farther than the truth for anyone at least that tall and wide, so that the
    safety monitor errs towards slowing down.
    """
    px = contact_pixel(cx, cy, width, height, camera)
    if px is None:
        return None
    point = pixel_to_ground(camera, world_from_camera, px[0], px[1], plane_z=config.plane_z,
                            max_range=config.max_range)
    truncated = cy + height / 2 > camera.height - 1.0
    if not truncated or class_id not in config.person_classes:
        return point
    origin = np.asarray(world_from_camera.translation, dtype=np.float64)
    u = min(max(cx, 0.0), camera.width - 1.0)
    top = cy - height / 2
    estimate = None
    if top > 0.0:
        ray = camera.pixel_to_ray([[u, top]])[0]
        head = ray_plane_intersection(origin, world_from_camera.rotate(ray),
                                      plane_z=config.plane_z + config.person_min_height,
                                      max_range=config.max_range)
        if head is not None:
            estimate = np.array([head[0], head[1], config.plane_z])
    if estimate is None:
        # depth at which the box is person_min_width wide, along the box centre's bearing
        depth = float(camera.k[0, 0]) * config.person_min_width / max(width, 1.0)
        ray = camera.pixel_to_ray([[u, float(camera.k[1, 2])]])[0]
        at = world_from_camera.apply((ray * depth / ray[2])[None])[0]
        estimate = np.array([at[0], at[1], config.plane_z])
    if point is not None and (math.hypot(*(point[:2] - origin[:2]))
                              < math.hypot(*(estimate[:2] - origin[:2]))):
        return point
    return estimate


class VelocityFilter:
    """Per-track velocity: exponential average of finite differences of positions."""

    def __init__(self, config: LocalizerConfig) -> None:
        self.config = config
        self._state: dict[int, tuple[float, np.ndarray, np.ndarray]] = {}

    def update(self, track_id: int, stamp: float, position: np.ndarray) -> np.ndarray:
        """Add a position at stamp (s); return the current velocity estimate (m/s)."""
        pos = np.asarray(position, dtype=np.float64)
        prev = self._state.get(track_id)
        vel = np.zeros(3)
        if prev is not None:
            t0, p0, v0 = prev
            dt = stamp - t0
            if dt <= 0:
                return v0
            if dt <= self.config.forget_after:
                a = self.config.velocity_alpha
                vel = (1 - a) * v0 + a * (pos - p0) / dt
        self._state[track_id] = (stamp, pos, vel)
        return vel

    def prune(self, now: float) -> int:
        """Drop tracks not updated for forget_after s; return how many were dropped."""
        old = [k for k, (t, _, _) in self._state.items() if now - t > self.config.forget_after]
        for k in old:
            del self._state[k]
        return len(old)

    def __len__(self) -> int:
        return len(self._state)
