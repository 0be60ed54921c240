"""The rosidl export fix rewrites build-host include paths and is idempotent."""

from __future__ import annotations

import importlib.util
import sysconfig
from pathlib import Path

import numpy
from kpai_testing import ROOT

_spec = importlib.util.spec_from_file_location('fix_rosidl_exports',
                                               ROOT / 'scripts' / 'fix_rosidl_exports.py')
assert _spec and _spec.loader
fix_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fix_mod)

_TEXT = ('set_target_properties(x PROPERTIES INTERFACE_INCLUDE_DIRECTORIES '
         '"/opt/python/cp311-cp311/include/python3.11;'
         '/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include")\n')


def test_rewrites_and_is_idempotent(tmp_path: Path) -> None:
    f = tmp_path / 'share/std_msgs/cmake/export_std_msgs__rosidl_generator_pyExport.cmake'
    f.parent.mkdir(parents=True)
    f.write_text(_TEXT)
    other = tmp_path / 'share/std_msgs/cmake/unrelated.cmake'
    other.write_text(_TEXT)
    assert fix_mod.fix(tmp_path) == 1
    text = f.read_text()
    assert '/opt/python' not in text
    assert sysconfig.get_paths()['include'] in text and numpy.get_include() in text
    assert other.read_text() == _TEXT
    assert fix_mod.fix(tmp_path) == 0


def test_rewrites_another_venvs_paths_and_leaves_hard_links_alone(tmp_path: Path) -> None:
    # uv hard-links a venv's files to its cache: an edit in place changed the cache, and the
    # next venv got the numpy path of a venv deleted since (a fresh-clone CI build failed)
    cache = tmp_path / 'cache.cmake'
    old_venv = ('set_target_properties(x PROPERTIES INTERFACE_INCLUDE_DIRECTORIES '
                '"/usr/include/python3.11;/tmp/gone/.venv/lib/python3.11/site-packages/numpy/'
                '_core/include")\n')
    cache.write_text(old_venv)
    f = tmp_path / 'share/std_msgs/cmake/export_std_msgs__rosidl_generator_pyExport.cmake'
    f.parent.mkdir(parents=True)
    f.hardlink_to(cache)
    assert fix_mod.fix(tmp_path) == 1
    text = f.read_text()
    assert '/tmp/gone' not in text and numpy.get_include() in text
    assert sysconfig.get_paths()['include'] in text
    assert cache.read_text() == old_venv  # the cache copy is untouched
    assert fix_mod.fix(tmp_path) == 0
