"""Ground-truth 2D boxes: visible pixels of each object from a segmentation image."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ['Box2D', 'ObjectState', 'boxes_from_segmentation', 'box_corners', 'project_points']

DETECTABLE = ('person', 'pallet', 'box', 'robot', 'rack')


@dataclass(frozen=True)
class ObjectState:
    """Pose (box centre, yaw) and extents of one object of the world."""

    name: str
    class_id: str
    x: float
    y: float
    z: float  # centre height
    yaw: float
    size: tuple[float, float, float]


@dataclass(frozen=True)
class Box2D:
    """An object's visible box in pixels; pixel i spans [i, i + 1)."""

    name: str
    class_id: str
    xmin: int
    ymin: int
    xmax: int  # exclusive
    ymax: int  # exclusive
    pixels: int

    @property
    def center(self) -> tuple[float, float]:
        return (self.xmin + self.xmax) / 2, (self.ymin + self.ymax) / 2

    @property
    def size(self) -> tuple[int, int]:
        return self.xmax - self.xmin, self.ymax - self.ymin


def boxes_from_segmentation(seg: np.ndarray, geom_object: np.ndarray, names: list[str],
                            classes: list[str], *, geom_type: int, exclude: int = -1,
                            min_pixels: int = 25) -> list[Box2D]:
    """Return boxes of objects with at least min_pixels visible pixels in a (H, W, 2) image.

    seg holds (object id, object type) per pixel as MuJoCo's segmentation rendering gives it;
    geom_object maps a geom id to an object index (-1 for none); exclude is an object index to
    leave out (the robot carrying the camera).
    """
    ids, types = seg[..., 0], seg[..., 1]
    valid = (types == geom_type) & (ids >= 0) & (ids < geom_object.size)
    labels = np.zeros(ids.shape, np.int32)  # object index + 1, 0 = nothing
    labels[valid] = geom_object[ids[valid]] + 1
    counts = np.bincount(labels.ravel(), minlength=len(names) + 1)
    boxes = []
    for k, found in enumerate(ndimage.find_objects(labels, max_label=len(names))):
        if found is None or counts[k + 1] < min_pixels or k == exclude:
            continue
        if classes[k] not in DETECTABLE:
            continue
        rows, cols = found
        boxes.append(Box2D(names[k], classes[k], int(cols.start), int(rows.start),
                           int(cols.stop), int(rows.stop), int(counts[k + 1])))
    return boxes


def box_corners(obj: ObjectState) -> np.ndarray:
    """Return the (8, 3) corners of an object's box in the world frame."""
    c, s = math.cos(obj.yaw), math.sin(obj.yaw)
    hx, hy, hz = (v / 2 for v in obj.size)
    local = np.array([[sx * hx, sy * hy, sz * hz] for sx in (-1, 1) for sy in (-1, 1)
                      for sz in (-1, 1)])
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return local @ rot.T + np.array([obj.x, obj.y, obj.z])


def project_points(points: np.ndarray, cam_pos: np.ndarray, cam_mat: np.ndarray,
                   fx: float, fy: float, width: int, height: int) -> np.ndarray:
    """Project world points into a MuJoCo camera (xmat columns: right, up, back).

    Returns (N, 3): u, v in the pixel-edge convention (image spans [0, W] x [0, H]) and the
    depth along the optical axis (<= 0 behind the camera).
    """
    local = (points - cam_pos) @ cam_mat  # camera frame: x right, y up, z backwards
    depth = -local[:, 2]
    safe = np.where(depth > 1e-6, depth, 1e-6)
    u = width / 2 + fx * local[:, 0] / safe
    v = height / 2 - fy * local[:, 1] / safe
    return np.stack([u, v, depth], axis=1)
