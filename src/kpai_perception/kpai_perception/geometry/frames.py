"""Standard frame conventions: the optical frame inside a body frame (REP 103)."""

from __future__ import annotations

import numpy as np
from transforms3d.euler import euler2quat

from kpai_perception.geometry.transform import Transform

__all__ = ['BODY_FROM_OPTICAL', 'camera_pose']

# optical frame (z forward, x right, y down) expressed in a body frame (x forward, z up)
BODY_FROM_OPTICAL = Transform.from_matrix(np.array(
    [[0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]], dtype=float))


def camera_pose(x: float, y: float, height: float, yaw: float = 0.0,
                pitch: float = 0.0) -> Transform:
    """Return world_from_optical for a camera at (x, y, height) with yaw, pitched down (rad)."""
    body = Transform.create((x, y, height), euler2quat(0.0, pitch, yaw, 'sxyz'))
    return body * BODY_FROM_OPTICAL
