"""Unit tests: transforms, camera model, pixel -> floor projection on synthetic cameras."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kpai_perception.errors import CalibrationError
from kpai_perception.geometry import (
    CameraModel,
    Transform,
    camera_pose,
    pixel_to_ground,
    ray_plane_intersection,
)
from sensor_msgs.msg import CameraInfo
from transforms3d.euler import euler2quat


def _info(**kw: object) -> CameraInfo:
    msg = CameraInfo()
    msg.width, msg.height = 640, 480
    msg.k = [500.0, 0.0, 319.5, 0.0, 500.0, 239.5, 0.0, 0.0, 1.0]
    msg.d = [0.0] * 5
    msg.distortion_model = 'plumb_bob'
    for key, value in kw.items():
        setattr(msg, key, value)
    return msg


def test_transform_compose_inverse_interpolate() -> None:
    a = Transform.create((1, 2, 3), euler2quat(0.1, -0.2, 0.3))
    b = Transform.create((-1, 0.5, 2), euler2quat(0.5, 0.1, -1.0))
    p = np.array([[0.3, -0.7, 1.1], [2.0, 0.0, -1.0]])
    np.testing.assert_allclose((a * b).apply(p), a.apply(b.apply(p)), atol=1e-12)
    np.testing.assert_allclose((a * a.inverse()).apply(p), p, atol=1e-12)
    np.testing.assert_allclose((a * b).as_matrix(), a.as_matrix() @ b.as_matrix(), atol=1e-12)
    r0 = Transform.create((0, 0, 0), euler2quat(0, 0, 0))
    r1 = Transform.create((2, 0, 0), euler2quat(0, 0, math.pi / 2))
    mid = r0.interpolate(r1, 0.5)
    np.testing.assert_allclose(mid.translation, [1, 0, 0])
    np.testing.assert_allclose(mid.rotate([1.0, 0.0, 0.0]), [math.sqrt(0.5)] * 2 + [0], atol=1e-12)
    with pytest.raises(ValueError):
        Transform.create((0, math.nan, 0), (1, 0, 0, 0))
    with pytest.raises(ValueError):
        Transform.create((0, 0, 0), (0, 0, 0, 0))


def test_camera_from_msg_and_validation() -> None:
    cam = CameraModel.from_msg(_info())
    assert cam.k[0, 0] == 500.0 and not cam.has_distortion
    for bad in ([math.nan] + [0.0] * 8, [math.inf, 0, 319.5, 0, 500, 239.5, 0, 0, 1]):
        with pytest.raises(CalibrationError, match='NaN or inf'):
            CameraModel.from_msg(_info(k=bad))
    with pytest.raises(CalibrationError, match='NaN or inf'):
        CameraModel.from_msg(_info(d=[0.1, math.nan, 0, 0, 0]))
    with pytest.raises(CalibrationError, match='focal'):
        CameraModel.from_msg(_info(k=[0.0] * 9))  # an all-zero CameraInfo
    with pytest.raises(CalibrationError, match='size'):
        CameraModel.from_msg(_info(width=0))
    with pytest.raises(CalibrationError, match='unsupported distortion'):
        CameraModel.from_msg(_info(distortion_model='mystery', d=[0.1, 0, 0, 0, 0]))
    with pytest.raises(CalibrationError, match='needs 5'):
        CameraModel.from_msg(_info(d=[0.1, 0.0]))
    with pytest.raises(CalibrationError, match='hfov'):
        CameraModel.ideal(320, 240, 0.0)


@pytest.mark.parametrize(('model', 'd'), [
    ('plumb_bob', [-0.25, 0.08, 0.001, -0.0005, 0.0]),
    ('rational_polynomial', [-0.2, 0.05, 0.0, 0.0, 0.0, 0.01, 0.0, 0.0]),
    ('equidistant', [0.05, -0.01, 0.002, 0.0]),
])
def test_distortion_round_trip(model: str, d: list[float]) -> None:
    cam = CameraModel.from_msg(_info(distortion_model=model, d=d))
    pts = np.array([[0.0, 0.0, 2.0], [0.5, -0.3, 2.0], [-0.8, 0.5, 3.0]])
    uv = cam.project(pts)
    rays = cam.pixel_to_ray(uv)
    expected = pts / np.linalg.norm(pts, axis=1, keepdims=True)
    np.testing.assert_allclose(rays, expected, atol=1e-5)
    if model != 'equidistant':
        assert not np.allclose(uv, CameraModel.from_msg(_info()).project(pts), atol=0.5)


def test_ray_plane_intersection_edge_cases() -> None:
    np.testing.assert_allclose(ray_plane_intersection([0, 0, 1], [1, 0, -1]), [1, 0, 0])
    assert ray_plane_intersection([0, 0, 1], [1, 0, 0.1]) is None     # looking up
    assert ray_plane_intersection([0, 0, 1], [1, 0, 0]) is None       # parallel
    assert ray_plane_intersection([0, 0, -1], [0, 0, -1]) is None     # below the floor
    assert ray_plane_intersection([0, 0, 1], [1, 0, -0.001], max_range=50) is None
    np.testing.assert_allclose(ray_plane_intersection([0, 0, 2], [0, 0, -1], plane_z=0.5),
                               [0, 0, 0.5])
    # from below: a low camera looking up at the plane of a person's head
    np.testing.assert_allclose(ray_plane_intersection([0, 0, 0.5], [2, 0, 1], plane_z=1.5),
                               [2, 0, 1.5])
    assert ray_plane_intersection([0, 0, 0.5], [1, 0, -1], plane_z=1.5) is None  # away


@pytest.mark.parametrize(('pose', 'cam'), [
    ((0.0, 0.0, 0.6, 0.0, 0.0), CameraModel.ideal(320, 240, 1.2)),
    ((3.0, -2.0, 1.2, 0.7, 0.25), CameraModel.ideal(640, 480, 1.0)),
    ((-5.0, 4.0, 0.8, -2.5, 0.1), CameraModel.from_msg(
        _info(d=[-0.2, 0.05, 0.0, 0.0, 0.0]))),
])
def test_pixel_to_ground_recovers_known_points(pose: tuple, cam: CameraModel) -> None:
    world_from_cam = camera_pose(*pose)
    x, y, _, yaw, _ = pose
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(50):
        dist, bearing = rng.uniform(1.5, 12.0), rng.uniform(-0.4, 0.4)
        target = np.array([x + dist * math.cos(yaw + bearing), y + dist * math.sin(yaw + bearing),
                           0.0])
        p_cam = world_from_cam.inverse().apply(target)
        if p_cam[2] <= 0:
            continue
        u, v = cam.project(p_cam)[0]
        if not cam.contains(u, v):
            continue
        got = pixel_to_ground(cam, world_from_cam, u, v)
        assert got is not None
        np.testing.assert_allclose(got, target, atol=1e-4)
        checked += 1
    assert checked > 20
    # above the horizon: no floor point
    assert pixel_to_ground(cam, world_from_cam, cam.width / 2, 0.0) is None or pose[4] > 0.3


def ground_error_cm(cam: CameraModel, height: float, pitch: float, distance: float, *,
                    samples: int = 4000, seed: int = 0) -> tuple[float, float]:
    """Return (error for +1 px in v, RMS error for N(0, 1 px) noise in u and v), in cm."""
    pose = camera_pose(0.0, 0.0, height, 0.0, pitch)
    target = np.array([distance, 0.0, 0.0])
    u, v = cam.project(pose.inverse().apply(target))[0]
    step = pixel_to_ground(cam, pose, u, v + 1.0)
    assert step is not None
    noise = np.random.default_rng(seed).normal(0.0, 1.0, (samples, 2))
    errs = []
    for du, dv in noise:
        p = pixel_to_ground(cam, pose, u + du, v + dv)
        assert p is not None
        errs.append(np.linalg.norm(p - target))
    return (float(np.linalg.norm(step - target)) * 100,
            float(np.sqrt(np.mean(np.square(errs)))) * 100)


@pytest.mark.parametrize(('name', 'cam', 'height', 'pitch'), [
    ('sim camera 320x240 hfov 1.2 rad, 0.6 m, level', CameraModel.ideal(320, 240, 1.2), 0.6, 0.0),
    ('640x480 hfov 1.2 rad, 0.6 m, level', CameraModel.ideal(640, 480, 1.2), 0.6, 0.0),
    ('640x480 hfov 1.2 rad, 1.5 m, 10 deg down', CameraModel.ideal(640, 480, 1.2), 1.5,
     math.radians(10)),
])
def test_ground_error_at_2_5_10_m(name: str, cam: CameraModel, height: float,
                                  pitch: float) -> None:
    rows = []
    for d in (2.0, 5.0, 10.0):
        plus1, rms = ground_error_cm(cam, height, pitch, d)
        # first-order theory: dd = dv * (d^2 + h^2) / (h * f * sec^2(depression - pitch))
        depression = math.atan2(height, d)
        f = cam.k[1, 1]
        expected = 100 * (d * d + height * height) / (
            height * f / math.cos(depression - pitch) ** 2)
        assert plus1 == pytest.approx(expected, rel=0.12)
        rows.append(f'{d:>4.0f} m: +1 px v -> {plus1:6.1f} cm, N(0,1 px) RMS -> {rms:6.1f} cm')
    print(f'\nground-position error, {name}:\n  ' + '\n  '.join(rows))
