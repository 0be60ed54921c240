"""Stack CPU benchmark's pure parts: /proc stat parsing, process names, CPU accounting, py-spy."""

from __future__ import annotations

from pathlib import Path

import pytest
from kpai_bringup.proc_cpu import CpuAccount, ProcSample, label_for, parse_stat, read_tree
from kpai_bringup.pyspy_profile import classify, parse_raw, split_by_role, top_functions

pytestmark = pytest.mark.unit


def _stat_line(pid: int, comm: str, ppid: int, utime: int, stime: int, start: int) -> str:
    # fields 3.. of /proc/<pid>/stat: state ppid pgrp session tty tpgid flags minflt cminflt
    # majflt cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime ...
    rest = ['S', ppid, 1, 1, 0, -1, 4194304, 10, 0, 0, 0, utime, stime, 5, 6, 20, 0, 3, 0,
            start, 123456, 789]
    return f'{pid} ({comm}) ' + ' '.join(str(x) for x in rest) + '\n'


def test_parse_stat_reads_times_past_a_command_name_with_spaces_and_parens() -> None:
    st = parse_stat(_stat_line(42, 'py (thon) x', 7, utime=150, stime=25, start=9999))
    assert (st.pid, st.comm, st.ppid) == (42, 'py (thon) x', 7)
    assert (st.utime, st.stime, st.ticks, st.starttime) == (150, 25, 175, 9999)


@pytest.mark.parametrize('bad', ['', 'garbage', '12 (x) S 1 2 3', '1 (x) S a b c d e f g h i j k'
                                 ' l m n o p q r s t u v'])
