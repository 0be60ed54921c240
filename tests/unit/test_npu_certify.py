"""kpai-npu certify: a faithful backend passes, deliberately broken ones fail with the reason."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from kpai_npu_bridge.benchmark import measure_latency
from kpai_npu_bridge.cli import main
from kpai_npu_bridge.conformance import compare_outputs, match_detections
from kpai_npu_bridge.golden import golden_images
from kpai_npu_bridge.models import build_yolov8n_like
from kpai_npu_bridge.pipeline import Detection
from npu_plugin_fixtures import install_test_plugins

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp('npu_cert') / 'tiny.onnx'
    build_yolov8n_like(path, 64, width=0.25)
    return path


def _certify(model: Path, backend: str, out: Path, *extra: str) -> tuple[int, dict]:
    code = main(['certify', '--backend', backend, '--model', str(model), '--out', str(out),
                 '--iterations', '3', '--images', '4', '--cache-dir', str(out / 'cache'),
                 '--quiet', *extra])
    return code, json.loads((out / 'report.json').read_text())


def _checks(report: dict) -> dict[str, dict]:
    return {c['name']: c for c in report['checks']}


def test_golden_images_are_deterministic() -> None:
    a, b = golden_images(5, seed=1), golden_images(5, seed=1)
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert len({x.shape for x in a}) == 5
    assert not all((x == y).all() for x, y in zip(a, golden_images(5, seed=2), strict=True))


def test_openvino_passes_against_onnxruntime(model: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _certify(model, 'openvino', tmp_path)
    assert code == 0, capsys.readouterr().out
    assert report['passed'] and report['candidate_info']['name'] == 'openvino'
    checks = _checks(report)
    assert set(checks) == {'load', 'parity', 'determinism', 'batching', 'bad_inputs'}
    assert checks['parity']['metrics']['required'] > 0  # real detections were compared
    assert checks['parity']['metrics']['match_rate'] >= 0.95
    cases = {c['case']: c for c in checks['bad_inputs']['metrics']['cases']}
    assert cases['wrong spatial shape']['outcome'].startswith('InputError')
    assert [s['batch_size'] for s in report['latency']['candidate']] == [1, 2, 4]
    assert all(s['p50_ms'] > 0 and s['throughput_fps'] > 0
               for s in report['latency']['candidate'])
    markdown = (tmp_path / 'report.md').read_text()
    assert '— PASS' in markdown and '| parity | pass |' in markdown
    assert (tmp_path / 'latency.png').read_bytes()[:4] == b'\x89PNG'
    assert 'certification PASSED' in capsys.readouterr().out


@pytest.mark.parametrize(('backend', 'failed', 'reason', 'all_failed'), [
    ('perturbed', 'parity', 'exceeds atol', ['parity']),
    # Noise also shows when the good input is re-run after the bad-input probe.
    ('noisy', 'determinism', 'exceeds atol', ['determinism', 'bad_inputs']),
    ('sloppy', 'bad_inputs', 'unclean', ['bad_inputs']),
    ('crashing', 'bad_inputs', 'crashed (exit code -11)', ['bad_inputs']),
])
def test_broken_backends_fail_with_the_reason(backend: str, failed: str, reason: str,
                                              all_failed: list[str],
                                              model: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    install_test_plugins(tmp_path / 'plugins', monkeypatch)
    # Bad inputs are probed in a child process by default; in-process is faster for the rest.
    extra = () if backend in ('sloppy', 'crashing') else ('--no-isolate',)
    code, report = _certify(model, backend, tmp_path / 'out', *extra)
    assert code == 1 and not report['passed']
    checks = _checks(report)
    assert not checks[failed]['passed'] and reason in checks[failed]['detail']
    assert [c['name'] for c in report['checks'] if not c['passed']] == all_failed
    markdown = (tmp_path / 'out' / 'report.md').read_text()
    assert '— FAIL' in markdown and f'| {failed} | **FAIL** |' in markdown


def test_unloadable_backend_fails_certification(model: Path, tmp_path: Path) -> None:
    code, report = _certify(model, 'opencv', tmp_path, '--device', 'gpu')
    assert code == 1
    assert _checks(report)['load']['detail'].startswith('BackendUnavailableError')


def test_cli_errors_and_console_script(model: Path, tmp_path: Path) -> None:
    assert main(['certify', '--backend', 'nope', '--model', str(model), '--out',
                 str(tmp_path), '--cache-dir', str(tmp_path / 'cache'), '--quiet']) == 1
    assert main(['bench', '--backend', 'openvino', '--model', str(tmp_path / 'missing.onnx'),
                 '--quiet']) == 2
    env = dict(os.environ, KPAI_NPU_CACHE=str(tmp_path / 'cache'))
    result = subprocess.run(
        [str(REPO / 'bin' / 'kpai-npu'), 'bench', '--backend', 'opencv', '--model', str(model),
         '--iterations', '3', '--batch-sizes', '1,2', '--json', str(tmp_path / 'b.json'),
         '--quiet'], capture_output=True, text=True, timeout=120, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert 'images/s' in result.stdout
    data = json.loads((tmp_path / 'b.json').read_text())
    assert [s['batch_size'] for s in data['latency']] == [1, 2]
    assert data['pipeline']['infer_p50_ms'] > 0


def test_measure_latency_counts_iterations() -> None:
    stats = measure_latency(lambda: sum(range(1000)), batch_size=4, iterations=7, warmup=1)
    assert stats.iterations == 7 and stats.p50_ms <= stats.p95_ms <= stats.p99_ms
    assert stats.throughput_fps > 0


def test_compare_outputs_and_detection_matching() -> None:
    ref = [np.array([[100.0, 0.5, 0.0]])]
    assert compare_outputs([ref[0] + [[0.5, 0.005, 0.0]]], ref, rtol=1e-2, atol=1e-2)['ok']
    bad = compare_outputs([ref[0] + [[0.0, 0.02, 0.0]]], ref, rtol=1e-2, atol=1e-2)
    assert not bad['ok'] and 'exceeds' in bad['reason']
    assert 'shape' in compare_outputs([ref[0][:, :2]], ref, rtol=1, atol=1)['reason']
    nan = compare_outputs([np.array([[np.nan, 0.5, 0.0]])], ref, rtol=1, atol=1)
    assert not nan['ok'] and 'NaN' in nan['reason']
    a = Detection(0, 0, 10, 10, 0.80, 1, 'x')
    neighbour = Detection(2, 0, 12, 10, 0.80, 1, 'x')   # IoU 0.67: a near-tie NMS swap
    assert match_detections([neighbour], [a], iou=0.45, score_abs=0.02, score_floor=0.27) == (
        1, 1)
    other_class = Detection(0, 0, 10, 10, 0.80, 2, 'y')
    far = Detection(50, 50, 60, 60, 0.80, 1, 'x')
    low = Detection(0, 0, 10, 10, 0.70, 1, 'x')
    for cand in (other_class, far, low):
        assert match_detections([cand], [a], iou=0.45, score_abs=0.02, score_floor=0.27) == (
            0, 1)
    assert match_detections([], [a, Detection(0, 0, 1, 1, 0.1, 1, 'x')], iou=0.45,
                            score_abs=0.02, score_floor=0.27) == (0, 1)


def test_tolerance_overrides_are_applied_and_recorded(model: Path, tmp_path: Path) -> None:
    # OpenCV differs from onnxruntime by float rounding only: 1e-9 is stricter than that.
    code, report = _certify(model, 'opencv', tmp_path, '--rtol', '1e-9', '--atol', '1e-9',
                            '--no-isolate', '--batch-sizes', '1')
    assert code == 1 and report['tolerances']['rtol'] == 1e-9
    assert [c['name'] for c in report['checks'] if not c['passed']] == ['parity']
    with pytest.raises(SystemExit) as info:
        main(['certify', '--backend', 'opencv', '--model', str(model), '--rtol', '2'])
    assert info.value.code == 2


def test_inspect_validates_the_manifest(model: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['inspect', str(model)]) == 0
    out = capsys.readouterr().out
    assert 'sha256 verified' in out and "model output output0: ['?', 9, 84]" in out
    tampered = tmp_path / 'm.onnx'
    tampered.write_bytes(model.read_bytes() + b'x')
    (tmp_path / 'm.yaml').write_text(model.with_suffix('.yaml').read_text())
    assert main(['inspect', str(tampered)]) == 2
    assert 'sha256 mismatch' in capsys.readouterr().err
