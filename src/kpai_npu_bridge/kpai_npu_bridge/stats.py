"""Rolling-window inference statistics: stage latency percentiles, fps and counters."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ['InferenceStats', 'Percentiles', 'StatsSnapshot']


@dataclass(frozen=True)
class Percentiles:
    """Latency percentiles in milliseconds (0.0 when there were no samples)."""

    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0

    @classmethod
    def of(cls, values: Iterable[float]) -> Percentiles:
        """Compute p50/p95/p99 of values (empty: all zero)."""
        arr = np.fromiter(values, dtype=np.float64)
        if arr.size == 0:
            return cls()
        p50, p95, p99 = np.percentile(arr, [50.0, 95.0, 99.0])
        return cls(float(p50), float(p95), float(p99))


@dataclass(frozen=True)
class StatsSnapshot:
    """Statistics over the rolling window plus counters since start (or the last reset)."""

    pre: Percentiles
    infer: Percentiles
    post: Percentiles
    total: Percentiles
    overhead: Percentiles
    fps: float
    mean_batch_size: float
    frames_received: int
    frames_inferred: int
    frames_dropped: int
    frames_rejected: int
    errors: int
    window_s: float


@dataclass(frozen=True)
class _Batch:
    time: float
    pre_ms: float
    infer_ms: float
    post_ms: float
    totals_ms: tuple[float, ...]


class InferenceStats:
    """Thread-safe collector of per-batch timings over the last window_s seconds.

    Stage latencies (pre, infer, post) are per batch; total is per frame, from receipt to
    publication; overhead is per frame, total minus the batch's pre + infer + post, i.e. what
    the bridge adds around the model (waiting for a batch or a busy worker, conversion,
    publishing).
    """

    def __init__(self, *, window_s: float = 10.0, max_batches: int = 20000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if window_s <= 0.0:
            raise ValueError(f'window_s must be > 0, got {window_s}')
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._batches: deque[_Batch] = deque(maxlen=max_batches)
        self._start = clock()
        self._received = 0
        self._inferred = 0
        self._dropped = 0
        self._rejected = 0
        self._errors = 0

    def record_batch(self, *, pre_ms: float, infer_ms: float, post_ms: float,
                     totals_ms: Sequence[float], now: float | None = None) -> None:
        """Record one inferred batch: its stage times and each frame's total latency."""
        t = self._clock() if now is None else now
        with self._lock:
            self._batches.append(_Batch(t, pre_ms, infer_ms, post_ms, tuple(totals_ms)))
            self._inferred += len(totals_ms)

    def add_received(self, n: int = 1) -> None:
        """Count frames received."""
        with self._lock:
            self._received += n

    def add_dropped(self, n: int = 1) -> None:
        """Count frames replaced by a newer one before inference."""
        with self._lock:
            self._dropped += n

    def add_rejected(self, n: int = 1) -> None:
        """Count frames rejected as bad input."""
        with self._lock:
            self._rejected += n

    def add_error(self, n: int = 1) -> None:
        """Count backend failures."""
        with self._lock:
            self._errors += n

    def reset(self) -> None:
        """Forget every sample and counter."""
        with self._lock:
            self._batches.clear()
            self._start = self._clock()
            self._received = self._inferred = self._dropped = 0
            self._rejected = self._errors = 0

    def snapshot(self, now: float | None = None) -> StatsSnapshot:
        """Return percentiles and fps over the window ending now, and the counters."""
        t = self._clock() if now is None else now
        lo = t - self.window_s
        with self._lock:
            while self._batches and self._batches[0].time < lo:
                self._batches.popleft()
            batches = list(self._batches)
            counters = (self._received, self._inferred, self._dropped, self._rejected,
                        self._errors)
            span = min(self.window_s, max(t - self._start, 1e-9))
        frames = sum(len(b.totals_ms) for b in batches)
        overhead = [tot - (b.pre_ms + b.infer_ms + b.post_ms)
                    for b in batches for tot in b.totals_ms]
        return StatsSnapshot(
            pre=Percentiles.of(b.pre_ms for b in batches),
            infer=Percentiles.of(b.infer_ms for b in batches),
            post=Percentiles.of(b.post_ms for b in batches),
            total=Percentiles.of(tot for b in batches for tot in b.totals_ms),
            overhead=Percentiles.of(overhead),
            fps=frames / span,
            mean_batch_size=frames / len(batches) if batches else 0.0,
            frames_received=counters[0],
            frames_inferred=counters[1],
            frames_dropped=counters[2],
            frames_rejected=counters[3],
            errors=counters[4],
            window_s=span,
        )
