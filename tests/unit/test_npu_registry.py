"""Backend registry: third-party entry points, broken plug-ins reported, never fatal."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from kpai_npu_bridge.backends import available_backends, create_backend
from kpai_npu_bridge.backends.onnxruntime_backend import OnnxRuntimeBackend, choose_providers
from kpai_npu_bridge.cli import main
from kpai_npu_bridge.errors import BackendUnavailableError
from npu_plugin_fixtures import install_test_plugins


def test_third_party_plugins_are_discovered_and_broken_ones_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_test_plugins(tmp_path, monkeypatch)
    statuses = available_backends()
    assert statuses['perturbed'].available
    assert statuses['perturbed'].source == 'kpai_test_vendor_plugins:PerturbedBackend'
    broken = statuses['broken']
    assert not broken.available and broken.cls is None
    assert 'import failed' in broken.reason and 'kpai_test_vendor_missing_module' in broken.reason
    assert not statuses['nodevice'].available
    assert statuses['nodevice'].reason == 'no NPU found at /dev/fake-npu0'
    # A plug-in cannot take over a built-in name.
    assert statuses['onnxruntime'].cls is OnnxRuntimeBackend
    with pytest.raises(BackendUnavailableError, match='import failed'):
        create_backend('broken')
    with pytest.raises(BackendUnavailableError, match='no NPU found'):
        create_backend('nodevice')
    assert type(create_backend('perturbed')).__name__ == 'PerturbedBackend'


def test_builtin_with_missing_runtime_is_listed_unavailable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulate a machine without OpenVINO: its import fails, the other backends still work.
    monkeypatch.setitem(sys.modules, 'openvino', None)
    monkeypatch.delitem(sys.modules, 'kpai_npu_bridge.backends.openvino_backend',
                        raising=False)
    statuses = available_backends()
    assert not statuses['openvino'].available
    assert 'import failed' in statuses['openvino'].reason
    assert 'openvino' in statuses['openvino'].reason
    assert statuses['onnxruntime'].available and statuses['opencv'].available
    with pytest.raises(BackendUnavailableError, match="backend 'openvino' is unavailable"):
        create_backend('openvino')


def test_backends_command_lists_reasons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    install_test_plugins(tmp_path, monkeypatch)
    assert main(['backends']) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert ' yes ' in lines['openvino'] and 'Intel' in lines['openvino']
    assert ' NO ' in lines['broken'] and 'import failed' in lines['broken']
    assert 'no NPU found' in lines['nodevice']


def test_onnxruntime_provider_choice() -> None:
    available = ['CUDAExecutionProvider', 'OpenVINOExecutionProvider', 'CPUExecutionProvider']
    assert choose_providers('', available) == available
    assert choose_providers('', ['CPUExecutionProvider', 'AzureExecutionProvider']) == [
        'CPUExecutionProvider']
    assert choose_providers('cpu', available) == ['CPUExecutionProvider']
    assert choose_providers('openvino', available) == ['OpenVINOExecutionProvider',
                                                       'CPUExecutionProvider']
    with pytest.raises(BackendUnavailableError, match='needs TensorrtExecutionProvider'):
        choose_providers('tensorrt', available)
