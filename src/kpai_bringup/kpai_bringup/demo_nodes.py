"""Chatter demo nodes used by the launcher's tests and as a smoke demo.

`talker` publishes std_msgs/String '<message> <count>' on `chatter` at `rate` Hz;
`listener` subscribes to `chatter`, logs what it hears and publishes the number of messages
heard so far on `heard_count` (std_msgs/Int32).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import rclpy
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Int32, String

__all__ = ['ListenerConfig', 'TalkerConfig', 'listener_main', 'talker_main']

_RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class ConfigError(ValueError):
    """A parameter value is out of range."""


@dataclass(frozen=True)
class TalkerConfig:
    """Talker parameters."""

    message: str = 'hello'
    rate: float = 1.0

    def validate(self) -> TalkerConfig:
        """Return self, or raise ConfigError naming the bad parameter."""
        if not 0.0 < self.rate <= 1000.0:
            raise ConfigError(f'rate must be in (0, 1000] Hz, got {self.rate}')
        return self


@dataclass(frozen=True)
class ListenerConfig:
    """Listener parameters."""

    log_every: int = 1

    def validate(self) -> ListenerConfig:
        """Return self, or raise ConfigError naming the bad parameter."""
        if self.log_every < 1:
            raise ConfigError(f'log_every must be >= 1, got {self.log_every}')
        return self


class Talker(Node):
    """Publish '<message> <count>' on `chatter` at `rate` Hz."""

    def __init__(self) -> None:
        super().__init__('talker')
        self.declare_parameter('message', TalkerConfig.message, ParameterDescriptor(
            description='Text published before the message counter.'))
        self.declare_parameter('rate', TalkerConfig.rate, ParameterDescriptor(
            description='Publishing rate in Hz, in (0, 1000].'))
        self.config = TalkerConfig(
            message=self.get_parameter('message').value,
            rate=float(self.get_parameter('rate').value)).validate()
        self.count = 0
        self.pub = self.create_publisher(String, 'chatter', _RELIABLE)
        self.timer = self.create_timer(1.0 / self.config.rate, self._tick)
        self.add_on_set_parameters_callback(self._on_set)

    def _on_set(self, params: list[Parameter]) -> SetParametersResult:
        values = {'message': self.config.message, 'rate': self.config.rate}
        values.update({p.name: p.value for p in params if p.name in values})
        try:
            new = TalkerConfig(message=str(values['message']),
                               rate=float(values['rate'])).validate()
        except (ConfigError, TypeError, ValueError) as err:
            return SetParametersResult(successful=False, reason=str(err))
        if new.rate != self.config.rate:
            self.timer.cancel()
            self.destroy_timer(self.timer)
            self.timer = self.create_timer(1.0 / new.rate, self._tick)
        self.config = new
        return SetParametersResult(successful=True)

    def _tick(self) -> None:
        self.count += 1
        self.pub.publish(String(data=f'{self.config.message} {self.count}'))


class Listener(Node):
    """Count and log the messages on `chatter`; publish the count on `heard_count`."""

    def __init__(self) -> None:
        super().__init__('listener')
        self.declare_parameter('log_every', ListenerConfig.log_every, ParameterDescriptor(
            description='Log one line per this many messages (>= 1).'))
        self.config = ListenerConfig(
            log_every=int(self.get_parameter('log_every').value)).validate()
        self.heard = 0
        self.pub = self.create_publisher(Int32, 'heard_count', _RELIABLE)
        self.create_subscription(String, 'chatter', self._on_message, _RELIABLE)

    def _on_message(self, msg: String) -> None:
        self.heard += 1
        if self.heard % self.config.log_every == 1 or self.config.log_every == 1:
            self.get_logger().info(f'I heard: [{msg.data}]')
        self.pub.publish(Int32(data=self.heard))


def _run(factory: type[Node], args: list[str] | None) -> int:
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        rclpy.spin(node)
    except ConfigError as err:
        print(f'{factory.__name__.lower()}: invalid parameter: {err}', file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def talker_main(args: list[str] | None = None) -> int:
    """Run the talker node."""
    return _run(Talker, args)


def listener_main(args: list[str] | None = None) -> int:
    """Run the listener node."""
    return _run(Listener, args)
