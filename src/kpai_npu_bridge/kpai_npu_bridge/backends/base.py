"""The backend protocol every accelerator runtime implements, plus shared helpers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    from ..cache import ArtifactCache, CacheKey

__all__ = [
    'Backend',
    'BackendInfo',
    'CompilePlan',
    'Component',
    'ProgressFn',
    'TensorSpec',
    'check_batch',
    'numpy_dtype_name',
]

ProgressFn = Callable[[str, float], None]
"""Progress callback: (message, fraction in [0, 1])."""


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape (None for a dynamic dimension), numpy dtype name and layout of a tensor."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str
    layout: str = ''

    @property
    def dynamic_batch(self) -> bool:
        """Return True when the first (batch) dimension is dynamic."""
        return len(self.shape) > 0 and self.shape[0] is None


@dataclass(frozen=True)
class BackendInfo:
    """What a loaded backend is: its registry name, vendor, device and runtime version."""

    name: str
    vendor: str
    device: str
    runtime_version: str


@dataclass(frozen=True)
class Component:
    """One part a backend needs (SDK, compiler, runtime, device, runner): present or why not."""

    name: str
    present: bool
    detail: str


@dataclass(frozen=True)
class CompilePlan:
    """How a backend compiles one model ahead of time: cache key, artifact name and builder.

    ``build(path, progress)`` writes the artifact at ``path`` (sibling files in the same
    directory travel with it); ``compiler`` names the compiler and its version.
    """

    key: CacheKey
    artifact: str
    compiler: str
    build: Callable[[Path, ProgressFn | None], None]


@runtime_checkable
class Backend(Protocol):
    """An inference runtime that loads one model and runs batches on one device.

    A backend instance is used from one thread at a time; the caller serialises calls.
    Optional class-level hooks (static or class methods, looked up by the registry and the
    CLI): ``probe() -> (available, reason)``; ``components() -> list[Component]`` (what is
    present and what is missing, for ``kpai-npu backends``); ``compile_plan(model_path, *,
    device, options) -> CompilePlan`` (ahead-of-time compilation, see ``aot.py``).
    """

    def load(
        self,
        model_path: Path,
        *,
        device: str = '',
        options: Mapping[str, Any] | None = None,
        cache: ArtifactCache | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        """Load (and compile, through the cache when given) the model on the device."""
        ...

    def inputs(self) -> list[TensorSpec]:
        """Return the model's input tensor specs."""
        ...

    def outputs(self) -> list[TensorSpec]:
        """Return the model's output tensor specs."""
        ...

    def run(self, batch: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run one batch (input name -> array) and return the outputs in model order."""
        ...

    def warmup(self, batch_size: int = 1) -> None:
        """Run the model once or more on zeros so the first real call is not slow."""
        ...

    def info(self) -> BackendInfo:
        """Describe the loaded backend."""
        ...

    def close(self) -> None:
        """Release the model and the device."""
        ...


_DTYPES = {
    'tensor(float)': 'float32',
    'tensor(float16)': 'float16',
    'tensor(double)': 'float64',
    'tensor(uint8)': 'uint8',
    'tensor(int8)': 'int8',
    'tensor(int32)': 'int32',
    'tensor(int64)': 'int64',
    'f32': 'float32',
    'f16': 'float16',
    'f64': 'float64',
    'u8': 'uint8',
    'i8': 'int8',
    'i32': 'int32',
    'i64': 'int64',
}


def numpy_dtype_name(runtime_type: str) -> str:
    """Map a runtime's element type name (onnxruntime, OpenVINO or numpy) to a numpy name."""
    name = _DTYPES.get(runtime_type, runtime_type)
    try:
        return np.dtype(name).name
    except TypeError as err:
        raise InputError(f'unsupported tensor element type {runtime_type!r}') from err


def _shape_ok(actual: Sequence[int], expected: Sequence[int | None]) -> bool:
    if len(actual) != len(expected):
        return False
    return all(e is None or a == e for a, e in zip(actual, expected, strict=True))


def check_batch(batch: Mapping[str, np.ndarray], specs: Sequence[TensorSpec]) -> None:
    """Raise InputError unless the batch has exactly the spec'd inputs, shapes and dtypes."""
    if not isinstance(batch, Mapping):
        raise InputError(f'batch must be a mapping of input name -> array, got {type(batch)}')
    names = {s.name for s in specs}
    unknown = sorted(set(batch) - names)
    missing = sorted(names - set(batch))
    if unknown or missing:
        raise InputError(f'batch inputs mismatch: missing {missing}, unknown {unknown}')
    for spec in specs:
        array = batch[spec.name]
        if not isinstance(array, np.ndarray):
            raise InputError(f'input {spec.name!r} must be a numpy array, got {type(array)}')
        if array.dtype.name != spec.dtype:
            raise InputError(
                f'input {spec.name!r} has dtype {array.dtype.name}, model expects {spec.dtype}'
            )
        if not _shape_ok(array.shape, spec.shape):
            shown = ['?' if d is None else d for d in spec.shape]
            raise InputError(
                f'input {spec.name!r} has shape {list(array.shape)}, model expects {shown}'
            )
        if array.size == 0:
            raise InputError(f'input {spec.name!r} is empty')
