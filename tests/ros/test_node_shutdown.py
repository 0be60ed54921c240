"""Every node of the stack starts, and stops on SIGINT with exit code 0 and no traceback."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from kpai_testing import ROOT, RosGraph

MAP = ROOT / 'src' / 'kpai_bringup' / 'maps' / 'factory.yaml'

# (package, executable, node name, ros args) as a launch file would start them
NODES = [
    ('kpai_sim', 'sim', 'sim', ['-p', 'robots:=1', '-p', 'camera_width:=64',
                                '-p', 'camera_height:=48']),
    ('kpai_npu_bridge', 'npu_bridge', 'npu_bridge', []),
    ('kpai_perception', 'camera_driver', 'camera_driver', ['-p', 'source:={tmp}/*.png']),
    ('kpai_perception', 'tracker', 'tracker', []),
    ('kpai_perception', 'object_localizer', 'object_localizer', []),
    ('kpai_perception', 'safety_monitor', 'safety_monitor', []),
    ('kpai_perception', 'annotator', 'annotator', []),
    ('kpai_perception', 'fiducials', 'fiducials', []),
    ('kpai_planning', 'map_server', 'map_server', ['-p', f'yaml_filename:={MAP}']),
    ('kpai_planning', 'global_planner', 'global_planner', []),
    ('kpai_planning', 'controller', 'controller', []),
    ('kpai_planning', 'mission_executor', 'mission_executor', []),
    ('kpai_fleet', 'fleet_agent', 'fleet_agent', ['-p', 'broker_url:=mqtt://127.0.0.1:9']),
    ('kpai_data', 'recorder', 'recorder', ['-p', 'all_topics:=true']),
    ('kpai_data', 'foxglove_bridge', 'foxglove_bridge', ['-p', 'port:=0']),
    ('kpai_bringup', 'robot_tf', 'robot_tf', []),
    ('kpai_bringup', 'talker', 'talker', []),
    ('kpai_bringup', 'listener', 'listener', []),
]


@pytest.mark.parametrize(('package', 'executable', 'name', 'args'), NODES,
                         ids=[n[1] for n in NODES])
def test_clean_sigint(graph: RosGraph, package: str, executable: str, name: str,
                      args: list[str], tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / 'frame.png'), np.full((48, 64, 3), 128, np.uint8))
    proc = graph.start_node(package, executable, *(a.format(tmp=tmp_path) for a in args))
    graph.spin_until(lambda: name in graph.node.get_node_names(), timeout=30,
                     what=f'node {name} in the graph')
    # let it run its timers and threads for a moment before the signal
    until = time.monotonic() + 1.0
    graph.spin_until(lambda: time.monotonic() > until, timeout=5)
    code = proc.stop(sig=signal.SIGINT, timeout=15)
    out = proc.output()
    assert 'Traceback' not in out, out[-3000:]
    assert code == 0, f'exit code {code}\n{out[-3000:]}'
