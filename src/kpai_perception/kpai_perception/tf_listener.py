"""Feed a TransformBuffer from /tf and /tf_static (rclpy side of tf_buffer)."""

from __future__ import annotations

from typing import Any

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

from kpai_perception.tf_buffer import TransformBuffer

__all__ = ['TfListener']

TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                    history=HistoryPolicy.KEEP_LAST)
TF_STATIC_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL,
                           history=HistoryPolicy.KEEP_LAST)


class TfListener:
    """Subscribe /tf and /tf_static on node and keep buffer filled; count bad transforms."""

    def __init__(self, node: Any, buffer: TransformBuffer, *, tf_topic: str = '/tf',
                 tf_static_topic: str = '/tf_static') -> None:
        self.node = node
        self.buffer = buffer
        self._subs = [
            node.create_subscription(TFMessage, tf_topic, self._on_tf, TF_QOS),
            node.create_subscription(TFMessage, tf_static_topic, self._on_static,
                                     TF_STATIC_QOS),
        ]

    def close(self) -> None:
        """Unsubscribe (the buffer keeps what it has)."""
        for sub in self._subs:
            self.node.destroy_subscription(sub)
        self._subs = []

    def _on_tf(self, msg: TFMessage) -> None:
        self._add(msg, static=False)

    def _on_static(self, msg: TFMessage) -> None:
        self._add(msg, static=True)

    def _add(self, msg: TFMessage, *, static: bool) -> None:
        if self.buffer.add_message(msg, static=static):
            self.node.get_logger().warning(
                f'{self.buffer.rejected} invalid transforms ignored so far (NaN, empty frame)',
                throttle_duration_sec=5.0)
