"""Recorder node: record chosen topics as serialized CDR into a rosbag2-compatible MCAP bag."""

from __future__ import annotations

import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rclpy
from kpai_perception.ros_distro import current_distro
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from rclpy.signals import SignalHandlerOptions

from .bag_writer import COMPRESSIONS, BagWriter, SplitPolicy
from .errors import DataError
from .recording import ThreadedRecorder, TopicSelector, default_bag_name, subscription_qos
from .ros_types import message_class, qos_info

__all__ = ['RecorderConfig', 'RecorderNode', 'main']


@dataclass(frozen=True)
class RecorderConfig:
    """Validated recorder parameters."""

    topics: tuple[str, ...]
    regex: str
    exclude: str
    all_topics: bool
    output: str
    compression: str
    chunk_size: int
    max_bag_size: int
    max_bag_duration: float
    discovery_period: float
    qos_depth: int
    queue_limit: int
    report_period: float
    autostart: bool

    def validate(self) -> None:
        """Raise DataError with a reason on an invalid value."""
        if self.compression not in COMPRESSIONS:
            raise DataError(f'compression must be one of {sorted(COMPRESSIONS)}')
        if self.chunk_size < 1024:
            raise DataError('chunk_size must be >= 1024 bytes')
        if self.max_bag_size < 0 or self.max_bag_duration < 0:
            raise DataError('max_bag_size and max_bag_duration must be >= 0')
        if self.discovery_period <= 0 or self.qos_depth < 1 or self.queue_limit < 0:
            raise DataError('discovery_period > 0, qos_depth >= 1 and queue_limit >= 0 required')
        TopicSelector(self.topics, regex=self.regex, all_topics=self.all_topics,
                      exclude=self.exclude)


_PARAMS: dict[str, tuple[Any, str]] = {
    'topics': ([''], 'topic names to record (absolute, or relative to /)'),
    'regex': ('', 'also record every topic whose name matches this regex (search)'),
    'exclude': ('', 'never record topics matching this regex'),
    'all_topics': (False, 'record every topic discovered'),
    'output': ('', 'bag directory to create (default ./rosbag2_<date>-<time>)'),
    'compression': ('zstd', 'MCAP chunk compression: zstd, lz4 or none'),
    'chunk_size': (1 << 20, 'MCAP chunk size in bytes'),
    'max_bag_size': (0, 'start a new .mcap file past this many bytes (0: never)'),
    'max_bag_duration': (0.0, 'start a new .mcap file after this many seconds (0: never)'),
    'discovery_period': (1.0, 'seconds between topic discovery passes'),
    'qos_depth': (100, 'subscription queue depth'),
    'queue_limit': (0, 'max messages waiting for the writer thread (0: unbounded)'),
    'report_period': (10.0, 'seconds between progress log lines (0: off)'),
    'autostart': (True, 'configure and activate on start (else wait for lifecycle commands)'),
}


