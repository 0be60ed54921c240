"""CPU time of a process tree from /proc, summed per node: what bench/stack_cpu.py measures.

Pure: parsing /proc/<pid>/stat, naming a process after its node (`__ns:=/robotN`,
`__node:=NAME`) or its program, and accounting CPU ticks over a window in which processes may
start (a respawned node) or end. No rclpy.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ['CpuAccount', 'ProcSample', 'ProcStat', 'label_for', 'parse_stat', 'read_tree']


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/<pid>/stat this module uses (times in clock ticks)."""

    pid: int
    comm: str
    ppid: int
    utime: int
    stime: int
    starttime: int

    @property
    def ticks(self) -> int:
        """Return user + system CPU ticks of all the process's threads."""
        return self.utime + self.stime


def parse_stat(text: str) -> ProcStat:
    """Parse one /proc/<pid>/stat line; raise ValueError when it is not one."""
    open_, close = text.find('('), text.rfind(')')
    if open_ < 0 or close < open_:
        raise ValueError(f'not a /proc stat line: {text[:80]!r}')
    # the command name may hold spaces and parentheses: the fields follow its last ')'
    rest = text[close + 2:].split()
    if len(rest) < 20:
        raise ValueError(f'/proc stat line has {len(rest) + 2} fields, expected >= 22')
    try:
        return ProcStat(pid=int(text[:open_]), comm=text[open_ + 1:close], ppid=int(rest[1]),
                        utime=int(rest[11]), stime=int(rest[12]), starttime=int(rest[19]))
    except ValueError as err:
        raise ValueError(f'bad number in /proc stat line: {text[:80]!r}') from err


@dataclass(frozen=True)
class ProcSample:
    """One process of the tree at one moment: its stat, argv and resident memory (bytes)."""

    stat: ProcStat
    argv: tuple[str, ...]
    rss_bytes: int = 0

    @property
    def key(self) -> tuple[int, int]:
        """Return (pid, start time): unique even when a pid is reused."""
        return self.stat.pid, self.stat.starttime


def read_tree(root_pid: int, *, proc_root: str = '/proc') -> list[ProcSample]:
    """Return root_pid and all its descendants as they are now (vanished ones left out)."""
    root = Path(proc_root)
    stats: dict[int, ProcStat] = {}
    kids: dict[int, list[int]] = {}
    for d in root.iterdir():
        if not d.name.isdigit():
            continue
        try:
            st = parse_stat((d / 'stat').read_text())
        except (OSError, ValueError):
            continue
        stats[st.pid] = st
        kids.setdefault(st.ppid, []).append(st.pid)
    page = os.sysconf('SC_PAGE_SIZE') if hasattr(os, 'sysconf') else 4096
    out: list[ProcSample] = []
    stack = [root_pid]
    while stack:
        pid = stack.pop()
        stack.extend(kids.get(pid, ()))
        if pid not in stats:
            continue
        try:
            raw = (root / str(pid) / 'cmdline').read_bytes()
        except OSError:
            continue
        argv = tuple(a.decode(errors='replace') for a in raw.split(b'\0') if a)
        try:
            rss = int((root / str(pid) / 'statm').read_text().split()[1]) * page
        except (OSError, ValueError, IndexError):
            rss = 0
        out.append(ProcSample(stats[pid], argv, rss))
    return out


def label_for(argv: Iterable[str]) -> tuple[str, str]:
    """Return (robot, name) of a process: its ROS namespace and node, else ('', program).

    A ROS node is named by its `__node:=` remap (robot from `__ns:=/robotN`, '' outside a
    robot); a process with a namespace and no node name (kpai_bringup's robot_stack, several
    nodes in one process) by its program; `python -m kpai_bringup.cli launch` is the launcher,
    `python -m pkg.mod` is mod, other programs are the script's name and its subcommand
    (`kpai-fleet broker`).
    """
    args = list(argv)
    ns = next((a[len('__ns:='):] for a in args if a.startswith('__ns:=')), '')
    node = next((a[len('__node:='):] for a in args if a.startswith('__node:=')), '')
    robot = ns.strip('/').replace('/', '.')
    if node:
        return robot, node
    if not args:
        return '', '?'
    rest = args[1:] if Path(args[0]).name.startswith('python') else args
    while rest and rest[0].startswith('-') and rest[0] != '-m':
        rest = rest[1:]  # interpreter options such as -u
    if not rest:
        return '', Path(args[0]).name
    if ns and not rest[0].startswith('-'):
        return robot, Path(rest[0]).name  # several nodes of a robot in one process (robot_stack)
    if rest[0] == '-m' and len(rest) > 1:
        module = rest[1]
        if module == 'kpai_bringup.cli' and 'launch' in rest[2:3]:
            return '', 'launcher'
        return '', module.rsplit('.', 1)[-1]
    name = Path(rest[0]).name
    if len(rest) > 1 and not rest[1].startswith('-') and '/' not in rest[1] and '=' not in rest[1]:
        name = f'{name} {rest[1]}'
    return '', name


@dataclass
class CpuAccount:
    """CPU ticks spent per label between the first and the latest observation.

    A process seen at the first observation counts from its ticks then; one that appears later
    (a respawned node) started inside the window and counts from zero; one that ends counts
    up to its last observation (what it did between that and its end is lost).
    """

    _base: dict[tuple[int, int], int] = field(default_factory=dict)
    _last: dict[tuple[int, int], int] = field(default_factory=dict)
    _label: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict)
    _rss: dict[tuple[int, int], int] = field(default_factory=dict)
    observations: int = 0

    def observe(self, samples: Iterable[ProcSample]) -> None:
        """Add one reading of the process tree."""
        first = self.observations == 0
        for s in samples:
            key = s.key
            if key not in self._base:
                self._base[key] = s.stat.ticks if first else 0
                self._label[key] = label_for(s.argv)
            self._last[key] = s.stat.ticks
            self._rss[key] = s.rss_bytes
        self.observations += 1

    def ticks_by_label(self) -> dict[tuple[str, str], int]:
        """Return the ticks spent in the window per (robot, name), summed over processes."""
        out: dict[tuple[str, str], int] = {}
        for key, base in self._base.items():
            label = self._label[key]
            out[label] = out.get(label, 0) + max(0, self._last[key] - base)
        return out

    def processes_by_label(self) -> dict[tuple[str, str], int]:
        """Return how many processes (pid, start time) each label had in the window."""
        out: dict[tuple[str, str], int] = {}
        for label in self._label.values():
            out[label] = out.get(label, 0) + 1
        return out

    def rss_by_label(self, alive: Mapping[tuple[int, int], object] | None = None
                     ) -> dict[tuple[str, str], int]:
        """Return the latest resident memory per label (only keys in alive, when given)."""
        out: dict[tuple[str, str], int] = {}
        for key, rss in self._rss.items():
            if alive is not None and key not in alive:
                continue
            label = self._label[key]
            out[label] = out.get(label, 0) + rss
        return out
