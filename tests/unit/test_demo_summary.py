"""The demo summary adds up distance, stops, detections and percentiles correctly."""

from __future__ import annotations

import math
import os
import subprocess
import sys

from kpai_bringup.demo_summary import (
    DemoTally,
    RobotTally,
    format_summary,
    percentile,
    process_tree_memory_bytes,
)
from kpai_testing import wait_until


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert math.isnan(percentile([], 50))


def test_distance_ignores_jumps_and_nans() -> None:
    r = RobotTally()
    for x, y in [(0, 0), (0.6, 0.8), (0.6, 0.8), (float('nan'), 1), (100, 100), (100, 101)]:
        r.add_position(x, y)
    assert r.distance_m == 2.0  # 1 + 0 + (jump ignored) + 1


def test_safety_stops_count_transitions() -> None:
    r = RobotTally()
    for s in [False, True, True, False, True]:
        r.add_safety_state(s)
    assert r.safety_stops == 2


def test_collisions_while_moving_are_told_apart() -> None:
    r = RobotTally()
    for speed in [0.0, 0.03, 0.4, -0.2, float('nan')]:
        r.add_collision(speed)
    assert r.collisions == 5
    assert r.collisions_moving == 3  # 0.4, -0.2 and an unknown speed (counted, to be safe)
    t = DemoTally()
    t.robots['robot1'] = r
    data = t.to_dict()
    assert data['collisions'] == 5 and data['collisions_moving'] == 3
    assert 'collisions: 5 (3 with the robot moving, 0 between robots' in format_summary(data)
    r.add_collision(0.3, with_robot=True)
    data = t.to_dict()
    assert data['collisions_robot'] == 1 and data['robots']['robot1']['collisions_robot'] == 1
    assert data['collisions'] == 6 and data['collisions_moving'] == 4


def test_summary_dict_and_text() -> None:
    t = DemoTally(tasks_dispatched=3, tasks_completed=2, sim_time_s=50, wall_time_s=55)
    t.robot('robot1').add_detections(['person', 'pallet', 'person'])
    t.robot('robot2').add_detections(['box'])
    t.inference_p50_ms += [10.0, 12.0]
    t.inference_p99_ms += [20.0, 30.0]
    t.bridge_p50_ms += [14.0, 15.0, 40.0]
    t.bridge_p99_ms += [25.0, 60.0, 41.0]
    d = t.to_dict()
    assert d['detections_per_class'] == {'box': 1, 'pallet': 1, 'person': 2}
    assert d['real_time_factor'] == round(50 / 55, 2)
    assert d['inference_latency_p50_ms'] == 11.0
    assert d['inference_latency_p99_ms'] == 30.0  # the worst window bounds the run's p99
    assert d['bridge_latency_p50_ms'] == 15.0  # median over the windows
    assert d['bridge_latency_p99_ms'] == 60.0
    text = format_summary(d)
    assert ('image received -> detections published, p50 15.0 ms, p99 <= 60.0 ms'
            in text), text
    assert 'tasks: 2 completed' in text and 'robot2' in text and 'person=2' in text


def test_process_tree_memory_includes_children() -> None:
    # the child holds 80 MB until its stdin closes (here, or when this test process dies)
    child = subprocess.Popen([sys.executable, '-c', 'import sys; x = bytearray(80 << 20); '
                              'x[::4096] = b"x" * len(x[::4096]); sys.stdin.read()'],
                             stdin=subprocess.PIPE)
    try:
        own = process_tree_memory_bytes(os.getpid())
        wait_until(lambda: process_tree_memory_bytes(os.getpid()) - own >= (60 << 20),
                   timeout=10, what="the child's 80 MB in the tree's memory")
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)


