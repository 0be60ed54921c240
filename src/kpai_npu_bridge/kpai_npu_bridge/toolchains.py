"""Find a vendor toolchain's own Python environment and read its package versions (no import).

Vendor compilers pin dependencies that conflict with the stack's (e.g. torch 2.7.0), so each
lives in ``.venv-<vendor>`` created by ``scripts/npu_toolchains.sh <vendor>``. Lookup order:
``$KPAI_<VENDOR>_PYTHON``, then ``$KPAI_NPU_TOOLCHAINS/.venv-<vendor>``, then
``$KPAI_ROOT/.venv-<vendor>`` (``env.sh`` exports ``KPAI_ROOT``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

__all__ = ['Toolchain', 'find_toolchain', 'install_command']


@dataclass(frozen=True)
class Toolchain:
    """Where a vendor toolchain's Python is (or was looked for) and what it has installed."""

    vendor: str
    python: Path | None
    searched: tuple[str, ...]
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def present(self) -> bool:
        """Return True when the toolchain's Python exists."""
        return self.python is not None

    def describe_missing(self) -> str:
        """Return why the toolchain was not found, naming the places searched."""
        return f'no toolchain Python for {self.vendor} (looked at {", ".join(self.searched)})'


def install_command(vendor: str) -> str:
    """Return the command that creates a vendor's toolchain environment."""
    return f'make npu-toolchains VENDOR={vendor}  (runs scripts/npu_toolchains.sh {vendor})'


def _candidates(vendor: str) -> list[tuple[str, Path]]:
    env_name = f'KPAI_{vendor.upper().replace("-", "_")}_PYTHON'
    found: list[tuple[str, Path]] = []
    if os.environ.get(env_name):
        found.append((f'${env_name}', Path(os.environ[env_name])))
    for var in ('KPAI_NPU_TOOLCHAINS', 'KPAI_ROOT'):
        if os.environ.get(var):
            found.append((f'${var}/.venv-{vendor}',
                          Path(os.environ[var]) / f'.venv-{vendor}' / 'bin' / 'python'))
    return found


def _site_packages(python: Path) -> list[Path]:
    venv = python.parent.parent
    return sorted(venv.glob('lib/python3*/site-packages'))


def _versions(python: Path) -> dict[str, str]:
    """Return {distribution name: version} installed in the environment of python."""
    paths = [str(p) for p in _site_packages(python)]
    if not paths:
        return {}
    out: dict[str, str] = {}
    for dist in metadata.distributions(path=paths):
        name = dist.metadata['Name']
        if name:
            out[name.lower().replace('_', '-')] = dist.version
    return out


def find_toolchain(vendor: str) -> Toolchain:
    """Locate a vendor toolchain's Python; read its installed versions from its dist-info."""
    candidates = _candidates(vendor)
    searched = tuple(f'{label} ({path})' for label, path in candidates) or (
        f'$KPAI_{vendor.upper()}_PYTHON, $KPAI_NPU_TOOLCHAINS and $KPAI_ROOT are all unset',)
    for _, path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return Toolchain(vendor, path, searched, _versions(path))
    return Toolchain(vendor, None, searched)
