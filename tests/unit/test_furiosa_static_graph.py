"""The Furiosa compile path's ONNX -> torch lowering, checked against ONNX Runtime.

The RNGD compiler traces a torch module; kpai_npu_furiosa.static_graph builds that module from
the static ONNX graph (batch fixed and shape arithmetic folded by backend.static_onnx). These
tests run in the stack's own environment (torch CPU, onnxruntime), no vendor toolchain:
every lowering must give ONNX Runtime's outputs, and what it cannot lower exactly it refuses
by name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from kpai_npu_bridge.errors import ModelLoadError
from kpai_npu_bridge.models import build_color_classifier, build_yolov8n_like
from onnx import TensorProto, helper, numpy_helper

torch = pytest.importorskip('torch')  # the stack's training extra; the worker's env has it

from kpai_npu_furiosa.backend import static_onnx  # noqa: E402
from kpai_npu_furiosa.static_graph import (  # noqa: E402
    NotStaticError,
    StaticGraphModule,
    UnsupportedOperatorError,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / 'src' / 'kpai_data' / 'models' / 'kpai_detector.onnx'


def _reference(path: Path, x: np.ndarray) -> list[np.ndarray]:
    sess = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    return sess.run(None, {sess.get_inputs()[0].name: x})


def _lowered(path: Path, x: np.ndarray, **kw: int) -> list[np.ndarray]:
    module = StaticGraphModule(onnx.load(str(path)), **kw).eval()
    with torch.no_grad():
        return [t.numpy() for t in module(torch.from_numpy(x))]


def _assert_close(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        scale = max(1.0, float(np.abs(w).max()))
        assert float(np.abs(g - w).max()) <= 1e-5 * scale, (g.ravel()[:5], w.ravel()[:5])


@pytest.mark.parametrize('which', ['shipped detector', 'yolov8n-shaped', 'colour classifier'])
def test_lowering_matches_onnxruntime(which: str, tmp_path: Path) -> None:
    if which == 'shipped detector':
        src, shape = SHIPPED, [1, 3, 224, 288]
    elif which == 'yolov8n-shaped':
        src, shape = tmp_path / 'y.onnx', [1, 3, 96, 96]
        build_yolov8n_like(src, 96, width=0.25)
    else:
        src, shape = tmp_path / 'c.onnx', [1, 3, 32, 32]
        build_color_classifier(src)
    static = static_onnx(src, tmp_path / 'static.onnx', shape)
    graph = onnx.load(str(static))
    dims = [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == shape
    folded = {'Shape', 'Range', 'ConstantOfShape', 'Expand', 'Gather', 'Cast'}
    assert not folded & {n.op_type for n in graph.graph.node}  # shape arithmetic is constant
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    _assert_close(_lowered(static, x), _reference(src, x))


def test_silu_pairs_become_one_operator_and_prefixes_return_their_frontier(
        tmp_path: Path) -> None:
    static = static_onnx(SHIPPED, tmp_path / 'static.onnx', [1, 3, 224, 288])
    model = onnx.load(str(static))
    full = StaticGraphModule(model)
    sigmoids = sum(n.op_type == 'Sigmoid' for n in model.graph.node)
    fused = sum(name.startswith('kpai.Silu') for name in full.node_names)
    assert fused >= 20 and full.node_count == len(model.graph.node) - fused
    # the class scores' sigmoid feeds a Concat, not x * sigmoid(x): it stays
    assert sum(name.startswith('Sigmoid') for name in full.node_names) == sigmoids - fused
    x = np.random.default_rng(2).random([1, 3, 224, 288], dtype=np.float32)
    for k in (1, 2, 11, full.node_count // 2):
        prefix = StaticGraphModule(model, upto=k)
        assert prefix.node_names == full.node_names[:k]
        outs = _lowered(static, x, upto=k)
        # every returned tensor is one ONNX Runtime computes for the same input
        extra = onnx.load(str(static))
        extra.graph.output.extend(helper.make_empty_tensor_value_info(n)
                                  for n in prefix.output_names)
        del extra.graph.output[:len(model.graph.output)]
        path = tmp_path / f'prefix{k}.onnx'
        onnx.save(extra, str(path))
        _assert_close(outs, _reference(path, x))
    # the first residual block (nodes 5..11) cut before its Add: the prefix returns the block's
    # input, which the Add still needs, and its last SiLU
    cut = StaticGraphModule(model, upto=10)
    assert len(cut.output_names) == 2 and full.node_names[10].startswith("Add '")
    with pytest.raises(ValueError, match='upto must be in'):
        StaticGraphModule(model, upto=0)


def _graph(nodes: list[onnx.NodeProto], inits: dict[str, np.ndarray], in_shape: list[int],
           out: str = 'y', opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)])


@pytest.mark.parametrize(('ctm', 'nearest', 'scale'), [
    ('half_pixel', 'round_prefer_floor', 2), ('half_pixel', 'round_prefer_floor', 3),
    ('pytorch_half_pixel', 'round_prefer_ceil', 4), ('asymmetric', 'floor', 3)])
def test_exact_nearest_resizes_match_onnxruntime(ctm: str, nearest: str, scale: int,
                                                 tmp_path: Path) -> None:
    model = _graph([helper.make_node('Resize', ['x', '', 's'], ['y'], mode='nearest',
                                     coordinate_transformation_mode=ctm,
                                     nearest_mode=nearest)],
                   {'s': np.array([1, 1, scale, scale], np.float32)}, [1, 2, 5, 7])
    path = tmp_path / 'r.onnx'
    onnx.save(model, str(path))
    x = np.random.default_rng(3).random([1, 2, 5, 7], dtype=np.float32)
    _assert_close(_lowered(path, x), _reference(path, x))


@pytest.mark.parametrize('sizes', [None, [2, 5], [6, 0, 1]])
def test_split_matches_onnxruntime(sizes: list[int] | None, tmp_path: Path) -> None:
    n = 2 if sizes is None else len(sizes)
    inputs, inits = ['x'], {}
    if sizes is not None:
        inputs.append('sizes')
        inits['sizes'] = np.array(sizes, np.int64)
    parts = [f'p{i}' for i in range(n)]
    nodes = [helper.make_node('Split', inputs, parts, axis=1),
             helper.make_node('Concat', parts[::-1], ['y'], axis=1)]
    model = _graph(nodes, inits, [1, 8 if sizes is None else 7, 3])
    path = tmp_path / 's.onnx'
    onnx.save(model, str(path))
    x = np.random.default_rng(4).random([1, 8 if sizes is None else 7, 3], dtype=np.float32)
    _assert_close(_lowered(path, x), _reference(path, x))


def test_refuses_what_it_cannot_lower_exactly_naming_each_node() -> None:
    nodes = [
        helper.make_node('Erf', ['x'], ['a'], name='erf1'),
        helper.make_node('Resize', ['a', '', 's'], ['b'], name='bilinear', mode='linear'),
        helper.make_node('Resize', ['b', '', 's'], ['c'], name='hp_floor', mode='nearest',
                         nearest_mode='floor'),
        helper.make_node('Resize', ['c', '', 'h'], ['d'], name='half', mode='nearest'),
        helper.make_node('Conv', ['d', 'w'], ['y'], name='same', auto_pad='SAME_UPPER'),
    ]
    model = _graph(nodes, {'s': np.array([1, 1, 2, 2], np.float32),
                           'h': np.array([1, 1, 1.5, 1.5], np.float32),
                           'w': np.zeros([1, 1, 3, 3], np.float32)}, [1, 1, 4, 4])
    with pytest.raises(UnsupportedOperatorError) as info:
        StaticGraphModule(model)
    problems = '\n'.join(info.value.problems)
    for part in ("Erf 'erf1': operator not supported", "'bilinear': mode='linear'",
                 "'hp_floor': coordinate_transformation_mode='half_pixel' with nearest_mode="
                 "'floor'", "'half': scales [1.0, 1.0, 1.5, 1.5]",
                 "'same': auto_pad='SAME_UPPER'"):
        assert part in problems, problems


def test_shape_inputs_must_be_constant() -> None:
    model = _graph([helper.make_node('Reshape', ['x', 'shape'], ['y'], name='dynamic')], {},
                   [1, 2, 3])
    model.graph.input.append(helper.make_tensor_value_info('shape', TensorProto.INT64, [2]))
    with pytest.raises(NotStaticError, match="Reshape 'dynamic': input 'shape' is computed"):
        StaticGraphModule(model)


def test_static_onnx_rejects_a_shape_the_model_does_not_have(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match='input dimension 224 but the manifest gives 320'):
        static_onnx(SHIPPED, tmp_path / 's.onnx', [1, 3, 320, 320])
    with pytest.raises(ModelLoadError, match='input rank 4'):
        static_onnx(SHIPPED, tmp_path / 's.onnx', [1, 3, 224])


def test_static_onnx_reports_a_model_onnxruntime_cannot_load(tmp_path: Path) -> None:
    bad = _graph([helper.make_node('NoSuchOperator', ['x'], ['y'])], {}, [1, 3, 8, 8])
    src = tmp_path / 'bad.onnx'
    onnx.save(bad, str(src))
    with pytest.raises(ModelLoadError, match='onnxruntime cannot fold the fixed-shape model'):
        static_onnx(src, tmp_path / 'static.onnx', [1, 3, 8, 8])
    assert sorted(p.name for p in tmp_path.iterdir()) == ['bad.onnx']  # nothing left behind
