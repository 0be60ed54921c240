"""A second `make setup` with nothing changed reinstalls and rebuilds nothing."""

from __future__ import annotations

import os
import subprocess

import pytest
from kpai_testing import ROOT


def test_second_setup_is_a_no_op() -> None:
    env = dict(os.environ, KPAI_SKIP_APT='1')
    env.pop('KPAI_FORCE', None)
    first = subprocess.run(['bash', 'scripts/setup.sh'], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=900)
    assert first.returncode == 0, first.stdout + first.stderr
    second = subprocess.run(['bash', 'scripts/setup.sh'], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    assert 'Python packages up to date' in second.stdout
    assert 'workspace build up to date' in second.stdout
    assert (ROOT / 'env.sh').is_file()


def test_unsupported_python_is_one_clear_line(tmp_path: object) -> None:
    fake = ROOT / '.kpai-stamps' / 'fake-python'
    fake.write_text('#!/bin/sh\necho 3.9\n')
    fake.chmod(0o755)
    try:
        out = subprocess.run(['bash', 'scripts/setup.sh'], cwd=ROOT, capture_output=True,
                             text=True, timeout=60, env=dict(os.environ, PYTHON=str(fake)))
    finally:
        fake.unlink()
    assert out.returncode != 0
    errors = [line for line in out.stderr.splitlines() if 'ERROR' in line]
    assert len(errors) == 1 and 'Python 3.9 is not supported' in errors[0]
    assert '3.10-3.13' in errors[0]


@pytest.mark.parametrize(('name', 'value', 'expected'), [
    ('KPAI_INSTALLER', 'conda', 'KPAI_INSTALLER must be uv or pip'),
    ('KPAI_INTERFACES_CPP', 'yes', 'KPAI_INTERFACES_CPP must be 0 or 1'),
])
def test_bad_setup_option_is_one_clear_line(name: str, value: str, expected: str) -> None:
    out = subprocess.run(['bash', 'scripts/setup.sh'], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env=dict(os.environ, KPAI_SKIP_APT='1', **{name: value}))
    assert out.returncode != 0
    errors = [line for line in out.stderr.splitlines() if 'ERROR' in line]
    assert len(errors) == 1 and expected in errors[0] and repr(value) in errors[0], out.stderr
