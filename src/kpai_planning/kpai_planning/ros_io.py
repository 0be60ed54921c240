"""ROS-side robot inputs shared by the nodes: map pose from odom + tf, scans in the map frame."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from kpai_perception.tf_listener import TF_STATIC_QOS
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import LaserScan
from tf2_msgs.msg import TFMessage

from .conversions import compose, pose_from_msg, yaw_from_quaternion
from .costmap import scan_points
from .node_util import LATEST

__all__ = ['RobotInputs', 'pose_age_reason']

Pose2 = tuple[float, float, float]


def pose_age_reason(now: float, received: float | None, max_age: float) -> str | None:
    """Why the robot must not drive on odometry that arrived at received, or None when it may.

    Both times are the node's clock, so the check holds whatever clock the driver stamps
    with. Odometry that stopped arriving max_age (s) ago no longer says where the robot is (a
    stalled driver, a starved process), so the control loop stops instead of steering on it.
    Before the first odometry (received None) there is no pose to steer on anyway; max_age 0
    turns the check off.
    """
    if max_age <= 0 or received is None:
        return None
    age = now - received
    if age > max_age:
        return f'no odometry for {age:.2f} s (max_pose_age {max_age:.2f} s)'
    return None


class RobotInputs:
    """Track the robot's map pose (odom composed with map->odom) and its latest scan."""

    def __init__(self, node: Node, *, map_frame: str = 'map') -> None:
        self.node = node
        self.map_frame = map_frame
        self.transforms: dict[tuple[str, str], Pose2] = {}
        self.odom_pose: Pose2 | None = None
        self.odom_frame = ''
        self.base_frame = ''
        self.speed = 0.0
        self.odom_received: float | None = None  # node clock (s) when the last odometry came
        self.scan: tuple[Pose2, np.ndarray, np.ndarray, float] | None = None
        self.bad_messages = 0
        self._static_listeners: list[Callable[[TFMessage], None]] = []
        node.create_subscription(Odometry, 'odom', self._on_odom, LATEST)
        node.create_subscription(LaserScan, 'scan', self._on_scan, LATEST)
        node.create_subscription(TFMessage, '/tf', self._on_tf, 50)
        # depth 100 as tf2's static listener: latched messages of several publishers may arrive
        # at once, and a depth of 1 would keep only the last of them
        node.create_subscription(TFMessage, '/tf_static', self._on_tf_static, TF_STATIC_QOS)

    def add_static_listener(self, callback: Callable[[TFMessage], None]) -> None:
        """Hand every /tf_static message to callback too (full 3D transforms: camera mounts).

        Register before the node spins: latched messages are delivered once.
        """
        self._static_listeners.append(callback)

    def _on_tf_static(self, msg: TFMessage) -> None:
        self._on_tf(msg)
        for callback in self._static_listeners:
            callback(msg)

    def _on_tf(self, msg: TFMessage) -> None:
        for t in msg.transforms:
            tr = t.transform
            self.transforms[(t.header.frame_id.lstrip('/'), t.child_frame_id.lstrip('/'))] = (
                tr.translation.x, tr.translation.y, yaw_from_quaternion(tr.rotation))

    def _on_odom(self, msg: Odometry) -> None:
        pose = pose_from_msg(msg.pose.pose)
        if not all(math.isfinite(v) for v in pose):
            self._bad('odometry with non-finite pose')
            return
        self.odom_pose = pose
        self.odom_frame = msg.header.frame_id.lstrip('/')
        self.base_frame = msg.child_frame_id.lstrip('/')
        self.speed = float(msg.twist.twist.linear.x)
        self.odom_received = self.node.get_clock().now().nanoseconds * 1e-9

    def _bad(self, what: str) -> None:
        self.bad_messages += 1
        self.node.get_logger().warning(f'ignored {what} ({self.bad_messages} so far)',
                                       throttle_duration_sec=5.0)

    def map_pose(self) -> Pose2 | None:
        """Return the robot pose in the map frame; None until odometry and map->odom are known.

        Guessing map->odom (e.g. identity) before /tf delivers it would put the robot, and every
        scan hit marked in the costmap, in the wrong place.
        """
        if self.odom_pose is None:
            return None
        if self.odom_frame == self.map_frame:
            return self.odom_pose
        map_odom = self.transforms.get((self.map_frame, self.odom_frame))
        if map_odom is None:
            return None
        return compose(map_odom, self.odom_pose)

    def _on_scan(self, msg: LaserScan) -> None:
        pose = self.map_pose()
        if pose is None:
            return
        if not (math.isfinite(msg.angle_min) and math.isfinite(msg.angle_increment)
                and math.isfinite(msg.range_max) and msg.range_max > 0):
            self._bad('scan with invalid angles or range_max')
            return
        laser = self.transforms.get((self.base_frame, msg.header.frame_id.lstrip('/')),
                                    (0.0, 0.0, 0.0))
        sensor = compose(pose, laser)
        pts, hits = scan_points(np.asarray(msg.ranges, dtype=np.float64),
                                angle_min=msg.angle_min, angle_increment=msg.angle_increment,
                                range_min=msg.range_min, range_max=msg.range_max, pose=sensor)
        stamp = self.node.get_clock().now().nanoseconds * 1e-9
        self.scan = (sensor, pts, hits, stamp)

    def take_scan(self) -> tuple[Pose2, np.ndarray, np.ndarray, float] | None:
        """Return the newest unconsumed scan (sensor pose, points, hits, stamp) or None."""
        scan, self.scan = self.scan, None
        return scan


def stamp_now(node: Any) -> Any:
    """Return the node clock's now() as a message stamp."""
    return node.get_clock().now().to_msg()
