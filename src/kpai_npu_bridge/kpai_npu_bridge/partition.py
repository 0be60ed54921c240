"""Run a model's tail on the CPU: the manifest's ``cpu_tail`` cuts the graph in two.

An accelerator's compiler may reject operators a detector ends with (decoding: Softplus,
Sigmoid, anchor arithmetic; NMS). The manifest names the tensors where the accelerator's part
ends::

    cpu_tail: ['/model/box.0/Conv_output_0', '/model/cls.0/Conv_output_0', ...]

The model's input -> those tensors is the *head*: the chosen backend compiles and runs it.
Those tensors -> the model's outputs is the *tail*: ONNX Runtime runs it on the CPU. The split
models are written once per model and cut (``<cache>/partitions/``), the head with its own
manifest (same input and preprocessing) so that ahead-of-time compilation treats it as any
model. Outputs equal the whole model's: the same graph, only run in two parts.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .backends.base import Backend, BackendInfo, TensorSpec, numpy_dtype_name
from .errors import ManifestError, ModelLoadError
from .manifest import ModelManifest, write_manifest

__all__ = ['PartitionedBackend', 'split_model']

TAIL_VENDOR_NOTE = 'tail on CPU onnxruntime'


def _cut_key(model_sha256: str, cut: Sequence[str]) -> str:
    digest = hashlib.sha256('\n'.join(cut).encode()).hexdigest()[:12]
    return f'{model_sha256[:16]}-{digest}'


def split_model(model_path: Path, manifest: ModelManifest, root: Path) -> tuple[Path, Path]:
    """Return (head.onnx, tail.onnx) of the model cut at manifest.cpu_tail, made once."""
    import onnx
    from onnx import shape_inference

    cut = list(manifest.cpu_tail)
    where = f'{manifest.source or model_path}: cpu_tail'
    out = Path(root) / 'partitions' / _cut_key(manifest.sha256, cut)
    head, tail = out / 'head.onnx', out / 'tail.onnx'
    if head.is_file() and tail.is_file():
        return head, tail
    try:
        model = onnx.load(str(model_path))
    except Exception as err:  # onnx raises DecodeError and others
        raise ModelLoadError(f'cannot read {model_path}: {err}') from err
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in inits]
    outputs = [o.name for o in graph.output]
    produced = {o for n in graph.node for o in n.output}
    unknown = [c for c in cut if c not in produced]
    if unknown:
        raise ManifestError(f'{where}: no node of {Path(model_path).name} produces {unknown}')
    if set(cut) & set(outputs):
        raise ManifestError(f'{where}: {sorted(set(cut) & set(outputs))} are model outputs, '
                            'not tensors before the tail')
    # the tail: nodes that (transitively) need a cut tensor; it must need nothing else of the
    # head but the cut tensors and constants, or the cut does not separate the graph
    tail_nodes = _downstream(graph.node, set(cut))
    tail_produced = {o for n in tail_nodes for o in n.output}
    consts = inits | {o for n in graph.node if n.op_type == 'Constant' for o in n.output}
    leaks = sorted({i for n in tail_nodes for i in n.input
                    if i and i not in tail_produced and i not in cut and i not in consts})
    if leaks:
        raise ManifestError(f'{where}: the cut does not separate the graph: the tail also needs '
                            f'{leaks[:5]}; add them to cpu_tail')
    if not set(outputs) <= tail_produced:
        raise ManifestError(f'{where}: outputs {sorted(set(outputs) - tail_produced)} do not '
                            'depend on the cut tensors')
    try:
        inferred = shape_inference.infer_shapes(model)
        extractor = onnx.utils.Extractor(inferred)
        head_model = extractor.extract_model(inputs, cut)
        tail_model = extractor.extract_model(cut, outputs)
    except Exception as err:  # the extractor needs inferred shapes of the cut tensors
        raise ManifestError(f'{where}: cannot cut the graph there: {err}') from err
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix='.partition-', dir=out.parent))
    try:
        onnx.save(head_model, str(tmp / 'head.onnx'))
        onnx.save(tail_model, str(tmp / 'tail.onnx'))
        write_manifest(replace(manifest, cpu_tail=(), source=None,
                               description=f'head of {Path(model_path).name} up to cpu_tail'),
                       tmp / 'head.onnx')
        try:
            os.rename(tmp, out)
        except OSError:  # another process made it first: theirs is the same
            if not (head.is_file() and tail.is_file()):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return head, tail


def _downstream(nodes: Sequence[Any], start: set[str]) -> list[Any]:
    """Nodes (graph order) that read start tensors or what such nodes produce."""
    reached = set(start)
    picked = []
    for n in nodes:  # ONNX nodes are topologically sorted
        if any(i in reached for i in n.input):
            picked.append(n)
            reached.update(o for o in n.output if o)
    return picked


class PartitionedBackend:
    """A backend running a model's head, and ONNX Runtime (CPU) running its tail."""

    def __init__(self, head: Backend, tail_path: Path) -> None:
        import onnxruntime as ort

        self.head = head
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # the tail is small: decoding arithmetic
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        options.log_severity_level = 3
        try:
            self._tail = ort.InferenceSession(str(tail_path), options,
                                              providers=['CPUExecutionProvider'])
        except Exception as err:  # onnxruntime raises several unrelated exception types
            raise ModelLoadError(f'cannot load the CPU tail {tail_path}: {err}') from err
        self._tail_inputs = [i.name for i in self._tail.get_inputs()]
        head_outputs = [o.name for o in head.outputs()]
        missing = [n for n in self._tail_inputs if n not in head_outputs]
        if missing:
            raise ModelLoadError(f'the head does not output {missing}, which the tail reads')
        self._head_outputs = head_outputs

    def load(self, model_path: Path, *, device: str = '',
             options: Mapping[str, Any] | None = None, cache: Any = None,
             progress: Any = None) -> None:
        """Loading happens in the constructor (the head is loaded by its backend)."""
        raise ModelLoadError('a partitioned backend is built loaded')

    def inputs(self) -> list[TensorSpec]:
        """Return the head's inputs (the model's)."""
        return self.head.inputs()

    def outputs(self) -> list[TensorSpec]:
        """Return the tail's outputs (the model's)."""
        specs = []
        for o in self._tail.get_outputs():
            shape = tuple(d if isinstance(d, int) else None for d in o.shape)
            specs.append(TensorSpec(o.name, shape, numpy_dtype_name(o.type)))
        return specs

    def run(self, batch: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run the head on the backend, then the tail on the CPU."""
        mid = dict(zip(self._head_outputs, self.head.run(batch), strict=True))
        feeds = {n: np.ascontiguousarray(mid[n], dtype=np.float32) for n in self._tail_inputs}
        return list(self._tail.run(None, feeds))

    def warmup(self, batch_size: int = 1) -> None:
        """Warm the head up, then run the whole once on zeros."""
        self.head.warmup(batch_size)
        spec = self.inputs()[0]
        shape = tuple(batch_size if d is None else d for d in spec.shape)
        self.run({spec.name: np.zeros(shape, dtype=spec.dtype)})

    def info(self) -> BackendInfo:
        """Describe the head's backend, noting the CPU tail."""
        info = self.head.info()
        return replace(info, device=f'{info.device} + {TAIL_VENDOR_NOTE}')

    def close(self) -> None:
        """Release the head's backend and the tail session."""
        self.head.close()
        self._tail = None  # type: ignore[assignment]
