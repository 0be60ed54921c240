"""Which of a robot's nodes are missing or not active: the agent's heartbeat of its robot.

The fleet agent watches the nodes of its robot (names relative to the robot's namespace) in
the ROS graph and the lifecycle state of its lifecycle nodes; the state message reports each
missing or inactive node as an error (kpai.nodeMissing / kpai.nodeInactive; FATAL for the
nodes the robot cannot drive without), so the fleet server and the dashboard show which.
During the start-up grace period a node not seen yet is kpai.nodeStarting (WARNING): the
fleet server gives such a robot no work until its nodes are up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ['NodeHealth', 'NodeWatch']


@dataclass(frozen=True)
class NodeHealth:
    """Missing nodes and (node, lifecycle state) of inactive ones, with the critical set."""

    missing: tuple[str, ...] = ()
    inactive: tuple[tuple[str, str], ...] = ()
    critical: frozenset[str] = field(default_factory=frozenset)
    starting: tuple[str, ...] = ()  # not seen yet during the start-up grace period


class NodeWatch:
    """Turn graph observations into NodeHealth, with a start-up grace and debouncing.

    A node counts as missing after `misses` observations in a row without it (discovery
    hiccups are not failures) and never during the first `grace_s` seconds, while the robot's
    nodes start. A lifecycle node is inactive when its reported state is not 'active'.
    """

    def __init__(self, watched: Iterable[str], *, lifecycle: Iterable[str] = (),
                 critical: Iterable[str] = (), grace_s: float = 10.0, misses: int = 2) -> None:
        self.watched = tuple(dict.fromkeys(n for n in watched if n))
        self.lifecycle = frozenset(lifecycle) & frozenset(self.watched)
        self.critical = frozenset(critical)
        if grace_s < 0 or misses < 1:
            raise ValueError(f'grace_s must be >= 0 and misses >= 1, got {grace_s}, {misses}')
        self.grace_s = grace_s
        self.misses = misses
        self._start: float | None = None
        self._absent: dict[str, int] = {}

    def observe(self, present: Iterable[str], lifecycle_states: Mapping[str, str],
                now: float) -> NodeHealth:
        """Take the node names now in the graph and the known lifecycle states at now."""
        if self._start is None:
            self._start = now
        seen = set(present)
        for name in self.watched:
            self._absent[name] = 0 if name in seen else self._absent.get(name, 0) + 1
        if now - self._start < self.grace_s:
            # the robot is still starting: not a fault yet, but not ready for work either
            return NodeHealth(critical=self.critical, starting=tuple(
                n for n in self.watched if n not in seen))
        missing = tuple(n for n in self.watched if self._absent[n] >= self.misses)
        inactive = tuple((n, lifecycle_states[n]) for n in self.watched
                         if n in self.lifecycle and n not in missing and n in lifecycle_states
                         and lifecycle_states[n] != 'active')
        return NodeHealth(missing, inactive, self.critical)
