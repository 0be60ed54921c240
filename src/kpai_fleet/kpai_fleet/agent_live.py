"""ROS side of the fleet agent's KPAI live topics: camera thumbnails on lease, tracked objects.

The camera subscription exists only while the server's lease is live: with no dashboard
panel open the agent holds no image subscription, and the annotator (which subscribes to its
own inputs only while its output is watched) draws nothing either.
"""

from __future__ import annotations

import math
import time
from typing import Any

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image

from kpai_fleet.agent_core import AgentCore
from kpai_fleet.errors import ValidationRejected
from kpai_fleet.live_share import encode_thumbnail, image_array
from kpai_fleet.vda5050.kpai_ext import MAX_CLASS_CHARS, MAX_OBJECTS, TrackedObject
from kpai_msgs.msg import TrackArray

__all__ = ['LiveShare']


class LiveShare:
    """Subscribes to the camera while leased and to the tracked objects; publishes via core."""

    def __init__(self, node: Node, core: AgentCore, *, image_topic: str, objects_topic: str,
                 map_frame: str) -> None:
        self.node = node
        self.core = core
        self.image_topic = image_topic
        self.map_frame = map_frame
        self.camera_sub: Any = None
        self.encode_errors = 0
        self.objects_sub: Any = None
        if objects_topic:
            self.objects_sub = node.create_subscription(
                TrackArray, objects_topic, self._on_objects,
                QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE))

    def tick(self, now: float | None = None) -> None:
        """Follow the camera lease (subscribe/unsubscribe); publish objects when due."""
        now = time.monotonic() if now is None else now
        wanted = self.core.camera.active(now) and bool(self.image_topic)
        if wanted and self.camera_sub is None:
            self.camera_sub = self.node.create_subscription(
                Image, self.image_topic, self._on_image, qos_profile_sensor_data)
        elif not wanted and self.camera_sub is not None:
            self.node.destroy_subscription(self.camera_sub)
            self.camera_sub = None
        self.core.publish_objects_if_due(now)

    def close(self) -> None:
        """Drop both subscriptions."""
        for sub in (self.camera_sub, self.objects_sub):
            if sub is not None:
                self.node.destroy_subscription(sub)
        self.camera_sub = self.objects_sub = None

    def _on_image(self, msg: Image) -> None:
        now = time.monotonic()
        if not self.core.camera.due(now):
            return
        try:
            rgb = image_array(msg.encoding, msg.height, msg.width, msg.step, bytes(msg.data))
            jpeg = encode_thumbnail(rgb, max_width=self.core.camera.request.max_width)
        except ValidationRejected as err:
            self.encode_errors += 1
            self.node.get_logger().warning(f'camera thumbnail: {err.reason}',
                                           throttle_duration_sec=10.0)
            return
        self.core.publish_camera(jpeg, now)

    def _on_objects(self, msg: TrackArray) -> None:
        if msg.header.frame_id.lstrip('/') != self.map_frame:
            self.node.get_logger().warning(
                f'tracked objects in frame {msg.header.frame_id!r}, not {self.map_frame!r}: '
                'not shared with the fleet', throttle_duration_sec=30.0)
            return
        out = []
        for t in msg.tracks:
            p, v = t.position, t.velocity
            if not t.has_position or not all(math.isfinite(c) for c in (p.x, p.y, v.x, v.y)):
                continue
            out.append(TrackedObject(int(t.id) % 2 ** 63, (t.class_id or '?')[:MAX_CLASS_CHARS],
                                     p.x, p.y, v.x, v.y,
                                     min(1.0, max(0.0, t.score)) if math.isfinite(t.score)
                                     else 0.0))
            if len(out) >= MAX_OBJECTS:
                break
        self.core.update_objects(out)
