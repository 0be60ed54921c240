"""Unit tests: box foot point -> floor position, velocity filter, localizer config."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kpai_perception.errors import PerceptionError
from kpai_perception.geometry import CameraModel, camera_pose
from kpai_perception.localization import (
    LocalizerConfig,
    VelocityFilter,
    contact_pixel,
    locate_box,
)

CAM = CameraModel.ideal(320, 240, 1.2)


def test_person_box_located_at_its_feet() -> None:
    pose = camera_pose(1.0, 2.0, 0.6)  # level camera looking along +x
    feet = np.array([5.0, 2.5, 0.0])
    head = feet + [0, 0, 1.7]
    (uf, vf), (uh, vh) = CAM.project(pose.inverse().apply(np.vstack([feet, head])))
    box_h = vf - vh
    got = locate_box(CAM, pose, uf, (vf + vh) / 2, 0.4 * box_h, box_h, LocalizerConfig())
    assert got is not None
    np.testing.assert_allclose(got, feet, atol=1e-6)


def test_contact_pixel_clamps_and_rejects() -> None:
    assert contact_pixel(160, 200, 40, 100, CAM) == (160, 239)  # cut off at the bottom edge
    assert contact_pixel(160, 120, 40, 40, CAM) == (160, 140)
    assert contact_pixel(2000, 120, 40, 40, CAM) is None        # entirely outside
    assert contact_pixel(math.nan, 120, 40, 40, CAM) is None
    assert contact_pixel(160, 120, 0, 40, CAM) is None
    assert contact_pixel(160, 120, 40, math.inf, CAM) is None


def test_above_horizon_or_too_far_is_none() -> None:
    pose = camera_pose(0, 0, 0.6)
    assert locate_box(CAM, pose, 160, 40, 20, 40, LocalizerConfig()) is None  # foot above horizon
    # just below the horizon: farther than max_range
    assert locate_box(CAM, pose, 160, 118.0, 2, 4, LocalizerConfig(max_range=10)) is None


def test_velocity_filter() -> None:
    vf = VelocityFilter(LocalizerConfig(velocity_alpha=0.5, forget_after=1.0))
    np.testing.assert_allclose(vf.update(1, 0.0, [0, 0, 0]), 0)
    for k in range(1, 20):
        v = vf.update(1, k * 0.1, [0.1 * k, -0.05 * k, 0])
    np.testing.assert_allclose(v, [1.0, -0.5, 0], atol=1e-3)
    np.testing.assert_allclose(vf.update(1, 1.9, [5, 5, 0]), v)  # same stamp: unchanged
    np.testing.assert_allclose(vf.update(1, 5.0, [9, 9, 0]), 0)  # gap > forget_after: restart
    vf.update(2, 5.0, [0, 0, 0])
    assert vf.prune(5.5) == 0 and vf.prune(6.5) == 2 and len(vf) == 0


@pytest.mark.parametrize('kwargs', [{'max_range': 0.0}, {'velocity_alpha': 0.0},
                                    {'plane_z': math.nan}, {'forget_after': -1.0}])
def test_config_validation(kwargs: dict) -> None:
    with pytest.raises(PerceptionError):
        LocalizerConfig(**kwargs)


def _person_box(pose: object, feet: np.ndarray, tall: float) -> tuple[float, float, float, float]:
    """Return the (possibly cut-off) box (cx, cy, w, h) of a person, clipped to the image."""
    (uf, vf), (_, vh) = CAM.project(pose.inverse().apply(np.vstack([feet, feet + [0, 0, tall]])))
    top, bottom = max(vh, 0.0), min(vf, CAM.height - 0.5)
    w = 0.4 * (vf - vh)
    return uf, (top + bottom) / 2, w, bottom - top


@pytest.mark.parametrize('tall', [1.4, 1.7, 1.95])
def test_person_with_feet_below_the_image_is_never_placed_farther(tall: float) -> None:
    pose = camera_pose(0.0, 0.0, 1.2)  # level camera at 1.2 m: floor visible from ~2.3 m on
    feet = np.array([1.5, 0.1, 0.0])
    assert CAM.project(pose.inverse().apply(feet[None]))[0][1] > CAM.height  # feet cut off
    cx, cy, w, h = _person_box(pose, feet, tall)
    clamped = locate_box(CAM, pose, cx, cy, w, h, LocalizerConfig(), class_id='box')
    got = locate_box(CAM, pose, cx, cy, w, h, LocalizerConfig(), class_id='person')
    assert clamped is not None and got is not None
    assert clamped[0] > 2.2                   # the clamped foot point is far too far
    assert got[0] <= feet[0] + 1e-6           # never farther than the person is
    assert got[0] > 0.3                       # in front of the camera, from the head
    assert got[2] == 0.0
    if tall == 1.4:                           # exactly the assumed height: exactly placed
        np.testing.assert_allclose(got, feet, atol=1e-6)


def test_person_cut_off_at_both_edges_is_ranged_by_its_width() -> None:
    pose = camera_pose(2.0, 3.0, 0.5)  # level camera looking along +x
    fx = CAM.k[0, 0]
    # a person 0.45 m wide, 1.0 m ahead, so close that head and feet are out of view
    w = fx * 0.45 / 1.0
    got = locate_box(CAM, pose, 160, 120, w, 240, LocalizerConfig(), class_id='person')
    assert got is not None
    # at the depth a 0.3 m wide person would have: nearer than the truth, never farther
    np.testing.assert_allclose(got, [2.0 + 0.3 / 0.45, 3.0, 0.0], atol=5e-3)
    # off to the side: the bearing of the box is kept
    got = locate_box(CAM, pose, 260, 120, w, 240, LocalizerConfig(), class_id='person')
    assert got[1] < 3.0 - 0.1 and got[0] < 3.0


def test_whole_person_box_is_unchanged_by_the_truncation_rule() -> None:
    pose = camera_pose(1.0, 2.0, 0.6)
    feet = np.array([5.0, 2.5, 0.0])
    cx, cy, w, h = _person_box(pose, feet, 1.7)
    got = locate_box(CAM, pose, cx, cy, w, h, LocalizerConfig(), class_id='person')
    np.testing.assert_allclose(got, feet, atol=1e-6)
