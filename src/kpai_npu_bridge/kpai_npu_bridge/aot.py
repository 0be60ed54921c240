"""Ahead-of-time compilation: build a backend's artifact into the cache or a directory to ship.

A backend opts in with a class-level ``compile_plan(model_path, *, device, options)`` that
returns a :class:`~kpai_npu_bridge.backends.base.CompilePlan`. The same plan is used by the
backend's ``load()``, so an artifact compiled here (or shipped in a directory that a robot uses
as its cache) is loaded without compiling again. Next to the artifact the build writes
``compile.json``: compiler and version, compile time and artifact size.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backends.base import CompilePlan, ProgressFn
from .cache import ArtifactCache, default_cache_dir
from .errors import ModelLoadError

__all__ = [
    'COMPILE_RECORD',
    'CompileResult',
    'compile_model',
    'ensure_compiled',
    'plan_compile',
    'supports_compile',
]

COMPILE_RECORD = 'compile.json'


@dataclass(frozen=True)
class CompileResult:
    """What one compile (or cache hit) produced."""

    backend: str
    model: str
    model_sha256: str
    device: str
    compiler: str
    artifact: Path
    artifact_bytes: int
    compile_seconds: float
    cache_hit: bool
    record: Path

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            'backend': self.backend, 'model': self.model, 'model_sha256': self.model_sha256,
            'device': self.device, 'compiler': self.compiler, 'artifact': str(self.artifact),
            'artifact_bytes': self.artifact_bytes,
            'compile_seconds': round(self.compile_seconds, 3), 'cache_hit': self.cache_hit,
            'record': str(self.record),
        }


def supports_compile(cls: object) -> bool:
    """Return True when a backend class declares an ahead-of-time compile step."""
    return callable(getattr(cls, 'compile_plan', None))


def _entry_bytes(directory: Path) -> int:
    """Return the size of an entry's artifact files (records and sidecar JSON excluded)."""
    return sum(p.stat().st_size for p in directory.iterdir()
               if p.is_file() and p.suffix != '.json')


def ensure_compiled(cache: ArtifactCache, plan: CompilePlan, *, model: str = '',
                    progress: ProgressFn | None = None) -> CompileResult:
    """Return the plan's artifact from the cache, building it (and compile.json) on a miss."""

    def build(out: Path) -> None:
        started = time.monotonic()
        plan.build(out, progress)
        seconds = time.monotonic() - started
        if not out.is_file():
            raise ModelLoadError(f'{plan.key.backend}: the compiler did not write {out.name}')
        record = {
            **plan.key.as_dict(), 'model': model, 'compiler': plan.compiler,
            'artifact': plan.artifact, 'artifact_bytes': _entry_bytes(out.parent),
            'files': sorted(p.name for p in out.parent.iterdir() if p.is_file()),
            'compile_seconds': round(seconds, 3), 'created': time.time(),
        }
        (out.parent / COMPILE_RECORD).write_text(json.dumps(record, indent=2) + '\n')

    artifact, hit = cache.get_or_build(plan.key, plan.artifact, build, progress=progress)
    record_path = artifact.parent / COMPILE_RECORD
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):  # an entry from before compile records: describe it now
        record = {'compile_seconds': 0.0, 'artifact_bytes': _entry_bytes(artifact.parent)}
    return CompileResult(
        backend=plan.key.backend, model=model, model_sha256=plan.key.model_sha256,
        device=plan.key.device, compiler=str(record.get('compiler', plan.compiler)),
        artifact=artifact, artifact_bytes=int(record.get('artifact_bytes', 0)),
        compile_seconds=float(record.get('compile_seconds', 0.0)), cache_hit=hit,
        record=record_path)


def plan_compile(backend: str, model_path: Path, *, device: str = '',
                 options: Mapping[str, Any] | None = None) -> CompilePlan:
    """Return the backend's compile plan; raise a clear error when it cannot compile here.

    The backend's device need not be present (compiling on a build machine is the point),
    but its plug-in must import.
    """
    from .backends.registry import backend_status
    from .errors import BackendUnavailableError

    status = backend_status(backend)
    if status.cls is None:
        raise BackendUnavailableError(f'backend {backend!r} is unavailable: {status.reason}')
    if not supports_compile(status.cls):
        raise ModelLoadError(f'backend {backend!r} has no ahead-of-time compile step '
                             '(it runs the model file directly)')
    plan: CompilePlan = status.cls.compile_plan(  # type: ignore[attr-defined]
        Path(model_path), device=device, options=dict(options or {}))
    return plan


def compile_model(backend: str, model_path: Path, *, device: str = '',
                  cache_dir: Path | None = None, options: Mapping[str, Any] | None = None,
                  progress: ProgressFn | None = None) -> CompileResult:
    """Compile a model (manifest and sha256 checked) for a backend into the artifact cache.

    cache_dir None means the default cache; a directory given here can be copied to a robot
    and used there as its cache (``cache_dir`` parameter or ``$KPAI_NPU_CACHE``).
    """
    from .manifest import load_manifest

    model_path = Path(model_path)
    # the artifact must come from the model its manifest names
    manifest = load_manifest(model_path)
    cache = ArtifactCache(cache_dir if cache_dir is not None else default_cache_dir())
    target = model_path
    if manifest.cpu_tail:  # only the head runs on the backend; the bridge loads it from here
        from .partition import split_model

        target, _ = split_model(model_path, manifest, cache.root)
    plan = plan_compile(backend, target, device=device, options=options)
    return ensure_compiled(cache, plan, model=str(model_path), progress=progress)
