"""Summaries of a py-spy profile (`py-spy record --format raw`): top functions, executor share.

Pure. A raw profile has one line per distinct stack, `frame;frame;...;frame COUNT`, outermost
frame first, each frame `function (file:line)`. Only samples of running threads are in it
(py-spy leaves idle ones out), so the counts are CPU time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ['Frame', 'Stack', 'classify', 'parse_raw', 'split_by_role', 'top_functions']

_FRAME = re.compile(r'^(?P<func>.*?) \((?P<file>.*):(?P<line>\d+)\)$')
_EXECUTOR_FILE = 'rclpy/executors.py'


@dataclass(frozen=True)
class Frame:
    """One frame of a stack: function and a short file name (line left out on purpose)."""

    func: str
    file: str

    def __str__(self) -> str:
        return f'{self.func} ({self.file})'


@dataclass(frozen=True)
class Stack:
    """A distinct stack and how many samples it had."""

    frames: tuple[Frame, ...]
    count: int


def _short(path: str) -> str:
    for marker in ('site-packages/', '/src/', '/lib/python'):
        at = path.rfind(marker)
        if at >= 0:
            tail = path[at + len(marker):]
            return tail.split('/', 1)[1] if marker == '/lib/python' and '/' in tail else tail
    return path


def _frame(text: str) -> Frame:
    m = _FRAME.match(text.strip())
    if m is None:
        return Frame(text.strip(), '')
    return Frame(m.group('func'), _short(m.group('file')))


def parse_raw(text: str) -> list[Stack]:
    """Parse a raw (collapsed) py-spy profile; lines that are not `stack COUNT` are skipped."""
    out: list[Stack] = []
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(' ')
        if not stack or not count.isdigit():
            continue
        out.append(Stack(tuple(_frame(f) for f in stack.split(';')), int(count)))
    return out


def top_functions(stacks: Iterable[Stack], n: int = 15) -> list[dict[str, object]]:
    """Return the n functions with most samples: self (leaf) and inclusive counts and shares."""
    own: dict[Frame, int] = {}
    incl: dict[Frame, int] = {}
    total = 0
    for s in stacks:
        total += s.count
        if s.frames:
            own[s.frames[-1]] = own.get(s.frames[-1], 0) + s.count
        for f in set(s.frames):  # recursion counts once per sample
            incl[f] = incl.get(f, 0) + s.count
    ranked = sorted(own.items(), key=lambda kv: (-kv[1], str(kv[0])))[:n]
    return [{'function': str(f), 'self_samples': c, 'self_share': round(c / total, 3),
             'inclusive_samples': incl[f], 'inclusive_share': round(incl[f] / total, 3)}
            for f, c in ranked]


def classify(frames: tuple[Frame, ...]) -> str:
    """Return a sample's role: 'callback', 'executor' or 'other'.

    Below the innermost frame of rclpy's executor, a frame outside rclpy means the executor
    is running the node's own callback (and whatever rclpy calls it makes, such as publish);
    none means the time is the executor's: waiting set-up, taking and deserialising messages,
    dispatching. A stack without the executor (start-up, another thread) is 'other'.
    """
    inner = -1
    for i, f in enumerate(frames):
        if f.file.endswith(_EXECUTOR_FILE):
            inner = i
    if inner < 0:
        return 'other'
    below = frames[inner + 1:]
    if any('rclpy/' not in f.file and f.file != '' for f in below):
        return 'callback'
    return 'executor'


def split_by_role(stacks: Iterable[Stack]) -> dict[str, int]:
    """Return samples per role (see classify) and their total."""
    out = {'callback': 0, 'executor': 0, 'other': 0}
    for s in stacks:
        out[classify(s.frames)] += s.count
    out['total'] = sum(out.values())
    return out