class RecorderNode(LifecycleNode):
    """Subscribe raw (serialized) to selected topics and write them to MCAP."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('recorder', **kwargs)
        for key, (default, text) in _PARAMS.items():
            self.declare_parameter(key, default, ParameterDescriptor(description=text))
        self.config = self._read_config()
        self._recorder: ThreadedRecorder | None = None
        self._selector: TopicSelector | None = None
        self._subs: dict[str, Any] = {}
        self._skipped: set[str] = set()
        self._own_timers: list[Any] = []

    def _read_config(self) -> RecorderConfig:
        p = {k: self.get_parameter(k).value for k in _PARAMS}
        config = RecorderConfig(
            topics=tuple(t for t in p['topics'] if t), regex=p['regex'], exclude=p['exclude'],
            all_topics=bool(p['all_topics']), output=p['output'] or default_bag_name(),
            compression=p['compression'], chunk_size=int(p['chunk_size']),
            max_bag_size=int(p['max_bag_size']),
            max_bag_duration=float(p['max_bag_duration']),
            discovery_period=float(p['discovery_period']), qos_depth=int(p['qos_depth']),
            queue_limit=int(p['queue_limit']), report_period=float(p['report_period']),
            autostart=bool(p['autostart']))
        config.validate()
        return config

    # lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        c = self.config
        try:
            self._selector = TopicSelector(c.topics, regex=c.regex, all_topics=c.all_topics,
                                           exclude=c.exclude)
            writer = BagWriter(c.output, compression=c.compression, chunk_size=c.chunk_size,
                               split=SplitPolicy(c.max_bag_size, c.max_bag_duration),
                               ros_distro=current_distro() or 'jazzy')
        except DataError as err:
            self.get_logger().error(f'cannot start recording: {err}')
            return TransitionCallbackReturn.ERROR
        self._recorder = ThreadedRecorder(writer, queue_limit=c.queue_limit)
        self.get_logger().info(f'recording into {Path(c.output).resolve()}')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._discover()
        self._own_timers.append(self.create_timer(self.config.discovery_period, self._discover))
        if self.config.report_period > 0:
            self._own_timers.append(self.create_timer(self.config.report_period, self._report))
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_subscriptions()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.finish()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.finish()
        return TransitionCallbackReturn.SUCCESS

    # recording
    def _discover(self) -> None:
        assert self._selector is not None and self._recorder is not None
        own = self.get_fully_qualified_name() + '/'
        for topic, types in self.get_topic_names_and_types():
            if topic.startswith(own):
                continue  # the recorder's own lifecycle events
            if topic in self._subs or topic in self._skipped or not self._selector.wants(topic):
                continue
            if len(types) != 1:
                self._skipped.add(topic)
                self.get_logger().warning(f'not recording {topic}: several types {types}')
                continue
            self._subscribe(topic, types[0])

    def _subscribe(self, topic: str, type_name: str) -> None:
        assert self._recorder is not None
        offered = [qos_info(i.qos_profile) for i in self.get_publishers_info_by_topic(topic)]
        try:
            msg_class = message_class(type_name)
            self._recorder.add_topic(topic, type_name, offered)
        except DataError as err:
            self._skipped.add(topic)
            self.get_logger().warning(f'not recording {topic} ({type_name}): {err}')
            return
        reliability, durability = subscription_qos(offered)
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=self.config.qos_depth,
            reliability=(ReliabilityPolicy.RELIABLE if reliability == 'reliable'
                         else ReliabilityPolicy.BEST_EFFORT),
            durability=(DurabilityPolicy.TRANSIENT_LOCAL if durability == 'transient_local'
                        else DurabilityPolicy.VOLATILE))
        recorder, clock = self._recorder, self.get_clock()

        def on_message(data: bytes) -> None:
            recorder.put(topic, data, clock.now().nanoseconds)

        self._subs[topic] = self.create_subscription(msg_class, topic, on_message, qos,
                                                     raw=True)
        self.get_logger().info(f'recording {topic} [{type_name}] ({reliability}, {durability})')

    def _stop_subscriptions(self) -> None:
        for timer in self._own_timers:
            self.destroy_timer(timer)
        self._own_timers.clear()
        for sub in self._subs.values():
            self.destroy_subscription(sub)
        self._subs.clear()

    def _report(self) -> None:
        if self._recorder is not None:
            self.get_logger().info(f'{self._recorder.stats.summary()}, '
                                   f'backlog {self._recorder.backlog}')

    def finish(self) -> None:
        """Stop subscribing, write what was received and close the bag (idempotent)."""
        recorder, self._recorder = self._recorder, None  # later messages are not recorded
        if recorder is None:
            self._stop_subscriptions()
            return
        stats = recorder.stats
        path = recorder.close(custom_data={
            'kpai.received': str(sum(stats.received.values())),
            'kpai.written': str(sum(stats.written.values())),
            'kpai.dropped': str(sum(stats.dropped.values())),
            'kpai.lost': str(stats.lost)})
        line = f'bag closed: {path}: {stats.summary()}'
        if recorder.last_error:
            line += f' (last write error: {recorder.last_error})'
        # the context may already be shut down (SIGINT): print instead of logging
        print(f'[recorder] {line}', flush=True)
        self._stop_subscriptions()


def main(args: list[str] | None = None) -> int:
    """Run the recorder until SIGINT or SIGTERM, then finish the bag before ROS shuts down."""
    # our own handlers: the bag is finished first, with rclpy still up, on either signal (a
    # launcher escalates SIGINT to SIGTERM; a bag cut off by SIGKILL has no metadata)
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    node: RecorderNode | None = None
    try:
        node = RecorderNode()
        if node.config.autostart:
            node.trigger_configure()
            if node._recorder is None:
                return 1
            node.trigger_activate()
        while not stop.is_set() and rclpy.ok():
            rclpy.spin_once(node, timeout_sec=0.2)
    except DataError as err:
        print(f'recorder: {err}', file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.finish()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
