"""The manifest's cpu_tail: the backend runs the model's head, ONNX Runtime its tail on the CPU."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from kpai_npu_bridge.aot import compile_model
from kpai_npu_bridge.errors import ManifestError
from kpai_npu_bridge.manifest import load_manifest, manifest_from_dict, write_manifest
from kpai_npu_bridge.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / 'src' / 'kpai_data' / 'models' / 'kpai_detector.onnx'


def _head_outputs(path: Path) -> list[str]:
    """The shipped detector's raw per-level box and class maps (before decoding)."""
    graph = onnx.load(str(path)).graph
    return [n.output[0] for n in graph.node if n.op_type == 'Conv'
            and ('/box.' in n.output[0] or '/cls.' in n.output[0])]


def _with_tail(tmp: Path, cut: list[str]) -> Path:
    model = tmp / 'det.onnx'
    shutil.copy(SHIPPED, model)
    write_manifest(replace(load_manifest(SHIPPED), cpu_tail=tuple(cut)), model)
    return model


@pytest.fixture(scope='module')
def frames() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(3)]


@pytest.mark.parametrize('backend', ['onnxruntime', 'openvino'])
def test_head_on_the_backend_and_tail_on_cpu_give_the_whole_models_outputs(
        backend: str, tmp_path: Path, frames: list[np.ndarray]) -> None:
    cut = _head_outputs(SHIPPED)
    assert len(cut) == 6
    model = _with_tail(tmp_path, cut)
    cache = tmp_path / 'cache'
    whole = Pipeline.open(SHIPPED, backend=backend, cache_dir=cache)
    split = Pipeline.open(model, backend=backend, cache_dir=cache)
    try:
        assert 'tail on CPU onnxruntime' in split.backend_info.device
        assert [o.name for o in split.backend.outputs()] == ['output0']
        tensor, metas = whole.preprocess(frames)
        want, got = whole.run_tensor(tensor), split.run_tensor(tensor)
        assert len(got) == 1 and got[0].shape == want[0].shape
        assert np.allclose(got[0], want[0], rtol=1e-4, atol=1e-3)
        dets_want = whole.postprocess(want, metas)
        dets_got = split.postprocess(got, metas)
        assert [len(d) for d in dets_got] == [len(d) for d in dets_want]
    finally:
        whole.close()
        split.close()
    parts = list((cache / 'partitions').iterdir())
    assert len(parts) == 1 and {p.name for p in parts[0].iterdir()} == {
        'head.onnx', 'head.yaml', 'tail.onnx'}
    head = onnx.load(str(parts[0] / 'head.onnx')).graph
    assert sorted(o.name for o in head.output) == sorted(cut)
    assert 'Softplus' not in {n.op_type for n in head.node}  # decoding is not in the head
    tail_ops = {n.op_type for n in onnx.load(str(parts[0] / 'tail.onnx')).graph.node}
    assert 'Softplus' in tail_ops and 'Conv' not in tail_ops  # decoding only


def test_ahead_of_time_compilation_builds_the_head_the_bridge_then_loads(
        tmp_path: Path) -> None:
    model = _with_tail(tmp_path, _head_outputs(SHIPPED))
    cache = tmp_path / 'ship'
    result = compile_model('openvino', model, cache_dir=cache)
    assert not result.cache_hit and result.artifact.is_file()
    again = compile_model('openvino', model, cache_dir=cache)
    assert again.cache_hit and again.artifact == result.artifact
    pipe = Pipeline.open(model, backend='openvino', cache_dir=cache)
    try:
        entries = [p for p in (cache / 'openvino').iterdir() if not p.name.startswith('.')]
        assert len(entries) == 1  # the bridge found the shipped head artifact
    finally:
        pipe.close()


def test_bad_cuts_are_refused_with_the_reason(tmp_path: Path) -> None:
    boxes_only = [c for c in _head_outputs(SHIPPED) if '/box.' in c]
    for cut, reason in (
            (['no/such/tensor'], r"no node of det.onnx produces \['no/such/tensor'\]"),
            (['output0'], 'are model outputs'),
            (boxes_only, r'the cut does not separate the graph: the tail also needs')):
        d = tmp_path / str(abs(hash(tuple(cut))))
        d.mkdir()
        with pytest.raises(ManifestError, match=reason):
            Pipeline.open(_with_tail(d, cut), backend='onnxruntime', cache_dir=d / 'cache')


def test_the_manifest_field_is_validated_and_written() -> None:
    data = yaml.safe_load(SHIPPED.with_suffix('.yaml').read_text())
    for bad in ('x', [''], ['a', 'a'], [1]):
        with pytest.raises(ManifestError, match='cpu_tail'):
            manifest_from_dict({**data, 'cpu_tail': bad})
    assert manifest_from_dict({**data, 'cpu_tail': ['a', 'b']}).cpu_tail == ('a', 'b')
    assert manifest_from_dict(data).cpu_tail == ()
