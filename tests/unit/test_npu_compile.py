"""Ahead-of-time compilation: kpai-npu compile, compile.json, and loads that reuse the artifact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kpai_npu_bridge.aot import COMPILE_RECORD, compile_model
from kpai_npu_bridge.backends import onnxruntime_backend, openvino_backend
from kpai_npu_bridge.cli import main
from kpai_npu_bridge.errors import BackendUnavailableError, ManifestError, ModelLoadError
from kpai_npu_bridge.golden import golden_images
from kpai_npu_bridge.models import build_yolov8n_like
from kpai_npu_bridge.pipeline import Pipeline


@pytest.fixture(scope='module')
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp('npu_aot') / 'tiny.onnx'
    build_yolov8n_like(path, 64, width=0.25)
    return path


@pytest.mark.parametrize('backend,artifact', [('onnxruntime', 'optimized.onnx'),
                                              ('openvino', 'compiled.blob')])
def test_compile_writes_artifact_and_record_then_the_bridge_loads_it_without_compiling(
        backend: str, artifact: str, model: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    messages: list[str] = []
    result = compile_model(backend, model, cache_dir=tmp_path,
                           progress=lambda m, f: messages.append(m))
    assert not result.cache_hit and result.artifact.name == artifact
    assert result.artifact.parent.parent == tmp_path / backend
    assert any('compiling model' in m for m in messages)
    record = json.loads((result.artifact.parent / COMPILE_RECORD).read_text())
    assert record['backend'] == backend and record['model'] == str(model)
    assert record['artifact'] == artifact and record['files'] == [artifact]
    assert record['artifact_bytes'] == result.artifact.stat().st_size > 1000
    assert record['compiler'] == result.compiler and result.compiler.startswith(backend)
    assert record['compile_seconds'] == pytest.approx(result.compile_seconds, abs=1e-3)

    # From now on, compiling again would fail: the load must use the artifact as it is.
    def no_compile(*args: object, **kwargs: object) -> None:
        raise AssertionError('recompiled although the artifact is in the cache')

    monkeypatch.setattr(onnxruntime_backend, '_optimise', no_compile)
    monkeypatch.setattr(openvino_backend.ov.Core, 'compile_model', no_compile)
    loaded: list[str] = []
    with Pipeline.open(model, backend=backend, cache_dir=tmp_path,
                       progress=lambda m, f: loaded.append(m)) as pipe:
        detections, _ = pipe.infer(golden_images(1, 0))
    assert any('found in cache' in m for m in loaded)
    assert not any('compiling model' in m for m in loaded)
    assert len(detections) == 1
    again = compile_model(backend, model, cache_dir=tmp_path)
    assert again.cache_hit and again.artifact == result.artifact
    assert again.compile_seconds == result.compile_seconds  # the original compile's time


def test_compile_checks_the_manifest_and_the_backend(model: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match='no ahead-of-time compile step'):
        compile_model('opencv', model, cache_dir=tmp_path)
    with pytest.raises(BackendUnavailableError, match="unknown backend 'nope'"):
        compile_model('nope', model, cache_dir=tmp_path)
    with pytest.raises(ModelLoadError, match='nothing to compile'):
        compile_model('onnxruntime', model, cache_dir=tmp_path,
                      options={'graph_optimization_level': 'disable'})
    with pytest.raises(BackendUnavailableError, match="device 'NPU' not available"):
        compile_model('openvino', model, device='NPU', cache_dir=tmp_path)
    other = tmp_path / 'other.onnx'
    other.write_bytes(model.read_bytes() + b'\0')
    (tmp_path / 'other.yaml').write_text(model.with_suffix('.yaml').read_text())
    with pytest.raises(ManifestError, match='sha256 mismatch'):
        compile_model('onnxruntime', other, cache_dir=tmp_path)
    assert not (tmp_path / 'onnxruntime').exists()


def test_compile_command_ships_a_directory_robots_use_as_their_cache(
        model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ship = tmp_path / 'ship'
    assert main(['compile', '--backend', 'openvino', '--model', str(model), '--out', str(ship),
                 '--json', str(tmp_path / 'r.json'), '--quiet']) == 0
    out = capsys.readouterr().out
    assert 'openvino: compiled in' in out and 'bytes' in out
    data = json.loads((tmp_path / 'r.json').read_text())
    assert Path(data['artifact']).is_file() and Path(data['record']).is_file()
    assert data['artifact'].startswith(str(ship / 'openvino'))
    assert main(['compile', '--backend', 'openvino', '--model', str(model), '--out', str(ship),
                 '--quiet']) == 0
    assert 'found in cache, compiled earlier' in capsys.readouterr().out
    # the robot points its cache at the shipped directory
    loaded: list[str] = []
    with Pipeline.open(model, backend='openvino', cache_dir=ship,
                       progress=lambda m, f: loaded.append(m)):
        pass
    assert any('found in cache' in m for m in loaded)
    assert main(['compile', '--backend', 'opencv', '--model', str(model), '--out', str(ship),
                 '--quiet']) == 2
    assert 'no ahead-of-time compile step' in capsys.readouterr().err
    assert main(['compile', '--backend', 'openvino', '--model', str(model), '--out', str(ship),
                 '--options', '[1]', '--quiet']) == 2
    assert '--options must be a JSON object' in capsys.readouterr().err
