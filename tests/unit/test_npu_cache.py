"""Compiled-artifact cache: keys, misses, hits and the backends that use it."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from kpai_npu_bridge.backends import create_backend
from kpai_npu_bridge.cache import ArtifactCache, CacheKey
from kpai_npu_bridge.errors import ModelLoadError
from kpai_npu_bridge.models import build_constant_detector


def test_get_or_build_misses_once_then_hits(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    key = CacheKey('a' * 64, 'vendor', '1.0', 'NPU0', {'precision': 'int8'})
    builds: list[Path] = []
    events: list[tuple[str, float]] = []

    def build(out: Path) -> None:
        builds.append(out)
        out.write_bytes(b'blob')

    first, hit = cache.get_or_build(key, 'model.bin', build,
                                    progress=lambda m, f: events.append((m, f)))
    assert not hit and first.read_bytes() == b'blob' and len(builds) == 1
    assert events[0][1] == 0.0 and 'compiling' in events[0][0] and events[-1][1] == 1.0
    second, hit = cache.get_or_build(key, 'model.bin', build)
    assert hit and second == first and len(builds) == 1
    assert (cache.hits, cache.misses) == (1, 1)
    assert cache.entries()[0]['device'] == 'NPU0'
    # Any part of the key changing gives a different entry.
    for other in (CacheKey('b' * 64, 'vendor', '1.0', 'NPU0', {'precision': 'int8'}),
                  CacheKey('a' * 64, 'vendor', '1.1', 'NPU0', {'precision': 'int8'}),
                  CacheKey('a' * 64, 'vendor', '1.0', 'NPU1', {'precision': 'int8'}),
                  CacheKey('a' * 64, 'vendor', '1.0', 'NPU0', {'precision': 'fp16'})):
        assert other.digest() != key.digest()
        assert cache.lookup(other, 'model.bin') is None
    assert cache.clear() == 1 and cache.lookup(key, 'model.bin') is None


def test_slow_compile_reports_heartbeats(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path, heartbeat_s=0.02)
    events: list[str] = []
    done = threading.Event()

    def slow(out: Path) -> None:
        done.wait(0.3)
        out.write_bytes(b'x')

    cache.get_or_build(CacheKey('d' * 64, 'slow', '1', 'cpu'), 'a.bin', slow,
                       progress=lambda m, f: events.append(m))
    assert events[0].startswith('slow: compiling') and events[-1].startswith('slow: compiled')
    assert any('still compiling' in e for e in events[1:-1])


def test_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    key = CacheKey('c' * 64, 'vendor', '1.0', 'cpu')

    def broken(out: Path) -> None:
        out.write_bytes(b'half')
        raise ModelLoadError('compiler crashed')

    with pytest.raises(ModelLoadError):
        cache.get_or_build(key, 'model.bin', broken)
    with pytest.raises(ModelLoadError, match='did not write'):
        cache.get_or_build(key, 'model.bin', lambda out: None)
    assert cache.lookup(key, 'model.bin') is None
    assert list((tmp_path / 'vendor').iterdir()) == []


@pytest.mark.parametrize(('backend', 'artifact'), [('onnxruntime', 'optimized.onnx'),
                                                   ('openvino', 'compiled.blob')])
def test_backend_compiles_once_and_reuses_the_artifact(backend: str, artifact: str,
                                                       tmp_path: Path) -> None:
    model = tmp_path / 'det.onnx'
    build_constant_detector(model, boxes=[(1, 2, 3, 4, 0.5, 0)], num_classes=1, input_size=32)
    cache = ArtifactCache(tmp_path / 'cache')
    outputs = []
    for _ in range(2):
        impl = create_backend(backend)
        impl.load(model, cache=cache)
        outputs.append(impl.run({'images': np.zeros((1, 3, 32, 32), np.float32)})[0])
        impl.close()
    assert (cache.misses, cache.hits) == (1, 1)
    (entry,) = cache.entries()
    assert entry['backend'] == backend and entry['artifact'] == artifact
    assert Path(entry['path'], artifact).stat().st_size > 0
    np.testing.assert_array_equal(outputs[0], outputs[1])
    # Different options are a different artifact.
    impl = create_backend(backend)
    option = ({'graph_optimization_level': 'basic'} if backend == 'onnxruntime'
              else {'performance_hint': 'THROUGHPUT'})
    impl.load(model, cache=cache, options=option)
    impl.close()
    # onnxruntime always saves the portable 'extended' graph, whatever level the session
    # then uses, so only OpenVINO's config changes the artifact.
    expected = 2 if backend == 'openvino' else 1
    assert cache.misses == expected and len(cache.entries()) == expected
