"""Unit tests of the bridge's inference engine with fake pipelines (no ROS, no model)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from kpai_npu_bridge.engine import FrameResult, InferenceEngine, PipelineSpec


@dataclass
class Det:
    score: float
    label: str


@dataclass
class Timings:
    pre_ms: float = 1.0
    infer_ms: float = 2.0
    post_ms: float = 0.5


@dataclass
class Info:
    name: str


class FakePipeline:
    def __init__(self, spec: PipelineSpec, *, delay: float = 0.0, fail: bool = False) -> None:
        self.spec = spec
        self.delay = delay
        self.fail = fail
        self.closed = False
        self.model_sha256 = 'sha-' + spec.backend
        self.batches: list[int] = []

    @property
    def backend_info(self) -> Info:
        return Info(self.spec.backend)

    def infer(self, images: Sequence[np.ndarray]) -> tuple[list[list[Any]], Timings]:
        assert not self.closed, 'inference on a closed pipeline'
        if self.fail and images[0].shape[0] != 64:  # warm-up passes, real frames fail
            raise RuntimeError('device lost')
        time.sleep(self.delay)
        self.batches.append(len(images))
        return [[Det(0.9, self.spec.backend), Det(0.2, 'weak')] for _ in images], Timings()

    def close(self) -> None:
        self.closed = True


class Harness:
    def __init__(self, **kw: Any) -> None:
        self.results: list[FrameResult[int]] = []
        self.events: list[tuple[str, str]] = []
        self.opened: list[FakePipeline] = []
        self.fail_backends: set[str] = set()
        self.open_delay = 0.0
        self.lock = threading.Lock()
        opts = dict(cameras=1, max_batch=1, max_wait_s=0.0, fallback_after=3)
        opts.update(kw)
        self.engine: InferenceEngine[int] = InferenceEngine(
            opener=self.open, on_results=self.collect,
            on_event=lambda lvl, msg: self.events.append((lvl, msg)), **opts)

    def open(self, spec: PipelineSpec, progress: Any) -> FakePipeline:
        if spec.backend == 'missing':
            raise FileNotFoundError('no such model')
        progress('compiling', 0.5)
        time.sleep(self.open_delay)
        p = FakePipeline(spec, delay=0.005, fail=spec.backend in self.fail_backends)
        self.opened.append(p)
        return p

    def collect(self, results: list[FrameResult[int]]) -> None:
        with self.lock:
            self.results.extend(results)

    def metas(self) -> list[int]:
        with self.lock:
            return [r.meta for r in self.results]


def frame() -> np.ndarray:
    return np.zeros((48, 48, 3), np.uint8)


def wait(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.005)


def test_frames_inferred_with_meta_and_stats() -> None:
    h = Harness(score_threshold=0.5)
    assert h.engine.load(PipelineSpec('m.onnx', 'a')).success
    h.engine.start()
    for i in range(5):
        h.engine.submit(0, frame(), i)
        wait(lambda i=i: len(h.results) == i + 1)
    h.engine.close()
    assert h.metas() == [0, 1, 2, 3, 4]
    assert all([d.label for d in r.detections] == ['a'] for r in h.results)  # 0.2 filtered
    snap = h.engine.stats.snapshot()
    assert snap.frames_inferred == 5 and snap.frames_received == 5
    assert snap.infer.p50 == pytest.approx(2.0)
    assert snap.total.p50 > 0.0


def test_a_failing_result_handler_does_not_stop_the_worker() -> None:
    h = Harness()
    calls = {'n': 0}
    collect = h.collect

    def flaky(results: list[FrameResult[int]]) -> None:
        calls['n'] += 1
        if calls['n'] == 1:
            raise RuntimeError('publisher gone')
        collect(results)

    h.engine._on_results = flaky
    assert h.engine.load(PipelineSpec('m.onnx', 'a')).success
    h.engine.start()
    h.engine.submit(0, frame(), 0)
    wait(lambda: calls['n'] == 1)
    h.engine.submit(0, frame(), 1)
    wait(lambda: h.metas() == [1])
    assert h.engine.running
    assert 'publisher gone' in (h.engine.status().last_error or '')
    assert h.engine.stats.snapshot().errors == 1
    assert any(lvl == 'error' and 'deliver' in msg for lvl, msg in h.events)
    h.engine.close()


def test_load_failure_is_reported_not_raised() -> None:
    h = Harness()
    out = h.engine.load(PipelineSpec('m.onnx', 'missing'))
    assert not out.success and 'no such model' in out.message
    assert h.engine.status().spec is None


def test_hot_swap_under_stream_loses_no_frame() -> None:
    h = Harness(cameras=2, max_batch=2, max_wait_s=0.002)
    h.open_delay = 0.1  # a slow compile while frames keep coming
    assert h.engine.load(PipelineSpec('m.onnx', 'a')).success
    h.engine.start()
    sent = 0
    futures = []
    for i in range(120):
        cam = i % 2
        h.engine.submit(cam, frame(), i)
        sent += 1
        if i in (20, 60):
            futures.append(h.engine.load_async(PipelineSpec('m.onnx', 'b' if i == 20 else 'a')))
        time.sleep(0.004)
        if i in (40, 100):
            assert futures[-1].result(timeout=5).success
    wait(lambda: len(h.results) == sent)
    old = h.opened[:-1]
    assert all(p.closed for p in old) and not h.opened[-1].closed
    h.engine.close()
    assert sorted(h.metas()) == list(range(sent))
    labels = [r.detections[0].label for r in sorted(h.results, key=lambda r: r.meta)]
    assert 'b' in labels and labels[0] == 'a' and labels[-1] == 'a'
    assert h.engine.stats.snapshot().frames_dropped == 0


def test_fallback_after_consecutive_failures_and_return() -> None:
    h = Harness(fallback_after=3)
    h.fail_backends.add('npu')
    assert h.engine.load(PipelineSpec('m.onnx', 'npu')).success
    h.engine.start()
    i = 0
    while not h.results:
        h.engine.submit(0, frame(), i)
        i += 1
        time.sleep(0.01)
        assert i < 500
    st = h.engine.status()
    assert st.fallback.active and 'device lost' in st.fallback.reason
    assert st.spec == PipelineSpec('m.onnx', 'onnxruntime', '')
    assert st.requested == PipelineSpec('m.onnx', 'npu', '')
    assert h.results[0].detections[0].label == 'onnxruntime'
    assert h.engine.stats.snapshot().errors >= 3
    assert any(lvl == 'warn' and 'falling back' in msg for lvl, msg in h.events)
    # the requested backend still fails its warm-up? it only fails on real frames here,
    # so returning works and the failures start again
    h.fail_backends.clear()
    out = h.engine.return_from_fallback().result(timeout=5)
    assert out.success, out.message
    st = h.engine.status()
    assert not st.fallback.active and st.spec.backend == 'npu'
    h.engine.close()


def test_return_without_fallback_is_refused() -> None:
    h = Harness()
    h.engine.load(PipelineSpec('m.onnx', 'a'))
    out = h.engine.return_from_fallback().result(timeout=5)
    assert not out.success and 'not active' in out.message
    h.engine.close()


def test_compiling_status_visible_while_loading() -> None:
    h = Harness()
    h.open_delay = 0.3
    fut = h.engine.load_async(PipelineSpec('m.onnx', 'a'))
    wait(lambda: h.engine.status().compiling)
    assert 'compiling' in h.engine.status().compile_message
    assert fut.result(timeout=5).success
    assert not h.engine.status().compiling
    h.engine.close()
