"""FuriosaAI and Mobilint plug-ins: discovery, honest availability, fallback, compile, certify.

No vendor SDK, compiler or device exists here; the fixtures make sure of it even on a machine
that has some, so every reason below is the one a robot without them gets. The only test
doubles are worker *processes* (protocol behaviour) and the runtime's device-not-found error
(measured with mobilint-qb-runtime 1.5: ``Accelerator(0)`` raises ``Acc_DeviceNotFound``).
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
from kpai_npu_bridge.aot import compile_model
from kpai_npu_bridge.backends import available_backends
from kpai_npu_bridge.cli import main
from kpai_npu_bridge.compile_worker import WorkerError
from kpai_npu_bridge.engine import FrameResult, InferenceEngine, PipelineSpec
from kpai_npu_bridge.errors import BackendUnavailableError, ModelLoadError
from kpai_npu_bridge.models import build_yolov8n_like
from kpai_npu_bridge.pipeline import Pipeline
from npu_plugin_fixtures import declared_entry_points, install_workspace_plugins
from test_npu_compile_worker import fake_toolchain


@pytest.fixture(scope='module')
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp('npu_vendor') / 'tiny.onnx'
    build_yolov8n_like(path, 64, width=0.25)
    return path


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Install both plug-ins as distributions; no SDK, toolchain or device anywhere."""
    install_workspace_plugins(tmp_path / 'site', monkeypatch)
    from kpai_npu_furiosa import backend as furiosa
    from kpai_npu_mobilint import backend as mobilint

    for var in ('KPAI_FURIOSA_PYTHON', 'KPAI_NPU_TOOLCHAINS'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('KPAI_ROOT', str(tmp_path / 'ws'))  # a workspace without .venv-furiosa
    dev = tmp_path / 'dev'
    monkeypatch.setattr(furiosa, 'DEVICE_GLOB', str(dev / 'rngd' / 'npu*mgmt'))
    monkeypatch.setattr(furiosa, '_local_version', lambda dist: None)
    monkeypatch.setattr(mobilint, 'DEVICE_GLOBS', (str(dev / 'aries*'),))
    monkeypatch.setattr(mobilint, '_runtime_version', lambda: None)
    monkeypatch.setitem(sys.modules, 'qbcompiler', None)
    return types.SimpleNamespace(furiosa=furiosa, mobilint=mobilint, dev=dev, root=tmp_path)


def test_setup_py_declares_the_entry_points() -> None:
    assert declared_entry_points('kpai_npu_furiosa') == [
        'furiosa-rngd = kpai_npu_furiosa.backend:FuriosaRngdBackend']
    assert declared_entry_points('kpai_npu_mobilint') == [
        'mobilint = kpai_npu_mobilint.backend:MobilintBackend']


def test_plugins_are_discovered_and_unavailable_with_every_missing_part(
        plugins: types.SimpleNamespace) -> None:
    statuses = available_backends()
    furiosa, mobilint = statuses['furiosa-rngd'], statuses['mobilint']
    assert furiosa.source == 'kpai_npu_furiosa.backend:FuriosaRngdBackend'
    assert furiosa.cls is plugins.furiosa.FuriosaRngdBackend and not furiosa.available
    for part in ('device: no RNGD card', 'runtime: furiosa-native-runtime not installed',
                 'compiler: not installed: no toolchain Python for furiosa',
                 'make npu-toolchains VENDOR=furiosa', 'only an LLM engine'):
        assert part in furiosa.reason
    assert mobilint.cls is plugins.mobilint.MobilintBackend and not mobilint.available
    assert 'runtime: mobilint-qb-runtime not installed (pip install mobilint-qb-runtime)' \
        in mobilint.reason
    assert 'device: not probed: no runtime' in mobilint.reason
    assert statuses['onnxruntime'].available  # the others are unaffected


def test_backends_command_lists_present_and_missing_parts(
        plugins: types.SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['backends']) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if not line.startswith(' ')}
    assert ' NO ' in rows['furiosa-rngd'] and ' NO ' in rows['mobilint']
    for part in ('- device: no RNGD card', '- compiler: not installed', '- runner: none:',
                 '- runtime: mobilint-qb-runtime not installed',
                 '- compiler: not installed: qbcompiler is distributed as the Docker image'):
        assert part in out


def test_a_device_alone_does_not_make_rngd_runnable(plugins: types.SimpleNamespace) -> None:
    (plugins.dev / 'rngd').mkdir(parents=True)
    (plugins.dev / 'rngd' / 'npu0mgmt').touch()
    parts = {c.name: c for c in plugins.furiosa.FuriosaRngdBackend.components()}
    assert parts['device'].present and parts['device'].detail.endswith('npu0mgmt')
    ok, reason = plugins.furiosa.FuriosaRngdBackend.probe()
    assert not ok and 'device' not in reason.split(';')[0] and 'runner: none' in reason
    with pytest.raises(BackendUnavailableError, match='cannot run models'):
        plugins.furiosa.FuriosaRngdBackend().load(Path('x.onnx'))


