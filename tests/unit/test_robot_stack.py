"""kpai_bringup robot_stack (several of a robot's nodes in one process): its command line, and
robot.launch.yaml's one_process:=true layout as the launcher writes it (issue 18)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from kpai_bringup.robot_stack import NODES, parse_args
from kpai_testing import ROOT

pytestmark = pytest.mark.unit


def test_names_and_switches() -> None:
    assert parse_args(['tracker', 'fleet_agent=true', 'annotator=false', '--ros-args', '-r',
                       '__ns:=/r1']) == ['tracker', 'fleet_agent']
    assert parse_args(['safety_monitor']) == ['safety_monitor']
    assert parse_args(['tracker', 'fiducials=True', 'annotator=0']) == ['tracker', 'fiducials']


@pytest.mark.parametrize(('argv', 'message'), [
    ([], 'usage: robot_stack'),
    (['--ros-args', '-r', '__ns:=/r1'], 'usage: robot_stack'),
    (['tracker', 'camera_driver'], "unknown node 'camera_driver'"),
    (['tracker', 'tracker'], "node 'tracker' named twice"),
    (['tracker', 'annotator=maybe'], 'expected annotator=true or annotator=false'),
    (['annotator=false'], 'every node is switched off'),
    (['tracker', '--ros-args', '-r', '__node:=x'], 'same name'),
    (['tracker', '--ros-args', '-r', '__name:=x'], 'same name'),
    (['tracker', 'annotator='], 'expected annotator=true or annotator=false'),
    (['tracker', 'annotator=yes'], 'expected annotator=true or annotator=false'),
])
def test_bad_command_lines_exit_with_a_message(argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as err:
        parse_args(argv)
    assert message in str(err.value)


def test_every_hosted_node_class_exists() -> None:
    import importlib

    for name, hosted in NODES.items():
        cls = getattr(importlib.import_module(hosted.module), hosted.cls)
        assert callable(cls), name
        if hosted.release:
            assert callable(getattr(cls, hosted.release)), name


def _commands(*args: str) -> dict[str, list[str]]:
    out = subprocess.run([sys.executable, '-m', 'kpai_bringup.cli', 'launch', 'kpai_bringup',
                          'robot.launch.yaml', *args, '--print'], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    return {m.group(1).rsplit('-', 1)[0]: lines[i + 1].split() for i, line in enumerate(lines)
            if (m := re.match(r'^\[(\S+)\] \(output=', line))}


def test_one_process_layout_runs_the_bridge_and_one_stack_process() -> None:
    default = _commands('robot:=r7')
    assert sorted(default) == sorted(['npu_bridge', *NODES])
    one = _commands('robot:=r7', 'one_process:=true', 'start_annotator:=false')
    assert sorted(one) == ['npu_bridge', 'robot_stack']
    argv = one['robot_stack']
    own = argv[1:argv.index('--ros-args')]
    assert parse_args(own) == ['tracker', 'object_localizer', 'safety_monitor',
                               'mission_executor', 'fiducials', 'fleet_agent']
    assert '__ns:=/r7' in argv and not any(a.startswith('__node:=') for a in argv)
    assert 'safety_monitor:tracked_objects:=tracked_objects/robot' in argv
    # the same parameter layers: package files, the bringup set, the launch values, the overlay
    files = [argv[i + 1] for i, a in enumerate(argv) if a == '--params-file']
    assert files[-1].endswith('overlay_empty.yaml')
    assert any(f.endswith('kpai_bringup/config/sim_robot.yaml') for f in files)
    assert all('-p' != a for a in argv)  # no inline value: it would reach every node


class _Node:
    def __init__(self, name: str, log: list[str], fail_release: bool = False) -> None:
        self.name, self.log, self.fail_release = name, log, fail_release

    def get_name(self) -> str:
        return self.name

    def release(self) -> None:
        self.log.append(f'release {self.name}')
        if self.fail_release:
            raise RuntimeError('broker gone')

    def destroy_node(self) -> None:
        self.log.append(f'destroy {self.name}')


def _run(monkeypatch: pytest.MonkeyPatch, builders: dict[str, object],
         spin: object) -> tuple[int, list[str]]:
    """robot_stack.run over stand-in nodes (no rclpy context, no DDS)."""
    from dataclasses import dataclass

    from kpai_bringup import robot_stack

    log: list[str] = []

    @dataclass(frozen=True)
    class Fake(robot_stack.HostedNode):
        def build(self) -> object:
            made = builders[self.cls]
            if isinstance(made, BaseException):
                raise made
            return _Node(self.cls, log, fail_release=made == 'fail_release')

    monkeypatch.setattr(robot_stack.rclpy, 'init', lambda args=None: log.append('init'))
    monkeypatch.setattr(robot_stack.rclpy, 'try_shutdown', lambda: log.append('shutdown'))
    monkeypatch.setattr(robot_stack, 'NODES', {n: Fake('m', n, release='release')
                                               for n in builders})
    return robot_stack.run(list(builders), [], spin=spin), log  # type: ignore[arg-type]


def test_a_config_error_while_building_releases_the_nodes_already_built(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from kpai_planning.errors import PlanningError

    def spin(nodes: list[object]) -> None:
        raise AssertionError('must not spin')

    code, log = _run(monkeypatch, {'tracker': 'ok', 'mission_executor':
                                   PlanningError('control_rate must be > 0')}, spin)
    assert code == 2
    assert 'robot_stack: mission_executor: fatal configuration error: control_rate' in \
        capsys.readouterr().err
    assert log == ['init', 'release tracker', 'destroy tracker', 'shutdown']


def test_the_fleet_agents_config_error_while_spinning_exits_2_with_its_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from kpai_fleet.errors import ConfigError

    def spin(nodes: list[object]) -> None:
        raise ConfigError('configuration failed (see the error above)')

    code, log = _run(monkeypatch, {'tracker': 'ok', 'fleet_agent': 'ok'}, spin)
    assert code == 2
    assert 'robot_stack: fleet_agent: configuration failed' in capsys.readouterr().err
    assert log[-1] == 'shutdown' and 'destroy tracker' in log and 'destroy fleet_agent' in log


def test_a_release_that_fails_does_not_keep_the_other_nodes_alive(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def spin(nodes: list[object]) -> None:
        raise KeyboardInterrupt

    code, log = _run(monkeypatch, {'tracker': 'ok', 'fleet_agent': 'fail_release'}, spin)
    assert code == 0
    assert log == ['init', 'release fleet_agent', 'release tracker', 'destroy tracker',
                   'shutdown']
    assert 'robot_stack: fleet_agent: release failed' in capsys.readouterr().err


def test_a_bug_while_spinning_is_not_called_a_configuration_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def spin(nodes: list[object]) -> None:
        raise ValueError('a bug in a callback')

    from kpai_bringup import robot_stack
    monkeypatch.setattr(robot_stack.rclpy, 'ok', lambda: True)  # not a Ctrl-C teardown
    with pytest.raises(ValueError, match='a bug in a callback'):
        _run(monkeypatch, {'tracker': 'ok'}, spin)