def test_demo_rates_are_parsed_validated_and_reported(monkeypatch: object) -> None:
    import os

    import pytest
    from kpai_bringup.demo import DEMO_CAMERA_RATE, DEMO_CLOCK_RATE, DEMO_ODOM_RATE, _parse
    from kpai_bringup.demo_summary import DemoTally, format_summary

    monkeypatch.setattr(os, 'cpu_count', lambda: 2)  # type: ignore[attr-defined]
    # no rate given: the design rates where 2 cores hold them, else the light ones
    args = _parse([])
    assert (args.camera_rate, args.odom_rate, args.clock_rate) == (
        DEMO_CAMERA_RATE, DEMO_ODOM_RATE, DEMO_CLOCK_RATE)
    assert 'design rates' in args.rates_reason
    assert _parse(['--robots', '4']).camera_rate == 10.0  # one process per robot holds 4
    args = _parse(['--robots', '4', '--layout', 'processes'])
    assert (args.camera_rate, args.odom_rate, args.clock_rate) == (5.0, 10.0, 10.0)
    assert 'light rates' in args.rates_reason and 'CAMERA_RATE' in args.rates_reason
    monkeypatch.setattr(os, 'cpu_count', lambda: 4)  # type: ignore[attr-defined]
    args = _parse(['--robots', '4'])
    assert (args.camera_rate, args.odom_rate, args.clock_rate) == (10.0, 20.0, 25.0)
    monkeypatch.setattr(os, 'cpu_count', lambda: 2)  # type: ignore[attr-defined]
    # a rate given is kept and the others come from the design rates, whatever the machine
    args = _parse(['--robots', '4', '--camera-rate', '10', '--odom-rate', '20',
                   '--clock-rate', '25'])
    assert (args.camera_rate, args.odom_rate, args.clock_rate) == (10.0, 20.0, 25.0)
    args = _parse(['--robots', '4', '--camera-rate', '5'])
    assert (args.camera_rate, args.odom_rate, args.clock_rate) == (5.0, 20.0, 25.0)
    assert args.rates_reason == 'the rates given'
    for bad in (['--camera-rate', 'nan'], ['--camera-rate', '0'], ['--odom-rate', '0.5'],
                ['--clock-rate', 'inf']):
        with pytest.raises(SystemExit):
            _parse(bad)
    tally = DemoTally(camera_rate_hz=5.0, odom_rate_hz=10.0, clock_rate_hz=10.0)
    text = format_summary(tally.to_dict())
    assert 'cameras 5.0 Hz, odometry 10.0 Hz, clock 10.0 Hz' in text


def test_demo_starts_no_fleet_when_its_monitor_cannot_start(tmp_path: object,
                                                            monkeypatch: object) -> None:
    # a clone run with another venv's environment failed to import rclpy in the monitor after
    # the launcher was up, and left the whole fleet running
    import pytest

    from kpai_bringup import demo

    class BrokenMonitor:
        def __init__(self, *_args: object) -> None:
            raise ImportError('librcl_action.so: cannot open shared object file')

    started: list[bool] = []
    mp = monkeypatch  # type: ignore[assignment]
    mp.setattr(demo, 'Monitor', BrokenMonitor)  # type: ignore[attr-defined]
    mp.setattr(demo.Demo, 'start', lambda self: started.append(True))  # type: ignore[attr-defined]
    run = demo.Demo(demo._parse(['--run-dir', str(tmp_path), '--duration', '10']))
    with pytest.raises(ImportError):
        run.run()
    assert not started and run.launcher is None


def test_demo_layout_defaults_to_one_process_and_chaos_to_processes() -> None:
    import pytest
    from kpai_bringup.demo import _parse
    from kpai_bringup.demo_summary import DemoTally, format_summary

    assert _parse([]).layout == 'one_process'
    assert _parse(['--layout', 'processes']).layout == 'processes'
    # chaos kills single nodes: one process per node
    assert _parse(['--chaos', '20']).layout == 'processes'
    with pytest.raises(SystemExit):
        _parse(['--chaos', '20', '--layout', 'one_process'])
    with pytest.raises(SystemExit):
        _parse(['--layout', 'container'])
    text = format_summary(DemoTally(layout='one_process').to_dict())
    assert 'layout one_process' in text
