"""The launcher's supervision run end to end on plain processes (no ROS): output, exit codes,
respawn, required processes, and SIGINT shutdown of the whole process tree."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest
from kpai_testing import ManagedProcess, wait_until

PY = sys.executable


# A child that ignores the named signals and lives until its parent (the launcher) is gone,
# unless the launcher kills it first: what escalation is tested on.
DEAF_CHILD = """\
import os, signal, sys, time
for name in sys.argv[1:]:
    signal.signal(getattr(signal, name), signal.SIG_IGN)
print('ready', flush=True)
parent = os.getppid()
while os.getppid() == parent:
    time.sleep(0.1)
"""


def deaf_child(tmp_path: Path, *signals: str) -> str:
    """The command of a child ignoring `signals` (names such as SIGINT)."""
    script = tmp_path / 'deaf_child.py'
    script.write_text(DEAF_CHILD)
    return ' '.join([PY, str(script), *signals])


def launch_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / 'test.launch.yaml'
    path.write_text('launch:\n' + textwrap.indent(textwrap.dedent(body).lstrip('\n'), '  '))
    return path


def start(tmp_path: Path, *args: str) -> ManagedProcess:
    env = dict(os.environ, KPAI_LOG_DIR=str(tmp_path / 'logs'), PYTHONUNBUFFERED='1')
    return ManagedProcess([PY, '-m', 'kpai_bringup.cli', 'launch', *args], env=env,
                          name='kpai-launch')


def finish(proc: ManagedProcess, timeout: float = 20.0) -> int:
    try:
        return proc.proc.wait(timeout=timeout)
    finally:
        proc.stop()


def text(proc: ManagedProcess) -> str:
    """Return what the launcher printed so far (also after it was stopped)."""
    return proc.log_path.read_text(errors='replace')


def descendants(pid: int) -> set[int]:
    """Return the PIDs of every process below pid, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f'/proc/{entry}/stat').read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(')', 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f'/proc/{pid}/stat').read_text()
    except OSError:
        return False
    return stat.rsplit(')', 1)[1].split()[0] != 'Z'


def test_screen_output_is_prefixed_and_log_output_goes_to_launch_log(tmp_path: Path) -> None:
    path = launch_file(tmp_path, f"""
        - executable:
            cmd: {PY} -c "import sys; print('to screen'); print('err line', file=sys.stderr)"
            name: shouter
            output: screen
        - executable:
            cmd: {PY} -c "import sys; print('quiet line'); print('loud', file=sys.stderr)"
            name: logger
        - executable:
            cmd: {PY} -c "print('own file')"
            name: own
            output: own_log
        """)
    proc = start(tmp_path, str(path))
    assert finish(proc) == 0
    out = text(proc)
    assert '[shouter-1] to screen' in out and '[shouter-1] err line' in out
    assert '[logger-2] loud' in out and 'quiet line' not in out
    assert 'own file' not in out
    (log_dir,) = (tmp_path / 'logs').iterdir()
    launch_log = (log_dir / 'launch.log').read_text()
    assert '[logger-2] quiet line' in launch_log and '[logger-2] loud' in launch_log
    assert (log_dir / 'own-3-stdout.log').read_text() == 'own file\n'
    assert '[INFO] [shouter-1]: process started with pid [' in out
    assert 'process has finished cleanly' in out


def test_failing_process_that_is_not_required_keeps_exit_zero(tmp_path: Path) -> None:
    path = launch_file(tmp_path, """
        - executable: {cmd: sh -c 'exit 4', name: failing, output: screen}
        """)
    proc = start(tmp_path, str(path))
    assert finish(proc) == 0
    assert '[ERROR] [failing-1]: process has died [pid' in text(proc)
    assert 'exit code 4' in text(proc)


def test_required_process_death_stops_everything_with_exit_1(tmp_path: Path) -> None:
    path = launch_file(tmp_path, """
        - executable: {cmd: sleep 60, name: sleeper}
        - executable: {cmd: sh -c 'sleep 0.5; exit 3', name: critical, on_exit: shutdown}
        """)
    proc = start(tmp_path, str(path))
    wait_until(lambda: len(descendants(proc.pid)) >= 2, timeout=10, what='children')
    kids = descendants(proc.pid)
    t0 = time.monotonic()
    assert finish(proc) == 1
    assert time.monotonic() - t0 < 8
    assert 'required process critical-2 died (exit code 3)' in text(proc)
    assert not [p for p in kids if alive(p)]


def test_required_process_clean_exit_stops_everything_with_exit_0(tmp_path: Path) -> None:
    path = launch_file(tmp_path, """
        - executable: {cmd: sleep 60, name: sleeper}
        - executable: {cmd: sh -c 'sleep 0.3', name: job, on_exit: shutdown}
        """)
    proc = start(tmp_path, str(path))
    assert finish(proc) == 0
    assert 'required process job-2 exited; shutting down' in text(proc)


