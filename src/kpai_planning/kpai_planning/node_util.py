"""Helpers shared by the package's nodes: uniform main(), parameters, QoS profiles."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

from .controller import ControllerParams
from .costmap import CostmapParams
from .errors import PlanningError

__all__ = ['LATCHED', 'RELIABLE', 'SENSOR', 'declare', 'declare_controller', 'declare_costmap',
           'run_node']

LATCHED = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL,
                     reliability=ReliabilityPolicy.RELIABLE)
RELIABLE = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE)
SENSOR = qos_profile_sensor_data


def declare(node: Any, name: str, default: Any, description: str) -> Any:
    """Declare a read-only parameter with a descriptor and return its value."""
    desc = ParameterDescriptor(description=description, read_only=True)
    return node.declare_parameter(name, default, desc).value


def declare_costmap(node: Any) -> CostmapParams:
    """Declare the costmap parameters (same names in every node that plans) and return them."""
    return CostmapParams(
        robot_radius=declare(node, 'robot_radius', 0.3, 'robot radius (m)'),
        inflation_radius=declare(node, 'inflation_radius', 0.9, 'inflation radius (m)'),
        cost_scaling_factor=declare(node, 'cost_scaling_factor', 3.0, 'cost decay (1/m)'),
        obstacle_decay_s=declare(node, 'obstacle_decay_s', 2.0, 'scan obstacle life (s)'))


def declare_controller(node: Any, robot_radius: float) -> ControllerParams:
    """Declare the path-following parameters (same names in every node that drives)."""
    return ControllerParams(
        desired_speed=declare(node, 'desired_speed', 0.5, 'cruise speed (m/s)'),
        robot_radius=robot_radius,
        xy_goal_tolerance=declare(node, 'xy_goal_tolerance', 0.1, 'goal tolerance (m)'),
        yaw_goal_tolerance=declare(node, 'yaw_goal_tolerance', 0.15, 'yaw tolerance (rad)'))


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
        rclpy.spin(node)
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