def test_parse_stat_rejects_what_is_not_a_stat_line(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_stat(bad)


@pytest.mark.parametrize(('argv', 'label'), [
    (['/v/bin/python', '/i/lib/kpai_planning/mission_executor', '--ros-args', '-r',
      '__node:=mission_executor', '-r', '__ns:=/robot2'], ('robot2', 'mission_executor')),
    (['/v/bin/python', '/i/lib/kpai_sim/sim', '--ros-args', '-r', '__node:=sim'], ('', 'sim')),
    (['python', '-m', 'kpai_bringup.demo', '--robots', '2'], ('', 'demo')),
    (['/v/bin/python', '-m', 'kpai_bringup.cli', 'launch', 'kpai_bringup', 'x.yaml'],
     ('', 'launcher')),
    (['/v/bin/python3', '-u', '/i/lib/kpai_fleet/kpai-fleet', 'broker', '--port', '1'],
     ('', 'kpai-fleet broker')),
    (['/usr/sbin/mosquitto', '-c', '/tmp/m.conf'], ('', 'mosquitto')),
    (['/v/bin/python', '/i/lib/kpai_bringup/robot_stack', 'tracker', 'fleet_agent=true',
      '--ros-args', '-r', '__ns:=/robot1'], ('robot1', 'robot_stack')),
    ([], ('', '?')),
])
def test_label_for_names_nodes_and_programs(argv: list[str], label: tuple[str, str]) -> None:
    assert label_for(argv) == label


def _sample(pid: int, ticks: int, argv: list[str], start: int = 100, rss: int = 0) -> ProcSample:
    return ProcSample(parse_stat(_stat_line(pid, 'python3', 1, ticks, 0, start)), tuple(argv), rss)


NODE = ['python', 'x', '--ros-args', '-r', '__node:=tracker', '-r', '__ns:=/robot1']


def test_account_counts_window_deltas_new_and_ended_processes() -> None:
    acc = CpuAccount()
    parent = ['python', 'x', '--ros-args', '-r', '__node:=tracker', '-r', '__ns:=/robot1']
    acc.observe([_sample(10, 500, parent), _sample(11, 1000, NODE, rss=2**20),
                 _sample(20, 50, ['mosquitto'])])
    # the node dies and is respawned as pid 12 (started inside the window: counts from 0);
    # mosquitto ends after using 20 more ticks
    acc.observe([_sample(10, 500, parent), _sample(11, 1040, NODE),
                 _sample(20, 70, ['mosquitto'])])
    acc.observe([_sample(10, 501, parent), _sample(12, 30, NODE, start=300, rss=3 * 2**20)])
    ticks = acc.ticks_by_label()
    assert ticks == {('robot1', 'tracker'): 1 + 40 + 30, ('', 'mosquitto'): 20}
    assert acc.processes_by_label() == {('robot1', 'tracker'): 3, ('', 'mosquitto'): 1}
    alive = {(10, 100): None, (12, 300): None}
    assert acc.rss_by_label(alive) == {('robot1', 'tracker'): 3 * 2**20}
    assert acc.observations == 3


def test_account_keys_on_start_time_so_a_reused_pid_is_a_new_process() -> None:
    acc = CpuAccount()
    acc.observe([_sample(30, 900, NODE, start=100)])
    acc.observe([_sample(30, 5, NODE, start=700)])  # same pid, new process
    assert acc.ticks_by_label() == {('robot1', 'tracker'): 5}


def test_read_tree_walks_descendants_only(tmp_path: Path) -> None:
    def proc(pid: int, ppid: int, argv: list[str], ticks: int) -> None:
        d = tmp_path / str(pid)
        d.mkdir()
        (d / 'stat').write_text(_stat_line(pid, 'python3', ppid, ticks, 1, 50))
        (d / 'cmdline').write_bytes(b'\0'.join(a.encode() for a in argv) + b'\0')
        (d / 'statm').write_text('1000 10 5 1 0 100 0\n')

    proc(1, 0, ['init'], 0)
    proc(5, 1, ['python', '-m', 'kpai_bringup.demo'], 3)
    proc(6, 5, ['python', '-m', 'kpai_bringup.cli', 'launch'], 4)
    proc(7, 6, NODE, 8)
    proc(9, 1, ['other'], 100)
    (tmp_path / 'self').mkdir()
    (tmp_path / '8').mkdir()  # vanished between listing and reading
    tree = read_tree(5, proc_root=str(tmp_path))
    assert sorted(s.stat.pid for s in tree) == [5, 6, 7]
    node = next(s for s in tree if s.stat.pid == 7)
    assert node.stat.ticks == 9 and node.argv == tuple(NODE) and node.rss_bytes > 0


RAW = '\n'.join([
    '<module> (/i/lib/x/tracker:33);main (/w/src/kpai_perception/kpai_perception/tracker_node.py'
    ':200);spin (/v/lib/python3.11/site-packages/rclpy/executors.py:290);spin_once '
    '(/v/lib/python3.11/site-packages/rclpy/executors.py:800);wait_for_ready_callbacks '
    '(/v/lib/python3.11/site-packages/rclpy/executors.py:700) 60',
    '<module> (/i/lib/x/tracker:33);main (/w/src/kpai_perception/kpai_perception/tracker_node.py'
    ':200);spin (/v/lib/python3.11/site-packages/rclpy/executors.py:290);handler '
    '(/v/lib/python3.11/site-packages/rclpy/executors.py:500);_on_dets (/w/src/kpai_perception/'
    'kpai_perception/tracker_node.py:120);publish (/v/lib/python3.11/site-packages/rclpy/'
    'publisher.py:70) 30',
    'run (/usr/lib/python3.11/threading.py:975);_loop (/v/lib/python3.11/site-packages/paho/'
    'mqtt/client.py:10) 10',
    'not a stack line',
    '',
])


def test_pyspy_raw_parsed_and_split_into_executor_callback_other() -> None:
    stacks = parse_raw(RAW)
    assert [s.count for s in stacks] == [60, 30, 10]
    assert str(stacks[0].frames[-1]) == 'wait_for_ready_callbacks (rclpy/executors.py)'
    cb = stacks[1].frames[-2]
    assert (cb.func, cb.file) == ('_on_dets', 'kpai_perception/kpai_perception/tracker_node.py')
    assert [classify(s.frames) for s in stacks] == ['executor', 'callback', 'other']
    roles = split_by_role(stacks)
    assert roles == {'callback': 30, 'executor': 60, 'other': 10, 'total': 100}


def test_pyspy_top_functions_rank_self_time_with_inclusive_shares() -> None:
    top = top_functions(parse_raw(RAW), 2)
    assert [t['function'] for t in top] == ['wait_for_ready_callbacks (rclpy/executors.py)',
                                            'publish (rclpy/publisher.py)']
    assert top[0]['self_share'] == 0.6 and top[0]['inclusive_share'] == 0.6
    assert top[1]['self_samples'] == 30 and top[1]['inclusive_samples'] == 30
    spin = top_functions(parse_raw(RAW), 10)
    assert all(t['self_samples'] > 0 for t in spin)


def _stack_cpu_bench():
    import importlib.util

    path = Path(__file__).resolve().parents[2] / 'bench' / 'stack_cpu.py'
    spec = importlib.util.spec_from_file_location('bench_stack_cpu', path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_reads_the_rates_the_demo_prints() -> None:
    from kpai_bringup.demo import rates_line

    bench = _stack_cpu_bench()
    line = rates_line((5.0, 10.0, 12.5), 'the light rates: because')
    found = bench.RATES_LINE.search(line)
    assert found is not None and found.groups() == ('5', '10', '12.5')


def test_message_census_gives_each_robot_node_its_messages_and_cpu_per_message() -> None:
    bench = _stack_cpu_bench()

    class FakeWatch:
        def subscriptions(self) -> dict[tuple[str, str], list[str]]:
            return {('robot1', 'tracker'): ['/clock', '/robot1/detections'],
                    ('robot1', 'annotator'): ['/clock'],
                    ('', 'sim'): ['/robot1/cmd_vel']}

        def topic_rates(self, topics: list[str], seconds: float) -> dict[str, float]:
            assert topics == ['/clock', '/robot1/detections'] and seconds == 5.0
            return {'/clock': 25.0, '/robot1/detections': 10.0}

    rows = [{'robot': 'robot1', 'node': 'tracker', 'cpu_pct': 3.5},
            {'robot': 'robot1', 'node': 'annotator', 'cpu_pct': 1.0},
            {'robot': '', 'node': 'sim', 'cpu_pct': 30.0}]
    census = bench.message_census(FakeWatch(), rows, 5.0)
    assert rows[0]['msgs_per_s'] == 35.0 and rows[0]['cpu_ms_per_msg'] == 1.0
    assert rows[1]['msgs_per_s'] == 25.0 and rows[1]['cpu_ms_per_msg'] == 0.4
    assert 'msgs_per_s' not in rows[2]
    assert census['robot_nodes_msgs_per_s'] == 60.0
    assert census['robot_nodes_cpu_ms_per_msg'] == 0.75


def test_message_classes_by_name_include_an_actions_feedback_message() -> None:
    from kpai_data.errors import DataError
    from kpai_data.ros_types import message_class

    from kpai_msgs.action import ExecuteMission

    assert message_class('nav_msgs/msg/Odometry').__name__ == 'Odometry'
    feedback = message_class('kpai_msgs/action/ExecuteMission_FeedbackMessage')
    assert feedback is ExecuteMission.Impl.FeedbackMessage
    for bad in ('kpai_msgs/action/Nothing_FeedbackMessage', 'no_pkg/msg/X', 'not a type'):
        with pytest.raises(DataError):
            message_class(bad)