def test_respawn_with_delay_and_max_retries(tmp_path: Path) -> None:
    stamps = tmp_path / 'stamps'
    path = launch_file(tmp_path, f"""
        - executable:
            cmd: {PY} -c "import time; open('{stamps}', 'a').write(f'{{time.time()}}\\\\n')"
            name: flaky
            respawn: 'true'
            respawn_delay: 0.4
            respawn_max_retries: 2
        """)
    proc = start(tmp_path, str(path))
    assert finish(proc) == 0
    times = [float(x) for x in stamps.read_text().split()]
    assert len(times) == 3  # first run + 2 respawns
    assert all(b - a >= 0.4 for a, b in zip(times, times[1:], strict=False))


def test_sigint_shuts_down_the_whole_tree(tmp_path: Path) -> None:
    """SIGINT to the launcher: children get SIGINT, stubborn ones SIGTERM then SIGKILL, and
    grandchildren in their groups go too; no process of the tree is left."""
    stubborn = deaf_child(tmp_path, 'SIGINT', 'SIGTERM')
    path = launch_file(tmp_path, f"""
        - executable: {{cmd: sleep 60, name: polite, output: screen}}
        - executable:
            cmd: sh -c 'sleep 61 & wait'
            name: with_grandchild
            sigterm_timeout: 0.5
        - executable:
            cmd: {stubborn}
            name: stubborn
            output: screen
            sigterm_timeout: 0.5
            sigkill_timeout: 0.5
        """)
    proc = start(tmp_path, str(path))
    wait_until(lambda: '[stubborn-3] ready' in text(proc), timeout=10, what='ready')
    wait_until(lambda: len(descendants(proc.pid)) >= 4, timeout=10, what='grandchild')
    tree = descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    assert proc.proc.wait(timeout=15) == 0
    out = text(proc)
    proc.stop()
    assert 'user interrupted with ctrl-c (SIGINT)' in out
    assert '[WARNING] [stubborn-3]: sending SIGKILL to process group' in out
    assert '[WARNING] [with_grandchild-2]: sending SIGTERM to process group' in out
    left = [p for p in tree if alive(p)]
    assert not left, f'processes left behind: {left}'


def test_second_sigint_escalates(tmp_path: Path) -> None:
    deaf = deaf_child(tmp_path, 'SIGINT')
    path = launch_file(tmp_path, f"""
        - executable:
            cmd: {deaf}
            name: deaf
            output: screen
            sigterm_timeout: 30.0
        """)
    proc = start(tmp_path, str(path))
    wait_until(lambda: '[deaf-1] ready' in text(proc), timeout=10, what='ready')
    tree = descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    wait_until(lambda: 'user interrupted' in text(proc), timeout=5, what='first SIGINT')
    proc.send_signal(signal.SIGINT)
    assert proc.proc.wait(timeout=5) == 0
    proc.stop()
    assert not [p for p in tree if alive(p)]


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_to_launcher_also_shuts_down(tmp_path: Path, sig: int) -> None:
    path = launch_file(tmp_path, '- executable: {cmd: sleep 60, name: s, output: screen}\n')
    proc = start(tmp_path, str(path))
    wait_until(lambda: descendants(proc.pid), timeout=10, what='child')
    tree = descendants(proc.pid)
    proc.send_signal(sig)
    assert proc.proc.wait(timeout=10) == 0
    proc.stop()
    assert not [p for p in tree if alive(p)]


def test_staged_start_waits_for_a_busy_starter(tmp_path: Path) -> None:
    """--max-starting 1: the second process starts once the first one's busy start is over."""
    busy = tmp_path / 'busy.py'
    # about 1 s of full CPU (a node importing), then idle; prints when the busy phase ended
    busy.write_text('import signal, time\nt = time.process_time()\n'
                    'while time.process_time() - t < 1.0:\n    pass\n'
                    "print('busy done', time.monotonic(), flush=True)\n"
                    'signal.pause()  # idle until the launcher stops it\n')
    second = tmp_path / 'second.py'
    second.write_text("import time\nprint('second up', time.monotonic(), flush=True)\n")
    path = launch_file(tmp_path, f"""
        - executable: {{cmd: '{PY} {busy}', name: first, output: screen}}
        - executable: {{cmd: '{PY} {second}', name: second, output: screen}}
        """)
    proc = start(tmp_path, str(path), '--max-starting', '1')
    try:
        wait_until(lambda: 'second up' in text(proc), timeout=20, what='second process')
        out = text(proc)
        assert 'busy done ' in out, out
        done = float(out.split('busy done ')[1].split()[0])
        up = float(out.split('second up ')[1].split()[0])
        assert up > done - 0.1, out  # not before the first one's start-up work was over
    finally:
        proc.stop()
