"""A static-shape ONNX graph as a torch module, for compilers that trace torch (Furiosa RNGD).

The FuriosaAI compiler takes a torch ``nn.Module`` and traces it with TorchDynamo. General
converters (onnx2torch) keep shape inputs (Reshape's shape, Resize's scales, Slice's bounds)
as tensors and read them in ``forward``: under tracing that is data-dependent control flow,
and the trace fails. Here every such input must be a constant of the graph and is read once,
at construction, into plain Python values; the module's ``forward`` only calls torch
operators on activations.

The graph must have static shapes: :func:`kpai_npu_furiosa.backend.static_onnx` fixes the
batch and folds shape arithmetic (Shape, Range, ...) into constants with ONNX Runtime first.

Only standard-library, numpy, onnx and torch imports: this file runs in the Furiosa
toolchain's own environment (by path, from ``furiosa_worker.py``) and in the stack's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

__all__ = ['SILU', 'SUPPORTED_OPS', 'NotStaticError', 'StaticGraphModule',
           'UnsupportedOperatorError']


class UnsupportedOperatorError(ValueError):
    """The graph holds operators (or operator settings) this converter does not lower."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__('; '.join(problems))
        self.problems = list(problems)


class NotStaticError(ValueError):
    """A shape-like input (Reshape's shape, Resize's scales, ...) is computed, not constant."""


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


class _Op:
    """One node: a callable over activations with its constants bound at construction."""

    def __init__(self, node: onnx.NodeProto, fn: Callable[..., Any], inputs: list[str]) -> None:
        self.name = node.name or node.op_type
        self.op_type = node.op_type
        self.fn = fn
        self.inputs = inputs  # activation (or weight buffer) names, in call order
        self.outputs = list(node.output)


def _pads_2d(pads: Sequence[int]) -> tuple[int, int, int, int] | None:
    """ONNX [top, left, bottom, right] -> F.pad order (left, right, top, bottom); None if 0."""
    if not any(pads):
        return None
    top, left, bottom, right = pads
    return (left, right, top, bottom)


