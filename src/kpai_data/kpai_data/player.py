"""Player: publish a recording's serialized messages back onto their ROS topics."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from .bag_reader import BagReader
from .errors import DataError
from .playback import PlaybackClock, choose_topics, publisher_qos
from .ros_types import message_class

__all__ = ['PlayerNode', 'main']


class PlayerNode(Node):
    """Replay a bag at a rate, optionally looping and publishing /clock."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('player', **kwargs)
        specs: dict[str, tuple[Any, str]] = {
            'bag': ('', 'recording: bag directory or .mcap file'),
            'rate': (1.0, 'playback speed factor'),
            'loop': (False, 'start again at the end'),
            'topics': ([''], 'topics to play (all when empty)'),
            'regex': ('', 'also play topics matching this regex'),
            'exclude': ('', 'never play topics matching this regex'),
            'clock_hz': (0.0, 'publish /clock at this rate in Hz (0: off)'),
            'start_delay': (1.0, 'seconds to wait after creating publishers (discovery)'),
            'qos_depth': (100, 'publisher queue depth'),
            'wait_for_subscribers': (0, 'before playing, wait until every played topic has '
                                     'this many subscribers (0: do not wait)'),
        }
        for key, (default, text) in specs.items():
            self.declare_parameter(key, default, ParameterDescriptor(description=text))
        p = {k: self.get_parameter(k).value for k in specs}
        if not p['bag']:
            raise DataError('parameter bag (the recording to play) is required')
        if not float(p['rate']) > 0 or float(p['clock_hz']) < 0:
            raise DataError('rate must be > 0 and clock_hz >= 0')
        self.rate = float(p['rate'])
        self.loop = bool(p['loop'])
        self.start_delay = max(0.0, float(p['start_delay']))
        self.wait_for_subscribers = max(0, int(p['wait_for_subscribers']))
        self.reader = BagReader(p['bag'])
        self.topics = choose_topics(self.reader.topics, [t for t in p['topics'] if t],
                                    p['regex'], p['exclude'])
        self._pubs: dict[str, Any] = {}
        for topic in self.topics:
            summary = self.reader.topics[topic]
            reliability, durability = publisher_qos(summary.offered_qos)
            qos = QoSProfile(
                history=HistoryPolicy.KEEP_LAST, depth=int(p['qos_depth']),
                reliability=(ReliabilityPolicy.RELIABLE if reliability == 'reliable'
                             else ReliabilityPolicy.BEST_EFFORT),
                durability=(DurabilityPolicy.TRANSIENT_LOCAL if durability == 'transient_local'
                            else DurabilityPolicy.VOLATILE))
            try:
                self._pubs[topic] = self.create_publisher(
                    message_class(summary.type), topic, qos)
            except DataError as err:
                self.get_logger().warning(f'cannot play {topic} ({summary.type}): {err}')
        self._clock_pub = None
        self._playback: PlaybackClock | None = None
        if float(p['clock_hz']) > 0:
            self._clock_pub = self.create_publisher(Clock, '/clock', 10)
            self.create_timer(1.0 / float(p['clock_hz']), self._publish_clock)
        self.published = 0
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, name='player', daemon=True)
        self._thread.start()

    def _publish_clock(self) -> None:
        if self._playback is not None and self._clock_pub is not None:
            now = self._playback.bag_time(time.monotonic())
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = divmod(now, 1_000_000_000)
            self._clock_pub.publish(msg)

    def _sleep_until(self, wall: float) -> bool:
        while not self._stop.is_set():
            remaining = wall - time.monotonic()
            if remaining <= 0:
                return True
            self._stop.wait(min(remaining, 0.1))
        return False

    def _play(self) -> None:
        if self.wait_for_subscribers:
            waiting = True
            while waiting and not self._stop.is_set():
                waiting = any(pub.get_subscription_count() < self.wait_for_subscribers
                              for pub in self._pubs.values())
                if waiting:
                    self._stop.wait(0.05)
        if not self._sleep_until(time.monotonic() + self.start_delay):
            return
        topics = list(self._pubs)
        while not self._stop.is_set():
            self._playback = None
            for raw in self.reader.messages(topics):
                if self._playback is None:
                    self._playback = PlaybackClock(raw.log_time, time.monotonic(), self.rate)
                if not self._sleep_until(self._playback.wall_for(raw.log_time)):
                    return
                try:
                    self._pubs[raw.topic].publish(raw.data)
                    self.published += 1
                except Exception as err:  # noqa: BLE001 - a bad message must not stop playback
                    self.get_logger().warning(f'{raw.topic}: {err}',
                                              throttle_duration_sec=5.0)
            if not self.loop:
                break
        self.done.set()

    def stop(self) -> None:
        """Stop playback."""
        self._stop.set()
        self._thread.join(2.0)


def _cli_overrides(argv: list[str]) -> list[Parameter]:
    parser = argparse.ArgumentParser(prog='player', description='Play a recording onto ROS.')
    parser.add_argument('bag', nargs='?', help='bag directory or .mcap file')
    parser.add_argument('--rate', type=float)
    parser.add_argument('--loop', action='store_true')
    parser.add_argument('--topics', nargs='+')
    parser.add_argument('--regex')
    parser.add_argument('--clock', type=float, metavar='HZ', help='publish /clock at HZ')
    args = parser.parse_args(argv)
    out = []
    if args.bag:
        out.append(Parameter('bag', value=args.bag))
    if args.rate is not None:
        out.append(Parameter('rate', value=args.rate))
    if args.loop:
        out.append(Parameter('loop', value=True))
    if args.topics:
        out.append(Parameter('topics', value=list(args.topics)))
    if args.regex:
        out.append(Parameter('regex', value=args.regex))
    if args.clock is not None:
        out.append(Parameter('clock_hz', value=args.clock))
    return out


def main(args: list[str] | None = None) -> int:
    """Play a recording; exit when done (unless looping) or on Ctrl-C."""
    argv = sys.argv if args is None else args
    rclpy.init(args=argv)
    node: PlayerNode | None = None
    try:
        overrides = _cli_overrides(rclpy.utilities.remove_ros_args(argv)[1:])
        node = PlayerNode(parameter_overrides=overrides)
        node.get_logger().info(f'playing {len(node.topics)} topics of {node.reader.path} '
                               f'at x{node.rate}{" (loop)" if node.loop else ""}')
        while rclpy.ok() and not node.done.is_set():
            rclpy.spin_once(node, timeout_sec=0.1)
        node.get_logger().info(f'published {node.published} messages')
    except DataError as err:
        print(f'player: {err}', file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.stop()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
