"""`kpai launch` with real ROS nodes: two robot namespaces, params from YAML and inline,
remaps, and a SIGINT that leaves no process of the launcher's tree behind."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
from pathlib import Path

from kpai_testing import ROOT, RosGraph

KPAI = str(ROOT / 'bin' / 'kpai')
ROBOTS = ('robot1', 'robot2')


def descendants(pid: int) -> set[int]:
    """Return the PIDs of every process below pid, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                stat = Path(f'/proc/{entry}/stat').read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(')', 1)[1].split()[1]), []).append(int(entry))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def get_params(graph: RosGraph, node: str, names: list[str]) -> list:
    from rcl_interfaces.srv import GetParameters
    from rclpy.parameter import parameter_value_to_python

    client = graph.node.create_client(GetParameters, f'{node}/get_parameters')
    graph.spin_until(client.service_is_ready, timeout=15, what=f'{node} parameter service')
    response = graph.call(client, GetParameters.Request(names=names), timeout=15,
                          what=f'{node} get_parameters')
    graph.node.destroy_client(client)
    return [parameter_value_to_python(v) for v in response.values]


def test_two_robots_exchange_messages_and_sigint_leaves_nothing(graph: RosGraph,
                                                                tmp_path: Path) -> None:
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import Int32, String

    launcher = graph.start([KPAI, 'launch', 'kpai_bringup', 'two_robots_chatter.launch.yaml',
                            'greeting:=hi'], name='kpai-launch', KPAI_LOG_DIR=str(tmp_path))
    qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
    said: dict[str, list[str]] = {r: [] for r in ROBOTS}
    heard: dict[str, list[int]] = {r: [] for r in ROBOTS}
    for robot in ROBOTS:
        graph.node.create_subscription(
            String, f'/{robot}/conversation', lambda m, r=robot: said[r].append(m.data), qos)
        graph.node.create_subscription(
            Int32, f'/{robot}/heard_count', lambda m, r=robot: heard[r].append(m.data), qos)
    graph.spin_until(lambda: all(len(said[r]) >= 3 and len(heard[r]) >= 3 for r in ROBOTS),
                     timeout=30, what='both robots talking and listening')

    for robot in ROBOTS:
        # inline param (with the command-line argument) overrode the YAML file's message
        assert all(m.startswith(f'hi from {robot} ') for m in said[robot]), said[robot]
        assert heard[robot][-1] >= 3 and heard[robot] == sorted(heard[robot])
        rate, message = get_params(graph, f'/{robot}/talker', ['rate', 'message'])
        assert (rate, message) == (20.0, f'hi from {robot}')  # rate from config/chatter.yaml
        assert get_params(graph, f'/{robot}/listener', ['log_every']) == [10]

    # node names travel on their own discovery topic (ros_discovery_info), apart from the
    # topics' endpoints: they can arrive after the messages, so wait for them
    want = {(n, f'/{r}') for r in ROBOTS for n in ('talker', 'listener')}
    graph.spin_until(lambda: want <= set(graph.node.get_node_names_and_namespaces()),
                     timeout=15, what=f'nodes {sorted(want)} in the graph')
    topics = {name for name, _ in graph.node.get_topic_names_and_types()}
    assert {'/robot1/conversation', '/robot2/conversation'} <= topics
    assert not {'/robot1/chatter', '/robot2/chatter', '/chatter', '/conversation'} & topics
    out = launcher.output()
    assert '[listener-2] ' in out and '[robot1.listener]: I heard: [hi from robot1' in out

    tree = descendants(launcher.pid)
    assert len(tree) >= 4, tree
    launcher.send_signal(signal.SIGINT)
    assert launcher.proc.wait(timeout=20) == 0
    left = [p for p in tree if alive(p)]
    assert not left, f'left behind after SIGINT: {left}\n{launcher.output()[-2000:]}'
    assert 'user interrupted with ctrl-c (SIGINT)' in launcher.output()


def test_required_process_death_makes_launcher_fail(graph: RosGraph, tmp_path: Path) -> None:
    path = tmp_path / 'required.launch.yaml'
    path.write_text(textwrap.dedent("""
        launch:
          - node: {pkg: kpai_bringup, exec: talker, namespace: r, output: screen}
          - executable:
              cmd: sh -c 'sleep 2; exit 3'
              name: watchdog
              on_exit: shutdown
        """))
    launcher = graph.start([KPAI, 'launch', str(path)], name='kpai-launch',
                           KPAI_LOG_DIR=str(tmp_path))
    graph.spin_until(lambda: len(descendants(launcher.pid)) >= 2, timeout=10, what='children')
    tree = descendants(launcher.pid)
    assert launcher.proc.wait(timeout=20) == 1
    assert 'required process watchdog-2 died (exit code 3)' in launcher.output()
    assert not [p for p in tree if alive(p)]


def test_malformed_launch_file_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / 'bad.launch.yaml'
    path.write_text('launch:\n  - node:\n      pkg: kpai_bringup\n      exec: talker\n'
                    '  - groop:\n      children: []\n')
    res = subprocess.run([KPAI, 'launch', str(path)], capture_output=True, text=True,
                         timeout=60, env=dict(os.environ))
    assert res.returncode == 2
    assert f"{path}:5: unknown tag 'groop'" in res.stderr


def test_overlay_layer_on_a_running_node(graph: RosGraph, tmp_path: Path) -> None:
    """The README's merge order, read back from a running node's parameters."""
    (tmp_path / 'pkg.yaml').write_text('/**:\n  ros__parameters:\n    rate: 5.0\n'
                                       '    message: from package\n')
    (tmp_path / 'set.yaml').write_text('/**/talker:\n  ros__parameters:\n    rate: 6.0\n'
                                       '    message: from parameter set\n')
    (tmp_path / 'site.yaml').write_text(
        '/**/talker:\n  ros__parameters:\n    rate: 7.0\n    message: wildcard overlay\n'
        '/r2/talker:\n  ros__parameters:\n    message: full-name overlay\n')
    path = tmp_path / 'layers.launch.yaml'
    path.write_text(textwrap.dedent("""
        launch:
          - arg: {name: message, default: from launch argument}
          - arg: {name: overlay}
          - arg: {name: ns}
          - group:
              children:
                - push-ros-namespace: {namespace: $(var ns)}
                - node:
                    pkg: kpai_bringup
                    exec: talker
                    name: talker
                    param:
                      - from: $(dirname)/pkg.yaml
                      - from: $(dirname)/set.yaml
                      - {name: message, value: $(var message)}
                      - from: $(var overlay)
        """))
    launchers = [graph.start([KPAI, 'launch', str(path), f'ns:={ns}',
                              f'overlay:={tmp_path / "site.yaml"}'], name=f'launch-{ns}',
                             KPAI_LOG_DIR=str(tmp_path / ns)) for ns in ('r1', 'r2')]
    # a file layer's value: the overlay wins (wildcard or full name alike)
    assert get_params(graph, '/r1/talker', ['rate']) == [7.0]
    # a launch-argument value: a full-name overlay entry wins ...
    assert get_params(graph, '/r2/talker', ['message']) == ['full-name overlay']
    # ... a wildcard one does not: rcl applies a full-name entry (how launch writes inline
    # values) after wildcard entries that appeared earlier, as with ros2 launch
    assert get_params(graph, '/r1/talker', ['message']) == ['from launch argument']
    for launcher in launchers:
        launcher.send_signal(signal.SIGINT)
        assert launcher.proc.wait(timeout=20) == 0
