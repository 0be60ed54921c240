"""The bringup launch files: robot count, parameter layering, remaps for real robots."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from kpai_testing import ROOT


def _print(*args: str) -> str:
    out = subprocess.run([sys.executable, '-m', 'kpai_bringup.cli', 'launch', 'kpai_bringup',
                          *args, '--print'], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _commands(text: str) -> dict[str, list[str]]:
    """Map '[name-N]' process labels to their argv (dry-run output of kpai launch)."""
    lines = text.splitlines()
    return {m.group(1): lines[i + 1].split() for i, line in enumerate(lines)
            if (m := re.match(r'^\[(\S+)\] \(output=', line))}


@pytest.mark.parametrize('robots', [1, 2, 3, 4])
def test_sim_fleet_starts_one_stack_per_robot(robots: int) -> None:
    cmds = _commands(_print('sim_fleet.launch.yaml', f'robots:={robots}'))
    bridges = [argv for label, argv in cmds.items() if label.startswith('npu_bridge-')]
    namespaces = sorted(a for argv in bridges for a in argv if a.startswith('__ns:='))
    assert namespaces == [f'__ns:=/robot{i}' for i in range(1, robots + 1)]
    assert sum(label.startswith('sim-') for label in cmds) == 1
    for infra in ('mqtt_broker-', 'fleet_server-', 'map_server-', 'recorder-', 'foxglove'):
        assert any(label.startswith(infra) for label in cmds), infra


def test_parameter_layers_end_with_the_overlay(tmp_path: Path) -> None:
    overlay = tmp_path / 'overlay.yaml'
    overlay.write_text('/**/safety_monitor:\n  ros__parameters:\n    max_speed: 0.5\n')
    cmds = _commands(_print('sim_fleet.launch.yaml', 'robots:=1', f'overlay:={overlay}'))
    robot_nodes = [argv for argv in cmds.values() if '__ns:=/robot1' in argv]
    assert len(robot_nodes) >= 6
    for argv in robot_nodes:
        files = [argv[i + 1] for i, a in enumerate(argv) if a == '--params-file']
        assert files[-1] == str(overlay), argv
        assert files[1].endswith('kpai_bringup/config/sim_robot.yaml'), argv  # layer 2
        assert '/share/kpai_' in files[0] and '/config/' in files[0], argv  # package defaults


@pytest.mark.parametrize('launch_file', ['sim_fleet.launch.yaml', 'real_robot.launch.yaml'])
def test_the_overlay_reaches_every_node(launch_file: str, tmp_path: Path) -> None:
    overlay = tmp_path / 'site.yaml'
    overlay.write_text('/**:\n  ros__parameters:\n    kpai_overlay: site\n')
    cmds = _commands(_print(launch_file, 'robots:=2', f'overlay:={overlay}'))
    nodes = {label: argv for label, argv in cmds.items() if '--ros-args' in argv}
    assert len(nodes) >= 8
    for label, argv in nodes.items():
        files = [argv[i + 1] for i, a in enumerate(argv) if a == '--params-file']
        assert files and files[-1] == str(overlay), f'{label} does not end with the overlay'


def test_real_robot_remaps_sensor_topics() -> None:
    cmds = _commands(_print('real_robot.launch.yaml', 'robot:=amr7',
                            'scan_topic:=/amr7/front_scan', 'odom_topic:=wheel_odom'))
    executor = next(argv for label, argv in cmds.items() if label.startswith('mission_exec'))
    assert '__ns:=/amr7' in executor
    assert 'scan:=/amr7/front_scan' in executor and 'odom:=wheel_odom' in executor
    assert any(label.startswith('camera_driver-') for label in cmds)
    assert any(label.startswith('robot_tf-') for label in cmds)


def test_every_bringup_argument_is_documented() -> None:
    for launch in ('robot.launch.yaml', 'sim_fleet.launch.yaml', 'real_robot.launch.yaml'):
        out = subprocess.run([sys.executable, '-m', 'kpai_bringup.cli', 'launch',
                              'kpai_bringup', launch, '--show-args'], capture_output=True,
                             text=True, cwd=ROOT, timeout=60)
        assert out.returncode == 0, out.stderr
        blocks = re.findall(r"^    '(\w+)':\n        (.*)$", out.stdout, re.M)
        assert len(blocks) >= 5, out.stdout
        for name, description in blocks:
            assert description.strip() and not description.startswith('(default'), name


@pytest.mark.parametrize(('file', 'args'), [
    ('kpai_bringup/launch/sim_fleet.launch.yaml', {'robots': '2'}),
    ('kpai_bringup/launch/real_robot.launch.yaml', {'robot': 'amr1'}),
    ('kpai_perception/launch/perception.launch.yaml', {}),
    ('kpai_planning/launch/navigation.launch.yaml', {}),
    ('kpai_npu_bridge/launch/npu_bridge.launch.yaml', {}),
    ('kpai_fleet/launch/fleet_agent.launch.yaml', {}),
    ('kpai_data/launch/data.launch.yaml', {}),
])
def test_every_node_of_the_stack_respawns(file: str, args: dict[str, str]) -> None:
    """A killed node comes back (issue: robots that heal); only the simulator does not."""
    from kpai_bringup.launch import evaluate_launch_file

    pkg, rest = file.split('/', 1)
    plan = evaluate_launch_file(ROOT / 'src' / pkg / rest, args)
    for spec in plan.processes:
        if spec.name.startswith('sim-'):
            assert not spec.respawn  # a restarted simulator would reset the world
            continue
        assert spec.respawn and spec.respawn_delay == 0.5, spec.name
    off = evaluate_launch_file(ROOT / 'src' / pkg / rest, {**args, 'respawn': 'false'})
    assert not any(spec.respawn for spec in off.processes)
