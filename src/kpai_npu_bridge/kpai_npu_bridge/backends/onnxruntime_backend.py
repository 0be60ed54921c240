"""onnxruntime backend: CPU execution provider, TensorRT/CUDA/OpenVINO providers when present."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from ..aot import ensure_compiled
from ..cache import ArtifactCache, CacheKey, file_sha256
from ..errors import BackendError, BackendUnavailableError, ModelLoadError
from .base import BackendInfo, CompilePlan, ProgressFn, TensorSpec, check_batch, numpy_dtype_name
from .common import BackendBase, guess_layout, pop_option, require_model_file

__all__ = ['PROVIDER_PREFERENCE', 'OnnxRuntimeBackend', 'choose_providers']

# Order of preference when no device is asked for; CPU is always the last resort.
PROVIDER_PREFERENCE = (
    'TensorrtExecutionProvider',
    'CUDAExecutionProvider',
    'OpenVINOExecutionProvider',
    'CPUExecutionProvider',
)
_DEVICE_PROVIDERS = {
    'cpu': 'CPUExecutionProvider',
    'cuda': 'CUDAExecutionProvider',
    'gpu': 'CUDAExecutionProvider',
    'tensorrt': 'TensorrtExecutionProvider',
    'openvino': 'OpenVINOExecutionProvider',
}
_OPT_LEVELS = {
    'disable': ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    'basic': ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    'extended': ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    'all': ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def choose_providers(device: str, available: list[str]) -> list[str]:
    """Return the execution providers for a device name ('' = best available)."""
    if not device:
        return [p for p in PROVIDER_PREFERENCE if p in available]
    wanted = _DEVICE_PROVIDERS.get(device.lower())
    if wanted is None:
        raise BackendUnavailableError(
            f'onnxruntime: unknown device {device!r}; use one of {sorted(_DEVICE_PROVIDERS)}'
        )
    if wanted not in available:
        raise BackendUnavailableError(
            f'onnxruntime: device {device!r} needs {wanted}, available: {available}'
        )
    return [wanted] if wanted == 'CPUExecutionProvider' else [wanted, 'CPUExecutionProvider']


def _spec(arg: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in arg.shape)
    return TensorSpec(arg.name, shape, numpy_dtype_name(arg.type), guess_layout(shape))


class OnnxRuntimeBackend(BackendBase):
    """Runs ONNX models with onnxruntime; the CPU provider is the stack's reference."""

    name = 'onnxruntime'
    vendor = 'Microsoft (ONNX Runtime)'

    def __init__(self) -> None:
        super().__init__()
        self._session: ort.InferenceSession | None = None

    @staticmethod
    def probe() -> tuple[bool, str]:
        """Report whether the runtime is usable and which providers it has."""
        return True, 'providers: ' + ', '.join(ort.get_available_providers())

    def load(
        self,
        model_path: Path,
        *,
        device: str = '',
        options: Mapping[str, Any] | None = None,
        cache: ArtifactCache | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        """Create an inference session; with a cache, load the saved optimised graph."""
        path = require_model_file(model_path)
        opts = dict(options or {})
        intra = pop_option(opts, 'intra_op_num_threads', int, 0)
        inter = pop_option(opts, 'inter_op_num_threads', int, 0)
        level_name = pop_option(opts, 'graph_optimization_level', str, 'all')
        # onnxruntime's intra-op threads busy-wait after each run unless told not to
        # (session.intra_op.allow_spinning, on by default in onnxruntime): fast for
        # back-to-back runs, but a bridge at camera rate spins between every two frames. The
        # shipped detector at 10 Hz, default threads (bench/npu_bridge.py --shipped): 46 % of a
        # core with spinning, 8 % without, latency no worse; so off unless asked for.
        spinning = pop_option(opts, 'allow_spinning', bool, False)
        if level_name not in _OPT_LEVELS:
            raise ModelLoadError(
                f'onnxruntime: graph_optimization_level must be one of {sorted(_OPT_LEVELS)}'
            )
        self._reject_unknown(opts, self.name)
        providers = choose_providers(device, ort.get_available_providers())
        session_options = ort.SessionOptions()
        session_options.intra_op_num_threads = intra
        session_options.inter_op_num_threads = inter
        session_options.graph_optimization_level = _OPT_LEVELS[level_name]
        session_options.add_session_config_entry('session.intra_op.allow_spinning',
                                                 '1' if spinning else '0')
        session_options.log_severity_level = 3
        model_file = path
        if cache is not None and level_name != 'disable':
            plan = self.compile_plan(path, device=device)
            model_file = ensure_compiled(cache, plan, model=str(path), progress=progress).artifact
        elif progress is not None:
            progress('onnxruntime: creating session', 0.0)
        try:
            session = ort.InferenceSession(
                str(model_file), session_options, providers=providers
            )
        except Exception as err:  # onnxruntime raises several unrelated exception types
            raise ModelLoadError(f'onnxruntime: cannot load {path}: {err}') from err
        self.close()
        self._session = session
        self._inputs = [_spec(a) for a in session.get_inputs()]
        self._outputs = [_spec(a) for a in session.get_outputs()]
        used = session.get_providers()
        self._info = BackendInfo(
            self.name, self.vendor, used[0] if used else 'CPUExecutionProvider', ort.__version__
        )
        if progress is not None:
            progress('onnxruntime: model loaded', 1.0)

    @classmethod
    def compile_plan(cls, model_path: Path, *, device: str = '',
                     options: Mapping[str, Any] | None = None) -> CompilePlan:
        """Plan the portable optimised graph (extended level) for the device's providers."""
        path = require_model_file(model_path)
        level = dict(options or {}).get('graph_optimization_level', 'all')
        if level == 'disable':
            raise ModelLoadError('onnxruntime: graph_optimization_level=disable: nothing to '
                                 'compile, the session runs the model file as it is')
        providers = choose_providers(device, ort.get_available_providers())
        key = CacheKey(file_sha256(path, reuse=True), cls.name, ort.__version__,
                       ','.join(providers), {'graph_optimization_level': 'extended'})
        return CompilePlan(key, 'optimized.onnx', f'onnxruntime {ort.__version__}',
                           lambda out, progress: _optimise(path, out))

    def run(self, batch: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run one batch and return the outputs in model order."""
        self._require_loaded()
        assert self._session is not None
        check_batch(batch, self._inputs)
        try:
            outputs = self._session.run(None, dict(batch))
        except Exception as err:
            raise BackendError(f'onnxruntime: inference failed: {err}') from err
        return [np.asarray(o) for o in outputs]

    def close(self) -> None:
        """Drop the session."""
        self._session = None
        self._info = None


def _optimise(source: Path, out: Path) -> None:
    """Write the portable (extended-level) optimised graph of source to out."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(out)
    options.log_severity_level = 3
    try:
        ort.InferenceSession(str(source), options, providers=['CPUExecutionProvider'])
    except Exception as err:
        raise ModelLoadError(f'onnxruntime: cannot optimise {source}: {err}') from err
