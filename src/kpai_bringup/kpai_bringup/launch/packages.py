"""Find packages, node executables and launch files through the ament index."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from .errors import ExecutableNotFoundError, PackageNotFoundError

__all__ = [
    'find_launch_file',
    'find_node_executable',
    'find_program',
    'package_prefix',
    'package_share',
]

_MARKERS = Path('share') / 'ament_index' / 'resource_index' / 'packages'


def _prefixes(env: Mapping[str, str]) -> list[str]:
    return [p for p in env.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]


def package_prefix(package: str, env: Mapping[str, str] | None = None) -> str:
    """Return the first prefix of AMENT_PREFIX_PATH that registers package."""
    env = os.environ if env is None else env
    for prefix in _prefixes(env):
        if (Path(prefix) / _MARKERS / package).is_file():
            return prefix
    if not _prefixes(env):
        hint = 'AMENT_PREFIX_PATH is empty: source env.sh (or your ROS setup) first'
    else:
        hint = 'build it with colcon and source env.sh (is the overlay sourced?)'
    raise PackageNotFoundError(f"package '{package}' not found: {hint}")


def package_share(package: str, env: Mapping[str, str] | None = None) -> Path:
    """Return <prefix>/share/<package>."""
    return Path(package_prefix(package, env)) / 'share' / package


def find_node_executable(package: str, executable: str,
                         env: Mapping[str, str] | None = None) -> str:
    """Return <prefix>/lib/<package>/<executable>, as ros2 launch looks it up."""
    libexec = Path(package_prefix(package, env)) / 'lib' / package
    candidate = libexec / executable
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    available = sorted(p.name for p in libexec.iterdir()
                       if p.is_file() and os.access(p, os.X_OK)) if libexec.is_dir() else []
    listing = ', '.join(available) if available else 'none'
    raise ExecutableNotFoundError(
        f"executable '{executable}' not found in package '{package}' "
        f'(looked in {libexec}; available: {listing})')


def find_program(name: str, env: Mapping[str, str] | None = None) -> str:
    """Resolve a command name on PATH (paths with a slash are checked as they are)."""
    env = os.environ if env is None else env
    if '/' in name:
        if Path(name).is_file() and os.access(name, os.X_OK):
            return name
        raise ExecutableNotFoundError(f"executable '{name}' not found or not executable")
    found = shutil.which(name, path=env.get('PATH'))
    if found is None:
        raise ExecutableNotFoundError(f"executable '{name}' not found on the PATH")
    return found


def find_launch_file(package: str, name: str, env: Mapping[str, str] | None = None) -> Path:
    """Find launch file name (a file name or a relative path) in the package's share dir."""
    share = package_share(package, env)
    direct = share / name
    if direct.is_file():
        return direct
    matches = sorted(p for p in share.rglob(Path(name).name)
                     if p.is_file() and str(p).endswith(name))
    if not matches:
        raise PackageNotFoundError(f"file '{name}' not found in the share directory of "
                                   f"package '{package}' ({share})")
    if len(matches) > 1:
        listing = ', '.join(str(m.relative_to(share)) for m in matches)
        raise PackageNotFoundError(f"file '{name}' is ambiguous in package '{package}': "
                                   f'{listing}')
    return matches[0]
