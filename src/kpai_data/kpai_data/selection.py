"""Active-learning frame selection: where the detector disagrees with ground truth or is unsure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .metrics import box_iou

__all__ = ['FrameVerdict', 'SelectionConfig', 'judge_frame', 'select_frames']


@dataclass(frozen=True)
class SelectionConfig:
    """Thresholds: a detection at or above score counts; between unsure_low and score is unsure."""

    score: float = 0.25
    unsure_low: float = 0.1
    iou: float = 0.5
    min_box: float = 0.0  # ground truth narrower/lower than this (px) is ignored, not missed


@dataclass
class FrameVerdict:
    """Why a frame is interesting: missed objects, false alarms, unsure detections."""

    missed: int = 0
    false_positives: int = 0
    unsure: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def priority(self) -> float:
        """Higher for frames the next training round learns most from."""
        return 2.0 * self.missed + 1.5 * self.false_positives + 0.5 * self.unsure

    @property
    def selected(self) -> bool:
        return self.priority > 0


def judge_frame(pred_boxes: np.ndarray, pred_scores: np.ndarray, pred_classes: np.ndarray,
                gt_boxes: np.ndarray, gt_classes: np.ndarray, labels: Sequence[str],
                cfg: SelectionConfig = SelectionConfig()) -> FrameVerdict:
    """Compare one frame's detections (xyxy) with its ground truth (class-aware, greedy).

    Ground-truth boxes under cfg.min_box are "ignore" regions: not counted as missed, and a
    detection on one is not a false positive either.
    """
    verdict = FrameVerdict()
    pred_boxes = np.asarray(pred_boxes, np.float64).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    size = np.minimum(gt_boxes[:, 2] - gt_boxes[:, 0], gt_boxes[:, 3] - gt_boxes[:, 1])
    small = size < cfg.min_box
    ignored, gt_boxes = gt_boxes[small], gt_boxes[~small]
    gt_classes = np.asarray(gt_classes, int)[~small]
    scores = np.asarray(pred_scores, np.float64)
    classes = np.asarray(pred_classes, int)
    confident = scores >= cfg.score
    unsure = (scores >= cfg.unsure_low) & ~confident
    matched_gt = np.zeros(len(gt_boxes), bool)
    ious = box_iou(pred_boxes, gt_boxes) if len(gt_boxes) and len(pred_boxes) else None
    for i in np.argsort(-scores):
        if not confident[i]:
            continue
        ok = False
        if ious is not None:
            cand = np.where((gt_classes == classes[i]) & ~matched_gt, ious[i], -1.0)
            j = int(np.argmax(cand))
            if cand[j] >= cfg.iou:
                matched_gt[j] = True
                ok = True
        if not ok and len(ignored) and box_iou(pred_boxes[i:i + 1], ignored).max() >= cfg.iou:
            ok = True  # on an object too small to be labelled
        if not ok:
            verdict.false_positives += 1
            verdict.reasons.append(f'false {labels[classes[i]]} ({scores[i]:.2f})')
    for miss in np.nonzero(~matched_gt)[0]:
        verdict.missed += 1
        verdict.reasons.append(f'missed {labels[gt_classes[miss]]}')
    verdict.unsure = int(unsure.sum())
    if verdict.unsure:
        verdict.reasons.append(f'{verdict.unsure} unsure')
    return verdict


def select_frames(verdicts: Sequence[FrameVerdict], *, budget: int) -> list[int]:
    """Return indices of up to budget selected frames, highest priority first (stable)."""
    ranked = sorted((i for i, v in enumerate(verdicts) if v.selected),
                    key=lambda i: (-verdicts[i].priority, i))
    return ranked[:max(0, budget)]
