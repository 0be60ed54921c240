"""robot.launch.yaml's one_process:=true layout against the default (issue 18).

The robot's nodes but the NPU bridge run in one process (kpai_bringup robot_stack) instead of
one process each. From the outside nothing may differ: the same nodes, each with the same
parameters (read back over their parameter services) and the same topics. Both layouts run
side by side under the real launcher, as two robots of one graph; the robot name is the only
difference in their values. Then the one-process robot is stopped with SIGINT, as the
launcher stops it, and must leave nothing behind. A crash (kill -9) of the one process takes all
its nodes down at once: the launch file's respawn must bring every one of them back whole.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

from kpai_testing import ROOT, RosGraph

KPAI = str(ROOT / 'bin' / 'kpai')
HOSTED = ('tracker', 'object_localizer', 'safety_monitor', 'annotator', 'fiducials',
          'mission_executor', 'fleet_agent')
NODES = ('npu_bridge', *HOSTED)


def _parameters(graph: RosGraph, node: str, timeout: float = 15) -> dict[str, Any]:
    from rcl_interfaces.srv import GetParameters, ListParameters
    from rclpy.parameter import parameter_value_to_python

    lister = graph.node.create_client(ListParameters, f'{node}/list_parameters')
    getter = graph.node.create_client(GetParameters, f'{node}/get_parameters')
    graph.spin_until(lambda: lister.service_is_ready() and getter.service_is_ready(),
                     timeout=60, what=f'{node} parameter services')
    names = sorted(graph.call(lister, ListParameters.Request(), timeout=timeout,
                              what=f'{node} list_parameters').result.names)
    values = graph.call(getter, GetParameters.Request(names=names), timeout=15,
                        what=f'{node} get_parameters').values
    graph.node.destroy_client(lister)
    graph.node.destroy_client(getter)
    return {n: parameter_value_to_python(v) for n, v in zip(names, values, strict=True)}


def _as(robot: str, value: Any, other: str) -> Any:
    """value with the robot name `robot` written as `other` (strings and lists of strings)."""
    if isinstance(value, str):
        return value.replace(robot, other)
    if isinstance(value, list):
        return [_as(robot, v, other) for v in value]
    return value


def _endpoints(graph: RosGraph, robot: str, node: str) -> dict[str, set[tuple[str, str]]]:
    g = graph.node

    other = 'onebot' if robot == 'sepbot' else 'sepbot'

    def norm(pairs: list[tuple[str, list[str]]]) -> set[tuple[str, str]]:
        # own robot R, the other robot O (the mission executor takes the others' poses)
        return {(_as(other, _as(robot, t, 'R'), 'O'), ','.join(types)) for t, types in pairs}

    return {
        'subscriptions': norm(g.get_subscriber_names_and_types_by_node(node, f'/{robot}')),
        'publishers': norm(g.get_publisher_names_and_types_by_node(node, f'/{robot}')),
        'services': norm(g.get_service_names_and_types_by_node(node, f'/{robot}')),
    }


def test_one_process_layout_presents_the_same_nodes_parameters_and_topics(
        graph: RosGraph, tmp_path: Path) -> None:
    # a site overlay with every kind of key: rcl places an entry where its key first appeared
    # among the process's parameter files, so the layouts agree only if those places do
    overlay = tmp_path / 'site.yaml'
    overlay.write_text(
        '/**:\n  ros__parameters:\n'
        '    protective_clearance: 0.45\n'  # fleet_agent.yaml and perception.yaml set it
        '    tf_prefix: site/\n'  # a launch value of the fiducials node
        '    control_rate: 15.0\n'  # navigation.yaml's /**/mission_executor sets it
        '/**/safety_monitor:\n  ros__parameters:\n    max_speed: 0.9\n'
        + ''.join(f'/{r}/tracker:\n  ros__parameters:\n    max_age: 1.5\n'
                  for r in ('sepbot', 'onebot')))
    common = ['use_sim_time:=true', "fleet:=['sepbot', 'onebot']", 'broker_url:=mqtt://127.0.0.1:9',
              f'overlay:={overlay}']
    separate = graph.start([KPAI, 'launch', 'kpai_bringup', 'robot.launch.yaml', 'robot:=sepbot',
                            *common], name='launch-sep', KPAI_LOG_DIR=str(tmp_path / 'sepbot'))
    one = graph.start([KPAI, 'launch', 'kpai_bringup', 'robot.launch.yaml', 'robot:=onebot',
                       'one_process:=true', *common], name='launch-one',
                      KPAI_LOG_DIR=str(tmp_path / 'onebot'))
    want = {(n, f'/{r}') for r in ('sepbot', 'onebot') for n in NODES}
    graph.spin_until(lambda: want <= set(graph.node.get_node_names_and_namespaces()),
                     timeout=120, what="both robots' nodes in the graph")

    out = one.output()
    assert '[robot_stack-2]' in out and '[tracker-' not in out, out[-2000:]
    for node in NODES:
        a = _parameters(graph, f'/sepbot/{node}')
        b = _parameters(graph, f'/onebot/{node}')
        # the fleet list names both robots alike; every other value names its own robot
        assert a.pop('fleet_robots', None) == b.pop('fleet_robots', None), node
        assert {k: _as('sepbot', v, 'onebot') for k, v in a.items()} == b, node
        # the values the launch file gives this node alone arrived (not only the defaults)
        assert a.get('use_sim_time') is True and b.get('use_sim_time') is True, node
    assert _parameters(graph, '/onebot/safety_monitor')['base_frame'] == 'onebot/base_link'
    assert _parameters(graph, '/onebot/fleet_agent')['serial_number'] == 'onebot'
    # the overlay reached both layouts alike, and its bare /** won where it does on its own
    for robot in ('sepbot', 'onebot'):
        assert _parameters(graph, f'/{robot}/fleet_agent')['protective_clearance'] == 0.45
        assert _parameters(graph, f'/{robot}/fiducials')['tf_prefix'] == 'site/'
        assert _parameters(graph, f'/{robot}/mission_executor')['control_rate'] == 15.0
        assert _parameters(graph, f'/{robot}/safety_monitor')['max_speed'] == 0.9
        assert _parameters(graph, f'/{robot}/tracker')['max_age'] == 1.5
    # the node-prefixed remap reached only its node
    subs = dict(graph.node.get_subscriber_names_and_types_by_node('safety_monitor', '/onebot'))
    assert '/onebot/tracked_objects/robot' in subs and '/onebot/tracked_objects' not in subs

    for node in HOSTED:
        def same(node: str = node) -> bool:
            return _endpoints(graph, 'sepbot', node) == _endpoints(graph, 'onebot', node)
        # endpoints travel by discovery, apart from the node names: wait for them to agree
        graph.spin_until(same, timeout=30, what=f'{node}: the same endpoints in both layouts')
        assert _endpoints(graph, 'onebot', node)['subscriptions'], node

    one.send_signal(signal.SIGINT)
    assert one.proc.wait(timeout=30) == 0, one.output()[-2000:]
    assert 'robot_stack-2]: process has finished cleanly' in one.output(), one.output()[-2000:]
    separate.send_signal(signal.SIGINT)
    assert separate.proc.wait(timeout=30) == 0


def test_a_node_with_a_bad_parameter_stops_the_process_with_its_name(graph: RosGraph) -> None:
    from kpai_testing import find_executable

    exe = str(find_executable('kpai_bringup', 'robot_stack'))
    proc = graph.start([sys.executable, exe, 'tracker', 'safety_monitor', '--ros-args', '-r',
                        '__ns:=/badbot', '-p', 'rate:=-1.0'], name='robot_stack')
    assert proc.proc.wait(timeout=60) == 2, proc.output()[-2000:]
    assert 'robot_stack: safety_monitor: fatal configuration error: rate must be in' in \
        proc.output(), proc.output()[-2000:]


def test_a_killed_stack_process_comes_back_with_every_node_and_its_values(
        graph: RosGraph, tmp_path: Path) -> None:
    launch = graph.start([KPAI, 'launch', 'kpai_bringup', 'robot.launch.yaml', 'robot:=crashbot',
                          "fleet:=['crashbot']", 'one_process:=true', 'use_sim_time:=true',
                          'broker_url:=mqtt://127.0.0.1:9'], name='launch-crash',
                         KPAI_LOG_DIR=str(tmp_path))
    want = {(n, '/crashbot') for n in HOSTED}
    graph.spin_until(lambda: want <= set(graph.node.get_node_names_and_namespaces()),
                     timeout=120, what="crashbot's nodes in the graph")

    def pids() -> list[int]:
        return [int(p) for p in re.findall(
            r'\[robot_stack-\d+\]: process started with pid \[(\d+)\]', launch.output())]

    first = graph.spin_until(pids, timeout=30, what='the robot_stack pid')[0]
    os.kill(first, signal.SIGKILL)
    respawned = graph.spin_until(lambda: pids()[1:], timeout=30, what='robot_stack respawned')
    assert respawned[0] != first and not Path(f'/proc/{first}').exists()
    # the dead process cannot answer: every answer below comes from the respawned one (the
    # graph may still list the dead one's services; the calls are sent again until answered)
    for node in HOSTED:
        params = _parameters(graph, f'/crashbot/{node}', timeout=60)
        assert params.get('use_sim_time') is True, node
    assert _parameters(graph, '/crashbot/safety_monitor')['base_frame'] == 'crashbot/base_link'
    assert _parameters(graph, '/crashbot/fleet_agent')['serial_number'] == 'crashbot'
    assert len(pids()) == 2, launch.output()[-3000:]  # one respawn, and it stayed up
    launch.send_signal(signal.SIGINT)
    assert launch.proc.wait(timeout=30) == 0, launch.output()[-2000:]
