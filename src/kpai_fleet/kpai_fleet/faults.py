"""Count contained failures by kind and report them at most once per kind per interval."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

__all__ = ['FaultLog', 'exception_kind']

Report = Callable[[str], None]


def exception_kind(err: BaseException) -> str:
    """Return the metrics kind of an unexpected exception, e.g. ``error:RecursionError``."""
    return f'error:{type(err).__name__}'


class FaultLog:
    """Thread-safe fault counters; report(line) is called rate-limited, one line per kind.

    The library never logs by itself: the owner passes `report` (a logger method, a ROS
    logger) and gets one line per kind every `interval_s` at most, naming how many more of
    that kind were suppressed since the last line. The counters stay exact.
    """

    def __init__(self, report: Report | None = None, *, interval_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.report = report
        self.interval_s = interval_s
        self.counts: Counter[str] = Counter()
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, kind: str, detail: str = '') -> None:
        """Count one fault of kind; report it unless one of that kind was reported lately."""
        now = self._clock()
        with self._lock:
            self.counts[kind] += 1
            last = self._last.get(kind)
            if last is not None and now - last < self.interval_s:
                self._suppressed[kind] += 1
                return
            self._last[kind] = now
            more = self._suppressed.pop(kind, 0)
        if self.report is not None:
            tail = f' (+{more} more of this kind suppressed)' if more else ''
            try:
                self.report(f'{kind}: {detail[:300]}{tail}')
            except Exception:  # noqa: BLE001 - a broken log sink must not break the caller
                pass

    def snapshot(self) -> dict[str, int]:
        """Return a copy of the counters."""
        with self._lock:
            return dict(self.counts)
