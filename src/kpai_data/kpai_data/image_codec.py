"""Turn decoded sensor_msgs/Image records (any object with its fields) into RGB arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import DatasetError

__all__ = ['SUPPORTED_ENCODINGS', 'image_fields_to_rgb']

_CHANNELS = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1, '8UC1': 1, '8UC3': 3}
SUPPORTED_ENCODINGS = tuple(_CHANNELS)


def image_fields_to_rgb(msg: Any) -> np.ndarray:
    """Return an HxWx3 uint8 RGB copy of an Image-like message; DatasetError if unusable."""
    enc = str(msg.encoding)
    channels = _CHANNELS.get(enc)
    if channels is None:
        raise DatasetError(f'unsupported image encoding {enc!r}; supported {SUPPORTED_ENCODINGS}')
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise DatasetError(f'empty image {width}x{height}')
    if step < width * channels:
        raise DatasetError(f'step {step} < width {width} x {channels} channels')
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if data.size < step * height:
        raise DatasetError(f'image data has {data.size} bytes, expected {step * height}')
    rows = data[: step * height].reshape(height, step)[:, : width * channels]
    pixels = rows.reshape(height, width, channels)
    if channels == 1:
        return np.repeat(pixels, 3, axis=2)
    if enc in ('bgr8', 'bgra8'):
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    return np.ascontiguousarray(pixels[:, :, :3])
