"""Staged start-up: start the next process only while few are still busy starting.

A robot node in Python spends its first seconds importing and configuring at full CPU; 37 of
them started at once on 2 cores starve each other (and the simulation) for minutes. With a
limit K, the supervisor starts processes in launch order while fewer than K are *starting*:
a process is starting until the time its main thread spent running *or waiting to run* over
the last window falls below a share of it (its start-up work is done; a busy node like the
simulator settles below it too), it exits, or it has been starting for `settle_timeout`
seconds. Waiting time counts: on a loaded machine a starting process gets little CPU, but
it still wants all of it (from /proc/<pid>/schedstat). This only changes timing: every process
still starts, in order, exactly as ros2 launch would start it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ['StartGate', 'process_demand_seconds']


def process_demand_seconds(pid: int, *, proc_root: str = '/proc') -> float | None:
    """Return the seconds pid's main thread ran plus waited to run (None when it is gone)."""
    try:
        run_ns, wait_ns = Path(proc_root, str(pid), 'schedstat').read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return (int(run_ns) + int(wait_ns)) / 1e9


@dataclass
class _Watch:
    started: float
    last_t: float
    last_cpu: float


@dataclass
class StartGate:
    """Decide when the next process may start (limit 0: all at once)."""

    limit: int
    window: float = 0.5          # s of CPU use looked at
    idle_share: float = 0.6      # below this share of one core, start-up counts as done
    settle_timeout: float = 20.0
    cpu_of: Callable[[int], float | None] = process_demand_seconds
    _starting: dict[int, _Watch] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.limit < 0:
            raise ValueError(f'the start limit must be >= 0, got {self.limit}')

    def started(self, pid: int, now: float) -> None:
        """Note that pid was just started."""
        if self.limit:
            self._starting[pid] = _Watch(now, now, self.cpu_of(pid) or 0.0)

    def may_start(self, now: float) -> bool:
        """Return True when another process may start now."""
        if not self.limit:
            return True
        for pid, w in list(self._starting.items()):
            if now - w.started >= self.settle_timeout:
                del self._starting[pid]
                continue
            if now - w.last_t < self.window:
                continue
            cpu = self.cpu_of(pid)
            if cpu is None:  # exited
                del self._starting[pid]
                continue
            share = (cpu - w.last_cpu) / (now - w.last_t)
            w.last_t, w.last_cpu = now, cpu
            if share < self.idle_share:
                del self._starting[pid]
        return len(self._starting) < self.limit

    @property
    def starting(self) -> int:
        """Return how many processes are still starting."""
        return len(self._starting)
