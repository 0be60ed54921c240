"""Backend registry: built-ins plus third-party backends from the entry-point group."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from ..errors import BackendUnavailableError
from .base import Backend

__all__ = [
    'BUILTIN_BACKENDS',
    'ENTRY_POINT_GROUP',
    'BackendStatus',
    'available_backends',
    'backend_status',
    'create_backend',
]

ENTRY_POINT_GROUP = 'kpai_npu_bridge.backends'

# Also declared as entry points in setup.py; kept here so a source checkout works uninstalled.
BUILTIN_BACKENDS = {
    'onnxruntime': 'kpai_npu_bridge.backends.onnxruntime_backend:OnnxRuntimeBackend',
    'openvino': 'kpai_npu_bridge.backends.openvino_backend:OpenVinoBackend',
    'opencv': 'kpai_npu_bridge.backends.opencv_backend:OpenCvBackend',
}


@dataclass(frozen=True)
class BackendStatus:
    """Whether a registered backend can be used here, and why not if it cannot."""

    name: str
    available: bool
    reason: str
    cls: type | None
    source: str = ''


def _load_target(target: str) -> Any:
    module_name, _, attr = target.partition(':')
    obj: Any = importlib.import_module(module_name)
    for part in attr.split('.') if attr else []:
        obj = getattr(obj, part)
    return obj


def _status(name: str, source: str, load: Any) -> BackendStatus:
    try:
        cls = load()
    except Exception as err:  # a broken plug-in is reported, never fatal
        return BackendStatus(name, False, f'import failed: {type(err).__name__}: {err}', None,
                             source)
    if not callable(cls):
        return BackendStatus(name, False, f'{source} is not a class or factory', None, source)
    probe = getattr(cls, 'probe', None)
    if probe is None:
        return BackendStatus(name, True, '', cls, source)
    try:
        ok, reason = probe()
    except Exception as err:
        return BackendStatus(name, False, f'probe failed: {type(err).__name__}: {err}', cls,
                             source)
    return BackendStatus(name, bool(ok), str(reason), cls, source)


def _targets() -> dict[str, tuple[str, Any]]:
    targets: dict[str, tuple[str, Any]] = {
        name: (target, lambda t=target: _load_target(t))
        for name, target in BUILTIN_BACKENDS.items()
    }
    try:
        entry_points = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    except Exception:  # a corrupt distribution's metadata must not hide the built-ins
        entry_points = []
    for ep in entry_points:
        if ep.name not in targets:  # built-ins, then the first registration of a name, win
            targets[ep.name] = (ep.value, ep.load)
    return targets


def available_backends() -> dict[str, BackendStatus]:
    """Return every known backend by name with its availability and reason."""
    return {name: _status(name, target, load) for name, (target, load) in _targets().items()}


def backend_status(name: str) -> BackendStatus:
    """Return one backend's status; its class is set whenever it imports, even if unavailable.

    Compiling ahead of time needs the class of a backend whose device is absent (a build
    machine), so callers check ``cls`` rather than ``available`` for that.
    """
    targets = _targets()
    if name not in targets:
        raise BackendUnavailableError(
            f'unknown backend {name!r}; known: {", ".join(sorted(targets))}'
        )
    return _status(name, *targets[name])


def create_backend(name: str) -> Backend:
    """Instantiate a backend by name; raise BackendUnavailableError with the reason."""
    status = backend_status(name)
    if not status.available or status.cls is None:
        raise BackendUnavailableError(f'backend {name!r} is unavailable: {status.reason}')
    try:
        backend = status.cls()
    except Exception as err:
        raise BackendUnavailableError(f'backend {name!r} failed to start: {err}') from err
    for method in ('load', 'inputs', 'outputs', 'run', 'warmup', 'info', 'close'):
        if not callable(getattr(backend, method, None)):
            raise BackendUnavailableError(f'backend {name!r} does not implement {method}()')
    return backend
