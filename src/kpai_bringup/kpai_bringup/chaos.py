"""Chaos for the demo: kill -9 a random node of a random robot, time its recovery.

Pure: finding the robots' node processes under the launcher in /proc, choosing victims,
and the tally (kills, recoveries, time to recover). The demo's ROS monitor says when a node
is back (in the graph again and, for lifecycle nodes, active).
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ['ROBOT_NODES', 'LIFECYCLE_NODES', 'ChaosMonkey', 'ChaosTally', 'Kill', 'NodeProc',
           'robot_node_processes']

# the nodes robot.launch.yaml starts for each robot (all respawn); lifecycle ones activate
ROBOT_NODES = ('npu_bridge', 'tracker', 'object_localizer', 'safety_monitor', 'annotator',
               'fiducials', 'mission_executor', 'fleet_agent')
LIFECYCLE_NODES = frozenset({'npu_bridge', 'fleet_agent'})


@dataclass(frozen=True)
class NodeProc:
    """A node process of a robot: its pid, robot (namespace) and node name."""

    pid: int
    robot: str
    node: str


def _children(proc_root: Path) -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in proc_root.iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / 'stat').read_text()
        except OSError:
            continue
        # the command name (field 2) may hold spaces and parentheses: split after its end
        ppid = int(stat[stat.rfind(')') + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d.name))
    return kids


def robot_node_processes(root_pid: int, *, proc_root: str = '/proc') -> list[NodeProc]:
    """Return the robot node processes descending from root_pid (`__ns:=/robotN`, `__node:=`).

    A Python node of the PyPI wheels re-executes itself once (the wheels' bootstrap), so the
    deepest process with the node's arguments is the one that runs it.
    """
    root = Path(proc_root)
    kids = _children(root)
    found: dict[tuple[str, str], NodeProc] = {}
    stack = [root_pid]
    while stack:
        pid = stack.pop()
        stack.extend(kids.get(pid, ()))
        try:
            argv = (root / str(pid) / 'cmdline').read_bytes().split(b'\0')
        except OSError:
            continue
        args = [a.decode(errors='replace') for a in argv]
        ns = next((a[len('__ns:='):] for a in args if a.startswith('__ns:=')), '')
        node = next((a[len('__node:='):] for a in args if a.startswith('__node:=')), '')
        robot = ns.strip('/')
        if robot and node and '/' not in robot:
            found[(robot, node)] = NodeProc(pid, robot, node)  # deeper processes come later
    return sorted(found.values(), key=lambda p: (p.robot, p.node))


@dataclass
class Kill:
    """One kill: what, when (monotonic s), and when it was back (None while not)."""

    robot: str
    node: str
    pid: int
    at: float
    recovered_at: float | None = None
    wall: float = 0.0  # time.time() of the kill, to match fleet records

    @property
    def time_to_recover(self) -> float | None:
        return None if self.recovered_at is None else self.recovered_at - self.at


@dataclass
class ChaosTally:
    """Kills and recoveries of a chaos run."""

    kills: list[Kill] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """Return counts and time-to-recover figures (p50, max) overall and per node kind."""
        ttr = [k.time_to_recover for k in self.kills if k.time_to_recover is not None]
        per_kind: dict[str, dict[str, object]] = {}
        for kind in sorted({k.node for k in self.kills}):
            ks = [k for k in self.kills if k.node == kind]
            times = [k.time_to_recover for k in ks if k.time_to_recover is not None]
            per_kind[kind] = {'kills': len(ks), 'recoveries': len(times),
                              'ttr_max_s': round(max(times), 2) if times else None}
        return {'kills': len(self.kills), 'recoveries': len(ttr),
                'ttr_p50_s': round(statistics.median(ttr), 2) if ttr else None,
                'ttr_max_s': round(max(ttr), 2) if ttr else None, 'by_node': per_kind,
                'events': [{'robot': k.robot, 'node': k.node, 'wall': round(k.wall, 3),
                            'ttr_s': None if k.time_to_recover is None
                            else round(k.time_to_recover, 2)} for k in self.kills]}


class ChaosMonkey:
    """Every interval_s kill -9 a random robot node; ask is_back until each one recovered."""

    def __init__(self, interval_s: float, *, rng: random.Random,
                 nodes: Iterable[str] = ROBOT_NODES,
                 kill: Callable[[int], None] | None = None) -> None:
        if not interval_s > 0:
            raise ValueError(f'chaos interval must be > 0 s, got {interval_s}')
        self.interval_s = interval_s
        self.rng = rng
        self.nodes = tuple(nodes)
        self.tally = ChaosTally()
        self._kill = kill or (lambda pid: os.kill(pid, signal.SIGKILL))
        self._next: float | None = None

    def step(self, now: float, procs: list[NodeProc],
             is_back: Callable[[Kill, list[NodeProc]], bool], *, kill: bool = True
             ) -> Kill | None:
        """Check recoveries; kill one node when the interval is up; return the new kill."""
        for k in self.tally.kills:
            if k.recovered_at is None and is_back(k, procs):
                k.recovered_at = now
        if not kill:
            return None
        if self._next is None:
            self._next = now + self.interval_s
        if now < self._next:
            return None
        self._next = now + self.interval_s
        # one victim at a time per robot: not one whose last kill has not recovered yet
        pending = {(k.robot, k.node) for k in self.tally.kills if k.recovered_at is None}
        victims = [p for p in procs if p.node in self.nodes and (p.robot, p.node) not in pending]
        if not victims:
            return None
        v = self.rng.choice(victims)
        try:
            self._kill(v.pid)
        except ProcessLookupError:
            return None
        victim = Kill(v.robot, v.node, v.pid, now, wall=time.time())
        self.tally.kills.append(victim)
        return victim
