"""Node `annotator`: camera image + tracks + safety -> camera/image_annotated (rgb8)."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from kpai_msgs.msg import SafetyStatus, TrackArray
from kpai_perception.annotate import (
    STATE_COLOURS,
    TrackBox,
    draw_banner,
    draw_floor_polygon,
    draw_tracks,
)
from kpai_perception.errors import CalibrationError, PerceptionError, TransformError
from kpai_perception.geometry.camera import CameraModel
from kpai_perception.image_conv import image_to_rgb8, numpy_to_image
from kpai_perception.node_util import declare, run_node
from kpai_perception.ros_conv import stamp_to_sec
from kpai_perception.safety import compute_fields
from kpai_perception.safety_monitor_node import declare_field_config
from kpai_perception.tf_buffer import TransformBuffer
from kpai_perception.tf_listener import TfListener

__all__ = ['AnnotatorNode', 'main']

WATCH_PERIOD_S = 1.0  # how often the node checks whether anyone subscribes to its output

_STATE_NAMES = {0: 'CLEAR', 1: 'WARNING', 2: 'PROTECTIVE STOP', 3: 'FAULT'}


class AnnotatorNode(Node):
    """Draw the latest tracks (distance from tracked_objects) and the safety fields."""

    def __init__(self) -> None:
        super().__init__('annotator')
        self.fields = declare_field_config(self)
        self.base_frame = declare(self, 'base_frame', 'base_link', 'frame of the fields')
        self.max_rate = declare(self, 'max_rate', 10.0, 'most annotated images per s; 0: all')
        if not (math.isfinite(self.max_rate) and self.max_rate >= 0):
            raise PerceptionError(f'max_rate must be >= 0, got {self.max_rate}')
        self.buffer = TransformBuffer(tolerance=0.5)
        self.tf: TfListener | None = None
        self.camera: CameraModel | None = None
        self.tracks: TrackArray | None = None
        self.distances: dict[int, float] = {}
        self.status: SafetyStatus | None = None
        self.speed = 0.0
        self.bad_images = 0
        self._last_out = 0.0
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                              history=HistoryPolicy.KEEP_LAST)
        self.pub = self.create_publisher(Image, 'camera/image_annotated', reliable)
        self._reliable = reliable
        self._inputs: list[Any] = []
        # inputs are subscribed only while someone subscribes to the annotated image: an
        # unwatched annotator receives nothing (each message costs a Python callback)
        self.create_timer(WATCH_PERIOD_S, self._watch,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._watch()

    def _watch(self) -> None:
        watched = self.pub.get_subscription_count() > 0
        if watched and not self._inputs:
            reliable = self._reliable
            self._inputs = [
                self.create_subscription(Image, 'camera/image_raw', self._on_image,
                                         qos_profile_sensor_data),
                self.create_subscription(CameraInfo, 'camera/camera_info', self._on_info,
                                         qos_profile_sensor_data),
                self.create_subscription(TrackArray, 'tracks', self._on_tracks, reliable),
                self.create_subscription(TrackArray, 'tracked_objects', self._on_objects,
                                         reliable),
                self.create_subscription(SafetyStatus, 'safety/status', self._on_status,
                                         reliable),
                self.create_subscription(Odometry, 'odom', self._on_odom, reliable)]
            self.tf = TfListener(self, self.buffer)
        elif not watched and self._inputs:
            for sub in self._inputs:
                self.destroy_subscription(sub)
            self._inputs = []
            if self.tf is not None:
                self.tf.close()
                self.tf = None

    def _on_info(self, msg: CameraInfo) -> None:
        try:
            self.camera = CameraModel.from_msg(msg)
        except CalibrationError as err:
            self.get_logger().warning(f'camera_info rejected: {err}', throttle_duration_sec=10.0)

    def _on_tracks(self, msg: TrackArray) -> None:
        self.tracks = msg

    def _on_objects(self, msg: TrackArray) -> None:
        # distance from the robot when positions are in its frame, else from the frame origin
        self.distances = {int(t.id): math.hypot(t.position.x, t.position.y)
                          for t in msg.tracks if t.has_position}

    def _on_status(self, msg: SafetyStatus) -> None:
        self.status = msg

    def _on_odom(self, msg: Odometry) -> None:
        if math.isfinite(msg.twist.twist.linear.x):
            self.speed = msg.twist.twist.linear.x

    def _on_image(self, msg: Image) -> None:
        now = time.monotonic()
        if self.max_rate and now - self._last_out < 1.0 / self.max_rate:
            return
        if self.pub.get_subscription_count() == 0:
            return  # nobody looks: drawing costs CPU the robot needs elsewhere
        try:
            rgb = image_to_rgb8(msg)
        except PerceptionError as err:
            self.bad_images += 1
            self.get_logger().warning(f'image dropped ({self.bad_images} so far): {err}',
                                   throttle_duration_sec=5.0)
            return
        self._last_out = now
        if self.camera is not None:
            self._draw_fields(rgb, msg)
        if self.tracks is not None:
            draw_tracks(rgb, [TrackBox(int(t.id), t.class_id, t.score, t.bbox.center.position.x,
                                       t.bbox.center.position.y, t.bbox.size_x, t.bbox.size_y,
                                       self.distances.get(int(t.id)),
                                       t.frames_since_update > 0)
                              for t in self.tracks.tracks])
        if self.status is not None:
            s = self.status
            draw_banner(rgb, f'{_STATE_NAMES.get(s.state, "?")}  limit {s.speed_limit:.2f} m/s'
                        f'  {s.reason}', STATE_COLOURS.get(s.state, (255, 255, 255)))
        self.pub.publish(numpy_to_image(rgb, 'rgb8', header=msg.header))

    def _draw_fields(self, rgb: np.ndarray, msg: Image) -> None:
        assert self.camera is not None
        try:
            cam_from_base = self.buffer.lookup(msg.header.frame_id, self.base_frame,
                                               stamp_to_sec(msg.header.stamp))
        except TransformError as err:
            self.get_logger().warning(f'fields not drawn: {err}', throttle_duration_sec=10.0)
            return
        fields = compute_fields(self.speed, self.fields)
        draw_floor_polygon(rgb, fields.warning, self.camera, cam_from_base,
                           STATE_COLOURS[1])
        draw_floor_polygon(rgb, fields.protective, self.camera, cam_from_base,
                           STATE_COLOURS[2])


def main(args: list[str] | None = None) -> None:
    """Run the annotator node."""
    sys.exit(run_node(AnnotatorNode, args))
