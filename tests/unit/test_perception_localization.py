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
