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
