"""OpenVINO backend through its own runtime API (CPU device here; GPU/NPU where present)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from ..aot import ensure_compiled
from ..cache import ArtifactCache, CacheKey, file_sha256
from ..errors import BackendError, BackendUnavailableError, ModelLoadError
from .base import BackendInfo, CompilePlan, ProgressFn, TensorSpec, check_batch, numpy_dtype_name
from .common import BackendBase, guess_layout, pop_option, require_model_file

__all__ = ['OpenVinoBackend']

_HINTS = ('LATENCY', 'THROUGHPUT', 'CUMULATIVE_THROUGHPUT')
_PRECISIONS = ('f32', 'f16', 'bf16')


def _spec(port: Any) -> TensorSpec:
    shape = tuple(
        d.get_length() if d.is_static else None for d in port.get_partial_shape()
    )
    dtype = numpy_dtype_name(port.get_element_type().get_type_name())
    return TensorSpec(port.get_any_name(), shape, dtype, guess_layout(shape))


def _target(device: str, options: Mapping[str, Any] | None
            ) -> tuple[ov.Core, str, str, dict[str, Any]]:
    """Validate options and device; return (core, target, device family, compile config)."""
    opts = dict(options or {})
    hint = pop_option(opts, 'performance_hint', str, 'LATENCY').upper()
    precision = pop_option(opts, 'inference_precision', str, 'f32').lower()
    threads = pop_option(opts, 'num_threads', int, 0)
    BackendBase._reject_unknown(opts, 'openvino')
    if hint not in _HINTS:
        raise ModelLoadError(f'openvino: performance_hint must be one of {_HINTS}')
    if precision not in _PRECISIONS:
        raise ModelLoadError(f'openvino: inference_precision must be one of {_PRECISIONS}')
    core = ov.Core()
    target = (device or 'CPU').upper()
    family = target.replace(':', '.').split('.')[0]
    if target not in core.available_devices and family not in ('AUTO', 'MULTI', 'HETERO'):
        raise BackendUnavailableError(
            f'openvino: device {target!r} not available; devices: {core.available_devices}'
        )
    config: dict[str, Any] = {'PERFORMANCE_HINT': hint}
    if target.startswith('CPU'):
        # f32 by default: CPUs with AMX/AVX512-BF16 would otherwise silently run bf16.
        config['INFERENCE_PRECISION_HINT'] = precision
        if threads:
            config['INFERENCE_NUM_THREADS'] = threads
    elif threads:
        raise ModelLoadError('openvino: num_threads applies to the CPU device only')
    return core, target, family, config


class OpenVinoBackend(BackendBase):
    """Runs ONNX (or IR) models with the OpenVINO runtime."""

    name = 'openvino'
    vendor = 'Intel (OpenVINO)'

    def __init__(self) -> None:
        super().__init__()
        self._core: ov.Core | None = None
        self._compiled: Any = None
        self._request: Any = None

    @staticmethod
    def probe() -> tuple[bool, str]:
        """Report the devices OpenVINO sees."""
        devices = ov.Core().available_devices
        if not devices:
            return False, 'OpenVINO found no device'
        return True, 'devices: ' + ', '.join(devices)

    def load(
        self,
        model_path: Path,
        *,
        device: str = '',
        options: Mapping[str, Any] | None = None,
        cache: ArtifactCache | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        """Compile the model for the device; with a cache, import the exported blob instead."""
        path = require_model_file(model_path)
        core, target, family, config = _target(device, options)
        try:
            if cache is not None:
                plan = self.compile_plan(path, device=device, options=options)
                blob = ensure_compiled(cache, plan, model=str(path), progress=progress).artifact
                compiled = core.import_model(blob.read_bytes(), target, config)
            else:
                if progress is not None:
                    progress(f'openvino: compiling model for {target}', 0.0)
                compiled = core.compile_model(core.read_model(str(path)), target, config)
        except (BackendUnavailableError, ModelLoadError):
            raise
        except Exception as err:  # OpenVINO raises RuntimeError and friends
            raise ModelLoadError(f'openvino: cannot load {path}: {err}') from err
        self.close()
        self._core = core
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self._inputs = [_spec(p) for p in compiled.inputs]
        self._outputs = [_spec(p) for p in compiled.outputs]
        full_name = target
        try:
            full_name = f'{target} ({core.get_property(family, "FULL_DEVICE_NAME")})'
        except Exception:  # the property is optional for plug-in devices
            pass
        self._info = BackendInfo(self.name, self.vendor, full_name, ov.get_version())
        if progress is not None:
            progress('openvino: model loaded', 1.0)

    @classmethod
    def compile_plan(cls, model_path: Path, *, device: str = '',
                     options: Mapping[str, Any] | None = None) -> CompilePlan:
        """Plan the device's compiled blob (export_model), loaded later with import_model."""
        path = require_model_file(model_path)
        core, target, _, config = _target(device, options)
        key = CacheKey(file_sha256(path, reuse=True), cls.name, ov.get_version(), target,
                       {k: str(v) for k, v in config.items()})

        def build(out: Path, progress: ProgressFn | None) -> None:
            try:
                compiled = core.compile_model(core.read_model(str(path)), target, config)
                exported = compiled.export_model()  # bytes or BytesIO depending on the version
            except Exception as err:  # OpenVINO raises RuntimeError and friends
                raise ModelLoadError(f'openvino: cannot compile {path}: {err}') from err
            data = exported.getvalue() if hasattr(exported, 'getvalue') else exported
            out.write_bytes(bytes(data))

        return CompilePlan(key, 'compiled.blob', f'openvino {ov.get_version()}', build)

    def run(self, batch: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run one batch synchronously and return copies of the outputs in model order."""
        self._require_loaded()
        check_batch(batch, self._inputs)
        try:
            self._request.infer({k: np.ascontiguousarray(v) for k, v in batch.items()})
            return [
                np.array(self._request.get_output_tensor(i).data, copy=True)
                for i in range(len(self._outputs))
            ]
        except Exception as err:
            raise BackendError(f'openvino: inference failed: {err}') from err

    def close(self) -> None:
        """Release the compiled model."""
        self._request = None
        self._compiled = None
        self._core = None
        self._info = None
