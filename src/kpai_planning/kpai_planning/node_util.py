"""Helpers shared by the package's nodes: uniform main(), parameters, QoS profiles."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import rclpy
from kpai_perception.node_util import spin_lean
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

from .errors import PlanningError

__all__ = ['LATCHED', 'LATEST', 'RELIABLE', 'SENSOR', 'declare', 'run_node']

LATCHED = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL,
                     reliability=ReliabilityPolicy.RELIABLE)
RELIABLE = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE)
SENSOR = qos_profile_sensor_data
# the newest sensor message only: a control loop that falls behind (a loaded CPU) acts on the
# newest pose and scan, not on the oldest of a queue of them (the sensor-data depth is 5)
LATEST = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                    durability=DurabilityPolicy.VOLATILE,
                    reliability=ReliabilityPolicy.BEST_EFFORT)


def declare(node: Any, name: str, default: Any, description: str) -> Any:
    """Declare a read-only parameter with a descriptor and return its value."""
    desc = ParameterDescriptor(description=description, read_only=True)
    return node.declare_parameter(name, default, desc).value


def run_node(factory: Callable[[], Any], args: list[str] | None = None) -> int:
    """Init rclpy, build the node, spin until shutdown; exit 2 with one line on bad config."""
    rclpy.init(args=args)
    node = None
    try:
        try:
            node = factory()
        except (PlanningError, ValueError) as err:
            print(f'fatal configuration error: {err}', file=sys.stderr)
            return 2
        spin_lean(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # an entity failed while Ctrl-C tore the context down under the executor: shutdown
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
