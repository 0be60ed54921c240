"""The NPU bridge benchmark's raw loop runs at tiny scale (the full benchmark is not a test)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from kpai_npu_bridge.models import build_yolov8n_like

BENCH = Path(__file__).resolve().parents[2] / 'bench' / 'npu_bridge.py'


def _bench_module():
    spec = importlib.util.spec_from_file_location('bench_npu_bridge', BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_raw_loop_measures_fps_and_latency(tmp_path: Path) -> None:
    bench = _bench_module()
    frames = bench.make_frames(3)
    assert len(frames) == 3 and frames[0].shape == (480, 640, 3)
    assert not (frames[0] == frames[1]).all()
    model = tmp_path / 'tiny.onnx'
    build_yolov8n_like(model, 64, width=0.25)
    out = bench.raw_loop(model, {'intra_op_num_threads': 1}, 0.2, tmp_path / 'cache')
    assert out['frames'] >= 5
    assert out['fps'] > 0 and out['latency_p50_ms'] > 0
    assert abs(out['fps'] * out['latency_p50_ms'] / 1000.0 - 1.0) < 0.8
