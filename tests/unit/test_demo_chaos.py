"""Demo chaos: node processes found in /proc, victims chosen, recoveries tallied."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from kpai_bringup.chaos import ChaosMonkey, Kill, NodeProc, robot_node_processes


def _proc(root: Path, pid: int, ppid: int, argv: list[str], comm: str = 'python3') -> None:
    d = root / str(pid)
    d.mkdir()
    (d / 'stat').write_text(f'{pid} ({comm}) S {ppid} 1 1 0 -1')
    (d / 'cmdline').write_bytes(b'\0'.join(a.encode() for a in argv) + b'\0')


def test_robot_node_processes_under_the_launcher(tmp_path: Path) -> None:
    _proc(tmp_path, 10, 1, ['python', '-m', 'kpai_bringup.cli', 'launch'])
    # a Python node of the wheels re-executes itself: the child is the node
    args = ['tracker', '--ros-args', '-r', '__node:=tracker', '-r', '__ns:=/robot1']
    _proc(tmp_path, 11, 10, ['python3', *args])
    _proc(tmp_path, 12, 11, ['python3', *args])
    _proc(tmp_path, 13, 10, ['sim', '--ros-args', '-r', '__node:=sim'])  # no robot namespace
    _proc(tmp_path, 14, 10, ['x', '-r', '__node:=fleet_agent', '-r', '__ns:=/robot2'],
          comm='weird (name) )')
    _proc(tmp_path, 20, 1, ['other', '-r', '__node:=tracker', '-r', '__ns:=/robot9'])  # not ours
    (tmp_path / 'self').mkdir()
    assert robot_node_processes(10, proc_root=str(tmp_path)) == [
        NodeProc(12, 'robot1', 'tracker'), NodeProc(14, 'robot2', 'fleet_agent')]


def test_the_monkey_kills_on_its_interval_and_tallies_recoveries() -> None:
    killed: list[int] = []
    monkey = ChaosMonkey(30.0, rng=random.Random(1), kill=killed.append)
    procs = [NodeProc(100, 'robot1', 'tracker'), NodeProc(101, 'robot1', 'mission_executor')]
    back: set[tuple[str, str]] = set()

    def is_back(k: Kill, _procs: list[NodeProc]) -> bool:
        return (k.robot, k.node) in back

    assert monkey.step(0.0, procs, is_back) is None  # the first kill comes after the interval
    assert monkey.step(29.9, procs, is_back) is None
    first = monkey.step(30.0, procs, is_back)
    assert first is not None and killed == [first.pid]
    # while it is down it is not chosen again: the other node is
    second = monkey.step(60.0, procs, is_back)
    assert second is not None and second.node != first.node
    back.add((first.robot, first.node))
    monkey.step(61.5, procs, is_back)
    assert first.time_to_recover == 31.5 and second.time_to_recover is None
    summary = monkey.tally.to_dict()
    assert (summary['kills'], summary['recoveries']) == (2, 1)
    assert summary['ttr_max_s'] == 31.5
    assert summary['by_node'][second.node] == {'kills': 1, 'recoveries': 0, 'ttr_max_s': None}


def test_a_vanished_victim_is_no_kill() -> None:
    def gone(_pid: int) -> None:
        raise ProcessLookupError

    monkey = ChaosMonkey(1.0, rng=random.Random(0), kill=gone)
    monkey.step(0.0, [NodeProc(5, 'robot1', 'tracker')], lambda k, p: False)
    assert monkey.step(1.0, [NodeProc(5, 'robot1', 'tracker')], lambda k, p: False) is None
    assert monkey.tally.kills == []


def test_bad_interval() -> None:
    with pytest.raises(ValueError, match='interval'):
        ChaosMonkey(0.0, rng=random.Random(0))
