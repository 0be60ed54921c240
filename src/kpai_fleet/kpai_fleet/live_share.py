"""Robot side of the KPAI live topics, without ROS: camera lease, thumbnails, tracked objects.

The agent shares its annotated camera image only while the fleet server holds a lease (a
dashboard has the robot's panel open), and its tracked objects at a low fixed rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from kpai_fleet.errors import ValidationRejected
from kpai_fleet.vda5050.kpai_ext import (
    MAX_JPEG_BYTES,
    MAX_OBJECTS,
    CameraRequest,
    TrackedObject,
)

__all__ = ['CameraLease', 'ObjectsThrottle', 'encode_thumbnail', 'image_array']

_CHANNELS = {'rgb8': 3, 'bgr8': 3, 'mono8': 1, 'rgba8': 4, 'bgra8': 4}


class CameraLease:
    """When the camera is wanted (lease live) and when the next thumbnail is due."""

    def __init__(self) -> None:
        self.until = 0.0
        self.request = CameraRequest()
        self.last_sent = -1e18
        self.sent = 0

    def renew(self, req: CameraRequest, now: float) -> None:
        """A request arrived: thumbnails are wanted for req.lease_s from now."""
        self.request = req
        self.until = max(self.until, now + req.lease_s) if now < self.until else (
            now + req.lease_s)

    def active(self, now: float) -> bool:
        """Return True while the lease is live."""
        return now < self.until

    def due(self, now: float) -> bool:
        """Return True if a thumbnail may be sent now (lease live, period elapsed)."""
        return self.active(now) and now - self.last_sent >= self.request.period_s * 0.95

    def mark_sent(self, now: float) -> None:
        """A thumbnail went out at now."""
        self.last_sent = now
        self.sent += 1


def image_array(encoding: str, height: int, width: int, step: int, data: bytes) -> np.ndarray:
    """Return an HxWx3 RGB uint8 view of a sensor_msgs/Image's fields (8-bit encodings only)."""
    ch = _CHANNELS.get(encoding)
    if ch is None:
        raise ValidationRejected(f'image encoding {encoding!r} not supported for thumbnails')
    if not (0 < width <= 8192 and 0 < height <= 8192) or step < width * ch or (
            len(data) < step * height):
        raise ValidationRejected(f'image {width}x{height} step {step}: size does not match')
    rows = np.frombuffer(data, np.uint8, count=step * height).reshape(height, step)
    img = rows[:, :width * ch].reshape(height, width, ch)
    if ch == 1:
        return np.repeat(img, 3, axis=2)
    if encoding.startswith('bgr'):
        return img[:, :, 2::-1]
    return img[:, :, :3]


def encode_thumbnail(rgb: np.ndarray, *, max_width: int = 320, quality: int = 70) -> bytes:
    """Return a JPEG of rgb scaled down to at most max_width (aspect kept)."""
    import cv2  # opencv-python-headless, a dependency of the stack already

    h, w = rgb.shape[:2]
    if w > max_width:
        size = (max_width, max(1, round(h * max_width / w)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    for q in (quality, 50, 30):  # a very busy image may need a lower quality to fit
        ok, buf = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, q])
        if not ok:
            raise ValidationRejected('JPEG encoding failed')
        if len(buf) <= MAX_JPEG_BYTES:
            return bytes(buf.tobytes())
    raise ValidationRejected(f'thumbnail larger than {MAX_JPEG_BYTES} bytes')


@dataclass
class _Latest:
    objects: list[TrackedObject]
    received: float


class ObjectsThrottle:
    """Keep the newest tracked objects; hand them out at most once per period while fresh."""

    def __init__(self, period_s: float = 1.0, fresh_s: float = 2.0) -> None:
        self.period_s = period_s
        self.fresh_s = fresh_s
        self._latest: _Latest | None = None
        self._last = -1e18
        self.sent = 0

    def update(self, objects: Iterable[TrackedObject], now: float) -> None:
        """Newest tracked objects (map frame), received at now."""
        self._latest = _Latest(list(objects)[:MAX_OBJECTS], now)

    def take(self, now: float) -> list[TrackedObject] | None:
        """Return the objects to publish now, or None (not due, or nothing fresh).

        An empty list is published too (once per period): the people left the view.
        """
        if self._latest is None or now - self._last < self.period_s:
            return None
        if now - self._latest.received > self.fresh_s:
            return None
        self._last = now
        self.sent += 1
        return self._latest.objects
