"""Unit tests: AprilTag detection and 6-DoF pose on synthetic renders with known homography."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from kpai_perception.errors import FiducialError
from kpai_perception.fiducials import FiducialDetector, tag_bitmap
from kpai_perception.geometry import CameraModel, Transform
from transforms3d.euler import euler2quat
from transforms3d.quaternions import qinverse, qmult, quat2axangle

W, H = 640, 480


def render_tag(tag_id: int, size: float, camera_from_tag: Transform, camera: CameraModel,
               ideal: CameraModel | None = None) -> np.ndarray:
    """Draw the tag into a grey image through the homography of its pose (nearest cells).

    With `ideal` given, the tag is drawn for the distortion-free `ideal` camera and the image
    is then warped to `camera`'s lens distortion.
    """
    ideal = ideal or camera
    bitmap = tag_bitmap(tag_id)
    total, border = bitmap.shape[0], 8
    half = size / border * total / 2  # the white ring lies outside the black square
    # bitmap cell i covers [i - 0.5, i + 0.5] in OpenCV's pixel-centre convention
    src = np.float32([[-0.5, -0.5], [total - 0.5, -0.5], [total - 0.5, total - 0.5],
                      [-0.5, total - 0.5]])
    obj = np.array([[-half, -half, 0], [half, -half, 0], [half, half, 0], [-half, half, 0]])
    dst = ideal.project(camera_from_tag.apply(obj)).astype(np.float32)
    hom = cv2.getPerspectiveTransform(src, dst)
    img = np.full((H, W), 128, np.uint8)
    warped = cv2.warpPerspective(bitmap, hom, (W, H), flags=cv2.INTER_NEAREST)
    inside = cv2.warpPerspective(np.full_like(bitmap, 255), hom, (W, H),
                                 flags=cv2.INTER_NEAREST) > 0
    img[inside] = warped[inside]
    if camera is ideal:
        return img
    grid = np.stack(np.meshgrid(np.arange(W), np.arange(H)), axis=-1).reshape(-1, 2)
    xy = camera.normalize(grid.astype(np.float64))  # distorted pixel -> ideal ray
    k = ideal.k
    maps = np.stack([xy[:, 0] * k[0, 0] + k[0, 2], xy[:, 1] * k[1, 1] + k[1, 2]], axis=1)
    maps = maps.reshape(H, W, 2).astype(np.float32)
    return cv2.remap(img, maps[..., 0], maps[..., 1], cv2.INTER_NEAREST, borderValue=128)


def _angle(a: Transform, b: Transform) -> float:
    return abs(quat2axangle(qmult(qinverse(a.rotation), b.rotation))[1])


@pytest.mark.parametrize(('translation', 'euler'), [
    ((0.0, 0.0, 1.0), (0.0, 0.0, 0.0)),
    ((0.15, -0.05, 1.5), (0.3, 0.2, 0.1)),
    ((-0.3, 0.1, 2.5), (-0.2, 0.5, -1.2)),
])
def test_pose_from_synthetic_tag(translation: tuple, euler: tuple) -> None:
    cam = CameraModel.ideal(W, H, 1.0)
    truth = Transform.create(translation, euler2quat(*euler))
    img = render_tag(7, 0.2, truth, cam)
    dets = FiducialDetector(tag_size=0.2).detect(img, cam)
    assert [d.tag_id for d in dets] == [7]
    d = dets[0]
    np.testing.assert_allclose(d.camera_from_tag.translation, truth.translation,
                               atol=0.01 * translation[2])
    # a fronto-parallel tag is the worst case for planar pose: ~2 deg here
    assert _angle(d.camera_from_tag, truth) < math.radians(3.0)
    assert d.reprojection_error < 1.0 and d.hamming == 0
    expected_centre = cam.project(truth.apply(np.zeros((1, 3))))[0]
    np.testing.assert_allclose(d.center, expected_centre, atol=1.0)


def test_pose_with_lens_distortion_and_per_id_size() -> None:
    distorted = CameraModel(W, H, CameraModel.ideal(W, H, 1.0).k,
                            np.array([-0.3, 0.1, 0.0, 0.0, 0.0]))
    truth = Transform.create((0.25, 0.15, 1.2), euler2quat(0.1, -0.3, 0.2))
    img = render_tag(3, 0.1, truth, distorted, CameraModel.ideal(W, H, 1.0))
    det = FiducialDetector(tag_size=0.5, tag_sizes={3: 0.1})
    found = det.detect(img, distorted)
    assert [d.tag_id for d in found] == [3]
    np.testing.assert_allclose(found[0].camera_from_tag.translation, truth.translation,
                               atol=0.015)
    # ignoring the distortion places the tag measurably wrong
    plain = det.detect(img, CameraModel.ideal(W, H, 1.0))[0]
    assert np.linalg.norm(plain.camera_from_tag.translation - truth.translation) > 0.02


def test_rgb_input_and_no_tag() -> None:
    cam = CameraModel.ideal(W, H, 1.0)
    img = render_tag(0, 0.16, Transform.create((0, 0, 0.8), (1, 0, 0, 0)), cam)
    rgb = np.repeat(img[:, :, None], 3, axis=2)
    assert [d.tag_id for d in FiducialDetector().detect(rgb, cam)] == [0]
    assert FiducialDetector().detect(np.full((H, W), 128, np.uint8), cam) == []


def test_bad_input_and_config() -> None:
    cam = CameraModel.ideal(W, H, 1.0)
    det = FiducialDetector()
    with pytest.raises(FiducialError):
        det.detect(np.zeros((0, 0), np.uint8), cam)
    with pytest.raises(FiducialError):
        det.detect(np.zeros((4, 4), np.float32), cam)
    with pytest.raises(FiducialError):
        FiducialDetector(tag_size=0.0)
    with pytest.raises(FiducialError):
        FiducialDetector(tag_sizes={1: math.nan})
    with pytest.raises(FiducialError):
        tag_bitmap(10_000)
    bm = tag_bitmap(0)
    assert bm.shape == (10, 10) and (bm[0] == 255).all() and (bm[1, 1:9] == 0).all()
