"""Deterministic synthetic images used as the certification golden input set."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ['golden_images']

_SIZES = ((480, 640), (360, 640), (640, 480), (240, 320), (720, 1280), (300, 300), (97, 203),
          (512, 512))


def _scene(rng: np.random.Generator, height: int, width: int, kind: int) -> np.ndarray:
    if kind == 0:  # horizontal and vertical colour gradients
        ys = np.linspace(0, 255, height)[:, None]
        xs = np.linspace(0, 255, width)[None, :]
        image = np.stack([np.broadcast_to(xs, (height, width)),
                          np.broadcast_to(ys, (height, width)),
                          (xs + ys) / 2], axis=2)
    elif kind == 1:  # checkerboard
        cell = max(4, min(height, width) // 12)
        board = ((np.arange(height)[:, None] // cell + np.arange(width)[None, :] // cell) % 2)
        image = np.repeat(board[..., None] * 220.0 + 20.0, 3, axis=2)
    elif kind == 2:  # uniform noise
        image = rng.integers(0, 256, (height, width, 3)).astype(np.float64)
    else:  # solid background with filled shapes
        image = np.empty((height, width, 3))
        image[:] = rng.integers(0, 256, 3)
    image = np.ascontiguousarray(image.clip(0, 255).astype(np.uint8))
    for _ in range(int(rng.integers(2, 7))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x1, x2 = sorted(int(v) for v in rng.integers(0, width, 2))
        y1, y2 = sorted(int(v) for v in rng.integers(0, height, 2))
        if rng.random() < 0.5:
            cv2.rectangle(image, (x1, y1), (x2, y2), colour, -1)
        else:
            radius = max(2, (x2 - x1 + y2 - y1) // 4)
            cv2.circle(image, ((x1 + x2) // 2, (y1 + y2) // 2), radius, colour, -1)
    return image


def golden_images(count: int = 8, seed: int = 0) -> list[np.ndarray]:
    """Return count RGB uint8 images of varied sizes and content; same seed, same pixels."""
    rng = np.random.default_rng(seed)
    return [
        _scene(rng, *_SIZES[i % len(_SIZES)], kind=i % 4)
        for i in range(count)
    ]
