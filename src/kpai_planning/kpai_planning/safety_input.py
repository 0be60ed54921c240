"""The safety monitor's speed limit as a node input (subscription + graph check), fail closed."""

from __future__ import annotations

import time

from rclpy.node import Node
from std_msgs.msg import Float64

from .errors import PlanningError
from .node_util import RELIABLE, declare
from .speed_gate import DEFAULT_TIMEOUT, SpeedLimitGate

__all__ = ['SafetyLimitInput']

_GRAPH_CHECK_PERIOD = 1.0  # s (wall) between checks of who publishes the limit


class SafetyLimitInput:
    """Subscribe to `safety/speed_limit`; limit(now) is 0 unless fresh, valid and from its source.

    Parameters: `speed_limit_timeout` (s, default 0.5) and `safety_monitor_node` (the node that
    must publish the limit, relative to this node's namespace; '' accepts any publisher).
    """

    def __init__(self, node: Node) -> None:
        timeout = float(declare(node, 'speed_limit_timeout', DEFAULT_TIMEOUT,
                                'a speed limit older than this (s) stops the robot'))
        source = str(declare(node, 'safety_monitor_node', 'safety_monitor',
                             'node that must publish safety/speed_limit (relative to this '
                             "node's namespace); '' accepts any publisher"))
        if source and not source.startswith('/'):
            source = node.get_namespace().rstrip('/') + '/' + source
        try:
            self.gate = SpeedLimitGate(timeout, source=source)
        except ValueError as err:
            raise PlanningError(str(err)) from err
        self._node = node
        self._topic = node.resolve_topic_name('safety/speed_limit')
        self._next_check = 0.0
        self._reason: str | None = ''
        node.create_subscription(Float64, 'safety/speed_limit', self._on_limit, RELIABLE)

    def _on_limit(self, msg: Float64) -> None:
        if not self.gate.update(msg.data, self._now()):
            self._node.get_logger().error(f'invalid safety speed limit {msg.data!r}: stopping',
                                          throttle_duration_sec=5.0)

    def _now(self) -> float:
        return self._node.get_clock().now().nanoseconds * 1e-9

    def limit(self, now: float) -> float:
        """Return the limit in force (m/s); log when the robot is stopped or released by it."""
        wall = time.monotonic()
        if wall >= self._next_check:
            self._next_check = wall + _GRAPH_CHECK_PERIOD
            infos = self._node.get_publishers_info_by_topic(self._topic)
            self.gate.set_publishers(
                [f"{i.node_namespace.rstrip('/')}/{i.node_name}" for i in infos])
        reason = self.gate.reason(now)
        if reason != self._reason:
            log = self._node.get_logger()
            if reason is None:
                log.info('safety speed limit in force again')
            else:
                log.warning(f'stopped: {reason}')
            self._reason = reason
        return self.gate.limit(now)
