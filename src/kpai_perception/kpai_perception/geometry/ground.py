"""Pixel -> ray -> intersection with a horizontal plane (the floor) in a fixed frame."""

from __future__ import annotations

import numpy as np

from kpai_perception.geometry.camera import CameraModel
from kpai_perception.geometry.transform import Transform

__all__ = ['pixel_to_ground', 'ray_plane_intersection']


def ray_plane_intersection(origin: np.ndarray, direction: np.ndarray, *, plane_z: float = 0.0,
                           max_range: float = 100.0, min_angle: float = 1e-3
                           ) -> np.ndarray | None:
    """Return where the ray hits z = plane_z, or None if it misses (away, parallel, too far).

    The plane is hit from either side: a camera above it looking down (the floor) or below it
    looking up (the height of a person's head seen from a low camera).
    min_angle (rad): rays grazing the plane closer than this are refused (unstable range).
    """
    o = np.asarray(origin, dtype=np.float64)
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    if abs(d[2]) < np.sin(min_angle):
        return None
    s = (plane_z - o[2]) / d[2]
    if s <= 0:
        return None  # the ray points away from the plane (or starts on it)
    point = o + s * d
    if np.hypot(point[0] - o[0], point[1] - o[1]) > max_range:
        return None
    return point


def pixel_to_ground(camera: CameraModel, world_from_camera: Transform, u: float, v: float, *,
                    plane_z: float = 0.0, max_range: float = 100.0) -> np.ndarray | None:
    """Return the floor point (x, y, plane_z) in the world frame seen at pixel (u, v), or None.

    world_from_camera maps optical-frame points into the world frame (z up).
    """
    ray_cam = camera.pixel_to_ray([[u, v]])[0]
    return ray_plane_intersection(world_from_camera.translation,
                                  world_from_camera.rotate(ray_cam), plane_z=plane_z,
                                  max_range=max_range)
