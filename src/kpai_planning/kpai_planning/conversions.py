"""Conversions between ROS messages and the package's plain types (no rclpy node code)."""

from __future__ import annotations

import array
import math
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped, Quaternion
from nav_msgs.msg import OccupancyGrid, Path

from .errors import MapFormatError
from .mapio import OccupancyMap

__all__ = [
    'compose',
    'grid_from_msg',
    'grid_to_msg',
    'path_to_msg',
    'pose_from_msg',
    'quaternion_from_yaw',
    'yaw_from_quaternion',
]


def yaw_from_quaternion(q: Any) -> float:
    """Return the yaw (rad) of a quaternion with x, y, z, w fields."""
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def quaternion_from_yaw(yaw: float) -> Quaternion:
    """Return a geometry_msgs Quaternion for a rotation about z."""
    q = Quaternion()
    q.z = math.sin(0.5 * yaw)
    q.w = math.cos(0.5 * yaw)
    return q


def pose_from_msg(pose: Any) -> tuple[float, float, float]:
    """Return (x, y, yaw) of a geometry_msgs Pose."""
    return (pose.position.x, pose.position.y, yaw_from_quaternion(pose.orientation))


def compose(a: tuple[float, float, float], b: tuple[float, float, float]
            ) -> tuple[float, float, float]:
    """Return the 2-D pose b expressed through a (a * b)."""
    c, s = math.cos(a[2]), math.sin(a[2])
    return (a[0] + c * b[0] - s * b[1], a[1] + s * b[0] + c * b[1],
            math.atan2(math.sin(a[2] + b[2]), math.cos(a[2] + b[2])))


def grid_to_msg(grid: OccupancyMap, stamp: Any = None) -> OccupancyGrid:
    """Build an OccupancyGrid message from an OccupancyMap."""
    msg = OccupancyGrid()
    msg.header.frame_id = grid.frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    msg.info.resolution = float(grid.resolution)
    msg.info.width = grid.width
    msg.info.height = grid.height
    msg.info.origin.position.x = float(grid.origin[0])
    msg.info.origin.position.y = float(grid.origin[1])
    msg.info.origin.orientation = quaternion_from_yaw(grid.origin[2])
    msg.data = array.array('b', np.ascontiguousarray(grid.data, dtype=np.int8).tobytes())
    return msg


def grid_from_msg(msg: OccupancyGrid) -> OccupancyMap:
    """Build an OccupancyMap from an OccupancyGrid message (raises MapFormatError)."""
    w, h = int(msg.info.width), int(msg.info.height)
    data = np.asarray(msg.data, dtype=np.int8)
    if w <= 0 or h <= 0 or data.size != w * h:
        raise MapFormatError(f'OccupancyGrid {w}x{h} has {data.size} cells')
    origin = (msg.info.origin.position.x, msg.info.origin.position.y,
              yaw_from_quaternion(msg.info.origin.orientation))
    return OccupancyMap(data.reshape(h, w), float(msg.info.resolution), origin,
                        frame_id=msg.header.frame_id or 'map')


def path_to_msg(points: np.ndarray, frame_id: str, stamp: Any) -> Path:
    """Build a nav_msgs Path from N x 3 (x, y, yaw) points."""
    msg = Path()
    msg.header.frame_id = frame_id
    msg.header.stamp = stamp
    for x, y, yaw in np.asarray(points, dtype=float).reshape(-1, 3):
        ps = PoseStamped()
        ps.header = msg.header
        ps.pose.position.x = float(x)
        ps.pose.position.y = float(y)
        ps.pose.orientation = quaternion_from_yaw(float(yaw))
        msg.poses.append(ps)
    return msg
