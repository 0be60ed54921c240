"""Model outputs -> boxes: YOLOv8 / YOLOv5 heads with NMS, and classification (pure numpy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import BackendError

__all__ = [
    'RawDetections',
    'batched_nms',
    'box_iou',
    'decode_classification',
    'decode_yolov5',
    'decode_yolov8',
    'nms',
    'softmax',
    'xywh_to_xyxy',
]


@dataclass(frozen=True)
class RawDetections:
    """One image's detections in model-input pixels: xyxy boxes [K,4], scores [K], classes [K]."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    @staticmethod
    def empty() -> RawDetections:
        """Return no detections."""
        return RawDetections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """Convert centre-x, centre-y, width, height boxes to corner form."""
    boxes = np.asarray(boxes, dtype=np.float64)
    half = boxes[:, 2:4] / 2.0
    return np.concatenate([boxes[:, 0:2] - half, boxes[:, 0:2] + half], axis=1)


def box_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Return the IoU of one xyxy box with each of others [K,4]."""
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[2], others[:, 2])
    y2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = max(box[2] - box[0], 0) * max(box[3] - box[1], 0)
    areas = np.clip(others[:, 2] - others[:, 0], 0, None) * np.clip(
        others[:, 3] - others[:, 1], 0, None)
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
        max_out: int | None = None) -> np.ndarray:
    """Greedy non-maximum suppression; return kept indices by descending score."""
    boxes = np.asarray(boxes, dtype=np.float64)
    order = np.argsort(-np.asarray(scores), kind='stable')
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[:, i]) for i in range(4))
    areas = np.maximum(x2 - x1, 0.0) * np.maximum(y2 - y1, 0.0)
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        if max_out is not None and len(keep) >= max_out:
            break
        rest = order[1:]
        w = np.maximum(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0.0)
        h = np.maximum(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0.0)
        inter = w * h
        union = areas[best] + areas[rest] - inter
        # IoU <= threshold  <=>  inter <= threshold * union (no division; empty boxes kept)
        order = rest[(inter <= iou_threshold * union) | (union <= 0.0)]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
                iou_threshold: float, max_out: int | None = None) -> np.ndarray:
    """Per-class NMS (boxes of different classes never suppress each other)."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    boxes = np.asarray(boxes, dtype=np.float64)
    span = float(np.abs(boxes).max()) + 1.0
    shifted = boxes + (np.asarray(classes, dtype=np.float64) * 2.0 * span)[:, None]
    return nms(shifted, scores, iou_threshold, max_out)


def _select(boxes_xywh: np.ndarray, scores: np.ndarray, classes: np.ndarray, score: float,
            iou: float, max_det: int, agnostic: bool) -> RawDetections:
    finite = np.isfinite(scores) & np.isfinite(boxes_xywh).all(axis=1)
    mask = finite & (scores >= score)
    if not mask.any():
        return RawDetections.empty()
    boxes = xywh_to_xyxy(boxes_xywh[mask])
    kept_scores = scores[mask].astype(np.float64)
    kept_classes = classes[mask].astype(np.int64)
    if agnostic:
        keep = nms(boxes, kept_scores, iou, max_det)
    else:
        keep = batched_nms(boxes, kept_scores, kept_classes, iou, max_det)
    return RawDetections(boxes[keep], kept_scores[keep], kept_classes[keep])


def _as_batch(output: np.ndarray, rank: int) -> np.ndarray:
    output = np.asarray(output)
    if output.ndim == rank - 1:
        output = output[None]
    if output.ndim != rank:
        raise BackendError(f'decoder expects a {rank}-D output, got shape {list(output.shape)}')
    return output


def decode_yolov8(output: np.ndarray, num_classes: int, *, score: float, iou: float,
                  max_det: int, agnostic: bool = False) -> list[RawDetections]:
    """Decode a YOLOv8 head [B, 4+C, N] (cx, cy, w, h, class scores); [B, N, 4+C] accepted."""
    out = _as_batch(output, 3)
    if out.shape[1] != 4 + num_classes:
        if out.shape[2] == 4 + num_classes:
            out = out.transpose(0, 2, 1)
        else:
            raise BackendError(f'yolov8 output {list(out.shape)} does not match '
                               f'4 + {num_classes} classes')
    result = []
    for image in out:
        cls_scores = image[4:]
        classes = cls_scores.argmax(axis=0)
        scores = np.take_along_axis(cls_scores, classes[None], axis=0)[0]
        result.append(_select(image[:4].T, scores, classes, score, iou, max_det, agnostic))
    return result


def decode_yolov5(output: np.ndarray, num_classes: int, *, score: float, iou: float,
                  max_det: int, agnostic: bool = False) -> list[RawDetections]:
    """Decode a YOLOv5 head [B, N, 5+C] (cx, cy, w, h, objectness, class probabilities)."""
    out = _as_batch(output, 3)
    if out.shape[2] != 5 + num_classes:
        raise BackendError(f'yolov5 output {list(out.shape)} does not match '
                           f'5 + {num_classes} classes')
    result = []
    for image in out:
        objectness = image[:, 4]
        candidate = objectness >= score  # score = obj * cls <= obj
        cls_scores = image[candidate, 5:] * objectness[candidate, None]
        classes = cls_scores.argmax(axis=1) if cls_scores.size else np.zeros(0, np.int64)
        scores = cls_scores[np.arange(len(classes)), classes] if cls_scores.size else np.zeros(0)
        result.append(_select(image[candidate, :4], scores, classes, score, iou, max_det,
                              agnostic))
    return result


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax."""
    shifted = logits - np.max(logits, axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / np.sum(exp, axis=axis, keepdims=True)


def decode_classification(output: np.ndarray, num_classes: int, *, apply_softmax: bool,
                          top_k: int = 1, score: float = 0.0
                          ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return per image (classes [k], scores [k]) of the top-k classes above score."""
    out = np.asarray(output, dtype=np.float64)
    out = out.reshape(out.shape[0], -1) if out.ndim > 1 else out[None]
    if out.shape[1] != num_classes:
        raise BackendError(f'classification output {list(np.shape(output))} does not match '
                           f'{num_classes} classes')
    probs = softmax(out, axis=1) if apply_softmax else out
    result: list[tuple[np.ndarray, np.ndarray]] = []
    for row in probs:
        order = np.argsort(-row, kind='stable')[:top_k]
        order = order[row[order] >= score]
        result.append((order.astype(np.int64), row[order]))
    return result
