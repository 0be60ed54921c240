"""OpenCV DNN backend (cv2.dnn with OpenCV's own engine, CPU target)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..cache import ArtifactCache
from ..errors import BackendError, BackendUnavailableError, ModelLoadError
from .base import BackendInfo, ProgressFn, TensorSpec, check_batch
from .common import BackendBase, guess_layout, pop_option, require_model_file

__all__ = ['OpenCvBackend', 'onnx_io_specs']

_ENGINES = {
    'auto': getattr(cv2.dnn, 'ENGINE_AUTO', None),
    'new': getattr(cv2.dnn, 'ENGINE_NEW', None),
    'classic': getattr(cv2.dnn, 'ENGINE_CLASSIC', None),
}
_ONNX_DTYPES = {1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 10: 'float16',
                11: 'float64'}


def onnx_io_specs(path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Read the graph inputs and outputs of an ONNX file (cv2.dnn does not expose them)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:
        raise ModelLoadError(f'opencv: cannot read ONNX graph {path}: {err}') from err
    initialisers = {t.name for t in model.graph.initializer}

    def spec(value: Any) -> TensorSpec:
        tensor = value.type.tensor_type
        shape = tuple(
            d.dim_value if d.HasField('dim_value') and d.dim_value > 0 else None
            for d in tensor.shape.dim
        )
        dtype = _ONNX_DTYPES.get(tensor.elem_type)
        if dtype is None:
            raise ModelLoadError(f'opencv: unsupported element type of {value.name!r}')
        return TensorSpec(value.name, shape, dtype, guess_layout(shape))

    inputs = [spec(v) for v in model.graph.input if v.name not in initialisers]
    return inputs, [spec(v) for v in model.graph.output]


class OpenCvBackend(BackendBase):
    """Runs ONNX models with cv2.dnn on the CPU (no compiled artifact to cache)."""

    name = 'opencv'
    vendor = 'OpenCV'

    def __init__(self) -> None:
        super().__init__()
        self._net: Any = None
        self._output_names: list[str] = []

    @staticmethod
    def probe() -> tuple[bool, str]:
        """Report the OpenCV version."""
        return True, f'OpenCV {cv2.__version__}'

    def load(
        self,
        model_path: Path,
        *,
        device: str = '',
        options: Mapping[str, Any] | None = None,
        cache: ArtifactCache | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        """Read the network; the cache is not used since cv2.dnn has no compiled form."""
        path = require_model_file(model_path)
        opts = dict(options or {})
        engine = pop_option(opts, 'engine', str, 'auto')
        threads = pop_option(opts, 'num_threads', int, 0)
        self._reject_unknown(opts, self.name)
        if device and device.lower() != 'cpu':
            raise BackendUnavailableError(f'opencv: only the cpu device is supported, not '
                                          f'{device!r}')
        if engine not in _ENGINES or _ENGINES[engine] is None:
            raise ModelLoadError(f'opencv: engine must be one of {sorted(_ENGINES)}')
        inputs, outputs = onnx_io_specs(path)
        if progress is not None:
            progress('opencv: reading network', 0.0)
        try:
            net = cv2.dnn.readNetFromONNX(str(path), int(_ENGINES[engine] or 0))
            if engine == 'classic':  # the new engine is CPU-only and rejects target settings
                net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
                net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        except cv2.error as err:
            raise ModelLoadError(f'opencv: cannot load {path}: {err}') from err
        if threads:
            cv2.setNumThreads(threads)
        self.close()
        self._net = net
        self._inputs, self._outputs = inputs, outputs
        self._output_names = [o.name for o in outputs]
        self._info = BackendInfo(self.name, self.vendor, f'CPU ({engine} engine)', cv2.__version__)
        if progress is not None:
            progress('opencv: model loaded', 1.0)

    def run(self, batch: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run one batch and return the outputs in model order."""
        self._require_loaded()
        check_batch(batch, self._inputs)
        try:
            for name, array in batch.items():
                self._net.setInput(np.ascontiguousarray(array), name)
            result = self._net.forward(self._output_names)
        except cv2.error as err:
            raise BackendError(f'opencv: inference failed: {err}') from err
        return [np.array(r, copy=True) for r in result]

    def close(self) -> None:
        """Drop the network."""
        self._net = None
        self._info = None