def test_mobilint_reports_the_runtime_device_error_verbatim(
        plugins: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch, model: Path) -> None:
    class QbRuntimeError(Exception):
        pass

    def accelerator(dev_no: int = 0) -> None:
        raise QbRuntimeError('Acc_DeviceNotFound occurred.\nPlease visit the docs.')

    monkeypatch.setitem(sys.modules, 'qbruntime', types.SimpleNamespace(Accelerator=accelerator))
    monkeypatch.setattr(plugins.mobilint, '_runtime_version', lambda: '1.5.0')
    ok, reason = plugins.mobilint.MobilintBackend.probe()
    assert not ok
    assert reason == ('device: qbruntime.Accelerator(0) raised QbRuntimeError: '
                      'Acc_DeviceNotFound occurred. Please visit the docs.')
    with pytest.raises(ModelLoadError, match=r'no MXQ for tiny.onnx: .*tiny\.mxq'):
        plugins.mobilint.MobilintBackend().load(model)
    model.with_suffix('.mxq').write_bytes(b'')  # present, but no device to load it on
    try:
        with pytest.raises(BackendUnavailableError, match='Acc_DeviceNotFound'):
            plugins.mobilint.MobilintBackend().load(model)
    finally:
        model.with_suffix('.mxq').unlink()


@pytest.mark.parametrize('backend', ['furiosa-rngd', 'mobilint'])
def test_bridge_falls_back_to_cpu_when_the_vendor_backend_is_unavailable(
        backend: str, plugins: types.SimpleNamespace, model: Path) -> None:
    results: list[FrameResult[int]] = []
    events: list[tuple[str, str]] = []

    def opener(spec: PipelineSpec, progress: object) -> Pipeline:
        return Pipeline.open(Path(spec.model_path), backend=spec.backend, device=spec.device,
                             cache_dir=plugins.root / 'cache')

    engine: InferenceEngine[int] = InferenceEngine(
        cameras=1, max_batch=1, max_wait_s=0.0, fallback_after=3, opener=opener,
        on_results=results.extend, on_event=lambda lvl, msg: events.append((lvl, msg)))
    try:
        outcome = engine.load(PipelineSpec(str(model), backend))
        assert outcome.success, outcome.message
        assert f'(fallback): backend {backend} unavailable' in outcome.message
        status = engine.status()
        assert status.backend_info.name == 'onnxruntime'
        assert status.requested == PipelineSpec(str(model), backend)
        assert status.fallback.active and backend in status.fallback.reason
        assert any(lvl == 'warn' and 'falling back to CPU' in msg for lvl, msg in events)
        engine.start()
        engine.submit(0, np.zeros((48, 64, 3), np.uint8), 7)
        deadline = time.monotonic() + 20
        while not results and time.monotonic() < deadline:
            time.sleep(0.02)
        assert results and results[0].meta == 7
        retry = engine.return_from_fallback().result(timeout=30)
        assert not retry.success and 'still on fallback' in retry.message
    finally:
        engine.close()
    disabled: InferenceEngine[int] = InferenceEngine(
        cameras=1, max_batch=1, max_wait_s=0.0, fallback_after=0, opener=opener,
        on_results=results.extend)
    try:
        outcome = disabled.load(PipelineSpec(str(model), backend))
        assert not outcome.success and outcome.unavailable and 'unavailable' in outcome.message
    finally:
        disabled.close()


def _certify(model: Path, backend: str, out: Path) -> tuple[int, dict]:
    code = main(['certify', '--backend', backend, '--model', str(model), '--out', str(out),
                 '--cache-dir', str(out / 'cache'), '--quiet'])
    return code, json.loads((out / 'report.json').read_text())


