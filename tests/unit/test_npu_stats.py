"""Unit tests of the rolling-window inference statistics."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from kpai_npu_bridge.stats import InferenceStats, Percentiles


class FakeClock:
    def __init__(self) -> None:
        self.t = 50.0

    def __call__(self) -> float:
        return self.t


def test_percentiles_of_known_values() -> None:
    p = Percentiles.of(float(v) for v in range(1, 101))
    assert p.p50 == pytest.approx(50.5)
    assert p.p95 == pytest.approx(np.percentile(np.arange(1, 101), 95))
    assert p.p99 == pytest.approx(99.01)
    assert Percentiles.of([]) == Percentiles(0.0, 0.0, 0.0)


def test_stage_total_and_overhead_percentiles() -> None:
    clock = FakeClock()
    s = InferenceStats(window_s=10.0, clock=clock)
    for i in range(10):
        clock.t += 0.1
        s.record_batch(pre_ms=1.0, infer_ms=10.0 + i, post_ms=0.5,
                       totals_ms=[12.0 + i, 13.0 + i])
    snap = s.snapshot()
    assert snap.pre.p50 == pytest.approx(1.0)
    assert snap.infer.p50 == pytest.approx(14.5)
    assert snap.post.p99 == pytest.approx(0.5)
    assert snap.total.p50 == pytest.approx(np.percentile(
        [12.0 + i for i in range(10)] + [13.0 + i for i in range(10)], 50))
    # overhead = total - (pre + infer + post): 0.5 and 1.5 ms for every batch
    assert snap.overhead.p50 == pytest.approx(1.0)
    assert snap.mean_batch_size == pytest.approx(2.0)
    assert snap.frames_inferred == 20


def test_fps_over_window_and_old_samples_expire() -> None:
    clock = FakeClock()
    s = InferenceStats(window_s=2.0, clock=clock)
    for _ in range(100):  # 50 Hz for 2 s, one frame per batch
        clock.t += 0.02
        s.record_batch(pre_ms=1, infer_ms=1, post_ms=1, totals_ms=[5.0])
    assert s.snapshot().fps == pytest.approx(50.0)
    clock.t += 1.0  # the first half of the samples leaves the window
    snap = s.snapshot()
    assert snap.fps == pytest.approx(25.0, rel=0.05)
    clock.t += 5.0
    snap = s.snapshot()
    assert snap.fps == 0.0
    assert snap.infer == Percentiles()
    assert snap.frames_inferred == 100  # counters are not windowed


def test_fps_right_after_start_uses_elapsed_time() -> None:
    clock = FakeClock()
    s = InferenceStats(window_s=10.0, clock=clock)
    clock.t += 0.5
    s.record_batch(pre_ms=0, infer_ms=0, post_ms=0, totals_ms=[1.0] * 5)
    assert s.snapshot().fps == pytest.approx(10.0)


def test_counters_and_reset() -> None:
    s = InferenceStats()
    s.add_received(3)
    s.add_dropped()
    s.add_rejected(2)
    s.add_error()
    snap = s.snapshot()
    assert (snap.frames_received, snap.frames_dropped, snap.frames_rejected, snap.errors) == (
        3, 1, 2, 1)
    s.reset()
    snap = s.snapshot()
    assert (snap.frames_received, snap.frames_dropped, snap.frames_rejected, snap.errors) == (
        0, 0, 0, 0)


def test_thread_safe_counting() -> None:
    s = InferenceStats()

    def work() -> None:
        for _ in range(1000):
            s.add_received()
            s.record_batch(pre_ms=1, infer_ms=1, post_ms=1, totals_ms=[3.0])

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    snap = s.snapshot()
    assert snap.frames_received == 4000
    assert snap.frames_inferred == 4000


def test_invalid_window_rejected() -> None:
    with pytest.raises(ValueError):
        InferenceStats(window_s=0.0)
