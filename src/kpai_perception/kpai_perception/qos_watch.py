"""One periodic QoS and type check per node instead of rclpy's per-entity event handlers.

rclpy gives every publisher and subscription two QoS event handlers by default (incompatible
QoS, incompatible type) that only log a warning. Each is an rcl event in the node's wait set,
and rclpy's executor rebuilds that set in Python on every wake-up, so a node with 12
subscriptions and 7 publishers carries 38 extra entities through every callback (issue 18:
about 10 % of the robot nodes' CPU at the design rates, `bench/stack_cpu.py`).

`QosWatch` removes those default handlers (handlers a caller set itself stay) and keeps the
warning: every `period` seconds of steady time it reads the ROS graph for the peers of each
of the node's topics and warns once per incompatible peer, naming the policy, as rclpy's
handlers do. A peer is reported once while it stays in the graph.
"""

from __future__ import annotations

import copy
from typing import Any

from rclpy.clock import Clock, ClockType
from rclpy.duration import Duration, Infinite
from rclpy.qos import QoSCompatibility, QoSProfile, qos_check_compatible

__all__ = ['DEFAULT_PERIOD', 'QosWatch', 'remove_default_event_handlers', 'type_name']

DEFAULT_PERIOD = 5.0
# the names of rclpy's own default callbacks (rclpy/event_handler.py, Jazzy and Kilted)
_DEFAULT_CALLBACKS = ('_default_incompatible_qos_callback', '_default_incompatible_type_callback')


def type_name(msg_type: Any) -> str:
    """'nav_msgs/msg/Odometry' for the class nav_msgs.msg.Odometry (the graph's spelling)."""
    parts = msg_type.__module__.split('.')
    return f'{parts[0]}/{parts[1]}/{msg_type.__name__}'


def _unset_infinite(qos: QoSProfile) -> QoSProfile:
    """The graph reports an unset duration as Infinite, a node's own profile as 0; rcl's
    check reads Infinite against 0 as 'has a deadline, the other does not'. Make both 0."""
    out = copy.copy(qos)
    for name in ('deadline', 'lifespan', 'liveliness_lease_duration'):
        if getattr(out, name) == Infinite:
            setattr(out, name, Duration())
    return out


def remove_default_event_handlers(node: Any) -> int:
    """Remove rclpy's default QoS event handlers from the node's entities; return how many."""
    removed = 0
    for entity in [*node.publishers, *node.subscriptions]:
        keep = []
        for handler in entity.event_handlers:
            if getattr(handler.callback, '__name__', '') in _DEFAULT_CALLBACKS:
                node.remove_waitable(handler)
                handler.destroy()
                removed += 1
            else:
                keep.append(handler)
        # destroy_publisher/destroy_subscription remove these from the node's waitables
        entity.event_handlers = keep
    return removed


class QosWatch:
    """Warn about peers with incompatible QoS or type, from the graph, every `period` s."""

    def __init__(self, node: Any, period: float = DEFAULT_PERIOD) -> None:
        self.node = node
        self.removed = remove_default_event_handlers(node)
        self._reported: set[tuple[str, str, bytes]] = set()
        self.timer = node.create_timer(period, self.check,
                                       clock=Clock(clock_type=ClockType.STEADY_TIME))

    def check(self) -> list[str]:
        """Read the graph once; log and return the new warnings.

        Entities created since the last check (a lifecycle node's on configure) lose their
        default handlers here too.
        """
        self.removed += remove_default_event_handlers(self.node)
        warnings: list[str] = []
        seen: set[tuple[str, str, bytes]] = set()
        for direction, entities, peers_of in (
                ('sub', self.node.subscriptions, self.node.get_publishers_info_by_topic),
                ('pub', self.node.publishers, self.node.get_subscriptions_info_by_topic)):
            for entity in list(entities):
                try:
                    topic = entity.topic_name
                    peers = peers_of(topic)
                except Exception:  # noqa: BLE001 - an entity destroyed meanwhile
                    continue
                ours = type_name(entity.msg_type)
                qos = _unset_infinite(entity.qos_profile)
                for peer in peers:
                    key = (direction, topic, bytes(peer.endpoint_gid))
                    seen.add(key)
                    if key in self._reported:
                        continue
                    text = self._verdict(direction, topic, ours, qos, peer)
                    if text is not None:
                        self._reported.add(key)
                        warnings.append(text)
                        self.node.get_logger().warning(text)
        self._reported &= seen  # a peer that left and comes back is checked again
        return warnings

    @staticmethod
    def _verdict(direction: str, topic: str, ours: str, qos: Any, peer: Any) -> str | None:
        who = f'{peer.node_namespace.rstrip("/")}/{peer.node_name}'
        if peer.topic_type != ours:
            return (f"Incompatible type on topic '{topic}': {who} uses {peer.topic_type}, "
                    f'this node {ours}; no messages will pass between them')
        theirs = _unset_infinite(peer.qos_profile)
        if direction == 'sub':
            result, reason = qos_check_compatible(theirs, qos)
            kind = 'publisher'
        else:
            result, reason = qos_check_compatible(qos, theirs)
            kind = 'subscription'
        if result != QoSCompatibility.ERROR:
            return None
        return (f"{kind.capitalize()} {who} on topic '{topic}' has incompatible QoS; "
                f"no messages will pass between them: {reason.strip().rstrip(';')}")
