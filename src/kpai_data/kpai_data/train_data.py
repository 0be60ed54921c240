"""Training data without torch: letterboxing, label conversion and augmentation (numpy/cv2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .dataset import Sample
from .errors import DatasetError

__all__ = ['LoadedSplit', 'augment', 'letterbox', 'load_split']

PAD = 114


def letterbox(rgb: np.ndarray, height: int, width: int) -> tuple[np.ndarray, float, int, int]:
    """Resize keeping aspect ratio and pad symmetrically (as the NPU bridge does)."""
    h, w = rgb.shape[:2]
    ratio = min(width / w, height / h)
    new_w = max(1, min(width, round(w * ratio)))
    new_h = max(1, min(height, round(h * ratio)))
    pad_x, pad_y = (width - new_w) // 2, (height - new_h) // 2
    out = np.full((height, width, 3), PAD, np.uint8)
    resized = rgb if (new_w, new_h) == (w, h) else cv2.resize(
        rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    out[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = resized
    return out, ratio, pad_x, pad_y


@dataclass
class LoadedSplit:
    """A split in memory: letterboxed images [N,H,W,3] and per-image [M,5] (cls, xyxy px)."""

    images: np.ndarray
    targets: list[np.ndarray]
    names: list[str]


def load_split(samples: Sequence[Sample], height: int, width: int) -> LoadedSplit:
    """Read and letterbox every image; convert YOLO labels to input-pixel xyxy boxes."""
    images = np.empty((len(samples), height, width, 3), np.uint8)
    targets = []
    for i, s in enumerate(samples):
        bgr = cv2.imread(str(s.image), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DatasetError(f'cannot read image {s.image}')
        h, w = bgr.shape[:2]
        images[i], ratio, px, py = letterbox(bgr[:, :, ::-1], height, width)
        lab = s.labels
        xyxy = np.stack([(lab[:, 1] - lab[:, 3] / 2) * w, (lab[:, 2] - lab[:, 4] / 2) * h,
                         (lab[:, 1] + lab[:, 3] / 2) * w, (lab[:, 2] + lab[:, 4] / 2) * h],
                        axis=1) * ratio + np.array([px, py, px, py], np.float32)
        targets.append(np.concatenate([lab[:, :1], xyxy], axis=1).astype(np.float32))
    return LoadedSplit(images, targets, [s.image.name for s in samples])


def augment(rng: np.random.Generator, image: np.ndarray, target: np.ndarray,
            ) -> tuple[np.ndarray, np.ndarray]:
    """Random flip, scale/translate and brightness/contrast; boxes follow, slivers dropped."""
    h, w = image.shape[:2]
    scale = rng.uniform(0.75, 1.25)
    tx = rng.uniform(-0.1, 0.1) * w + (1 - scale) * w / 2
    ty = rng.uniform(-0.1, 0.1) * h + (1 - scale) * h / 2
    flip = rng.random() < 0.5
    a = scale * (-1.0 if flip else 1.0)
    bx = tx + (scale * w if flip else 0.0)
    matrix = np.array([[a, 0.0, bx], [0.0, scale, ty]], np.float32)
    out = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(PAD, PAD, PAD))
    gain = rng.uniform(0.7, 1.3)
    bias = rng.uniform(-20, 20)
    out = np.clip(out.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
    if target.size == 0:
        return out, target
    xs = target[:, [1, 3]] * a + bx
    ys = target[:, [2, 4]] * scale + ty
    boxes = np.stack([xs.min(1), ys.min(1), xs.max(1), ys.max(1)], axis=1)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    clipped = np.stack([np.clip(boxes[:, 0], 0, w), np.clip(boxes[:, 1], 0, h),
                        np.clip(boxes[:, 2], 0, w), np.clip(boxes[:, 3], 0, h)], axis=1)
    cw, ch = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    keep = (cw > 2) & (ch > 2) & (cw * ch > 0.4 * np.maximum(area, 1e-6))
    return out, np.concatenate([target[keep, :1], clipped[keep]], axis=1).astype(np.float32)
