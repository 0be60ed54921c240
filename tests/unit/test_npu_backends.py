"""Each built-in backend runs the constant detector and returns the exact known boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kpai_npu_bridge.backends import available_backends, create_backend
from kpai_npu_bridge.backends.base import Backend, TensorSpec
from kpai_npu_bridge.errors import (
    BackendUnavailableError,
    InputError,
    ManifestError,
    ModelLoadError,
)
from kpai_npu_bridge.models import build_color_classifier, build_constant_detector
from kpai_npu_bridge.pipeline import Detection, Pipeline

BUILTINS = ['onnxruntime', 'openvino', 'opencv']
# (x1, y1, x2, y2, score, class) in the 64x64 model input.
BOXES = [(8, 16, 24, 40, 0.9, 1), (10, 18, 26, 42, 0.6, 1), (40, 20, 60, 30, 0.7, 0),
         (0, 0, 4, 4, 0.1, 2)]


@pytest.fixture(scope='module')
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp('npu_models')
    labels = ['person', 'pallet', 'box']
    build_constant_detector(root / 'v8.onnx', boxes=BOXES, num_classes=3, input_size=64,
                            head='yolov8', labels=labels)
    build_constant_detector(root / 'v5.onnx', boxes=BOXES, num_classes=3, input_size=64,
                            head='yolov5', labels=labels)
    build_constant_detector(root / 'fixed.onnx', boxes=BOXES, num_classes=3, input_size=64,
                            labels=labels, batch=1)
    build_color_classifier(root / 'cls.onnx', input_size=16)
    return {p.stem: p for p in root.glob('*.onnx')}


def _expected_for_200x100() -> list[tuple[float, ...]]:
    # A 200x100 image letterboxed into 64x64: scale 0.32, 16 px padding on top and bottom.
    def back(x1: float, y1: float, x2: float, y2: float) -> tuple[float, ...]:
        return (x1 / 0.32, max(0.0, (y1 - 16) / 0.32), x2 / 0.32, min(100.0, (y2 - 16) / 0.32))

    # Box 2 overlaps box 1 (same class, IoU > 0.45) and is suppressed; box 4 is below 0.25.
    return [(*back(8, 16, 24, 40), 0.9, 1), (*back(40, 20, 60, 30), 0.7, 0)]


def _as_tuples(dets: list[Detection]) -> list[tuple[float, ...]]:
    return [(d.x1, d.y1, d.x2, d.y2, d.score, d.class_index) for d in dets]


def test_builtins_are_registered_and_available() -> None:
    statuses = available_backends()
    for name in BUILTINS:
        assert statuses[name].available, statuses[name].reason
        assert isinstance(create_backend(name), Backend)
    with pytest.raises(BackendUnavailableError, match="unknown backend 'nope'"):
        create_backend('nope')


@pytest.mark.parametrize('backend', BUILTINS)
@pytest.mark.parametrize('head', ['v8', 'v5'])
def test_constant_detector_gives_exact_boxes(backend: str, head: str, models: dict[str, Path],
                                             tmp_path: Path) -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    with Pipeline.open(models[head], backend=backend, cache_dir=tmp_path) as pipe:
        assert pipe.dynamic_batch
        assert pipe.backend_info.name == backend and pipe.backend_info.runtime_version
        assert pipe.model_sha256 == pipe.manifest.sha256
        detections, timings = pipe.infer([image, np.zeros((50, 100, 3), np.uint8)])
    assert timings.infer_ms >= 0 and timings.total_ms >= timings.infer_ms
    got = _as_tuples(detections[0])
    assert len(got) == 2
    np.testing.assert_allclose(got, _expected_for_200x100(), rtol=1e-5, atol=1e-3)
    assert [d.label for d in detections[0]] == ['pallet', 'person']
    # A 100x50 image has the same aspect ratio: every coordinate halves.
    half = np.array(_as_tuples(detections[1]))
    np.testing.assert_allclose(half[:, :4] * 2, np.array(got)[:, :4], atol=1e-3)


@pytest.mark.parametrize('backend', BUILTINS)
def test_backend_contract_and_clean_input_errors(backend: str, models: dict[str, Path]) -> None:
    impl = create_backend(backend)
    impl.load(models['v8'], options=None)
    (spec,) = impl.inputs()
    assert spec == TensorSpec('images', (None, 3, 64, 64), 'float32', 'NCHW')
    assert impl.outputs()[0].shape[1:] == (7, 4)
    impl.warmup(2)
    good = np.zeros((3, 3, 64, 64), np.float32)
    assert impl.run({'images': good})[0].shape == (3, 7, 4)
    for bad in ({'images': np.zeros((1, 3, 64, 65), np.float32)},
                {'images': np.zeros((1, 3, 64, 64), np.float64)},
                {'images': np.zeros((3, 64, 64), np.float32)},
                {'other': good}):
        with pytest.raises(InputError):
            impl.run(bad)
    impl.close()


@pytest.mark.parametrize('backend', BUILTINS)
def test_load_errors_are_clean(backend: str, models: dict[str, Path], tmp_path: Path) -> None:
    impl = create_backend(backend)
    with pytest.raises(ModelLoadError, match='not found'):
        impl.load(tmp_path / 'missing.onnx')
    with pytest.raises(ModelLoadError, match='unknown option'):
        impl.load(models['v8'], options={'bogus': 1})
    with pytest.raises(BackendUnavailableError):
        impl.load(models['v8'], device='npu-that-does-not-exist')
    garbage = tmp_path / 'garbage.onnx'
    garbage.write_bytes(b'\x00\x01 definitely not protobuf')
    with pytest.raises(ModelLoadError):
        impl.load(garbage)


@pytest.mark.parametrize('backend', BUILTINS)
def test_classifier_picks_the_dominant_colour(backend: str, models: dict[str, Path],
                                              tmp_path: Path) -> None:
    images = []
    for channel in range(3):
        image = np.full((30, 40, 3), 20, np.uint8)
        image[..., channel] = 230
        images.append(image)
    with Pipeline.open(models['cls'], backend=backend, cache_dir=tmp_path) as pipe:
        detections, _ = pipe.infer(images)
    assert [[d.label for d in dets] for dets in detections] == [['red'], ['green'], ['blue']]
    assert all(dets[0].score > 0.99 for dets in detections)
    assert (detections[0][0].x1, detections[0][0].y2) == (0.0, 30.0)  # whole image


def test_fixed_batch_model_is_looped(models: dict[str, Path], tmp_path: Path) -> None:
    with Pipeline.open(models['fixed'], cache_dir=tmp_path) as pipe:
        assert not pipe.dynamic_batch
        detections, _ = pipe.infer([np.zeros((100, 200, 3), np.uint8)] * 3)
    assert len(detections) == 3
    for dets in detections:
        np.testing.assert_allclose(_as_tuples(dets), _expected_for_200x100(), atol=1e-3)


def test_pipeline_rejects_tampered_model_and_bad_images(models: dict[str, Path],
                                                         tmp_path: Path) -> None:
    copy = tmp_path / 'v8.onnx'
    copy.write_bytes(models['v8'].read_bytes() + b'\x00')
    (tmp_path / 'v8.yaml').write_text(models['v8'].with_suffix('.yaml').read_text())
    with pytest.raises(ManifestError, match='sha256 mismatch'):
        Pipeline.open(copy, cache_dir=tmp_path)
    with Pipeline.open(models['v8'], cache_dir=tmp_path) as pipe:
        with pytest.raises(InputError, match='expected HxWx3'):
            pipe.infer([np.zeros((10, 10), np.uint8)])


def test_onnxruntime_spinning_is_an_option(models: dict[str, Path]) -> None:
    impl = create_backend('onnxruntime')
    with pytest.raises(ModelLoadError, match="'allow_spinning' must be bool"):
        impl.load(models['v8'], options={'allow_spinning': 'no'})
    for options, entry in (({}, '0'), ({'allow_spinning': False}, '0'),
                           ({'allow_spinning': True}, '1')):
        impl.load(models['v8'], options=options)
        session = impl._session  # type: ignore[attr-defined]
        config = session.get_session_options()
        assert config.get_session_config_entry('session.intra_op.allow_spinning') == entry
        assert impl.run({'images': np.zeros((1, 3, 64, 64), np.float32)})[0].shape == (1, 7, 4)
        impl.close()