class StaticGraphModule(nn.Module):
    """Runs an ONNX graph of static shapes with torch operators; outputs as a tuple.

    ``x * Sigmoid(x)`` (two ONNX nodes, as exporters write SiLU) becomes one ``F.silu``: the
    RNGD compiler lowers SiLU but not a standalone sigmoid or product (measured, 2026.1).
    With ``upto=k`` only the first k operators run and the module returns every tensor they
    produce that later nodes or the graph's outputs use (the cut's frontier, so that no
    operator of the prefix is dead code): :func:`first_unsupported` bisects with it.
    """

    def __init__(self, model: onnx.ModelProto, *, upto: int | None = None) -> None:
        super().__init__()
        graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')),
                          13)
        self._consts: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t) for t in graph.initializer}
        for node in graph.node:  # Constant nodes are constants too
            if node.op_type == 'Constant':
                self._consts[node.output[0]] = _constant_value(node)
        self._buffer_of: dict[str, str] = {}
        init_names = {i.name for i in graph.initializer}
        self.input_names = [i.name for i in graph.input if i.name not in init_names]
        self.output_names = [o.name for o in graph.output]
        problems = [p for n in graph.node for p in _node_problems(n, self)]
        if problems:
            raise UnsupportedOperatorError(problems)
        nodes = _fuse_silu([n for n in graph.node if n.op_type != 'Constant'], self.output_names)
        self.node_count = len(nodes)
        if upto is not None:
            if not 1 <= upto <= len(nodes):
                raise ValueError(f'upto must be in 1..{len(nodes)}, got {upto}')
            produced = [o for n in nodes[:upto] for o in n.output if o]
            used_later = {i for n in nodes[upto:] for i in n.input} | set(self.output_names)
            self.output_names = [o for o in produced if o in used_later or
                                 o in nodes[upto - 1].output]
            nodes = nodes[:upto]
        self.node_names = [f'{n.op_type} {n.name!r}' if n.name else n.op_type for n in nodes]
        self._ops = [self._build(n) for n in nodes]

    # -- constants ------------------------------------------------------------------------
    def const(self, name: str, node: onnx.NodeProto) -> np.ndarray:
        """Return a constant input of node; raise NotStaticError if it is computed."""
        if name not in self._consts:
            raise NotStaticError(f'{node.op_type} {node.name!r}: input {name!r} is computed at '
                                 'run time; the converter needs it constant (static shapes)')
        return self._consts[name]

    def tensor_input(self, name: str) -> str:
        """Return the name to look a tensor input up by: a float constant becomes a buffer."""
        if name in self._consts and name not in self._buffer_of:
            value = self._consts[name]
            if not np.issubdtype(value.dtype, np.floating):
                raise NotStaticError(f'non-float constant {name!r} ({value.dtype}) used as a '
                                     'tensor operand')
            key = f'c{len(self._buffer_of)}'
            self.register_buffer(key, torch.from_numpy(np.array(value, copy=True)))
            self._buffer_of[name] = key
        return name

    # -- nodes ----------------------------------------------------------------------------
    def _build(self, node: onnx.NodeProto) -> _Op:
        builder = _BUILDERS[node.op_type]
        fn, inputs = builder(self, node, _attrs(node))
        for name in inputs:
            self.tensor_input(name)
        return _Op(node, fn, inputs)

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run the graph on its inputs (in graph order); return its outputs in graph order."""
        if len(args) != len(self.input_names):
            raise TypeError(f'expected {len(self.input_names)} inputs, got {len(args)}')
        env: dict[str, Any] = dict(zip(self.input_names, args, strict=True))
        for name, key in self._buffer_of.items():
            env[name] = getattr(self, key)
        for op in self._ops:
            result = op.fn(*(env[i] for i in op.inputs))
            if len(op.outputs) == 1:
                env[op.outputs[0]] = result
            else:
                env.update(zip(op.outputs, result, strict=True))
        return tuple(env[o] for o in self.output_names)


SILU = 'kpai.Silu'  # op_type of a fused x * sigmoid(x) node (not an ONNX operator)


def _fuse_silu(nodes: list[onnx.NodeProto], outputs: Sequence[str]) -> list[onnx.NodeProto]:
    """Replace Mul(x, Sigmoid(x)) by one SILU node where the sigmoid feeds only that Mul."""
    consumers: dict[str, int] = {o: 1 for o in outputs}
    for n in nodes:
        for i in n.input:
            consumers[i] = consumers.get(i, 0) + 1
    sigmoid_of = {n.output[0]: n for n in nodes if n.op_type == 'Sigmoid'}
    fused: set[int] = set()
    out: list[onnx.NodeProto] = []
    for n in nodes:
        if n.op_type == 'Mul' and len(n.input) == 2:
            for a, b in ((n.input[0], n.input[1]), (n.input[1], n.input[0])):
                sig = sigmoid_of.get(b)
                if sig is not None and sig.input[0] == a and consumers.get(b) == 1:
                    node = onnx.helper.make_node(SILU, [a], list(n.output), name=n.name)
                    out.append(node)
                    fused.add(id(sig))
                    break
            else:
                out.append(n)
            continue
        out.append(n)
    return [n for n in out if id(n) not in fused]


def _constant_value(node: onnx.NodeProto) -> np.ndarray:
    a = node.attribute[0]
    if a.name == 'value':
        return numpy_helper.to_array(a.t)
    value = onnx.helper.get_attribute_value(a)
    return np.asarray(value, dtype=np.float32 if 'float' in a.name else np.int64)


# -- builders: (module, node, attrs) -> (fn over tensors, tensor input names) ---------------
Builder = Callable[[StaticGraphModule, onnx.NodeProto, dict[str, Any]],
                   tuple[Callable[..., Any], list[str]]]


def _unary(fn: Callable[[torch.Tensor], torch.Tensor]) -> Builder:
    return lambda _m, node, _a: (fn, [node.input[0]])


def _binary(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Builder:
    return lambda _m, node, _a: (fn, [node.input[0], node.input[1]])


def _conv(_m: StaticGraphModule, node: onnx.NodeProto, a: dict[str, Any]) -> tuple[Any, list]:
    pad = _pads_2d(a.get('pads', [0, 0, 0, 0]))
    stride, dilation = tuple(a.get('strides', [1, 1])), tuple(a.get('dilations', [1, 1]))
    groups = int(a.get('group', 1))
    symmetric = pad is None or (pad[0] == pad[1] and pad[2] == pad[3])
    padding = (0, 0) if pad is None else (pad[2], pad[0])

    def conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        if not symmetric:
            x = F.pad(x, pad)  # type: ignore[arg-type]
        return F.conv2d(x, w, b, stride, padding if symmetric else 0, dilation, groups)

    return conv, [i for i in node.input if i]


def _maxpool(_m: StaticGraphModule, node: onnx.NodeProto, a: dict[str, Any]
             ) -> tuple[Any, list]:
    pad = _pads_2d(a.get('pads', [0, 0, 0, 0]))
    kernel, stride = tuple(a['kernel_shape']), tuple(a.get('strides', [1, 1]))
    dilation, ceil = tuple(a.get('dilations', [1, 1])), bool(a.get('ceil_mode', 0))
    symmetric = pad is None or (pad[0] == pad[1] and pad[2] == pad[3])
    padding = (0, 0) if pad is None else (pad[2], pad[0])

    def pool(x: torch.Tensor) -> torch.Tensor:
        if not symmetric:
            x = F.pad(x, pad, value=float('-inf'))  # type: ignore[arg-type]
        return F.max_pool2d(x, kernel, stride, padding if symmetric else 0, dilation, ceil)

    return pool, [node.input[0]]


def _reshape(m: StaticGraphModule, node: onnx.NodeProto, a: dict[str, Any]) -> tuple[Any, list]:
    shape = [int(v) for v in m.const(node.input[1], node)]

    def reshape(x: torch.Tensor) -> torch.Tensor:
        # ONNX 0 copies the input's dimension (allowzero=0, checked in _node_problems)
        return x.reshape([x.shape[i] if d == 0 else d for i, d in enumerate(shape)])

    return reshape, [node.input[0]]


def _flatten(_m: StaticGraphModule, node: onnx.NodeProto, a: dict[str, Any]) -> tuple[Any, list]:
    axis = int(a.get('axis', 1))

    def flatten(x: torch.Tensor) -> torch.Tensor:
        k = axis % x.dim() if axis < 0 else axis
        lead = 1
        for d in x.shape[:k]:
            lead *= int(d)
        return x.reshape(lead, -1)

    return flatten, [node.input[0]]


def _concat(_m: StaticGraphModule, node: onnx.NodeProto, a: dict[str, Any]) -> tuple[Any, list]:
    axis = int(a['axis'])
    return (lambda *xs: torch.cat(xs, axis)), list(node.input)


def _split(m: StaticGraphModule, node: onnx.NodeProto, a: dict[str, Any]) -> tuple[Any, list]:
    axis = int(a.get('axis', 0))
    n = len(node.output)
    sizes: list[int] | None = None
    if len(node.input) > 1 and node.input[1]:
        sizes = [int(v) for v in m.const(node.input[1], node)]
    elif 'split' in a:
        sizes = [int(v) for v in a['split']]

    def split(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        total = x.shape[axis]
        step = -(-total // n)  # ONNX: equal parts, the last one smaller when uneven
        parts = sizes if sizes is not None else [
            min(step, total - i) for i in range(0, total, step)]
        # narrow, not torch.split: the RNGD compiler cannot import the as_strided that
        # torch.split's outputs trace to in a whole model (measured, 2026.1)
        out, start = [], 0
        for size in parts:
            out.append(x.narrow(axis, start, size))
            start += size
        return tuple(out)

    return split, [node.input[0]]


def _slice(m: StaticGraphModule, node: onnx.NodeProto, a: dict[str, Any]) -> tuple[Any, list]:
    ins = list(node.input) + [''] * (5 - len(node.input))
    starts = [int(v) for v in m.const(ins[1], node)]
    ends = [int(v) for v in m.const(ins[2], node)]
    axes = [int(v) for v in m.const(ins[3], node)] if ins[3] else list(range(len(starts)))
    steps = [int(v) for v in m.const(ins[4], node)] if ins[4] else [1] * len(starts)

    def slice_(x: torch.Tensor) -> torch.Tensor:
        index: list[Any] = [slice(None)] * x.dim()
        for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
            index[ax % x.dim()] = slice(s, e, st)  # Python clamps like ONNX for step > 0
        return x[tuple(index)]

    return slice_, [node.input[0]]


def _transpose(_m: StaticGraphModule, node: onnx.NodeProto, a: dict[str, Any]
               ) -> tuple[Any, list]:
    perm = a.get('perm')
    return ((lambda x: x.permute(*perm)) if perm is not None else
            (lambda x: x.permute(*reversed(range(x.dim()))))), [node.input[0]]


def _softmax(m: StaticGraphModule, node: onnx.NodeProto, a: dict[str, Any]) -> tuple[Any, list]:
    axis = int(a.get('axis', -1 if m.opset >= 13 else 1))
    return (lambda x: torch.softmax(x, axis)), [node.input[0]]


def _reduce_sum(m: StaticGraphModule, node: onnx.NodeProto, a: dict[str, Any]
                ) -> tuple[Any, list]:
    keep = bool(a.get('keepdims', 1))
    if len(node.input) > 1 and node.input[1]:
        axes = [int(v) for v in m.const(node.input[1], node)]
    else:
        axes = [int(v) for v in a.get('axes', [])]

    def reduce_sum(x: torch.Tensor) -> torch.Tensor:
        dims = axes or list(range(x.dim()))
        return torch.sum(x, dims, keepdim=keep)

    return reduce_sum, [node.input[0]]


def _gemm(_m: StaticGraphModule, node: onnx.NodeProto, a: dict[str, Any]) -> tuple[Any, list]:
    alpha, beta = float(a.get('alpha', 1.0)), float(a.get('beta', 1.0))
    ta, tb = bool(a.get('transA', 0)), bool(a.get('transB', 0))

    def gemm(x: torch.Tensor, w: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        y = (x.t() if ta else x) @ (w.t() if tb else w)
        if alpha != 1.0:
            y = y * alpha
        if c is not None:
            y = y + (c * beta if beta != 1.0 else c)
        return y

    return gemm, [i for i in node.input if i]


def _resize(m: StaticGraphModule, node: onnx.NodeProto, a: dict[str, Any]) -> tuple[Any, list]:
    ins = list(node.input) + [''] * (4 - len(node.input))
    if m.opset < 11:  # Resize-10: (X, scales)
        ins = [ins[0], '', ins[1], '']
    scales = [float(v) for v in m.const(ins[2], node)] if ins[2] else []
    sizes = [int(v) for v in m.const(ins[3], node)] if ins[3] else []
    where = f'Resize {node.name!r}'

    def resize(x: torch.Tensor) -> torch.Tensor:
        if sizes:  # shapes are static: check here that sizes are whole multiples
            factors = [o / i for o, i in zip(sizes, x.shape, strict=True)]
            if factors[:2] != [1.0, 1.0] or any(f != int(f) or f < 1 for f in factors):
                raise UnsupportedOperatorError(
                    [f'{where}: sizes {sizes} for input {list(x.shape)} (only integer '
                     'up-scaling of the spatial dimensions)'])
            return F.interpolate(x, size=sizes[2:], mode='nearest')
        return F.interpolate(x, scale_factor=[float(int(s)) for s in scales[2:]],
                             mode='nearest')

    return resize, [ins[0]]


def _global_avg_pool(_m: StaticGraphModule, node: onnx.NodeProto, _a: dict[str, Any]
                     ) -> tuple[Any, list]:
    return (lambda x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True)), [node.input[0]]


_BUILDERS: dict[str, Builder] = {
    'Conv': _conv,
    'MaxPool': _maxpool,
    'Relu': _unary(torch.relu),
    'Sigmoid': _unary(torch.sigmoid),
    SILU: _unary(F.silu),
    'Softplus': _unary(F.softplus),
    'Identity': _unary(lambda x: x),
    'Add': _binary(torch.add),
    'Sub': _binary(torch.sub),
    'Mul': _binary(torch.mul),
    'Div': _binary(torch.div),
    'MatMul': _binary(torch.matmul),
    'Gemm': _gemm,
    'Reshape': _reshape,
    'Flatten': _flatten,
    'Concat': _concat,
    'Split': _split,
    'Slice': _slice,
    'Transpose': _transpose,
    'Softmax': _softmax,
    'ReduceSum': _reduce_sum,
    'Resize': _resize,
    'GlobalAveragePool': _global_avg_pool,
}
SUPPORTED_OPS = tuple(sorted([*(op for op in _BUILDERS if op != SILU), 'Constant']))


def _node_problems(node: onnx.NodeProto, m: StaticGraphModule) -> list[str]:
    """Why node cannot be lowered exactly ([] when it can)."""
    op, a = node.op_type, _attrs(node)
    where = f'{op} {node.name!r}' if node.name else op
    if op == SILU:
        return []
    if node.domain not in ('', 'ai.onnx'):
        return [f'{where}: operator of domain {node.domain!r}']
    if op == 'Constant':
        return []
    if op not in _BUILDERS:
        return [f'{where}: operator not supported']
    if _text(a.get('auto_pad', 'NOTSET')) != 'NOTSET':
        return [f'{where}: auto_pad={_text(a["auto_pad"])!r} (only explicit pads)']
    if op in ('Conv', 'MaxPool') and len(a.get('kernel_shape', [0, 0])) != 2:
        return [f'{where}: only 2-D kernels']
    if op == 'MaxPool' and (len(node.output) > 1 or a.get('storage_order', 0)):
        return [f'{where}: the Indices output / storage_order']
    if op == 'Reshape' and a.get('allowzero', 0):
        return [f'{where}: allowzero=1']
    if op == 'Softmax' and m.opset < 13 and a.get('axis', 1) != -1:
        return [f'{where}: Softmax before opset 13 flattens from its axis; only axis=-1']
    if op == 'Slice' and len(node.input) > 4 and node.input[4]:
        steps = node.input[4]
        if steps in m._consts and any(int(v) < 0 for v in m._consts[steps]):
            return [f'{where}: negative steps']
    if op == 'Resize':
        return _resize_problems(node, a, where, m)
    return []


def _resize_problems(node: onnx.NodeProto, a: dict[str, Any], where: str,
                     m: StaticGraphModule) -> list[str]:
    """Resize is lowered only where torch's nearest (floor(i / s)) equals ONNX exactly."""
    mode = _text(a.get('mode', 'nearest'))
    if mode != 'nearest':
        return [f'{where}: mode={mode!r} (only nearest)']
    ins = list(node.input) + [''] * (4 - len(node.input))
    scales = m._consts.get(ins[1] if m.opset < 11 else ins[2], np.zeros(0))
    if scales.size:
        if any(abs(s - round(s)) > 1e-6 or s < 1 for s in scales):
            return [f'{where}: scales {list(map(float, scales))} (only integer up-scaling)']
        if list(map(int, scales[:2])) != [1, 1]:
            return [f'{where}: scales batch or channel dimensions']
        if all(int(s) == 1 for s in scales):
            return []
    ctm = _text(a.get('coordinate_transformation_mode', 'half_pixel'))
    nearest = _text(a.get('nearest_mode', 'round_prefer_floor'))
    # with an integer factor s, output i = s*k + j maps to source k exactly when the source
    # coordinate's offset rounds to 0: half_pixel gives (j + 0.5) / s - 0.5 in (-0.5, 0.5),
    # asymmetric gives j / s in [0, 1)
    exact = ((ctm in ('half_pixel', 'pytorch_half_pixel')
              and nearest in ('round_prefer_floor', 'round_prefer_ceil'))
             or (ctm == 'asymmetric' and nearest == 'floor'))
    if not exact:
        return [f'{where}: coordinate_transformation_mode={ctm!r} with nearest_mode='
                f'{nearest!r} differs from floor(i / scale)']
    return []
