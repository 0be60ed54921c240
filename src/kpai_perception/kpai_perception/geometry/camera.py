"""Pinhole camera model from sensor_msgs/CameraInfo fields, with lens distortion."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kpai_perception.errors import CalibrationError

__all__ = ['CameraModel']

_DISTORTION_LEN = {'plumb_bob': (5,), 'rational_polynomial': (8,), 'equidistant': (4,)}


@dataclass(frozen=True)
class CameraModel:
    """Intrinsics K (3x3), distortion D and image size; pixel centres at integer coordinates."""

    width: int
    height: int
    k: np.ndarray
    d: np.ndarray
    distortion_model: str = 'plumb_bob'
    frame_id: str = ''

    def __post_init__(self) -> None:
        k, d = np.asarray(self.k, dtype=np.float64), np.asarray(self.d, dtype=np.float64)
        if k.shape != (3, 3):
            raise CalibrationError(f'K must be 3x3, got shape {k.shape}')
        if not np.all(np.isfinite(k)):
            raise CalibrationError('K contains NaN or inf')
        if not np.all(np.isfinite(d)):
            raise CalibrationError('D contains NaN or inf')
        if k[0, 0] <= 0 or k[1, 1] <= 0:
            raise CalibrationError(f'focal lengths must be > 0 (fx={k[0, 0]}, fy={k[1, 1]})')
        if self.width <= 0 or self.height <= 0:
            raise CalibrationError(f'image size must be > 0, got {self.width}x{self.height}')
        if d.size and np.any(d != 0.0):
            lengths = _DISTORTION_LEN.get(self.distortion_model)
            if lengths is None:
                raise CalibrationError(
                    f'unsupported distortion model {self.distortion_model!r} '
                    f'(supported: {", ".join(_DISTORTION_LEN)})')
            if self.distortion_model != 'rational_polynomial' and d.size < lengths[0]:
                raise CalibrationError(
                    f'{self.distortion_model} needs {lengths[0]} coefficients, got {d.size}')
        object.__setattr__(self, 'k', k)
        object.__setattr__(self, 'd', d)

    @classmethod
    def from_msg(cls, msg: Any) -> CameraModel:
        """Build from a sensor_msgs/CameraInfo (or any object with its fields)."""
        try:
            k = np.array(list(msg.k), dtype=np.float64).reshape(3, 3)
        except ValueError as err:
            raise CalibrationError(f'K must have 9 elements: {err}') from err
        return cls(int(msg.width), int(msg.height), k, np.array(list(msg.d), dtype=np.float64),
                   str(msg.distortion_model) or 'plumb_bob', str(msg.header.frame_id))

    @classmethod
    def ideal(cls, width: int, height: int, hfov: float, frame_id: str = '') -> CameraModel:
        """Build a distortion-free camera from image size and horizontal field of view (rad)."""
        if not (0 < hfov < math.pi):
            raise CalibrationError(f'hfov must be in (0, pi), got {hfov}')
        f = (width / 2) / math.tan(hfov / 2)
        k = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])
        return cls(width, height, k, np.zeros(5), 'plumb_bob', frame_id)

    @property
    def has_distortion(self) -> bool:
        """Return whether any distortion coefficient is non-zero."""
        return bool(self.d.size and np.any(self.d != 0.0))

    def normalize(self, pixels: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
        """Return undistorted normalised image coordinates (x/z, y/z), shape (N, 2)."""
        uv = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        if not self.has_distortion:
            k = self.k
            x = (uv[:, 0] - k[0, 2] - k[0, 1] * (uv[:, 1] - k[1, 2]) / k[1, 1]) / k[0, 0]
            return np.stack([x, (uv[:, 1] - k[1, 2]) / k[1, 1]], axis=1)
        import cv2

        pts = uv.reshape(-1, 1, 2)
        if self.distortion_model == 'equidistant':
            out = cv2.fisheye.undistortPoints(pts, self.k, self.d[:4])
        else:
            out = cv2.undistortPoints(pts, self.k, self.d)
        return np.asarray(out, dtype=np.float64).reshape(-1, 2)

    def pixel_to_ray(self, pixels: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
        """Return unit ray directions (N, 3) in the optical frame (z forward, x right, y down)."""
        xy = self.normalize(pixels)
        rays = np.concatenate([xy, np.ones((xy.shape[0], 1))], axis=1)
        return rays / np.linalg.norm(rays, axis=1, keepdims=True)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Project optical-frame points (N, 3) with z > 0 to pixels (N, 2), with distortion."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        if np.any(p[:, 2] <= 0):
            raise ValueError('points must be in front of the camera (z > 0)')
        if not self.has_distortion:
            uvw = p @ self.k.T
            return uvw[:, :2] / uvw[:, 2:3]
        import cv2

        zero = np.zeros(3)
        if self.distortion_model == 'equidistant':
            out = cv2.fisheye.projectPoints(p.reshape(-1, 1, 3), zero, zero, self.k, self.d[:4])[0]
        else:
            out = cv2.projectPoints(p.reshape(-1, 1, 3), zero, zero, self.k, self.d)[0]
        return np.asarray(out, dtype=np.float64).reshape(-1, 2)

    def contains(self, u: float, v: float, margin: float = 0.0) -> bool:
        """Return whether pixel (u, v) lies within the image (extended by margin pixels)."""
        return (-0.5 - margin <= u <= self.width - 0.5 + margin
                and -0.5 - margin <= v <= self.height - 0.5 + margin)
