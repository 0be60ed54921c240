"""Unit tests for the pure tracker: boxes, Kalman filter, ByteTrack association, life cycle."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kpai_perception.errors import OutOfOrderError, TrackerConfigError
from kpai_perception.tracking import (
    ByteTracker,
    Detection,
    TrackerConfig,
    iou_matrix,
    sanitize_detections,
)
from kpai_perception.tracking.kalman import BoxKalman


def test_iou_matrix_known_values() -> None:
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 101, 101]])
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [1.0, 50 / 150, 0.0])
    np.testing.assert_allclose(iou[1], [0.0, 0.0, 0.0])
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)
    # degenerate (zero-area) boxes give 0, not NaN
    assert iou_matrix([[1, 1, 1, 1]], [[1, 1, 1, 1]])[0, 0] == 0.0


def test_sanitize_rejects_bad_and_clips_outside() -> None:
    dets = [Detection(-10, -10, 50, 50, 0.9, 'person'),      # partly outside: clipped
            Detection(700, 500, 800, 600, 0.9, 'person'),     # fully outside: rejected
            Detection(math.nan, 0, 10, 10, 0.9, 'person'),    # NaN: rejected
            Detection(0, 0, math.inf, 10, 0.9, 'person'),     # inf: rejected
            Detection(10, 10, 5, 20, 0.9, 'person'),          # negative width: rejected
            Detection(10, 10, 20, 20, math.nan, 'person'),    # NaN score: rejected
            Detection(10, 10, 20, 20, 0.5, 'box')]            # fine
    res = sanitize_detections(dets, image_size=(640, 480))
    assert res.rejected == 5 and res.clipped == 2
    assert [(d.x1, d.y1, d.x2, d.y2) for d in res.kept] == [(0, 0, 50, 50), (10, 10, 20, 20)]
    assert sanitize_detections(dets[1:2]).kept == dets[1:2]  # no image size: kept as is


def test_kalman_learns_constant_velocity() -> None:
    kf = BoxKalman(np.array([100.0, 50.0, 20.0, 40.0]))
    dt = 0.1
    for k in range(1, 30):
        kf.predict(dt)
        kf.update(np.array([100.0 + 30.0 * k * dt, 50.0 - 10.0 * k * dt, 20.0, 40.0]))
    vx, vy = kf.velocity
    assert vx == pytest.approx(30.0, abs=1.0) and vy == pytest.approx(-10.0, abs=1.0)
    kf.predict(1.0)  # a second of coasting follows the learnt velocity
    cx = (kf.box[0] + kf.box[2]) / 2
    assert cx == pytest.approx(100.0 + 30.0 * 3.9, abs=2.0)


def _det(cx: float, cy: float, score: float = 0.9, cls: str = 'person') -> Detection:
    return Detection.from_center(cx, cy, 40, 80, score, cls)


def test_ids_stable_for_crossing_objects() -> None:
    tracker = ByteTracker()
    ids_a, ids_b = set(), set()
    for k in range(40):
        xa, xb = 100 + 10 * k, 500 - 10 * k  # they cross around k = 20
        out = tracker.update([_det(xa, 100), _det(xb, 130)], k / 30)
        for t in out:  # the two paths differ in y; they overlap (IoU ~0.45) at the crossing
            cy = (t.box[1] + t.box[3]) / 2
            (ids_a if abs(cy - 100) < abs(cy - 130) else ids_b).add(t.id)
    assert ids_a == {1} and ids_b == {2}


def test_birth_needs_min_hits_after_first_frame() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=3))
    assert [t.id for t in tracker.update([_det(100, 100)], 0.0)] == [1]  # first frame: at once
    assert tracker.update([_det(100, 100), _det(400, 300)], 0.1)[0].id == 1
    assert len(tracker.update([_det(100, 100), _det(400, 300)], 0.2)) == 1
    out = tracker.update([_det(100, 100), _det(400, 300)], 0.3)
    assert sorted(t.id for t in out) == [1, 2]


def test_single_false_positive_never_published_and_low_score_no_birth() -> None:
    tracker = ByteTracker()
    tracker.update([], 0.0)
    assert tracker.update([_det(300, 300, 0.95)], 0.1) == []  # tentative
    assert tracker.update([], 0.2) == []                       # died on its first miss
    for k in range(3, 8):  # low-score detections alone never start a track
        assert tracker.update([_det(100, 100, 0.3)], k / 10) == []


def test_low_score_second_pass_keeps_track_alive() -> None:
    cfg = TrackerConfig(max_coast_frames=0)
    tracker = ByteTracker(cfg)
    for k in range(5):
        tracker.update([_det(100 + 5 * k, 100)], k / 30)
    out = tracker.update([_det(125, 100, 0.3)], 5 / 30)  # occluded: low score, same place
    assert [(t.id, t.frames_since_update, t.score) for t in out] == [(1, 0, 0.3)]
    # a low-score detection far from any track is ignored
    assert [t.frames_since_update for t in tracker.update([_det(600, 400, 0.3)], 6 / 30)] == []


def test_coasting_then_reassociation_keeps_id_and_death_after_max_age() -> None:
    tracker = ByteTracker(TrackerConfig(max_coast_frames=2, max_age=0.5))
    for k in range(10):
        tracker.update([_det(100 + 3 * k, 200)], k * 0.1)
    seen = [len(tracker.update([], (10 + j) * 0.1)) for j in range(3)]
    assert seen == [1, 1, 0]  # coasted 2 frames, then hidden
    out = tracker.update([_det(100 + 3 * 13, 200)], 1.3)  # comes back: same id
    assert [t.id for t in out] == [1]
    for j in range(14, 22):
        tracker.update([], j * 0.1)
    assert tracker.all_tracks() == []  # deleted more than max_age after its last update
    out = tracker.update([_det(100, 200)], 2.2)
    assert [t.id for t in out] == []  # a new, tentative track; ids are never reused
    assert [t.id for t in tracker.update([_det(100, 200)], 2.3)] == [2]


def test_class_aware_association() -> None:
    tracker = ByteTracker()
    tracker.update([_det(100, 100, cls='person')], 0.0)
    out = tracker.update([_det(100, 100, cls='pallet')], 0.1)
    assert all(t.class_id == 'person' and t.frames_since_update == 1 for t in out)
    tracker2 = ByteTracker(TrackerConfig(class_aware=False))
    tracker2.update([_det(100, 100, cls='person')], 0.0)
    out = tracker2.update([_det(100, 100, cls='pallet')], 0.1)
    assert [(t.id, t.frames_since_update) for t in out] == [(1, 0)]


def test_out_of_order_and_duplicate_stamps_raise() -> None:
    tracker = ByteTracker()
    tracker.update([_det(1, 1)], 1.0)
    with pytest.raises(OutOfOrderError):
        tracker.update([], 0.5)
    with pytest.raises(OutOfOrderError):
        tracker.update([], 1.0)
    assert tracker.last_stamp == 1.0 and tracker.frames == 1


def test_velocity_in_pixels_per_second() -> None:
    tracker = ByteTracker()
    for k in range(30):
        out = tracker.update([_det(100 + 2 * k, 100)], k * 0.02)  # 100 px/s
    assert out[0].velocity[0] == pytest.approx(100.0, abs=5.0)


@pytest.mark.parametrize('kwargs', [
    {'low_thresh': 0.7, 'high_thresh': 0.5}, {'match_iou': 0.0}, {'min_hits': 0},
    {'max_age': -1.0}, {'meas_std': math.nan}, {'max_coast_frames': -1}])
def test_config_validation(kwargs: dict) -> None:
    with pytest.raises(TrackerConfigError):
        TrackerConfig(**kwargs)
