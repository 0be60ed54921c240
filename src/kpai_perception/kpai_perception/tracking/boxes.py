"""Axis-aligned boxes: detections, IoU matrices and input sanitising."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ['Detection', 'SanitizeResult', 'iou_matrix', 'sanitize_detections']


@dataclass(frozen=True)
class Detection:
    """One 2D detection: box corners (x1, y1, x2, y2) in pixels, score and class label."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    class_id: str = ''

    @classmethod
    def from_center(cls, cx: float, cy: float, w: float, h: float, score: float,
                    class_id: str = '') -> Detection:
        """Build a detection from centre and size."""
        return cls(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score, class_id)

    def as_array(self) -> np.ndarray:
        """Return the corners as a float array [x1, y1, x2, y2]."""
        return np.array([self.x1, self.y1, self.x2, self.y2], dtype=np.float64)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the IoU of every box in a (N x 4 corners) with every box in b (M x 4)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]))
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


@dataclass(frozen=True)
class SanitizeResult:
    """Detections kept after sanitising, the number rejected and the number clipped."""

    kept: list[Detection]
    rejected: int
    clipped: int


def sanitize_detections(dets: Iterable[Detection], *, image_size: tuple[int, int] | None = None,
                        min_size: float = 1.0) -> SanitizeResult:
    """Drop non-finite, degenerate or fully outside boxes; clip the rest to image_size (w, h)."""
    kept: list[Detection] = []
    rejected = clipped = 0
    for d in dets:
        values = (d.x1, d.y1, d.x2, d.y2, d.score)
        if not all(math.isfinite(v) for v in values):
            rejected += 1
            continue
        x1, y1, x2, y2 = d.x1, d.y1, d.x2, d.y2
        if image_size is not None:
            w, h = image_size
            cx1, cy1 = min(max(x1, 0.0), w), min(max(y1, 0.0), h)
            cx2, cy2 = min(max(x2, 0.0), w), min(max(y2, 0.0), h)
            if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
                clipped += 1
            x1, y1, x2, y2 = cx1, cy1, cx2, cy2
        if x2 - x1 < min_size or y2 - y1 < min_size:
            rejected += 1
            continue
        kept.append(Detection(x1, y1, x2, y2, d.score, d.class_id))
    return SanitizeResult(kept, rejected, clipped)
