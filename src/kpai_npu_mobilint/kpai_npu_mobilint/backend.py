"""Mobilint backend: runs MXQ models on ARIES/REGULUS NPUs with the vendor runtime (qbruntime).

Written against mobilint-qb-runtime 1.5 (``Accelerator``, ``Model(path)``, ``launch``,
``infer``, ``dispose``). Models are MXQ files made by Mobilint's qbcompiler, which is not on
PyPI (Docker image ``mobilint/qbcompiler``): compile there and ship ``<model>.mxq`` beside the
ONNX model, or pass the option ``mxq``. Without the SDK or a device the backend is unavailable
with the reason; it never emulates the NPU. Untested on hardware here (no device).
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from kpai_npu_bridge.backends.base import (
    BackendInfo,
    CompilePlan,
    Component,
    ProgressFn,
    TensorSpec,
    check_batch,
)
from kpai_npu_bridge.backends.common import BackendBase, pop_option, require_model_file
from kpai_npu_bridge.cache import ArtifactCache
from kpai_npu_bridge.errors import BackendError, BackendUnavailableError, ModelLoadError

__all__ = ['DEVICE_GLOBS', 'RUNTIME_DIST', 'MobilintBackend', 'mxq_path']

RUNTIME_DIST = 'mobilint-qb-runtime'
RUNTIME_MODULE = 'qbruntime'
COMPILER_MODULE = 'qbcompiler'
DEVICE_GLOBS = ('/dev/aries*', '/dev/regulus*')
NO_COMPILER = ('not installed: qbcompiler is distributed as the Docker image mobilint/qbcompiler '
               '(Mobilint Download Center), not on PyPI; compile the ONNX model there '
               '(mxq_compile) and ship <model>.mxq beside it')


def _device_nodes() -> list[str]:
    return sorted(p for pattern in DEVICE_GLOBS for p in glob.glob(pattern))


def _runtime_version() -> str | None:
    if importlib.util.find_spec(RUNTIME_MODULE) is None:
        return None
    try:
        return metadata.version(RUNTIME_DIST)
    except metadata.PackageNotFoundError:
        return 'unknown version'


def _open_accelerator(dev_no: int) -> Any:
    """Open device dev_no with qbruntime; raise BackendUnavailableError with its exact error."""
    qbruntime = importlib.import_module(RUNTIME_MODULE)
    try:
        return qbruntime.Accelerator(dev_no)
    except Exception as err:  # qbruntime raises its own QbRuntimeError (e.g. Acc_DeviceNotFound)
        text = ' '.join(str(err).split())  # its message spans lines
        raise BackendUnavailableError(
            f'mobilint: qbruntime.Accelerator({dev_no}) raised {type(err).__name__}: {text}'
        ) from err


def mxq_path(model_path: Path, options: Mapping[str, Any] | None = None) -> Path:
    """Return the MXQ file for a model: option 'mxq', else <model>.mxq beside it."""
    given = dict(options or {}).get('mxq')
    return Path(given) if given else Path(model_path).with_suffix('.mxq')


def _device_number(device: str) -> int:
    text = device.rsplit(':', 1)[-1] if device else '0'
    if not text.isdigit():
        raise ModelLoadError(f"mobilint: device must be a number or 'aries:<n>', got {device!r}")
    return int(text)


class MobilintBackend(BackendBase):
    """Mobilint ARIES/REGULUS through qbruntime; one image per infer() call."""

    name = 'mobilint'
    vendor = 'Mobilint (ARIES / REGULUS)'

    def __init__(self) -> None:
        super().__init__()
        self._model: Any = None
        self._acc: Any = None

    @staticmethod
    def components() -> list[Component]:
        """Report SDK, device, compiler and runner: what is present and what is missing."""
        version = _runtime_version()
        parts = [Component('runtime', version is not None,
                           f'{RUNTIME_DIST} {version} (module {RUNTIME_MODULE})' if version else
                           f'{RUNTIME_DIST} not installed (pip install {RUNTIME_DIST})')]
        nodes = _device_nodes()
        if version is None:
            parts.append(Component('device', False, 'not probed: no runtime; device nodes: '
                                   + (', '.join(nodes) or 'none of ' + ', '.join(DEVICE_GLOBS))))
        else:
            try:
                acc = _open_accelerator(0)
                parts.append(Component('device', True, f'{acc.get_device_name()} (device 0)'))
            except BackendUnavailableError as err:
                parts.append(Component('device', False, str(err).removeprefix('mobilint: ')))
        compiler = importlib.util.find_spec(COMPILER_MODULE) is not None
        parts.append(Component('compiler', compiler, 'qbcompiler importable (vendor container)'
                               if compiler else NO_COMPILER))
        parts.append(Component('runner', version is not None, 'qbruntime Model.infer'
                               if version else 'needs the runtime'))
        return parts

    @classmethod
    def probe(cls) -> tuple[bool, str]:
        """Report whether MXQ models can run here (runtime and device; no compiler needed)."""
        parts = {c.name: c for c in cls.components()}
        missing = [parts[n] for n in ('runtime', 'device') if not parts[n].present]
        if missing:
            return False, '; '.join(f'{c.name}: {c.detail}' for c in missing)
        return True, f'{parts["runtime"].detail}; {parts["device"].detail}'

    def load(self, model_path: Path, *, device: str = '',
             options: Mapping[str, Any] | None = None, cache: ArtifactCache | None = None,
             progress: ProgressFn | None = None) -> None:
        """Load <model>.mxq on the device; tensor specs come from the source ONNX model."""
        path = require_model_file(model_path)
        opts = dict(options or {})
        mxq = mxq_path(path, opts)
        pop_option(opts, 'mxq', str, '')
        self._reject_unknown(opts, self.name)
        if not mxq.is_file():
            raise ModelLoadError(f'mobilint: no MXQ for {path.name}: compile it with Mobilint '
                                 f'qbcompiler and place it at {mxq} (or set the option mxq)')
        if _runtime_version() is None:
            raise BackendUnavailableError(f'mobilint: {RUNTIME_DIST} not installed')
        dev_no = _device_number(device)
        acc = _open_accelerator(dev_no)
        qbruntime = importlib.import_module(RUNTIME_MODULE)
        if progress is not None:
            progress(f'mobilint: loading {mxq.name} on device {dev_no}', 0.5)
        try:
            model = qbruntime.Model(str(mxq))
            model.launch(acc)
        except Exception as err:
            raise ModelLoadError(f'mobilint: cannot load {mxq}: {err}') from err
        self.close()
        self._acc, self._model = acc, model
        self._inputs, self._outputs = _onnx_specs(path)
        self._info = BackendInfo(self.name, self.vendor,
                                 f'{acc.get_device_name()}:{dev_no}', str(_runtime_version()))

    @classmethod
    def compile_plan(cls, model_path: Path, *, device: str = '',
                     options: Mapping[str, Any] | None = None) -> CompilePlan:
        """Refuse with the reason: qbcompiler is not installable here, and unverified."""
        require_model_file(model_path)
        if importlib.util.find_spec(COMPILER_MODULE) is None:
            raise BackendUnavailableError(f'mobilint: compiler {NO_COMPILER}')
        # qbcompiler is present (inside the vendor's container), but the mxq_compile call
        # (calibration set, preprocessing config) has never been run by this project.
        raise BackendUnavailableError(
            'mobilint: qbcompiler is importable, but compiling through kpai-npu is not '
            f'implemented (never verified); run mxq_compile on {model_path} in the vendor '
            f'container and place the result at {mxq_path(model_path, options)}')

    def run(self, batch: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run each image of the batch (CHW) and stack the outputs in the ONNX model's shapes."""
        self._require_loaded()
        check_batch(batch, self._inputs)
        tensor = batch[self._inputs[0].name]
        per_image: list[list[np.ndarray]] = []
        try:
            for image in tensor:
                per_image.append(list(self._model.infer([np.ascontiguousarray(image)])))
        except Exception as err:
            raise BackendError(f'mobilint: inference failed: {err}') from err
        outputs = []
        for k, spec in enumerate(self._outputs):
            want = [d for d in spec.shape[1:]]
            if any(d is None for d in want) or len(per_image[0]) != len(self._outputs):
                raise BackendError(f'mobilint: MXQ gave {len(per_image[0])} outputs for the '
                                   f'ONNX outputs {[s.shape for s in self._outputs]}')
            rows = []
            for outs in per_image:
                if outs[k].size != int(np.prod(want)):
                    raise BackendError(f'mobilint: output {k} has shape {outs[k].shape}, '
                                       f'the ONNX model gives {want}')
                rows.append(outs[k].reshape(want))
            outputs.append(np.stack(rows).astype(spec.dtype, copy=False))
        return outputs

    def close(self) -> None:
        """Dispose of the model on the NPU."""
        if self._model is not None:
            try:
                self._model.dispose()
            finally:
                self._model = None
        self._acc = None
        self._info = None


def _onnx_specs(path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Return the source ONNX model's input and output specs (the bridge's contract)."""
    from kpai_npu_bridge.backends.onnxruntime_backend import OnnxRuntimeBackend

    reader = OnnxRuntimeBackend()
    reader.load(path, device='cpu')
    try:
        return reader.inputs(), reader.outputs()
    finally:
        reader.close()
