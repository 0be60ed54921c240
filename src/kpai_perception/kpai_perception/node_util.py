"""Helpers shared by the package's nodes: uniform main() and parameter declaration."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException

from kpai_perception.errors import PerceptionError

__all__ = ['declare', 'run_node']


def declare(node: Any, name: str, default: Any, description: str, *,
            read_only: bool = True) -> Any:
    """Declare a parameter with a descriptor and return its value."""
    desc = ParameterDescriptor(description=description, read_only=read_only)
    return node.declare_parameter(name, default, desc).value


def run_node(factory: Callable[[], Any], args: list[str] | None = None, *,
             executor_factory: Callable[[], Any] | None = None) -> int:
    """Init rclpy, build the node, spin until shutdown; 2 with one line on a config error."""
    rclpy.init(args=args)
    node = None
    try:
        try:
            node = factory()
        except (PerceptionError, ValueError) as err:
            print(f'fatal configuration error: {err}', file=sys.stderr)
            return 2
        executor = executor_factory() if executor_factory else None
        if executor is None:
            rclpy.spin(node)
        else:
            executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
