"""Compiled-artifact cache keyed by model hash, backend, runtime version, device and options."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backends.base import ProgressFn
from .errors import ModelLoadError

__all__ = [
    'ArtifactCache',
    'CacheKey',
    'default_cache_dir',
    'file_sha256',
]

_META = 'meta.json'


_HASHES: dict[tuple[str, int, int, int], str] = {}
_HASHES_LOCK = threading.Lock()


def file_sha256(path: Path, *, reuse: bool = False) -> str:
    """Return the hex sha256 of a file.

    reuse=True may return the hash computed earlier for the same inode, size and mtime (for
    cache keys); verification against a manifest always reads the file.
    """
    path = Path(path)
    st = path.stat()
    memo = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    if reuse:
        with _HASHES_LOCK:
            if memo in _HASHES:
                return _HASHES[memo]
    digest = hashlib.sha256()
    with path.open('rb') as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b''):
            digest.update(chunk)
    with _HASHES_LOCK:
        if len(_HASHES) > 256:
            _HASHES.clear()
        _HASHES[memo] = digest.hexdigest()
    return _HASHES[memo]


def default_cache_dir() -> Path:
    """Return $KPAI_NPU_CACHE, else $XDG_CACHE_HOME/kpai/npu, else ~/.cache/kpai/npu."""
    env = os.environ.get('KPAI_NPU_CACHE')
    if env:
        return Path(env).expanduser()
    base = os.environ.get('XDG_CACHE_HOME') or str(Path.home() / '.cache')
    return Path(base) / 'kpai' / 'npu'


@dataclass(frozen=True)
class CacheKey:
    """Everything a compiled artifact depends on."""

    model_sha256: str
    backend: str
    runtime_version: str
    device: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return the key as a JSON-serialisable dict."""
        return {
            'model_sha256': self.model_sha256,
            'backend': self.backend,
            'runtime_version': self.runtime_version,
            'device': self.device,
            'options': {str(k): self.options[k] for k in sorted(self.options)},
        }

    def digest(self) -> str:
        """Return a stable hex digest of the key (the cache entry's directory name)."""
        text = json.dumps(self.as_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


class ArtifactCache:
    """A directory of compiled artifacts; entries are written atomically and never mutated."""

    def __init__(self, root: Path, *, heartbeat_s: float = 1.0) -> None:
        self.root = Path(root).expanduser()
        self.heartbeat_s = heartbeat_s
        self.hits = 0
        self.misses = 0

    def entry_dir(self, key: CacheKey) -> Path:
        """Return the directory a key's artifacts live in (may not exist)."""
        return self.root / key.backend / key.digest()

    def lookup(self, key: CacheKey, name: str) -> Path | None:
        """Return the artifact's path if a complete entry exists, else None."""
        entry = self.entry_dir(key)
        artifact = entry / name
        if (entry / _META).is_file() and artifact.is_file():
            return artifact
        return None

    def get_or_build(
        self,
        key: CacheKey,
        name: str,
        build: Callable[[Path], None],
        *,
        progress: ProgressFn | None = None,
    ) -> tuple[Path, bool]:
        """Return (artifact path, hit); on a miss call build(path) to write it, then publish it.

        The build writes into a private temporary directory that is renamed into place, so a
        crashed or concurrent build never leaves a half-written artifact behind. While it
        runs, progress gets a 'still compiling' message every heartbeat_s seconds, from a
        helper thread.
        """
        found = self.lookup(key, name)
        if found is not None:
            self.hits += 1
            if progress is not None:
                progress(f'{key.backend}: compiled artifact found in cache', 1.0)
            return found, True
        self.misses += 1
        entry = self.entry_dir(key)
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix='.build-', dir=entry.parent))
        started = time.monotonic()
        if progress is not None:
            progress(f'{key.backend}: compiling model for {key.device or "default device"}', 0.0)
        stop = threading.Event()
        beat: threading.Thread | None = None
        if progress is not None and self.heartbeat_s > 0:
            beat = threading.Thread(target=self._heartbeat, args=(key, progress, started, stop),
                                    daemon=True, name='kpai-npu-compile-heartbeat')
            beat.start()
        try:
            build(tmp / name)
            if not (tmp / name).is_file():
                raise ModelLoadError(f'{key.backend}: build did not write {name}')
            meta = {**key.as_dict(), 'artifact': name, 'created': time.time(),
                    'build_seconds': round(time.monotonic() - started, 3)}
            (tmp / _META).write_text(json.dumps(meta, indent=2, default=str))
            try:
                tmp.rename(entry)
            except OSError:
                # Another process published the same entry first: keep theirs.
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            stop.set()
            if beat is not None:
                beat.join()  # no heartbeat may arrive after the final message
        if progress is not None:
            progress(f'{key.backend}: compiled in {time.monotonic() - started:.1f} s', 1.0)
        artifact = self.lookup(key, name)
        if artifact is None:
            raise ModelLoadError(f'cache entry {entry} is incomplete after build')
        return artifact, False

    def _heartbeat(self, key: CacheKey, progress: ProgressFn, started: float,
                   stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_s):
            progress(f'{key.backend}: still compiling ({time.monotonic() - started:.0f} s)', 0.0)

    def entries(self) -> list[dict[str, Any]]:
        """Return the metadata of every complete entry."""
        out = []
        for meta in sorted(self.root.glob(f'*/*/{_META}')):
            try:
                data = json.loads(meta.read_text())
            except (OSError, ValueError):
                continue
            data['path'] = str(meta.parent)
            out.append(data)
        return out

    def clear(self) -> int:
        """Delete every entry; return how many were removed."""
        count = len(self.entries())
        if self.root.is_dir():
            for child in self.root.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
        return count
