"""Foxglove live view: a foxglove-sdk WebSocket server fed from ROS topics (by message type).

Images -> RawImage (or JPEG CompressedImage), Detection2DArray and image-space TrackArray ->
ImageAnnotations, TFMessage -> FrameTransforms, Path -> PosesInFrame, OccupancyGrid -> Grid.
Latched data (map, static transforms) is re-sent when a client subscribes.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable
from typing import Any

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from . import foxglove_convert as conv
from .errors import DataError
from .image_codec import image_fields_to_rgb
from .recording import subscription_qos
from .ros_types import message_class, qos_info

__all__ = ['FoxgloveBridge', 'main']

# ROS type -> (converter, foxglove channel class name, latched)
_ROUTES: dict[str, tuple[Callable[[Any], Any], str, bool]] = {
    'sensor_msgs/msg/Image': (conv.image_to_raw, 'RawImageChannel', False),
    'vision_msgs/msg/Detection2DArray': (conv.detections_to_annotations,
                                         'ImageAnnotationsChannel', False),
    'kpai_msgs/msg/TrackArray': (conv.tracks_to_annotations, 'ImageAnnotationsChannel', False),
    'tf2_msgs/msg/TFMessage': (conv.tf_to_transforms, 'FrameTransformsChannel', False),
    'nav_msgs/msg/Path': (conv.path_to_poses, 'PosesInFrameChannel', False),
    'nav_msgs/msg/OccupancyGrid': (conv.grid_from_occupancy, 'GridChannel', True),
}


class FoxgloveBridge(LifecycleNode):
    """Serve live ROS data to Foxglove over WebSocket (127.0.0.1:8765 by default)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('foxglove_bridge', **kwargs)
        specs: dict[str, tuple[Any, str]] = {
            'host': ('127.0.0.1', "address to bind (0.0.0.0 exposes the robot's data!)"),
            'port': (8765, 'WebSocket port (0: any free port)'),
            'include': ('.*', 'bridge topics matching this regex'),
            'exclude': ('', 'never bridge topics matching this regex'),
            'jpeg_quality': (0, 'send images as JPEG of this quality (0: raw images)'),
            'discovery_period': (1.0, 'seconds between topic discovery passes (and between '
                                      'checks for channels a client started or stopped '
                                      'watching)'),
            'autostart': (True, 'configure and activate on start'),
        }
        for key, (default, text) in specs.items():
            self.declare_parameter(key, default, ParameterDescriptor(description=text))
        p = {k: self.get_parameter(k).value for k in specs}
        if not 0 <= int(p['port']) <= 65535 or not 0 <= int(p['jpeg_quality']) <= 100:
            raise ValueError('port must be 0..65535 and jpeg_quality 0..100')
        self.host, self.port = str(p['host']), int(p['port'])
        self.include = re.compile(p['include'])
        self.exclude = re.compile(p['exclude']) if p['exclude'] else None
        self.jpeg_quality = int(p['jpeg_quality'])
        self.discovery_period = float(p['discovery_period'])
        self.autostart = bool(p['autostart'])
        self.server: Any = None
        self._channels: dict[str, Any] = {}
        self._latched: dict[str, Any] = {}
        self._subs: dict[str, Any] = {}  # topic -> ROS subscription, while wanted
        self._routes: dict[str, Any] = {}  # topic -> (class, callback, qos, channel, latched)
        self._timer: Any = None
        self._lock = threading.Lock()
        self.errors = 0

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        import foxglove

        bridge = self

        class _Listener(foxglove.ServerListener):  # type: ignore[misc]
            def on_subscribe(self, client: Any, channel: Any) -> None:
                with bridge._lock:
                    latched = bridge._latched.get(channel.topic)
                    fox = bridge._channels.get(channel.topic)
                if latched is not None and fox is not None:
                    fox.log(latched)

        try:
            self.server = foxglove.start_server(name='kpai', host=self.host, port=self.port,
                                                server_listener=_Listener())
        except Exception as err:  # noqa: BLE001 - the SDK raises its own error types
            self.get_logger().error(f'cannot start the Foxglove server on '
                                    f'{self.host}:{self.port}: {err}')
            return TransitionCallbackReturn.ERROR
        self.port = int(self.server.port)
        self.get_logger().info(f'Foxglove WebSocket server on ws://{self.host}:{self.port}')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._discover()
        self._timer = self.create_timer(self.discovery_period, self._discover)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def _discover(self) -> None:
        for topic, types in self.get_topic_names_and_types():
            if topic in self._routes or len(types) != 1 or types[0] not in _ROUTES:
                continue
            if not self.include.search(topic) or (self.exclude and self.exclude.search(topic)):
                continue
            self._bridge(topic, types[0])
        self._reconcile()

    def _reconcile(self) -> None:
        """Subscribe to a ROS topic only while a client watches its channel (latched: always).

        As the C++ foxglove_bridge does: an unwatched camera costs nothing, and a node that
        works only for subscribers (the annotator) stays idle.
        """
        for topic, route in self._routes.items():
            if route is None:
                continue
            msg_class, on_message, qos, fox, keep = route
            wanted = keep or fox.has_sinks()
            sub = self._subs.get(topic)
            if wanted and sub is None:
                self._subs[topic] = self.create_subscription(msg_class, topic, on_message, qos)
            elif not wanted and sub is not None:
                self.destroy_subscription(sub)
                del self._subs[topic]

    def _bridge(self, topic: str, type_name: str) -> None:
        import foxglove.channels as channels

        convert, channel_class, latched = _ROUTES[type_name]
        offered = [qos_info(i.qos_profile) for i in self.get_publishers_info_by_topic(topic)]
        reliability, durability = subscription_qos(offered)
        if type_name == 'sensor_msgs/msg/Image' and self.jpeg_quality:
            channel_class = 'CompressedImageChannel'
            quality = self.jpeg_quality

            def convert(msg: Any) -> Any:
                return conv.image_to_compressed(image_fields_to_rgb(msg), msg.header, quality)
        if topic == '/tf_static':
            latched = True
        fox = getattr(channels, channel_class)(topic)
        keep = latched or durability == 'transient_local'

        def on_message(msg: Any) -> None:
            if not keep and not fox.has_sinks():
                return  # nobody watching: skip the conversion
            try:
                out = convert(msg)
            except Exception as err:  # noqa: BLE001 - bad input must not stop the bridge
                self.errors += 1
                self.get_logger().warning(f'{topic}: cannot convert: {err}',
                                          throttle_duration_sec=5.0)
                return
            if keep:
                with self._lock:
                    self._latched[topic] = out
            fox.log(out)

        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=5 if not keep else 1,
            reliability=(ReliabilityPolicy.RELIABLE if reliability == 'reliable'
                         else ReliabilityPolicy.BEST_EFFORT),
            durability=(DurabilityPolicy.TRANSIENT_LOCAL if durability == 'transient_local'
                        else DurabilityPolicy.VOLATILE))
        try:
            msg_class = message_class(type_name)
        except DataError as err:
            self._routes[topic] = None  # not retried
            self.get_logger().warning(f'not bridging {topic}: {err}')
            return
        with self._lock:
            self._channels[topic] = fox
        self._routes[topic] = (msg_class, on_message, qos, fox, keep)
        self.get_logger().info(f'bridging {topic} [{type_name}] as {channel_class}'
                               + ('' if keep else ' (subscribed while a client watches)'))

    def _unsubscribe(self) -> None:
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        for sub in self._subs.values():
            self.destroy_subscription(sub)
        self._subs.clear()
        self._routes.clear()

    def close(self) -> None:
        """Stop bridging and stop the server (idempotent)."""
        self._unsubscribe()
        if self.server is not None:
            self.server.stop()
            self.server = None


def main(args: list[str] | None = None) -> int:
    """Run the Foxglove bridge until Ctrl-C."""
    rclpy.init(args=args)
    node: FoxgloveBridge | None = None
    try:
        node = FoxgloveBridge()
        if node.autostart:
            node.trigger_configure()
            if node.server is None:
                return 1
            node.trigger_activate()
        rclpy.spin(node)
    except (ValueError, re.error) as err:
        print(f'foxglove_bridge: {err}', file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
