#!/usr/bin/env python3
"""Write docs/reference.md: topics, services and parameters of every node, read from the nodes.

Each node is started on a private ROS domain (localhost discovery), asked for its parameters
(names, types, defaults, descriptions) through the standard parameter services and looked at
through the ROS graph (publishers, subscriptions, services), then stopped. Run it after changing
a node's interface: `. ./env.sh && python scripts/gen_reference.py`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tests'))

from kpai_testing import RosGraph  # noqa: E402

# (package, executable, node name, namespace, extra ros args)
NODES: list[tuple[str, str, str, str, list[str]]] = [
    ('kpai_sim', 'sim', 'sim', '', ['-p', 'robots:=1', '-p', 'camera_rate:=0.0']),
    ('kpai_npu_bridge', 'npu_bridge', 'npu_bridge', 'robot1',
     ['-p', f'model_path:={ROOT}/src/kpai_data/models/kpai_detector.onnx']),
    ('kpai_perception', 'camera_driver', 'camera_driver', 'robot1',
     ['-p', 'autostart:=false']),
    ('kpai_perception', 'tracker', 'tracker', 'robot1', []),
    ('kpai_perception', 'object_localizer', 'object_localizer', 'robot1', []),
    ('kpai_perception', 'safety_monitor', 'safety_monitor', 'robot1', []),
    ('kpai_perception', 'annotator', 'annotator', 'robot1', []),
    ('kpai_perception', 'fiducials', 'fiducials', 'robot1', []),
    ('kpai_planning', 'map_server', 'map_server', '',
     ['-p', f'yaml_filename:={ROOT}/src/kpai_bringup/maps/factory.yaml']),
    ('kpai_planning', 'global_planner', 'global_planner', 'robot1', []),
    ('kpai_planning', 'controller', 'controller', 'robot1', []),
    ('kpai_planning', 'mission_executor', 'mission_executor', 'robot1', []),
    ('kpai_fleet', 'fleet_agent', 'fleet_agent', 'robot1', []),
    ('kpai_data', 'recorder', 'recorder', '',
     ['-p', 'autostart:=false', '-p', 'all_topics:=true']),
    ('kpai_data', 'foxglove_bridge', 'foxglove_bridge', '',
     ['-p', 'autostart:=false', '-p', 'port:=0']),
    ('kpai_bringup', 'robot_tf', 'robot_tf', 'robot1', []),
]
_HIDDEN = ('/rosout', '/parameter_events')
_TYPES = {1: 'bool', 2: 'int', 3: 'double', 4: 'string', 5: 'bytes', 6: 'bool[]', 7: 'int[]',
          8: 'double[]', 9: 'string[]'}


def _value(v: Any) -> str:
    from rclpy.parameter import parameter_value_to_python

    return repr(parameter_value_to_python(v))


def _call(graph: RosGraph, client: Any, request: Any, timeout: float = 10.0) -> Any:
    future = client.call_async(request)
    graph.spin_until(future.done, timeout=timeout, what=f'{client.srv_name}')
    return future.result()


def describe(graph: RosGraph, name: str, ns: str) -> dict[str, Any]:
    """Query one running node's parameters and its graph connections."""
    from rcl_interfaces.srv import DescribeParameters, GetParameters, ListParameters

    fq = f'/{ns}/{name}' if ns else f'/{name}'
    node = graph.node
    lister = node.create_client(ListParameters, f'{fq}/list_parameters')
    graph.spin_until(lambda: lister.service_is_ready(), timeout=30, what=f'{fq} parameters')
    names = sorted(n for n in _call(graph, lister, ListParameters.Request()).result.names
                   if n not in ('use_sim_time', 'start_type_description_service'))
    describer = node.create_client(DescribeParameters, f'{fq}/describe_parameters')
    getter = node.create_client(GetParameters, f'{fq}/get_parameters')
    graph.spin_until(lambda: describer.service_is_ready() and getter.service_is_ready(),
                     timeout=10)
    descs = _call(graph, describer, DescribeParameters.Request(names=names)).descriptors
    values = _call(graph, getter, GetParameters.Request(names=names)).values
    params = [(d.name, _TYPES.get(d.type, '?'), _value(v), d.description)
              for d, v in zip(descs, values, strict=True)]
    # topics settle shortly after start; poll until two consecutive looks agree
    last: tuple[Any, ...] = ()
    deadline = time.monotonic() + 8.0
    while time.monotonic() < deadline:
        try:
            look = (node.get_publisher_names_and_types_by_node(name, f'/{ns}'),
                    node.get_subscriber_names_and_types_by_node(name, f'/{ns}'),
                    node.get_service_names_and_types_by_node(name, f'/{ns}'))
        except RuntimeError:  # NodeNameNonExistentError: the graph has not seen the node yet
            look = ()
        if look and look == last:
            break
        last = look
        graph.spin_until(lambda: True, timeout=1.0)
        time.sleep(0.5)
    pubs, subs, srvs = last or ([], [], [])

    def keep(items: list[tuple[str, list[str]]]) -> list[tuple[str, str]]:
        return sorted((t, ', '.join(types)) for t, types in items
                      if not t.startswith(_HIDDEN) and '/_action/' not in t
                      and not t.endswith(('parameters', 'parameter_types',
                                          '_parameters_atomically', 'get_type_description')))
    return {'fq': fq, 'params': params, 'pubs': keep(pubs), 'subs': keep(subs),
            'srvs': keep(srvs)}


def render(entries: list[tuple[str, str, dict[str, Any]]]) -> str:
    """Return the Markdown reference."""
    out = ['# Node reference', '',
           'Generated by `scripts/gen_reference.py` from the running nodes (robot nodes shown '
           "in namespace `/robot1`). Relative topic names resolve in the node's namespace.", '']
    for pkg, exe, info in entries:
        out += [f'## `{exe}` ({pkg})', '', f'Node `{info["fq"]}`.', '']
        for title, key in (('Publishes', 'pubs'), ('Subscribes', 'subs'),
                           ('Services', 'srvs')):
            if info[key]:
                out.append(f'**{title}:** ' + ', '.join(f'`{t}` ({ty})' for t, ty in info[key]))
                out.append('')
        if info['params']:
            out += ['| parameter | type | default | description |', '|---|---|---|---|']
            for name, ty, default, desc in info['params']:
                out.append(f'| `{name}` | {ty} | `{default}` | {desc.replace("|", "/")} |')
            out.append('')
    return '\n'.join(out)


def main() -> int:
    """Start every node in turn and write docs/reference.md."""
    if not os.environ.get('KPAI_ENV'):
        print('source env.sh first', file=sys.stderr)
        return 2
    entries = []
    with_graph = RosGraph()
    try:
        for pkg, exe, name, ns, extra in NODES:
            args = ['-r', f'__ns:=/{ns}'] if ns else []
            proc = with_graph.start_node(pkg, exe, *args, *extra, name=exe)
            try:
                entries.append((pkg, exe, describe(with_graph, name, ns)))
                print(f'{pkg}/{exe}: {len(entries[-1][2]["params"])} parameters', flush=True)
            finally:
                proc.stop()
    finally:
        with_graph.close()
    target = ROOT / 'docs' / 'reference.md'
    target.parent.mkdir(exist_ok=True)
    target.write_text(render(entries) + '\n')
    print(f'wrote {target}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
