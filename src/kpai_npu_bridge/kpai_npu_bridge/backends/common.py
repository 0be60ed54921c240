"""Shared plumbing for backend implementations (optional for third-party backends)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendError, ModelLoadError
from .base import BackendInfo, TensorSpec

__all__ = ['BackendBase', 'guess_layout', 'pop_option', 'require_model_file', 'zeros_for']


def guess_layout(shape: Sequence[int | None]) -> str:
    """Return 'NCHW' or 'NHWC' for a 4-D image tensor with 1 or 3 channels, else ''."""
    if len(shape) != 4:
        return ''
    if shape[1] in (1, 3):
        return 'NCHW'
    if shape[3] in (1, 3):
        return 'NHWC'
    return ''


def zeros_for(specs: Sequence[TensorSpec], batch_size: int) -> dict[str, np.ndarray] | None:
    """Return a zero batch for the specs, or None when a non-batch dimension is dynamic."""
    batch: dict[str, np.ndarray] = {}
    for spec in specs:
        dims = list(spec.shape)
        if dims and dims[0] is None:
            dims[0] = batch_size
        if any(d is None for d in dims):
            return None
        batch[spec.name] = np.zeros([int(d) for d in dims if d is not None], dtype=spec.dtype)
    return batch


def require_model_file(model_path: Path) -> Path:
    """Return the model path, or raise ModelLoadError when it is not a readable file."""
    path = Path(model_path)
    if not path.is_file():
        raise ModelLoadError(f'model file not found: {path}')
    return path


def pop_option(options: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    """Remove options[key] and check its type; raise ModelLoadError with the reason if wrong."""
    if key not in options:
        return default
    value = options.pop(key)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ModelLoadError(f'option {key!r} must be {kind.__name__}, got {value!r}')
    return value


class BackendBase:
    """State common to the built-in backends: specs, info and the loaded check."""

    name = ''
    vendor = ''

    def __init__(self) -> None:
        self._inputs: list[TensorSpec] = []
        self._outputs: list[TensorSpec] = []
        self._info: BackendInfo | None = None

    def _require_loaded(self) -> BackendInfo:
        if self._info is None:
            raise BackendError(f'{self.name}: no model loaded')
        return self._info

    @staticmethod
    def _reject_unknown(options: Mapping[str, Any], backend: str) -> None:
        if options:
            raise ModelLoadError(f'{backend}: unknown option(s) {sorted(options)}')

    def inputs(self) -> list[TensorSpec]:
        """Return the model's input tensor specs."""
        self._require_loaded()
        return list(self._inputs)

    def outputs(self) -> list[TensorSpec]:
        """Return the model's output tensor specs."""
        self._require_loaded()
        return list(self._outputs)

    def info(self) -> BackendInfo:
        """Describe the loaded backend."""
        return self._require_loaded()

    def run(self, batch: Mapping[str, np.ndarray]) -> list[np.ndarray]:  # pragma: no cover
        """Run one batch; implemented by subclasses."""
        raise NotImplementedError

    def warmup(self, batch_size: int = 1) -> None:
        """Run the model on zeros (skipped when non-batch dimensions are dynamic)."""
        self._require_loaded()
        batch = zeros_for(self._inputs, batch_size)
        if batch is not None:
            self.run(batch)
