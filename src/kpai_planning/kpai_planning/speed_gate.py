"""The safety monitor's speed limit, failing closed: 0 unless a fresh, valid limit from it.

Shared by the controller and the mission executor. The limit is 0 (stop)
- until the first valid limit arrives (a robot whose safety monitor never starts stays put);
- when the last valid limit is older than the timeout (the monitor died or hangs);
- after an invalid limit (NaN, infinite, negative): it counts as no limit until a valid one;
- when the limit's source is wrong: nobody publishes it, or a node other than the expected
  safety monitor does (a stray `ros2 topic pub` must not lift a stop).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ['DEFAULT_TIMEOUT', 'SpeedLimitGate']

DEFAULT_TIMEOUT = 0.5  # s; the monitor publishes at 10 Hz, so five missed messages


@dataclass
class SpeedLimitGate:
    """Fail-closed speed limit: feed it limits and publisher names, ask for the limit now."""

    timeout: float = DEFAULT_TIMEOUT
    source: str = ''  # fully qualified node name expected to publish; '' = any publisher

    def __post_init__(self) -> None:
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError(f'speed limit timeout must be a positive number of seconds, '
                             f'got {self.timeout}')
        self._value = 0.0
        self._stamp: float | None = None
        self._rejected: float | None = None
        self._publishers: tuple[str, ...] | None = None
        self.rejected = 0

    def update(self, value: float, now: float) -> bool:
        """Take a limit received at now; return False (and stop) when it is not valid."""
        if not (math.isfinite(value) and value >= 0.0):
            self.rejected += 1
            self._rejected = value
            self._stamp = None
            return False
        self._value, self._stamp, self._rejected = float(value), now, None
        return True

    def set_publishers(self, names: Sequence[str]) -> None:
        """Record the fully qualified names of the nodes publishing the limit."""
        self._publishers = tuple(names)

    def limit(self, now: float) -> float:
        """Return the speed limit in force at now (0 unless fresh, valid and from the source)."""
        return self._value if self.reason(now) is None else 0.0

    def reason(self, now: float) -> str | None:
        """Return why the robot must stop now, or None when the limit is in force."""
        if self._rejected is not None:
            return f'invalid speed limit {self._rejected!r} received'
        if self._stamp is None:
            return 'no speed limit received from the safety monitor yet'
        age = now - self._stamp
        if age > self.timeout:
            return f'speed limit is stale ({age:.2f} s old, timeout {self.timeout:.2f} s)'
        if self._publishers is not None:
            if not self._publishers:
                return 'nobody publishes the speed limit'
            if self.source:
                others = [n for n in self._publishers if n != self.source]
                if self.source not in self._publishers:
                    return f'the speed limit is not published by {self.source}'
                if others:
                    return (f'the speed limit is also published by {", ".join(others)}, '
                            f'not only by {self.source}')
        return None
