"""Detection metrics: IoU, NMS and mAP@IoU (VOC-style all-point interpolated AP)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ['ClassAP', 'average_precision', 'box_iou', 'evaluate_map', 'nms']


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the [len(a), len(b)] IoU matrix of xyxy boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Return indices of boxes kept by greedy non-maximum suppression, best first."""
    order = np.argsort(-np.asarray(scores), kind='stable')
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        ious = box_iou(boxes[i:i + 1], boxes[order[1:]])[0]
        order = order[1:][ious <= iou_threshold]
    return np.asarray(keep, np.int64)


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope over recall (all points, as VOC2010+ and COCO-style)."""
    r = np.concatenate([[0.0], np.asarray(recall, np.float64), [1.0]])
    p = np.concatenate([[1.0], np.asarray(precision, np.float64), [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


@dataclass(frozen=True)
class ClassAP:
    """AP of one class with its ground-truth and detection counts."""

    ap: float | None  # None when the class has no ground truth in the evaluated images
    ground_truth: int
    detections: int
    true_positives: int


def evaluate_map(
    predictions: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    ground_truths: Sequence[tuple[np.ndarray, np.ndarray]],
    num_classes: int,
    *,
    iou_threshold: float = 0.5,
) -> tuple[float, list[ClassAP]]:
    """Return (mAP over classes with ground truth, per-class AP) at iou_threshold.

    predictions[i] = (boxes xyxy [N,4], scores [N], classes [N]) for image i;
    ground_truths[i] = (boxes xyxy [M,4], classes [M]). Each ground-truth box matches at most
    one detection (the highest-scoring one above the IoU threshold); other detections of it
    are false positives.
    """
    if len(predictions) != len(ground_truths):
        raise ValueError('predictions and ground truths must cover the same images')
    results: list[ClassAP] = []
    for c in range(num_classes):
        scored: list[tuple[float, int, int]] = []  # (score, image, det index)
        total_gt = 0
        for i, ((_pb, ps, pc), (_gb, gc)) in enumerate(zip(predictions, ground_truths,
                                                            strict=True)):
            total_gt += int(np.sum(np.asarray(gc) == c))
            for idx in np.nonzero(np.asarray(pc) == c)[0]:
                scored.append((float(ps[idx]), i, int(idx)))
        scored.sort(key=lambda t: -t[0])
        matched: dict[int, np.ndarray] = {}
        tp = np.zeros(len(scored))
        for k, (_, i, det) in enumerate(scored):
            gb, gc = ground_truths[i]
            gt_idx = np.nonzero(np.asarray(gc) == c)[0]
            if gt_idx.size == 0:
                continue
            ious = box_iou(np.asarray(predictions[i][0])[det:det + 1],
                           np.asarray(gb)[gt_idx])[0]
            used = matched.setdefault(i, np.zeros(gt_idx.size, bool))
            ious = np.where(used, -1.0, ious)
            best = int(np.argmax(ious))
            if ious[best] >= iou_threshold:
                used[best] = True
                tp[k] = 1
        if total_gt == 0:
            results.append(ClassAP(None, 0, len(scored), 0))
            continue
        ctp = np.cumsum(tp)
        recall = ctp / total_gt
        precision = ctp / np.arange(1, len(scored) + 1)
        ap = average_precision(recall, precision) if scored else 0.0
        results.append(ClassAP(ap, total_gt, len(scored), int(tp.sum())))
    aps = [r.ap for r in results if r.ap is not None]
    return (float(np.mean(aps)) if aps else 0.0), results
