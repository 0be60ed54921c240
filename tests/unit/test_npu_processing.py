"""Letterbox, NMS and the output decoders on arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from kpai_npu_bridge.decoders import (
    batched_nms,
    decode_classification,
    decode_yolov5,
    decode_yolov8,
    nms,
    xywh_to_xyxy,
)
from kpai_npu_bridge.errors import BackendError, InputError
from kpai_npu_bridge.manifest import InputSpec, PreprocessSpec
from kpai_npu_bridge.preprocess import letterbox, preprocess_batch, resize_plain


def test_letterbox_pads_symmetrically_and_maps_back() -> None:
    image = np.full((100, 200, 3), 7, np.uint8)
    out, meta = letterbox(image, 64, 64, pad_value=114)
    assert out.shape == (64, 64, 3)
    assert (meta.scale_x, meta.scale_y, meta.pad_x, meta.pad_y) == (0.32, 0.32, 0.0, 16.0)
    assert (out[:16] == 114).all() and (out[48:] == 114).all() and (out[16:48] == 7).all()
    back = meta.to_original(np.array([[0.0, 16.0, 64.0, 48.0], [32.0, 0.0, 80.0, 64.0]]))
    np.testing.assert_allclose(back, [[0, 0, 200, 100], [100, 0, 200, 100]])


def test_resize_plain_scales_each_axis() -> None:
    out, meta = resize_plain(np.zeros((50, 40, 3), np.uint8), 100, 20)
    assert out.shape == (100, 20, 3) and (meta.scale_x, meta.scale_y) == (0.5, 2.0)
    np.testing.assert_allclose(meta.to_original(np.array([[10.0, 10.0, 20.0, 100.0]])),
                               [[20, 5, 40, 50]])


def test_preprocess_batch_normalises_orders_colour_and_layout() -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    image[..., 0] = 255
    spec = InputSpec('x', (None, 3, 8, 8), 'NCHW', 'float32')
    pre = PreprocessSpec(resize='resize', color='bgr', scale=1 / 255, mean=(0.5, 0.5, 0.5),
                         std=(0.5, 0.5, 0.5))
    tensor, metas = preprocess_batch([image, image], spec, pre)
    assert tensor.shape == (2, 3, 8, 8) and tensor.dtype == np.float32 and len(metas) == 2
    np.testing.assert_allclose(tensor[0, :, 0, 0], [-1.0, -1.0, 1.0])  # red is last in BGR
    nhwc = InputSpec('x', (1, 8, 8, 3), 'NHWC', 'uint8')
    raw, _ = preprocess_batch([image], nhwc, PreprocessSpec(resize='resize', scale=1.0))
    assert raw.dtype == np.uint8 and raw.shape == (1, 8, 8, 3) and raw[0, 0, 0, 0] == 255


@pytest.mark.parametrize(('image', 'message'), [
    (np.zeros((8, 8), np.uint8), 'expected HxWx3'),
    (np.zeros((8, 8, 4), np.uint8), 'expected HxWx3'),
    (np.zeros((0, 8, 3), np.uint8), 'empty image'),
    (np.zeros((8, 8, 3), np.float32), 'expected uint8'),
    ([[1, 2, 3]], 'expected a numpy array'),
])
def test_bad_images_raise_input_error(image: object, message: str) -> None:
    spec = InputSpec('x', (None, 3, 8, 8))
    with pytest.raises(InputError, match=message):
        preprocess_batch([image], spec, PreprocessSpec())  # type: ignore[list-item]
    with pytest.raises(InputError, match='no images'):
        preprocess_batch([], spec, PreprocessSpec())


def test_nms_keeps_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], float)
    scores = np.array([0.9, 0.95, 0.5, 0.3])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.99).tolist() == [1, 0, 2, 3]
    assert nms(boxes, scores, 0.5, max_out=1).tolist() == [1]
    # Same boxes, different classes: class-aware NMS keeps both.
    assert sorted(batched_nms(boxes[:2], scores[:2], np.array([0, 1]), 0.5).tolist()) == [0, 1]
    assert batched_nms(boxes[:2], scores[:2], np.array([1, 1]), 0.5).tolist() == [1]


def _v8_output(rows: list[tuple[float, float, float, float, list[float]]]) -> np.ndarray:
    out = np.array([[cx, cy, w, h, *cls] for cx, cy, w, h, cls in rows], np.float32).T
    return out[None]


def test_decode_yolov8_thresholds_nms_and_transposed_input() -> None:
    out = _v8_output([
        (50, 50, 20, 20, [0.9, 0.1]),
        (51, 50, 20, 20, [0.8, 0.1]),   # overlaps the first: suppressed
        (51, 50, 20, 20, [0.1, 0.7]),   # same place, other class: kept
        (10, 10, 4, 4, [0.2, 0.1]),     # below score threshold
        (90, 90, 10, 10, [np.nan, 0.9]),  # not finite: dropped
    ])
    (result,) = decode_yolov8(out, 2, score=0.25, iou=0.5, max_det=10)
    assert result.classes.tolist() == [0, 1]
    np.testing.assert_allclose(result.scores, [0.9, 0.7], rtol=1e-6)
    np.testing.assert_allclose(result.boxes[0], [40, 40, 60, 60])
    (again,) = decode_yolov8(out.transpose(0, 2, 1), 2, score=0.25, iou=0.5, max_det=10)
    np.testing.assert_allclose(again.boxes, result.boxes)
    (agnostic,) = decode_yolov8(out, 2, score=0.25, iou=0.5, max_det=10, agnostic=True)
    assert agnostic.classes.tolist() == [0]
    with pytest.raises(BackendError, match='does not match'):
        decode_yolov8(out, 3, score=0.25, iou=0.5, max_det=10)


def test_decode_yolov5_multiplies_objectness() -> None:
    out = np.array([[
        [50, 50, 20, 20, 0.9, 0.1, 0.9],   # score 0.81 class 1
        [50, 50, 20, 20, 0.2, 1.0, 0.0],   # objectness below threshold
        [10, 10, 4, 6, 0.5, 0.6, 0.4],     # score 0.30 class 0
    ]], np.float32)
    (result,) = decode_yolov5(out, 2, score=0.25, iou=0.5, max_det=10)
    assert result.classes.tolist() == [1, 0]
    np.testing.assert_allclose(result.scores, [0.81, 0.30], rtol=1e-5)
    np.testing.assert_allclose(xywh_to_xyxy(np.array([[10, 10, 4, 6]])), [[8, 7, 12, 13]])
    np.testing.assert_allclose(result.boxes[1], [8, 7, 12, 13])


def test_decode_classification_softmax_and_top_k() -> None:
    logits = np.array([[1.0, 3.0, 2.0], [0.0, 0.0, 5.0]])
    first, second = decode_classification(logits, 3, apply_softmax=True, top_k=2)
    assert first[0].tolist() == [1, 2] and second[0].tolist() == [2, 0]
    expected = np.exp(3) / np.exp([1, 3, 2]).sum()
    assert first[1][0] == pytest.approx(expected)
    (probs,) = decode_classification(np.array([[0.1, 0.7, 0.2]]), 3, apply_softmax=False,
                                     score=0.5)
    assert probs[0].tolist() == [1]
    with pytest.raises(BackendError):
        decode_classification(logits, 4, apply_softmax=True)