@pytest.mark.parametrize('backend,reason', [
    ('furiosa-rngd', 'compiler not installed: no toolchain Python for furiosa'),
    ('mobilint', 'compiler not installed: qbcompiler is distributed as the Docker image'),
])
def test_certify_without_device_is_incomplete_not_passed_or_failed(
        backend: str, reason: str, plugins: types.SimpleNamespace, model: Path,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _certify(model, backend, tmp_path / 'out')
    assert code == 3
    assert report['verdict'] == 'incomplete' and not report['passed']
    assert report['incomplete'].startswith(f'{backend} cannot run here: ')
    checks = {c['name']: c for c in report['checks']}
    assert list(checks) == ['compile', 'load', 'parity', 'determinism', 'batching', 'bad_inputs']
    assert checks['compile']['skipped'] and reason in checks['compile']['detail']
    assert all(c['skipped'] and c['detail'].startswith('not run: ') for c in checks.values())
    assert 'certification INCOMPLETE' in capsys.readouterr().out
    markdown = (tmp_path / 'out' / 'report.md').read_text()
    assert '— INCOMPLETE' in markdown and '| load | not run |' in markdown


FAKE_WORKER = textwrap.dedent('''
    """Test double of the Furiosa worker process: echoes the request, compiles nothing."""
    import json, os, sys
    req = json.loads(sys.stdin.readline())
    counter = os.environ['FAKE_WORKER_COUNTER']
    with open(counter, 'a') as f:
        f.write('run\\n')
    def send(**m):
        print(json.dumps(m), flush=True)
    if os.environ.get('FAKE_WORKER_FAIL'):
        send(event='result', ok=False, error='operator Sigmoid not lowered', kind='compile')
        sys.exit(1)
    send(event='progress', message='pretending', fraction=0.5)
    with open(req['output'], 'w') as f:
        json.dump({'test_double': 'not an EDF', 'request': req}, f)
    send(event='result', ok=True, compiler='test double (no compiler ran)', graphs=1)
''')


@pytest.fixture
def furiosa_toolchain(plugins: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch,
                      tmp_path: Path) -> Path:
    """A toolchain venv directory whose worker is the test double above."""
    fake_toolchain(tmp_path / 'ws', 'furiosa', {'furiosa-native-compiler': '2026.1.0'})
    worker = tmp_path / 'fake_worker.py'
    worker.write_text(FAKE_WORKER)
    monkeypatch.setattr(plugins.furiosa, 'WORKER', worker)
    counter = tmp_path / 'runs.txt'
    monkeypatch.setenv('FAKE_WORKER_COUNTER', str(counter))
    return counter


def test_furiosa_compile_delegates_to_the_toolchain_worker_once(
        plugins: types.SimpleNamespace, furiosa_toolchain: Path, model: Path,
        tmp_path: Path) -> None:
    messages: list[str] = []
    result = compile_model('furiosa-rngd', model, cache_dir=tmp_path / 'cache',
                           progress=lambda m, f: messages.append(m))
    assert result.compiler == 'furiosa-native-compiler 2026.1.0' and not result.cache_hit
    assert result.device == 'renegade' and result.artifact.name == 'model.edf'
    sent = json.loads(result.artifact.read_text())
    assert sent['test_double'] == 'not an EDF'
    # the worker gets the static graph (batch fixed, shape arithmetic folded), not the model
    # (written in the build directory, kept beside the EDF when the cache entry is committed)
    assert Path(sent['request']['model']).name == 'static.onnx'
    static = result.artifact.parent / 'static.onnx'
    assert sent['request'] == {
        'protocol': 1, 'op': 'compile', 'model': sent['request']['model'],
        'target_npu': 'renegade',
        'input_name': 'images', 'input_shape': [1, 3, 64, 64],
        'output': sent['request']['output']}
    graph = onnx.load(str(static)).graph
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [1, 3, 64, 64]
    worker = json.loads((result.artifact.parent / 'worker.json').read_text())
    assert worker['compiler'] == 'test double (no compiler ran)'
    assert 'furiosa-rngd: pretending' in messages
    again = compile_model('furiosa-rngd', model, cache_dir=tmp_path / 'cache')
    assert again.cache_hit and again.artifact == result.artifact
    assert furiosa_toolchain.read_text().count('run') == 1
    with pytest.raises(ModelLoadError, match="unknown target NPU 'warboy'"):
        compile_model('furiosa-rngd', model, device='warboy', cache_dir=tmp_path / 'cache')
    with pytest.raises(ModelLoadError, match='unknown option'):
        compile_model('furiosa-rngd', model, options={'bogus': 1}, cache_dir=tmp_path / 'c2')


def test_certify_compiles_then_stops_or_fails_on_a_compile_error(
        plugins: types.SimpleNamespace, furiosa_toolchain: Path, model: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    code, report = _certify(model, 'furiosa-rngd', tmp_path / 'ok')
    checks = {c['name']: c for c in report['checks']}
    assert code == 3 and report['verdict'] == 'incomplete'
    assert checks['compile']['passed'] and not checks['compile']['skipped']
    assert checks['compile']['metrics']['compiler'] == 'furiosa-native-compiler 2026.1.0'
    assert checks['load']['skipped']
    monkeypatch.setenv('FAKE_WORKER_FAIL', '1')
    code, report = _certify(model, 'furiosa-rngd', tmp_path / 'bad')
    checks = {c['name']: c for c in report['checks']}
    assert code == 1 and report['verdict'] == 'fail'
    assert not checks['compile']['passed'] and not checks['compile']['skipped']
    assert 'operator Sigmoid not lowered' in checks['compile']['detail']


def test_the_real_furiosa_worker_reports_an_incomplete_toolchain(
        plugins: types.SimpleNamespace, model: Path, tmp_path: Path) -> None:
    # A venv-shaped directory that claims the compiler but cannot import it: the shipped
    # worker must answer over the protocol (not crash or print garbage on stdout).
    fake_toolchain(tmp_path / 'ws', 'furiosa', {'furiosa-native-compiler': '2026.1.0'})
    with pytest.raises(WorkerError, match='toolchain incomplete: No module named') as info:
        compile_model('furiosa-rngd', model, cache_dir=tmp_path / 'cache')
    assert info.value.kind == 'missing'
    assert not list((tmp_path / 'cache').glob('furiosa-rngd/*/model.edf'))
