#!/usr/bin/env python3
"""Rewrite build-host include paths in the ROS wheels' rosidl Python export files.

The ros-* wheels ship share/*/cmake/export_*__rosidl_generator_pyExport.cmake files that name
the wheel build host's Python and numpy include directories (/opt/python/...). CMake refuses
imported targets with missing include paths, so every interface package built against the
wheels would fail. This replaces them, and any other venv's, with this interpreter's paths.
Idempotent.

A file is replaced, never written in place: an installer may hard-link the venv's files to its
package cache (uv does), and an in-place edit would change the cache, so that the next venv
installed from it would name this venv's (possibly deleted) numpy.
"""
from __future__ import annotations

import os
import re
import sys
import sysconfig
from pathlib import Path

import numpy

# any Python or numpy include directory in the exported include list (build host or a venv)
_PY_INCLUDE = re.compile(r'(?<=["; ])[^;"]*/include/python3\.\d+(?=[;"])')
_NP_INCLUDE = re.compile(r'(?<=["; ])[^;"]*/site-packages/numpy/_?core/include(?=[;"])')


def fix(prefix: Path) -> int:
    """Patch every export file below prefix/share; return how many files changed."""
    py_inc = sysconfig.get_paths()['include']
    np_inc = numpy.get_include()
    changed = 0
    for path in sorted(prefix.glob('share/*/cmake/export_*__rosidl_generator_pyExport.cmake')):
        text = path.read_text()
        new = _NP_INCLUDE.sub(np_inc, _PY_INCLUDE.sub(py_inc, text))
        if new != text:
            tmp = path.with_name(path.name + '.kpai-tmp')
            tmp.write_text(new)
            os.replace(tmp, path)  # a new file: a hard link to a package cache stays as it was
            changed += 1
    return changed


def main() -> int:
    prefix = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(sys.prefix)
    n = fix(prefix)
    print(f'fix_rosidl_exports: {n} export file(s) rewritten under {prefix}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
