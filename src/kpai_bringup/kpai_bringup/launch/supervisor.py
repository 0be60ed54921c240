"""Run a LaunchPlan's processes: prefixed output, respawn, required processes, clean shutdown.

Behaviour, as ros2 launch for what is supported:
- every process runs in its own session/process group; output `screen` prints each line as
  `[name-N] line`, `log` writes to `launch.log` in the log directory (stderr also to the screen),
  `both` does both, `own_log` writes `<name-N>-stdout.log` / `-stderr.log` files;
- `respawn: 'true'` restarts a process after `respawn_delay` s whenever it exits (at most
  `respawn_max_retries` times when given), except during shutdown;
- on SIGINT, SIGTERM (or SIGHUP) the launcher sends SIGINT to every process group, waits
  `sigterm_timeout` s (default 5), sends SIGTERM, waits `sigkill_timeout` s (default 5), then
  SIGKILL; a second signal skips to the next step. Groups are swept at the end so no process
  of the tree is left behind;
- the launcher ends when every process has ended for good.

Differences from ros2 launch (documented choices):
- a process with `on_exit: shutdown` is *required*: when it exits, everything is shut down, and
  the launcher exits 1 if it failed (non-zero code or killed by a signal) — ros2 launch would
  exit 0. Otherwise the exit code is 0 (user interrupt, all processes done);
- the log directory is `$KPAI_LOG_DIR`, else `$ROS_LOG_DIR`, else `$ROS_HOME/log`, else
  `~/.ros/log`, with one `<date>-<host>-<pid>` subdirectory per launch;
- if the launcher itself is killed with SIGKILL its children are not told (they run in their
  own sessions); stop it with SIGINT/SIGTERM.
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .plan import ProcessSpec
from .startup import StartGate

__all__ = ['Supervisor', 'default_log_dir']

_POLL_S = 0.05


def default_log_dir(env: Mapping[str, str] | None = None) -> Path:
    """Return the directory under which each launch creates its own log directory."""
    env = os.environ if env is None else env
    for key in ('KPAI_LOG_DIR', 'ROS_LOG_DIR'):
        if env.get(key):
            return Path(env[key]).expanduser()
    if env.get('ROS_HOME'):
        return Path(env['ROS_HOME']).expanduser() / 'log'
    return Path('~/.ros/log').expanduser()


@dataclass
class _Proc:
    spec: ProcessSpec
    popen: subprocess.Popen[bytes] | None = None
    pgid: int | None = None
    retries: int = 0
    respawn_at: float | None = None
    done: bool = False
    readers: list[threading.Thread] = field(default_factory=list)
    # shutdown escalation: next signal to send and when
    stage: int = 0
    deadline: float = 0.0


class Supervisor:
    """Start, watch and stop the processes of a launch."""

    def __init__(self, specs: list[ProcessSpec], *, log_root: Path | None = None,
                 screen: IO[str] | None = None, max_starting: int = 0) -> None:
        self.procs = [_Proc(s) for s in specs]
        # staged start-up (0: all at once, as ros2 launch does); respawns are not staged
        self._gate = StartGate(max_starting)
        self.screen = screen if screen is not None else sys.stdout
        self._lock = threading.Lock()
        self._signal: int | None = None
        self._signals_seen = 0
        self._shutting_down = False
        self.exit_code = 0
        self.log_dir = self._make_log_dir(log_root or default_log_dir())
        self._launch_log = open(self.log_dir / 'launch.log', 'a', encoding='utf-8')  # noqa: SIM115
        self._groups: set[int] = set()

    # ---------- output ----------
    def _make_log_dir(self, root: Path) -> Path:
        stamp = datetime.datetime.now().strftime('%Y-%m-%d-%H-%M-%S-%f')
        name = f'{stamp}-{socket.gethostname()}-{os.getpid()}'
        for base in (root, Path('/tmp/kpai_launch_log')):
            try:
                path = base / name
                path.mkdir(parents=True, exist_ok=True)
                return path
            except OSError:
                continue
        raise OSError(f'cannot create a log directory under {root}')

    def _emit(self, line: str, *, screen: bool = True, log: bool = True) -> None:
        with self._lock:
            if screen:
                try:
                    self.screen.write(line + '\n')
                    self.screen.flush()
                except (OSError, ValueError):
                    pass
            if log and not self._launch_log.closed:
                stamp = f'{time.time():.7f}'
                self._launch_log.write(f'{stamp} {line}\n')
                self._launch_log.flush()

    def info(self, who: str, message: str, level: str = 'INFO') -> None:
        """Print a launcher message in ros2 launch's format."""
        self._emit(f'[{level}] [{who}]: {message}')

    def _reader(self, proc: _Proc, pipe: IO[bytes], stream: str) -> None:
        spec = proc.spec
        own = None
        if spec.output == 'own_log':
            own = open(self.log_dir / f'{spec.name}-{stream}.log', 'ab')  # noqa: SIM115
        to_screen = spec.output in ('screen', 'both') or (spec.output == 'log'
                                                          and stream == 'stderr')
        to_log = spec.output in ('log', 'both')
        try:
            for raw in iter(pipe.readline, b''):
                if own is not None:
                    own.write(raw)
                    own.flush()
                    continue
                text = raw.decode('utf-8', errors='replace').rstrip('\r\n')
                self._emit(f'[{spec.name}] {text}', screen=to_screen, log=to_log)
        except (OSError, ValueError):
            pass
        finally:
            pipe.close()
            if own is not None:
                own.close()

    # ---------- process control ----------
    def _start(self, proc: _Proc) -> None:
        spec = proc.spec
        proc.respawn_at = None
        if self._group_alive(proc.pgid):  # leftovers of a previous run must not pile up
            self._signal_group(proc, signal.SIGKILL)
        try:
            popen = subprocess.Popen(
                spec.cmd[0] if spec.shell else spec.cmd, shell=spec.shell, env=spec.env,
                cwd=spec.cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True)
        except OSError as err:
            self.info(spec.name, f'failed to start: {err} (cmd {spec.command_line()!r})',
                      'ERROR')
            self._exited(proc, 127)
            return
        proc.popen, proc.pgid = popen, popen.pid
        self._groups.add(popen.pid)
        self.info(spec.name, f'process started with pid [{popen.pid}]')
        proc.readers = []
        for stream, pipe in (('stdout', popen.stdout), ('stderr', popen.stderr)):
            assert pipe is not None
            thread = threading.Thread(target=self._reader, args=(proc, pipe, stream),
                                      daemon=True, name=f'{spec.name}-{stream}')
            thread.start()
            proc.readers.append(thread)

    def _exited(self, proc: _Proc, code: int) -> None:
        spec = proc.spec
        for thread in proc.readers:
            thread.join(timeout=0.5)
        pid = proc.popen.pid if proc.popen is not None else 0
        proc.popen = None
        if code == 0:
            self.info(spec.name, f'process has finished cleanly [pid {pid}]')
        elif pid:
            self.info(spec.name, f'process has died [pid {pid}, exit code {code}, cmd '
                      f"'{spec.command_line()}'].", 'ERROR')
        if self._shutting_down:
            proc.done = True
            return
        retries_left = spec.respawn_max_retries < 0 or proc.retries < spec.respawn_max_retries
        if spec.respawn and retries_left:
            proc.retries += 1
            proc.respawn_at = time.monotonic() + spec.respawn_delay
            return
        proc.done = True
        if spec.required:
            if code != 0:
                self.exit_code = 1
                self.info('launch', f'required process {spec.name} died (exit code {code}); '
                          'shutting down', 'ERROR')
            else:
                self.info('launch', f'required process {spec.name} exited; shutting down')
            self._begin_shutdown()

    def _group_alive(self, pgid: int | None) -> bool:
        if pgid is None:
            return False
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def _signal_group(self, proc: _Proc, sig: int) -> None:
        if proc.pgid is not None:
            try:
                os.killpg(proc.pgid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def _begin_shutdown(self) -> None:
        if self._shutting_down:
            return
        self._shutting_down = True
        now = time.monotonic()
        for proc in self.procs:
            proc.respawn_at = None
            if proc.popen is not None or self._group_alive(proc.pgid):
                self._signal_group(proc, signal.SIGINT)
                proc.stage, proc.deadline = 1, now + proc.spec.sigterm_timeout
            else:
                proc.done = True

    def _escalate(self, proc: _Proc, now: float, force: bool) -> None:
        if proc.stage == 0 or (now < proc.deadline and not force):
            return
        if proc.stage == 1:
            self.info(proc.spec.name, 'sending SIGTERM to process group', 'WARNING')
            self._signal_group(proc, signal.SIGTERM)
            proc.stage, proc.deadline = 2, now + proc.spec.sigkill_timeout
        elif proc.stage == 2:
            self.info(proc.spec.name, 'sending SIGKILL to process group', 'WARNING')
            self._signal_group(proc, signal.SIGKILL)
            proc.stage, proc.deadline = 3, now + 1e9

    # ---------- main loop ----------
    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._signal = signum
        self._signals_seen += 1

    def run(self) -> int:
        """Run until every process has ended; return the launcher's exit code."""
        self.info('launch', f'All log files can be found below {self.log_dir}')
        # SIGHUP too: children live in their own sessions, so a closed terminal reaches only us
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        old = {s: signal.signal(s, self._on_signal) for s in handled}
        handled_signals = 0
        try:
            pending = list(self.procs)
            while True:
                while pending and self._gate.may_start(time.monotonic()):
                    proc = pending.pop(0)
                    if self._signal is None and not self._shutting_down:
                        self._start(proc)
                        if proc.popen is not None:
                            self._gate.started(proc.popen.pid, time.monotonic())
                    else:
                        proc.done = True
                if self._shutting_down:
                    for proc in pending:
                        proc.done = True
                    pending = []
                if self._signals_seen > handled_signals:
                    handled_signals = self._signals_seen
                    first = not self._shutting_down
                    name = signal.Signals(self._signal or signal.SIGINT).name
                    if first:
                        self.info('launch', f'user interrupted with ctrl-c ({name})'
                                  if name == 'SIGINT' else f'received {name}', 'WARNING')
                        self._begin_shutdown()
                    else:
                        self.info('launch', f'{name} again: escalating shutdown', 'WARNING')
                    now = time.monotonic()
                    for proc in self.procs:
                        self._escalate(proc, now, force=not first)
                now = time.monotonic()
                for proc in self.procs:
                    if proc.popen is not None:
                        code = proc.popen.poll()
                        if code is not None:
                            self._exited(proc, code)
                    elif proc.respawn_at is not None and now >= proc.respawn_at:
                        self._start(proc)
                    if self._shutting_down:
                        if proc.popen is None and not self._group_alive(proc.pgid):
                            proc.done = True
                        else:
                            self._escalate(proc, now, force=False)
                if not pending and all(p.done and p.popen is None for p in self.procs):
                    break
                time.sleep(_POLL_S)
        finally:
            self._sweep()
            for s, handler in old.items():
                signal.signal(s, handler)
            self._launch_log.close()
        return self.exit_code

    def _sweep(self) -> None:
        """Kill whatever is left in any process group this launch created."""
        for proc in self.procs:
            if proc.popen is not None and proc.popen.poll() is None:
                self._signal_group(proc, signal.SIGKILL)
                proc.popen.wait()
        for pgid in self._groups:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
