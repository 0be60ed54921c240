"""The fleet agent's heartbeat of its robot: watched nodes in the graph, lifecycle states."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lifecycle_msgs.srv import GetState
from rcl_interfaces.msg import ParameterDescriptor
from rcl_interfaces.srv import GetParameters
from rclpy.node import Node

from kpai_fleet.node_health import NodeHealth, NodeWatch

__all__ = ['Heartbeat']

_PARAMS: dict[str, tuple[Any, str]] = {
    'watched_nodes': (['npu_bridge', 'tracker', 'object_localizer', 'safety_monitor',
                       'mission_executor'],
                      "nodes of this robot (relative to the agent's namespace) reported in "
                      'the state as kpai.nodeMissing when they are not running'),
    'watched_lifecycle_nodes': (['npu_bridge'], 'watched lifecycle nodes reported as '
                                'kpai.nodeInactive when their state is not active'),
    'critical_nodes': (['safety_monitor', 'mission_executor'],
                       'watched nodes the robot cannot drive without (errorLevel FATAL)'),
    'node_grace_s': (10.0, 'seconds after start before a node counts as missing'),
}
_PERIOD_S = 1.0


class Heartbeat:
    """Watch the robot's nodes once a second; hand each NodeHealth to on_health."""

    def __init__(self, node: Node, on_health: Callable[[NodeHealth], None]) -> None:
        for name, (default, text) in _PARAMS.items():
            node.declare_parameter(name, default, ParameterDescriptor(description=text))
        v = {n: node.get_parameter(n).value for n in _PARAMS}
        self._node = node
        self._ns = node.get_namespace().rstrip('/')
        self.watch = NodeWatch([str(n) for n in v['watched_nodes'] if n],
                               lifecycle=[str(n) for n in v['watched_lifecycle_nodes']],
                               critical=[str(n) for n in v['critical_nodes']],
                               grace_s=float(v['node_grace_s']))
        self._on_health = on_health
        self._clients = {n: node.create_client(GetState, f'{n}/get_state')
                         for n in self.watch.lifecycle}
        # a node's parameter service, found by DDS endpoint discovery: a loaded machine can
        # leave a node out of the graph's name list (ros_discovery_info) for minutes while
        # its endpoints are long matched
        self._probes = {n: node.create_client(GetParameters, f'{n}/get_parameters')
                        for n in self.watch.watched}
        self._states: dict[str, str] = {}
        self._asked: dict[str, Any] = {}
        self._timer: Any = None

    def start(self) -> None:
        """Start checking once a second."""
        if self._timer is None:
            self._timer = self._node.create_timer(_PERIOD_S, self._check)

    def stop(self) -> None:
        """Stop checking."""
        if self._timer is not None:
            self._node.destroy_timer(self._timer)
            self._timer = None

    def _check(self) -> None:
        present = {name for name, ns in self._node.get_node_names_and_namespaces()
                   if ns.rstrip('/') == self._ns}
        present |= {name for name, probe in self._probes.items() if probe.service_is_ready()}
        for name, client in self._clients.items():
            future = self._asked.get(name)
            if future is not None and future.done():
                result = future.result()
                if result is not None:
                    self._states[name] = result.current_state.label
                self._asked.pop(name)
            if name not in present:
                self._states.pop(name, None)  # a restarted node's old state means nothing
            elif name not in self._asked and client.service_is_ready():
                self._asked[name] = client.call_async(GetState.Request())
        self._on_health(self.watch.observe(present, self._states, time.monotonic()))
