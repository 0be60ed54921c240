"""Node command lines as launch_ros builds them: names, namespaces, params, remaps, lookup."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from kpai_bringup.launch.errors import (
    ExecutableNotFoundError,
    LaunchFileError,
    PackageNotFoundError,
)
from kpai_bringup.launch.evaluate import evaluate_launch_file
from kpai_bringup.launch.node_command import join_namespace
from kpai_bringup.launch.packages import find_launch_file


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    """A fake install prefix registering package `demo` with executable `node`."""
    root = tmp_path / 'install'
    (root / 'share' / 'ament_index' / 'resource_index' / 'packages').mkdir(parents=True)
    (root / 'share' / 'ament_index' / 'resource_index' / 'packages' / 'demo').write_text('')
    (root / 'share' / 'demo' / 'config').mkdir(parents=True)
    (root / 'share' / 'demo' / 'launch').mkdir(parents=True)
    lib = root / 'lib' / 'demo'
    lib.mkdir(parents=True)
    exe = lib / 'node'
    exe.write_text('#!/bin/sh\n')
    exe.chmod(0o755)
    return root


def run(prefix: Path, text: str, args: dict[str, str] | None = None) -> tuple[list, dict]:
    path = prefix.parent / 't.launch.yaml'
    path.write_text(textwrap.dedent(text).lstrip('\n'))
    env = {'PATH': '/usr/bin:/bin', 'AMENT_PREFIX_PATH': f'/nonexistent:{prefix}'}
    params = prefix.parent / 'params'
    params.mkdir(exist_ok=True)
    plan = evaluate_launch_file(path, args or {}, env=env, param_dir=str(params))
    return plan.processes, plan.param_files


def test_full_node_command_line(prefix: Path) -> None:
    cfg = prefix / 'share' / 'demo' / 'config' / 'p.yaml'
    cfg.write_text('/**:\n  ros__parameters:\n    rate: 5.0\n')
    procs, files = run(prefix, """
        launch:
          - node:
              pkg: demo
              exec: node
              name: talker
              namespace: robot1
              args: --verbose 3
              ros_args: --log-level debug
              param:
                - from: $(find-pkg-share demo)/config/p.yaml
                - name: message
                  value: hi
              remap:
                - {from: chatter, to: conversation}
                - {from: /tf, to: tf}
        """)
    (spec,) = procs
    exe = str(prefix / 'lib' / 'demo' / 'node')
    inline = sorted(files)[0]
    assert spec.cmd == [
        exe, '--verbose', '3', '--ros-args', '--log-level', 'debug',
        '--ros-args', '-r', '__node:=talker', '-r', '__ns:=/robot1',
        '--params-file', str(cfg), '--params-file', inline,
        '-r', 'chatter:=conversation', '-r', '/tf:=tf']
    assert spec.name == 'node-1' and spec.node_name == '/robot1/talker'
    assert yaml.safe_load(files[inline]) == {
        '/robot1/talker': {'ros__parameters': {'message': 'hi'}}}


def test_each_param_entry_is_one_file_in_order(prefix: Path) -> None:
    """Later entries override earlier ones: files are passed in the order written."""
    share = prefix / 'share' / 'demo' / 'config'
    (share / 'a.yaml').write_text('/**:\n  ros__parameters: {x: 1}\n')
    (share / 'b.yaml').write_text('/**:\n  ros__parameters: {x: 3}\n')
    procs, files = run(prefix, """
        launch:
          - node:
              pkg: demo
              exec: node
              param:
                - from: $(find-pkg-share demo)/config/a.yaml
                - {name: x, value: 2}
                - from: $(find-pkg-share demo)/config/b.yaml
        """)
    cmd = procs[0].cmd
    files_in_order = [cmd[i + 1] for i, a in enumerate(cmd) if a == '--params-file']
    assert files_in_order[0] == str(share / 'a.yaml')
    assert files_in_order[2] == str(share / 'b.yaml')
    # no name/namespace: the inline file targets every node
    assert yaml.safe_load(files[files_in_order[1]]) == {'/**': {'ros__parameters': {'x': 2}}}
    assert '-r' not in cmd  # neither __node nor __ns without name/namespace


def test_inline_param_types(prefix: Path) -> None:
    procs, files = run(prefix, """
        launch:
          - let: {name: rate, value: '2.5'}
          - node:
              pkg: demo
              exec: node
              name: n
              param:
                - {name: rate, value: $(var rate)}
                - {name: count, value: '7'}
                - {name: flag, value: 'true'}
                - {name: text, value: '7', type: str}
                - {name: native, value: 3}
                - {name: items, value: [a, $(var rate)]}
                - name: nested
                  param:
                    - {name: depth, value: 2}
        """)
    merged: dict = {}
    for text in files.values():
        (body,) = yaml.safe_load(text).values()
        merged.update(body['ros__parameters'])
    assert merged == {'rate': 2.5, 'count': '7', 'flag': 'true', 'text': '7', 'native': 3,
                      'items': ['a', 2.5], 'nested': {'depth': 2}}
    # fully qualified when the name is given and the namespace comes from the root
    assert all(next(iter(yaml.safe_load(t))) == '/**' for t in files.values())


def test_namespace_push_semantics(prefix: Path) -> None:
    procs, _ = run(prefix, """
        launch:
          - group:
              children:
                - push-ros-namespace: {namespace: fleet}
                - push_ros_namespace: {namespace: robot1}
                - node: {pkg: demo, exec: node, name: a}
                - node: {pkg: demo, exec: node, name: b, namespace: sensors}
                - node: {pkg: demo, exec: node, name: c, namespace: /abs}
                - group:
                    children:
                      - push-ros-namespace: {namespace: /other}
                      - node: {pkg: demo, exec: node, name: d}
          - node: {pkg: demo, exec: node, name: e}
        """)
    assert [p.node_name for p in procs] == [
        '/fleet/robot1/a', '/fleet/robot1/sensors/b', '/abs/c', '/other/d', 'e']
    ns_args = [[a for a in p.cmd if a.startswith('__ns:=')] for p in procs]
    assert ns_args == [['__ns:=/fleet/robot1'], ['__ns:=/fleet/robot1/sensors'],
                       ['__ns:=/abs'], ['__ns:=/other'], []]


def test_join_namespace() -> None:
    assert join_namespace(None, None) is None
    assert join_namespace('/a', None) == '/a'
    assert join_namespace('/a', 'b') == '/a/b'
    assert join_namespace('/a/', 'b') == '/a/b'
    assert join_namespace('/a', '/b') == '/b'
    assert join_namespace(None, 'b') == 'b'


def test_set_parameter_and_set_remap_are_global_and_scoped(prefix: Path) -> None:
    procs, _ = run(prefix, """
        launch:
          - group:
              children:
                - set_parameter: {name: use_sim_time, value: 'true'}
                - set_remap: {from: /tf, to: tf}
                - node: {pkg: demo, exec: node, name: a, remap: [{from: x, to: y}]}
          - node: {pkg: demo, exec: node, name: b}
        """)
    a, b = (p.cmd for p in procs)
    assert a[a.index('-p'):] == ['-p', 'use_sim_time:=true', '-r', '/tf:=tf', '-r', 'x:=y']
    assert '-p' not in b and '/tf:=tf' not in b


def test_invalid_node_name_and_namespace(prefix: Path) -> None:
    with pytest.raises(LaunchFileError, match="invalid node name 'bad-name'"):
        run(prefix, 'launch:\n  - node: {pkg: demo, exec: node, name: bad-name}\n')
    with pytest.raises(LaunchFileError, match='invalid namespace'):
        run(prefix, 'launch:\n  - node: {pkg: demo, exec: node, namespace: 1robot}\n')


def test_missing_package_and_executable_are_clear(prefix: Path) -> None:
    with pytest.raises(PackageNotFoundError, match="package 'nopkg' not found"):
        run(prefix, 'launch:\n  - node: {pkg: nopkg, exec: node}\n')
    with pytest.raises(ExecutableNotFoundError) as info:
        run(prefix, 'launch:\n  - node: {pkg: demo, exec: nothere}\n')
    assert "executable 'nothere' not found in package 'demo'" in str(info.value)
    assert 'available: node' in str(info.value)


def test_missing_param_file_is_skipped_with_warning(prefix: Path) -> None:
    path = prefix.parent / 't.launch.yaml'
    path.write_text('launch:\n  - node: {pkg: demo, exec: node, param: [{from: /no.yaml}]}\n')
    env = {'AMENT_PREFIX_PATH': str(prefix), 'PATH': '/bin'}
    plan = evaluate_launch_file(path, {}, env=env, param_dir=str(prefix.parent))
    assert '--params-file' not in plan.processes[0].cmd
    assert plan.warnings and 'not a file: /no.yaml' in plan.warnings[0]


def test_param_file_with_substitutions(prefix: Path) -> None:
    cfg = prefix / 'share' / 'demo' / 'config' / 's.yaml'
    cfg.write_text('/**:\n  ros__parameters:\n    robot: $(var robot)\n')
    procs, files = run(prefix, """
        launch:
          - let: {name: robot, value: r9}
          - node:
              pkg: demo
              exec: node
              param: [{from: $(find-pkg-share demo)/config/s.yaml, allow_substs: true}]
        """)
    (text,) = files.values()
    assert yaml.safe_load(text) == {'/**': {'ros__parameters': {'robot': 'r9'}}}


def test_find_launch_file(prefix: Path) -> None:
    launch = prefix / 'share' / 'demo' / 'launch' / 'x.launch.yaml'
    launch.write_text('launch: []\n')
    env = {'AMENT_PREFIX_PATH': str(prefix)}
    assert find_launch_file('demo', 'x.launch.yaml', env) == launch
    assert find_launch_file('demo', 'launch/x.launch.yaml', env) == launch
    with pytest.raises(PackageNotFoundError, match='not found in the share directory'):
        find_launch_file('demo', 'y.launch.yaml', env)


def test_exec_name_labels_the_process(prefix: Path) -> None:
    procs, _ = run(prefix, """
        launch:
          - node: {pkg: demo, exec: node, exec_name: camera}
          - node: {pkg: demo, exec: node}
        """)
    assert [p.name for p in procs] == ['camera-1', 'node-2']


def test_pushed_namespace_is_the_ros_namespace_configuration(prefix: Path) -> None:
    procs, _ = run(prefix, """
        launch:
          - group:
              children:
                - push-ros-namespace: {namespace: robot3}
                - node: {pkg: demo, exec: node, args: $(var ros_namespace)}
          - node: {pkg: demo, exec: node, args: $(optenv NONE_SET) $(var robot)}
        """, {'robot': 'x'})
    assert procs[0].cmd[1] == '/robot3'
    # a substitution is one argument even when empty (as launch's command-line splitting)
    assert procs[1].cmd[1:3] == ['', 'x'] and '__ns:=' not in ' '.join(procs[1].cmd)
