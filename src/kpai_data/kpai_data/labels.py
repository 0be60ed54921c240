"""Dataset labelling logic: boxes to YOLO lines, near-duplicate frames, train/val split."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DatasetError

__all__ = [
    'DEFAULT_CLASSES',
    'Box',
    'NearDuplicateFilter',
    'boxes_from_detections',
    'read_yolo_labels',
    'split_of',
    'thumbnail',
    'yolo_lines',
]

# The stack's object classes in a fixed order (the shipped detector's label order).
DEFAULT_CLASSES = ('person', 'pallet', 'box', 'robot', 'rack')


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels (x1, y1, x2, y2) with its class name."""

    label: str
    x1: float
    y1: float
    x2: float
    y2: float

    def clipped(self, width: int, height: int) -> Box:
        """Return the box clipped to the image."""
        return Box(self.label, min(max(self.x1, 0.0), width), min(max(self.y1, 0.0), height),
                   min(max(self.x2, 0.0), width), min(max(self.y2, 0.0), height))

    @property
    def w(self) -> float:
        return self.x2 - self.x1

    @property
    def h(self) -> float:
        return self.y2 - self.y1


def boxes_from_detections(msg: Any) -> list[Box]:
    """Return boxes from a decoded vision_msgs/Detection2DArray (class_id = class name)."""
    out = []
    for det in msg.detections:
        if not det.results:
            continue
        best = max(det.results, key=lambda r: float(r.hypothesis.score))
        cx, cy = float(det.bbox.center.position.x), float(det.bbox.center.position.y)
        w, h = float(det.bbox.size_x), float(det.bbox.size_y)
        if not all(np.isfinite([cx, cy, w, h])) or w <= 0 or h <= 0:
            continue
        out.append(Box(str(best.hypothesis.class_id), cx - w / 2, cy - h / 2, cx + w / 2,
                       cy + h / 2))
    return out


def yolo_lines(boxes: Iterable[Box], classes: Sequence[str], width: int, height: int, *,
               min_size: float = 2.0) -> list[str]:
    """Return YOLO lines 'cls cx cy w h' (normalised), skipping unknown classes and slivers."""
    index = {name: i for i, name in enumerate(classes)}
    lines = []
    for box in boxes:
        if box.label not in index:
            continue
        b = box.clipped(width, height)
        if b.w < min_size or b.h < min_size:
            continue
        lines.append(f'{index[b.label]} {(b.x1 + b.x2) / 2 / width:.6f} '
                     f'{(b.y1 + b.y2) / 2 / height:.6f} {b.w / width:.6f} {b.h / height:.6f}')
    return lines


def read_yolo_labels(path: Path, num_classes: int) -> np.ndarray:
    """Read a YOLO label file into an [N, 5] float32 array (cls, cx, cy, w, h normalised)."""
    if not path.exists():
        return np.zeros((0, 5), np.float32)
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            values = [float(p) for p in parts]
        except ValueError as err:
            raise DatasetError(f'{path}:{n}: not numbers: {line!r}') from err
        if len(values) != 5 or not 0 <= values[0] < num_classes or values[0] != int(values[0]):
            raise DatasetError(f'{path}:{n}: expected "cls cx cy w h", got {line!r}')
        rows.append(values)
    return np.asarray(rows, np.float32).reshape(-1, 5)


def thumbnail(rgb: np.ndarray, size: tuple[int, int] = (32, 24)) -> np.ndarray:
    """Return a small grey float image (block means) used to compare frames."""
    grey = rgb.astype(np.float32).mean(axis=2)
    h, w = grey.shape
    tw, th = min(size[0], w), min(size[1], h)
    ys = np.linspace(0, h, th + 1).astype(int)
    xs = np.linspace(0, w, tw + 1).astype(int)
    out = np.empty((th, tw), np.float32)
    for i in range(th):
        band = grey[ys[i]:ys[i + 1]]
        for j in range(tw):
            out[i, j] = band[:, xs[j]:xs[j + 1]].mean()
    return out / 255.0


class NearDuplicateFilter:
    """Keep a frame only if it differs enough from the last kept frame of the same camera.

    A frame is a near-duplicate when its 32x24 grey thumbnail differs from the last kept one
    by less than min_diff (mean absolute difference, 0..1) AND its labelled boxes are the same
    classes, none moved by more than min_shift pixels. So a parked robot's camera yields one
    frame, while a person walking through an otherwise still view is kept.
    """

    def __init__(self, min_diff: float = 0.02, min_shift: float = 4.0) -> None:
        if min_diff < 0 or min_shift < 0:
            raise DatasetError(f'min_diff and min_shift must be >= 0 ({min_diff}, {min_shift})')
        self.min_diff = min_diff
        self.min_shift = min_shift
        self._last: dict[str, tuple[np.ndarray, list[Box]]] = {}
        self.kept = 0
        self.skipped = 0

    def _same_boxes(self, old: list[Box], new: list[Box]) -> bool:
        if sorted(b.label for b in old) != sorted(b.label for b in new):
            return False
        remaining = list(old)
        for box in new:
            match = min((b for b in remaining if b.label == box.label),
                        key=lambda b: abs(b.x1 - box.x1) + abs(b.y1 - box.y1)
                        + abs(b.x2 - box.x2) + abs(b.y2 - box.y2))
            shift = max(abs(match.x1 - box.x1), abs(match.y1 - box.y1),
                        abs(match.x2 - box.x2), abs(match.y2 - box.y2))
            if shift > self.min_shift:
                return False
            remaining.remove(match)
        return True

    def keep(self, stream: str, rgb: np.ndarray, boxes: Sequence[Box] = ()) -> bool:
        """Return True (and remember the frame) when it is not a near-duplicate."""
        thumb = thumbnail(rgb)
        last = self._last.get(stream)
        if (last is not None and last[0].shape == thumb.shape
                and float(np.abs(last[0] - thumb).mean()) < self.min_diff
                and self._same_boxes(last[1], list(boxes))):
            self.skipped += 1
            return False
        self._last[stream] = (thumb, list(boxes))
        self.kept += 1
        return True


def split_of(group: str, *, val_fraction: float, seed: int = 0) -> str:
    """Return 'val' or 'train' for a group of frames, stable for a given seed."""
    if not 0.0 <= val_fraction <= 1.0:
        raise DatasetError(f'val_fraction must be in [0, 1], not {val_fraction}')
    digest = hashlib.sha256(f'{seed}:{group}'.encode()).digest()
    if val_fraction >= 1.0:
        return 'val'
    return 'val' if int.from_bytes(digest[:8], 'big') / 2**64 < val_fraction else 'train'
