"""AprilTag (tag36h11 by default) detection with 6-DoF pose, via pupil-apriltags (pure).

Pose convention (AprilTag 3): the tag frame has its origin at the tag centre, x to the right
and y down as the tag is seen when upright, z into the tag. `camera_from_tag` maps tag-frame
points into the camera's optical frame. tag_size is the edge of the black square (the outer
white ring is not counted), in metres.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from kpai_perception.errors import FiducialError
from kpai_perception.geometry.camera import CameraModel
from kpai_perception.geometry.transform import Transform

__all__ = ['FiducialDetector', 'TagDetection', 'tag_bitmap']


@dataclass(frozen=True)
class TagDetection:
    """One detected tag: id, corner pixels, decoding quality and pose."""

    tag_id: int
    family: str
    corners: np.ndarray        # (4, 2) pixels, in the library's order (see _OBJECT_CORNERS)
    center: tuple[float, float]
    hamming: int
    decision_margin: float
    camera_from_tag: Transform
    reprojection_error: float  # RMS pixels of the corners under the estimated pose


def _corners_3d(size: float) -> np.ndarray:
    h = size / 2
    # the library lists corners bottom-left, bottom-right, top-right, top-left (x right, y down)
    return np.array([[-h, h, 0.0], [h, h, 0.0], [h, -h, 0.0], [-h, -h, 0.0]])


def apriltag_detector(**kwargs: Any) -> Any:
    """Return a pupil-apriltags Detector whose teardown is safe.

    The library's Detector.__del__ frees the tag families first and then destroys the
    detector, which walks those freed families (a use after free: it crashed a test run once).
    The families are detached from the detector before that teardown.
    """
    return _safe_detector_class()(**kwargs)


@lru_cache(maxsize=1)
def _safe_detector_class() -> Any:
    from pupil_apriltags import Detector

    class SafeDetector(Detector):  # type: ignore[misc, valid-type]
        def __del__(self) -> None:
            ptr = getattr(self, 'tag_detector_ptr', None)
            if ptr is not None:
                self.libc.apriltag_detector_clear_families.restype = None
                self.libc.apriltag_detector_clear_families(ptr)
            super().__del__()

    return SafeDetector


@lru_cache(maxsize=4)
def _family_layout(family: str) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...],
                                         int, int]:
    """Return codes, bit x, bit y, width at border and total width of a family."""
    detector = apriltag_detector(families=family, nthreads=1)
    fam = detector.tag_families[family].contents
    n = int(fam.nbits)
    return (tuple(int(fam.codes[i]) for i in range(int(fam.ncodes))),
            tuple(int(fam.bit_x[i]) for i in range(n)), tuple(int(fam.bit_y[i]) for i in range(n)),
            int(fam.width_at_border), int(fam.total_width))


def tag_bitmap(tag_id: int, family: str = 'tag36h11') -> np.ndarray:
    """Return a tag as a square uint8 image, one pixel per cell, white ring included."""
    codes, bit_x, bit_y, border, total = _family_layout(family)
    if not 0 <= tag_id < len(codes):
        raise FiducialError(f'{family} has ids 0..{len(codes) - 1}, got {tag_id}')
    offset = (total - border) // 2
    img = np.full((total, total), 255, np.uint8)
    img[offset:offset + border, offset:offset + border] = 0
    nbits = len(bit_x)
    for i in range(nbits):
        if codes[tag_id] >> (nbits - 1 - i) & 1:
            img[offset + bit_y[i], offset + bit_x[i]] = 255
    return img


class FiducialDetector:
    """Detect tags in grey or RGB images and estimate their pose with the camera model."""

    def __init__(self, *, family: str = 'tag36h11', tag_size: float = 0.16,
                 tag_sizes: Mapping[int, float] | None = None, max_hamming: int = 0,
                 min_decision_margin: float = 20.0, quad_decimate: float = 1.0,
                 threads: int = 1) -> None:
        sizes = dict(tag_sizes or {})
        for value in (tag_size, *sizes.values()):
            if not (math.isfinite(value) and value > 0):
                raise FiducialError(f'tag sizes must be finite and > 0 m, got {value}')
        if max_hamming < 0 or quad_decimate < 1.0 or threads < 1:
            raise FiducialError('need max_hamming >= 0, quad_decimate >= 1 and threads >= 1')
        try:
            import pupil_apriltags  # noqa: F401
        except ImportError as err:
            raise FiducialError('pupil-apriltags is not installed') from err
        try:
            self._detector: Any = apriltag_detector(families=family, nthreads=threads,
                                                    quad_decimate=quad_decimate)
        except Exception as err:  # the library raises bare errors for unknown families
            raise FiducialError(f'cannot create a {family} detector: {err}') from err
        self.family = family
        self.tag_size = tag_size
        self.tag_sizes = sizes
        self.max_hamming = max_hamming
        self.min_decision_margin = min_decision_margin

    def detect(self, image: np.ndarray, camera: CameraModel) -> list[TagDetection]:
        """Return the tags found in image (HxW grey or HxWx3 RGB uint8) with their poses."""
        import cv2

        img = np.asarray(image)
        if img.dtype != np.uint8 or img.ndim not in (2, 3) or img.size == 0:
            raise FiducialError(f'expected a non-empty uint8 image, got {img.dtype} {img.shape}')
        grey = img if img.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]),
                                                      cv2.COLOR_RGB2GRAY)
        found = self._detector.detect(np.ascontiguousarray(grey))
        out = []
        for d in found:
            if d.hamming > self.max_hamming or d.decision_margin < self.min_decision_margin:
                continue
            size = self.tag_sizes.get(int(d.tag_id), self.tag_size)
            corners = np.asarray(d.corners, dtype=np.float64)
            pose, err = self._pose(corners, size, camera)
            if pose is None:
                continue
            out.append(TagDetection(int(d.tag_id), self.family, corners,
                                    (float(d.center[0]), float(d.center[1])), int(d.hamming),
                                    float(d.decision_margin), pose, err))
        return out

    @staticmethod
    def _pose(corners: np.ndarray, size: float, camera: CameraModel
              ) -> tuple[Transform | None, float]:
        import cv2

        obj = _corners_3d(size)
        dist = camera.d if camera.has_distortion and camera.distortion_model != 'equidistant' \
            else np.zeros(5)
        pix = corners
        if camera.has_distortion and camera.distortion_model == 'equidistant':
            pix = cv2.fisheye.undistortPoints(corners.reshape(-1, 1, 2), camera.k,
                                              camera.d[:4], P=camera.k).reshape(-1, 2)
        ok, rvec, tvec = cv2.solvePnP(obj, pix.reshape(-1, 1, 2), camera.k, dist,
                                      flags=cv2.SOLVEPNP_IPPE_SQUARE)
        if not ok:
            return None, math.inf
        rot, _ = cv2.Rodrigues(rvec)
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = rot, np.asarray(tvec).reshape(3)
        reproj, _ = cv2.projectPoints(obj, rvec, tvec, camera.k, dist)
        err = float(np.sqrt(np.mean(np.sum((reproj.reshape(-1, 2) - pix) ** 2, axis=1))))
        return Transform.from_matrix(m), err
