"""The compile-worker protocol and the toolchain lookup, with test-double worker processes.

The fake workers below stand in for a vendor toolchain *process* (what it sends, how it dies);
none of them produces or claims to produce a vendor artifact.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import pytest
from kpai_npu_bridge.compile_worker import PROTOCOL, WorkerError, run_worker
from kpai_npu_bridge.toolchains import find_toolchain


def _worker(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / 'worker.py'
    script.write_text(textwrap.dedent("""
        import json, sys, time
        req = json.loads(sys.stdin.readline())
        def send(**m):
            print(json.dumps(m), flush=True)
    """) + textwrap.dedent(body))
    return [sys.executable, str(script)]


def test_progress_then_result_and_vendor_noise_is_ignored(tmp_path: Path) -> None:
    cmd = _worker(tmp_path, """
        print('vendor banner: compiler 9.9 starting')
        send(event='progress', message='lowering', fraction=0.5)
        print('{"not": "a protocol message"}')
        send(event='result', ok=True, compiler='acme 1.0', echo=req)
    """)
    seen: list[tuple[str, float]] = []
    result = run_worker(cmd, {'op': 'compile', 'model': '/m.onnx'}, label='acme',
                        progress=lambda m, f: seen.append((m, f)), timeout_s=30)
    assert seen == [('acme: lowering', 0.5)]
    assert result['compiler'] == 'acme 1.0'
    assert result['echo'] == {'protocol': PROTOCOL, 'op': 'compile', 'model': '/m.onnx'}


def test_error_result_carries_the_reason_and_kind(tmp_path: Path) -> None:
    cmd = _worker(tmp_path, """
        send(event='result', ok=False, error='operator NonMaxSuppression unsupported',
             kind='unsupported-operator')
        sys.exit(1)
    """)
    with pytest.raises(WorkerError, match='acme: operator NonMaxSuppression unsupported') as info:
        run_worker(cmd, {'op': 'compile'}, label='acme', timeout_s=30)
    assert info.value.kind == 'unsupported-operator'


def test_a_worker_dying_without_a_result_reports_exit_code_and_output(tmp_path: Path) -> None:
    cmd = _worker(tmp_path, """
        print('stage 3: cross-compiling', flush=True)
        sys.stderr.write('aarch64-linux-gnu-gcc: not found\\n')
        sys.exit(7)
    """)
    with pytest.raises(WorkerError, match='exited with code 7') as info:
        run_worker(cmd, {'op': 'compile'}, label='acme', timeout_s=30)
    assert 'aarch64-linux-gnu-gcc: not found' in str(info.value)
    assert 'stage 3: cross-compiling' in str(info.value)
    assert info.value.kind == 'crash'


def test_a_hung_worker_is_killed_at_the_timeout(tmp_path: Path) -> None:
    cmd = _worker(tmp_path, """
        send(event='progress', message='compiling', fraction=0.1)
        import signal
        signal.pause()  # hangs until the runner kills it (no fixed sleep)
    """)
    started = time.monotonic()
    with pytest.raises(WorkerError, match='timed out after 1 s') as info:
        run_worker(cmd, {'op': 'compile'}, label='acme', timeout_s=1.0)
    assert time.monotonic() - started < 15
    assert info.value.kind == 'timeout'


def test_a_missing_worker_python_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorkerError, match='cannot start the compile worker') as info:
        run_worker([str(tmp_path / 'nope' / 'python'), 'w.py'], {}, label='acme')
    assert info.value.kind == 'missing'


def fake_toolchain(root: Path, vendor: str, dists: dict[str, str]) -> Path:
    """Make a directory shaped like a vendor venv: bin/python (this interpreter) + dist-infos."""
    venv = root / f'.venv-{vendor}'
    (venv / 'bin').mkdir(parents=True)
    python = venv / 'bin' / 'python'
    python.symlink_to(sys.executable)
    site = venv / 'lib' / 'python3.11' / 'site-packages'
    for name, version in dists.items():
        info = site / f'{name.replace("-", "_")}-{version}.dist-info'
        info.mkdir(parents=True)
        (info / 'METADATA').write_text(
            f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n')
    return python


def test_find_toolchain_order_and_versions(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ('KPAI_ACME_PYTHON', 'KPAI_NPU_TOOLCHAINS', 'KPAI_ROOT'):
        monkeypatch.delenv(var, raising=False)
    missing = find_toolchain('acme')
    assert not missing.present and 'are all unset' in missing.describe_missing()
    monkeypatch.setenv('KPAI_ROOT', str(tmp_path / 'ws'))
    missing = find_toolchain('acme')
    assert not missing.present
    assert str(tmp_path / 'ws' / '.venv-acme' / 'bin' / 'python') in missing.describe_missing()
    python = fake_toolchain(tmp_path / 'ws', 'acme', {'acme-compiler': '2.5.1', 'torch': '2.7.0'})
    found = find_toolchain('acme')
    assert found.python == python
    assert found.versions['acme-compiler'] == '2.5.1' and found.versions['torch'] == '2.7.0'
    other = fake_toolchain(tmp_path / 'elsewhere', 'acme', {})
    monkeypatch.setenv('KPAI_ACME_PYTHON', str(other))
    assert find_toolchain('acme').python == other
    assert json.dumps(find_toolchain('acme').versions) == '{}'
