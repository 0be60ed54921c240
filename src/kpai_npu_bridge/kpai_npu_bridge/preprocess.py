"""Image -> input tensor: letterbox or plain resize, colour order, normalisation, layout."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import InputError
from .manifest import InputSpec, PreprocessSpec

__all__ = ['ImageMeta', 'check_image', 'letterbox', 'preprocess_batch', 'resize_plain']


@dataclass(frozen=True)
class ImageMeta:
    """How model-input pixels map back to the original image: x = (x' - pad_x) / scale_x."""

    width: int
    height: int
    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float

    def to_original(self, boxes: np.ndarray) -> np.ndarray:
        """Map xyxy boxes from model-input pixels to original pixels, clipped to the image."""
        out = np.asarray(boxes, dtype=np.float64).copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale_x
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale_y
        out[:, [0, 2]] = out[:, [0, 2]].clip(0.0, self.width)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0.0, self.height)
        return out


def check_image(image: object, index: int = 0) -> np.ndarray:
    """Return the image if it is a non-empty HxWx3 uint8 array, else raise InputError."""
    if not isinstance(image, np.ndarray):
        raise InputError(f'image {index}: expected a numpy array, got {type(image).__name__}')
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f'image {index}: expected HxWx3, got shape {list(image.shape)}')
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f'image {index}: empty image {list(image.shape)}')
    if image.dtype != np.uint8:
        raise InputError(f'image {index}: expected uint8 pixels, got {image.dtype}')
    return image


def letterbox(image: np.ndarray, height: int, width: int, pad_value: int = 114
              ) -> tuple[np.ndarray, ImageMeta]:
    """Resize keeping the aspect ratio and pad symmetrically to height x width."""
    h, w = image.shape[:2]
    ratio = min(height / h, width / w)
    new_w = max(1, min(width, round(w * ratio)))
    new_h = max(1, min(height, round(h * ratio)))
    pad_x = (width - new_w) // 2
    pad_y = (height - new_h) // 2
    out = np.full((height, width, image.shape[2]), pad_value, dtype=image.dtype)
    resized = image if (new_w, new_h) == (w, h) else cv2.resize(
        image, (new_w, new_h), interpolation=cv2.INTER_LINEAR
    )
    out[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = resized
    return out, ImageMeta(w, h, new_w / w, new_h / h, float(pad_x), float(pad_y))


def resize_plain(image: np.ndarray, height: int, width: int) -> tuple[np.ndarray, ImageMeta]:
    """Stretch the image to height x width (aspect ratio not kept)."""
    h, w = image.shape[:2]
    out = image if (w, h) == (width, height) else cv2.resize(
        image, (width, height), interpolation=cv2.INTER_LINEAR
    )
    return out, ImageMeta(w, h, width / w, height / h, 0.0, 0.0)


def preprocess_batch(images: Sequence[np.ndarray], spec: InputSpec, pre: PreprocessSpec
                     ) -> tuple[np.ndarray, list[ImageMeta]]:
    """Turn RGB uint8 images of any size into one input tensor plus per-image metadata."""
    if len(images) == 0:
        raise InputError('no images given')
    n = len(images)
    h, w = spec.height, spec.width
    pixels = np.empty((n, h, w, 3), dtype=np.uint8)
    metas = []
    for i, image in enumerate(images):
        check_image(image, i)
        if pre.resize == 'letterbox':
            out, meta = letterbox(image, h, w, pre.pad_value)
        else:
            out, meta = resize_plain(image, h, w)
        pixels[i] = out
        metas.append(meta)
    if pre.color == 'bgr':
        pixels = pixels[..., ::-1]
    # Reorder while still uint8 (4x less memory traffic), then scale into the float tensor.
    if spec.layout == 'NCHW':
        pixels = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))
        per_channel: tuple[int, ...] = (1, 3, 1, 1)
    else:
        pixels = np.ascontiguousarray(pixels)
        per_channel = (1, 1, 1, 3)
    if spec.dtype == 'uint8':
        return pixels, metas
    tensor = np.empty(pixels.shape, dtype=np.float32)
    np.multiply(pixels, np.float32(pre.scale), out=tensor, dtype=np.float32)
    if any(pre.mean):
        tensor -= np.asarray(pre.mean, dtype=np.float32).reshape(per_channel)
    if pre.std != (1.0, 1.0, 1.0):
        tensor /= np.asarray(pre.std, dtype=np.float32).reshape(per_channel)
    return (tensor if spec.dtype == 'float32' else tensor.astype(spec.dtype)), metas
