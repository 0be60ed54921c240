"""Playback logic without ROS: time mapping, topic choice and QoS for republishing."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .bag_metadata import QosInfo
from .errors import DataError

__all__ = ['PlaybackClock', 'choose_topics', 'publisher_qos']


@dataclass(frozen=True)
class PlaybackClock:
    """Map recording time to wall time: wall = start_wall + (t - bag_start) / rate."""

    bag_start_ns: int
    start_wall: float
    rate: float = 1.0

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise DataError(f'rate must be > 0, not {self.rate}')

    def wall_for(self, log_time_ns: int) -> float:
        """Return the wall time (s, same clock as start_wall) to publish a message at."""
        return self.start_wall + (log_time_ns - self.bag_start_ns) / 1e9 / self.rate

    def bag_time(self, wall: float) -> int:
        """Return the recording time (ns) that corresponds to a wall time."""
        return self.bag_start_ns + int((wall - self.start_wall) * self.rate * 1e9)


def choose_topics(available: Iterable[str], names: Iterable[str] = (), regex: str = '',
                  exclude: str = '') -> list[str]:
    """Return the recorded topics to play: all, or those named or matching regex."""
    wanted = {n if n.startswith('/') else '/' + n for n in names if n}
    try:
        pattern = re.compile(regex) if regex else None
        skip = re.compile(exclude) if exclude else None
    except re.error as err:
        raise DataError(f'invalid topic regex: {err}') from err
    chosen = []
    for topic in sorted(available):
        if skip is not None and skip.search(topic):
            continue
        if (not wanted and pattern is None) or topic in wanted or (
                pattern is not None and pattern.search(topic)):
            chosen.append(topic)
    unknown = wanted - set(available)
    if unknown:
        raise DataError(f'topics not in the recording: {sorted(unknown)}')
    return chosen


def publisher_qos(offered: list[dict[str, Any]]) -> tuple[str, str]:
    """Return (reliability, durability) to republish with, from recorded offered QoS.

    Transient-local when any recorded publisher was (latched topics stay latched);
    reliable unless every recorded publisher was best effort.
    """
    profiles = [QosInfo(reliability=str(q.get('reliability', 'reliable')),
                        durability=str(q.get('durability', 'volatile'))) for q in offered]
    if not profiles:
        return 'reliable', 'volatile'
    best_effort = all(q.reliability == 'best_effort' for q in profiles)
    latched = any(q.durability == 'transient_local' for q in profiles)
    return ('best_effort' if best_effort else 'reliable',
            'transient_local' if latched else 'volatile')
