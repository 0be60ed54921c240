"""Helpers shared by the package's nodes: uniform main() and parameter declaration."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from kpai_perception.errors import PerceptionError
from kpai_perception.lean_executor import LeanExecutor
from kpai_perception.qos_watch import QosWatch

__all__ = ['EXECUTORS', 'EXECUTOR_ENV', 'Diagnostics', 'GrowthWatch', 'declare', 'run_node',
           'spin_lean', 'spin_lean_nodes', 'spin_until_stopped']


def declare(node: Any, name: str, default: Any, description: str, *,
            read_only: bool = True) -> Any:
    """Declare a parameter with a descriptor and return its value."""
    desc = ParameterDescriptor(description=description, read_only=read_only)
    return node.declare_parameter(name, default, desc).value


def run_node(factory: Callable[[], Any], args: list[str] | None = None) -> int:
    """Init rclpy, build the node, spin until shutdown; 2 with one line on a config error."""
    rclpy.init(args=args)
    node = None
    try:
        try:
            node = factory()
        except (PerceptionError, ValueError) as err:
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


EXECUTOR_ENV = 'KPAI_EXECUTOR'
EXECUTORS = ('lean', 'rclpy')


def spin_lean(node: Any) -> None:
    """Spin one node as the stack's nodes do (issue 18).

    By default ('lean'): rclpy's default QoS event handlers replaced by one periodic graph
    check (QosWatch), and rclpy's single-threaded executor without its self-wakes
    (LeanExecutor). KPAI_EXECUTOR=rclpy runs rclpy's own SingleThreadedExecutor with its
    default handlers instead (a comparison, or a fallback); anything else exits with a message.
    """
    spin_lean_nodes([node])


def spin_lean_nodes(nodes: list[Any]) -> None:
    """Spin several nodes of one process in one executor, as spin_lean spins one (one QosWatch
    per node). kpai_bringup's robot_stack runs a robot's nodes this way."""
    choice = os.environ.get(EXECUTOR_ENV, '') or 'lean'
    if choice not in EXECUTORS:
        raise SystemExit(f'{EXECUTOR_ENV}={choice!r}: expected one of {", ".join(EXECUTORS)}')
    executor: Any = LeanExecutor() if choice == 'lean' else SingleThreadedExecutor()
    for node in nodes:
        if choice == 'lean':
            QosWatch(node)
        executor.add_node(node)
    executor.spin()


def spin_until_stopped(executor: Any, stop: threading.Event, period: float = 0.1) -> None:
    """Spin an executor in short waits until `stop` is set or its context shuts down.

    For an executor in a second thread, instead of `executor.spin()` in a daemon thread: a
    thread still inside rclpy's C++ wait when the interpreter finalizes is unwound through C++
    frames, which ends the process in std::terminate (exit -6, 'terminate called without an
    active exception'). The owner sets `stop` and joins the thread before it tears down.
    """
    while not stop.is_set():
        try:
            executor.spin_once(timeout_sec=period)
        except ExternalShutdownException:
            return
        except Exception:
            if executor.context.ok():
                raise
            return  # Ctrl-C shut the context down under the wait (e.g. its timeout timer)


DiagnosticFn = Callable[[], tuple[int, str, dict[str, Any]]]


class Diagnostics:
    """Publish one DiagnosticStatus for a node on /diagnostics every period seconds.

    report() returns (level, message, key values); levels are DiagnosticStatus OK/WARN/ERROR.
    """

    def __init__(self, node: Any, report: DiagnosticFn, *, period: float = 1.0) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        self._node = node
        self._report = report
        ns = node.get_namespace().strip('/')
        self.name = f'{ns}/{node.get_name()}' if ns else node.get_name()
        self._pub = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._timer = node.create_timer(period, self._tick)

    def _tick(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

        level, message, values = self._report()
        status = DiagnosticStatus(level=bytes([level]), name=self.name, message=message,
                                  hardware_id=self.name)
        status.values = [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self._node.get_clock().now().to_msg()
        self._pub.publish(arr)


class GrowthWatch:
    """Tell which of some counters grew since the previous check."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def grown(self, values: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
        """Return the keys whose value grew since the last call."""
        out = [k for k in keys if values[k] > self._seen.get(k, 0)]
        self._seen = {k: values[k] for k in keys}
        return out
