"""Latency and throughput measurement of a backend or a whole pipeline."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np

from .pipeline import Pipeline

__all__ = ['LatencyStats', 'bench_pipeline', 'bench_tensor', 'measure_latency']


@dataclass(frozen=True)
class LatencyStats:
    """Latency percentiles (ms per call) and throughput (images per second) at a batch size."""

    batch_size: int
    iterations: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    throughput_fps: float

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def measure_latency(call: Callable[[], object], *, batch_size: int, iterations: int,
                    warmup: int = 2, max_seconds: float | None = None) -> LatencyStats:
    """Time call() iterations times (after warmup calls), stopping early after max_seconds."""
    if iterations < 1:
        raise ValueError('iterations must be >= 1')
    for _ in range(warmup):
        call()
    samples: list[float] = []
    started = time.perf_counter()
    for _ in range(iterations):
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
        if max_seconds is not None and time.perf_counter() - started > max_seconds:
            break
    ms = np.asarray(samples) * 1e3
    total = float(np.sum(samples))
    return LatencyStats(
        batch_size, len(samples), float(np.percentile(ms, 50)), float(np.percentile(ms, 95)),
        float(np.percentile(ms, 99)), float(ms.mean()),
        batch_size * len(samples) / total if total > 0 else float('inf'),
    )


def bench_tensor(pipeline: Pipeline, tensor: np.ndarray, batch_sizes: Sequence[int], *,
                 iterations: int, max_seconds: float | None = None) -> list[LatencyStats]:
    """Measure backend-only latency at each batch size from rows of a preprocessed tensor."""
    out = []
    for b in batch_sizes:
        rows = np.ascontiguousarray(np.resize(tensor, (b, *tensor.shape[1:])))
        out.append(measure_latency(partial(pipeline.run_tensor, rows), batch_size=b,
                                   iterations=iterations, max_seconds=max_seconds))
    return out


def bench_pipeline(pipeline: Pipeline, images: Sequence[np.ndarray], *, iterations: int
                   ) -> dict[str, float]:
    """Run infer() on the images repeatedly; return p50/p95 of each stage and the total (ms)."""
    stages: dict[str, list[float]] = {'pre': [], 'infer': [], 'post': [], 'total': []}
    pipeline.infer(images)
    for _ in range(iterations):
        _, t = pipeline.infer(images)
        stages['pre'].append(t.pre_ms)
        stages['infer'].append(t.infer_ms)
        stages['post'].append(t.post_ms)
        stages['total'].append(t.total_ms)
    result: dict[str, float] = {}
    for name, values in stages.items():
        result[f'{name}_p50_ms'] = float(np.percentile(values, 50))
        result[f'{name}_p95_ms'] = float(np.percentile(values, 95))
    result['images_per_s'] = len(images) * 1e3 / max(result['total_p50_ms'], 1e-9)
    return result
