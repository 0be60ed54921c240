"""Backend protocol, registry and the built-in backends (imported lazily by the registry)."""

from __future__ import annotations

from .base import (
    Backend,
    BackendInfo,
    CompilePlan,
    Component,
    ProgressFn,
    TensorSpec,
    check_batch,
)
from .registry import (
    BUILTIN_BACKENDS,
    ENTRY_POINT_GROUP,
    BackendStatus,
    available_backends,
    backend_status,
    create_backend,
)

__all__ = [
    'BUILTIN_BACKENDS',
    'ENTRY_POINT_GROUP',
    'Backend',
    'BackendInfo',
    'BackendStatus',
    'CompilePlan',
    'Component',
    'ProgressFn',
    'TensorSpec',
    'available_backends',
    'backend_status',
    'check_batch',
    'create_backend',
]
