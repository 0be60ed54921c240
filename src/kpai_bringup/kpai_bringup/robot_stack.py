"""Executable `robot_stack`: several of a robot's nodes in one process and one executor.

Manual composition, as the ROS 2 documentation calls it for rclpy (rclpy has no component
loader): the nodes named on the command line are built in one rclpy context (one DDS
participant instead of one per node) and spun by one single-threaded executor, the one the
stack's nodes use alone (kpai_perception.node_util.spin_lean). Each node keeps its own name,
parameters, topics and services, so the ROS graph looks the same as with one process per node.

    robot_stack tracker object_localizer safety_monitor --ros-args -r __ns:=/robot1 \\
        --params-file perception.yaml -r safety_monitor:tracked_objects:=tracked_objects/robot

The --ros-args are rcl's and apply to every node of the process: `__ns` (all nodes share the
robot's namespace), parameter files (their `/**/<node>` sections pick the node), and remaps,
which a `<node>:` prefix limits to one node. `__node` would rename every node: not allowed.
Inline `-p` parameters reach every node that declares the name.

Why (issue 18): a message to N nodes in N processes costs N datagrams and N wake-ups; in one
process, one. bench/executor_layout.py measures the difference, bench/stack_cpu.py the stack.
The price: one crash takes all the process's nodes down (the launch file respawns the process),
and a slow callback delays the other nodes' callbacks. So the NPU bridge keeps its own process
(inference is the stack's longest callback), and robot.launch.yaml keeps one process per node
unless `one_process:=true`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException

__all__ = ['NODES', 'HostedNode', 'main', 'parse_args']


@dataclass(frozen=True)
class HostedNode:
    """A node the process can host: where its class is, and how it is released at the end."""

    module: str
    cls: str
    release: str = ''  # method to call before destroy_node (threads, connections), if any

    def build(self) -> Any:
        """Import the node's class and construct it (its parameters come from --ros-args)."""
        return getattr(importlib.import_module(self.module), self.cls)()


# node name -> class; the names are the nodes' default names (robot.launch.yaml's)
NODES: dict[str, HostedNode] = {
    'tracker': HostedNode('kpai_perception.tracker_node', 'TrackerNode'),
    'object_localizer': HostedNode('kpai_perception.localizer_node', 'LocalizerNode'),
    'safety_monitor': HostedNode('kpai_perception.safety_monitor_node', 'SafetyMonitorNode'),
    'annotator': HostedNode('kpai_perception.annotator_node', 'AnnotatorNode'),
    'fiducials': HostedNode('kpai_perception.fiducial_node', 'FiducialNode'),
    'mission_executor': HostedNode('kpai_planning.mission_executor_node', 'MissionExecutor'),
    'fleet_agent': HostedNode('kpai_fleet.agent_node', 'FleetAgentNode',
                              release='_release_runtime'),
}


# what launch's `if:`/`unless:` take (any case), so one launch argument gives both layouts
# the same nodes
_TRUE, _FALSE = ('true', '1'), ('false', '0')


def parse_args(argv: list[str]) -> list[str]:
    """Return the node names of argv (before --ros-args); SystemExit with usage when wrong.

    A node is named as `NAME`, or as `NAME=true|false` (a launch argument decides whether the
    process hosts it, as `if:` decides for a node of its own).
    """
    own = argv[:argv.index('--ros-args')] if '--ros-args' in argv else list(argv)
    ros = argv[len(own):]
    usage = (f'usage: robot_stack NODE[=true|false] ... [--ros-args ...]; NODE: '
             f'{", ".join(NODES)}')
    if not own or own[0] in ('-h', '--help'):
        raise SystemExit(usage)
    names = []
    for item in own:
        name, eq, flag = item.partition('=')
        if name not in NODES:
            raise SystemExit(f'robot_stack: unknown node {name!r}; {usage}')
        if eq and flag.lower() not in _TRUE + _FALSE:
            raise SystemExit(f'robot_stack: {item!r}: expected {name}=true or {name}=false')
        if name in names:
            raise SystemExit(f'robot_stack: node {name!r} named twice')
        if not eq or flag.lower() in _TRUE:
            names.append(name)
    if not names:
        raise SystemExit('robot_stack: every node is switched off; nothing to run')
    for i, arg in enumerate(ros[:-1]):
        if arg in ('-r', '--remap') and ros[i + 1].startswith(('__node:=', '__name:=')):
            raise SystemExit('robot_stack: a __node (__name) remap would give every node of the '
                             "process the same name; remove the launch entry's `name`")
    return names


def _config_errors() -> tuple[type[BaseException], ...]:
    # what each node's own main() reports as a fatal configuration error (exit 2)
    from kpai_fleet.errors import ConfigError
    from kpai_perception.errors import PerceptionError
    from kpai_planning.errors import PlanningError
    return (PerceptionError, PlanningError, ConfigError, ValueError)


def run(names: list[str], args: list[str] | None,
        spin: Callable[[list[Any]], None] | None = None) -> int:
    """Build the named nodes in one context and spin them; 2 with a line on a config error."""
    from kpai_perception.node_util import spin_lean_nodes

    rclpy.init(args=args)
    built: list[tuple[Any, HostedNode]] = []
    try:
        for name in names:
            hosted = NODES[name]
            try:
                built.append((hosted.build(), hosted))
            except _config_errors() as err:
                print(f'robot_stack: {name}: fatal configuration error: {err}', file=sys.stderr)
                return 2
        from kpai_fleet.errors import ConfigError
        try:
            (spin or spin_lean_nodes)([node for node, _ in built])
        except ConfigError as err:
            # the fleet agent configures itself once spinning, and says so as its main() does
            print(f'robot_stack: fleet_agent: {err}', file=sys.stderr)
            return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # an entity failed while Ctrl-C tore the context down under the executor: shutdown
    finally:
        for node, hosted in reversed(built):
            try:
                if hosted.release:
                    getattr(node, hosted.release)()
                node.destroy_node()
            except Exception as err:  # noqa: BLE001 - the other nodes must still be released
                print(f'robot_stack: {node.get_name()}: release failed: {err!r}', file=sys.stderr)
        rclpy.try_shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: robot_stack NODE [NODE ...] [--ros-args ...]."""
    argv = list(sys.argv if argv is None else argv)
    names = parse_args(argv[1:])
    return run(names, argv)


if __name__ == '__main__':
    raise SystemExit(main())
