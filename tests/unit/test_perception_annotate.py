"""Unit tests: drawing tracks, labels and floor polygons (safety fields) on images."""

from __future__ import annotations

import math

import numpy as np
from kpai_perception.annotate import (
    TrackBox,
    class_colour,
    draw_banner,
    draw_floor_polygon,
    draw_tracks,
)
from kpai_perception.geometry import CameraModel, camera_pose
from kpai_perception.safety import FieldConfig, compute_fields

CAM = CameraModel.ideal(320, 240, 1.2)


def test_boxes_drawn_where_tracks_are() -> None:
    img = np.zeros((240, 320, 3), np.uint8)
    n = draw_tracks(img, [TrackBox(3, 'person', 0.9, 100, 150, 40, 80, distance=4.2),
                          TrackBox(4, 'pallet', 0.5, 250, 200, 30, 20)])
    assert n == 2
    person = class_colour('person')
    assert tuple(img[150, 80]) == person and tuple(img[190, 100]) == person  # left/bottom edges
    assert not img[150, 100].any()  # inside the box stays untouched
    assert img[100:112, 80:160].any()  # the label above the box


def test_bad_and_outside_boxes_are_skipped() -> None:
    img = np.zeros((240, 320, 3), np.uint8)
    tracks = [TrackBox(1, 'box', 0.5, math.nan, 10, 10, 10),
              TrackBox(2, 'box', 0.5, 10, 10, -5, 10),
              TrackBox(3, 'box', 0.5, 1000, 1000, 10, 10),
              TrackBox(4, 'box', 0.5, -5, 120, 30, 30)]  # partly outside: clipped, drawn
    assert draw_tracks(img, tracks) == 1
    assert img[:, 0].any()


def test_unknown_class_colour_is_stable() -> None:
    assert class_colour('forklift') == class_colour('forklift')
    assert class_colour('forklift') != class_colour('person')


def test_safety_field_projected_on_the_floor() -> None:
    img = np.zeros((240, 320, 3), np.uint8)
    fields = compute_fields(1.0, FieldConfig())
    camera_from_base = camera_pose(0.28, 0.0, 0.6).inverse()
    assert draw_floor_polygon(img, fields.warning, CAM, camera_from_base, (255, 0, 0))
    rows = np.flatnonzero(img[:, :, 0].any(axis=1))
    # the warning field's front edge (3.45 m ahead, 3.17 m from the camera) is below the
    # horizon at v = 119.5 + f * 0.6 / 3.17 = 163.8
    f = CAM.k[1, 1]
    expected = (240 - 1) / 2 + f * 0.6 / (3.45 - 0.28)
    assert abs(rows.min() - expected) <= 2.5
    behind = camera_pose(0.28, 0.0, 0.6, yaw=math.pi).inverse()  # camera looking backwards
    small = compute_fields(0.0, FieldConfig()).protective
    assert not draw_floor_polygon(np.zeros_like(img), small + [10.0, 0.0], CAM, behind,
                                  (255, 0, 0))


def test_banner() -> None:
    img = np.zeros((240, 320, 3), np.uint8)
    draw_banner(img, 'PROTECTIVE_STOP', (230, 30, 30))
    assert tuple(img[2, 300]) == (230, 30, 30)
