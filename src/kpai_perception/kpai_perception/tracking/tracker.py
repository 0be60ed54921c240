"""ByteTrack-style multi-object tracker: Kalman boxes, IoU + Hungarian, low-score second pass."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from kpai_perception.errors import OutOfOrderError, TrackerConfigError
from kpai_perception.tracking.boxes import Detection, iou_matrix
from kpai_perception.tracking.kalman import BoxKalman

__all__ = ['ByteTracker', 'TrackOutput', 'TrackerConfig', 'match_iou']


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker thresholds and life-cycle rules (see ByteTracker for how each is used)."""

    high_thresh: float = 0.5        # detections at or above: first association pass
    low_thresh: float = 0.1         # detections in [low, high): second pass only; below: ignored
    new_track_thresh: float = 0.6   # an unmatched detection at or above starts a track
    match_iou: float = 0.2          # minimum IoU, first pass (high detections)
    second_match_iou: float = 0.5   # minimum IoU, second pass (low detections)
    tentative_match_iou: float = 0.3  # minimum IoU for tentative tracks
    min_hits: int = 2               # consecutive hits for a tentative track to be confirmed
    max_age: float = 1.0            # seconds a lost track is kept for re-association
    max_coast_frames: int = 5       # a lost track is still output (predicted) this many frames
    class_aware: bool = True        # only associate detections and tracks of the same class
    meas_std: float = 0.05          # Kalman measurement noise, fraction of box height
    accel_std: float = 2.0          # Kalman process noise, box heights per s^2

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise TrackerConfigError(f'{f.name} must be finite, got {v}')
        if not 0.0 <= self.low_thresh <= self.high_thresh <= 1.0:
            raise TrackerConfigError(
                f'need 0 <= low_thresh ({self.low_thresh}) <= high_thresh ({self.high_thresh})'
                ' <= 1')
        for name in ('match_iou', 'second_match_iou', 'tentative_match_iou'):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise TrackerConfigError(f'{name} must be in (0, 1], got {getattr(self, name)}')
        if self.min_hits < 1:
            raise TrackerConfigError(f'min_hits must be >= 1, got {self.min_hits}')
        if self.max_coast_frames < 0:
            raise TrackerConfigError(f'max_coast_frames must be >= 0, got {self.max_coast_frames}')
        if self.max_age < 0:
            raise TrackerConfigError(f'max_age must be >= 0 s, got {self.max_age}')
        if self.meas_std <= 0 or self.accel_std <= 0:
            raise TrackerConfigError('meas_std and accel_std must be > 0')


@dataclass(frozen=True)
class TrackOutput:
    """A published track: id, class, latest score, filtered box corners and counters."""

    id: int
    class_id: str
    score: float
    box: tuple[float, float, float, float]
    velocity: tuple[float, float]
    age: int
    hits: int
    frames_since_update: int


class _Track:
    __slots__ = ('age', 'class_id', 'hits', 'id', 'kf', 'last_update', 'lost', 'misses',
                 'score', 'streak')

    def __init__(self, det: Detection, stamp: float, config: TrackerConfig) -> None:
        box = det.as_array()
        cxcywh = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2,
                           box[2] - box[0], box[3] - box[1]])
        self.kf = BoxKalman(cxcywh, meas_std=config.meas_std, accel_std=config.accel_std)
        self.id = 0  # assigned when confirmed
        self.class_id = det.class_id
        self.score = det.score
        self.age = 0
        self.hits = 1
        self.streak = 1
        self.misses = 0
        self.last_update = stamp
        self.lost = False

    def update(self, det: Detection, stamp: float) -> None:
        b = det.as_array()
        self.kf.update(np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]]))
        self.score = det.score
        self.class_id = det.class_id or self.class_id
        self.hits += 1
        self.streak += 1
        self.misses = 0
        self.last_update = stamp
        self.lost = False


def match_iou(iou: np.ndarray, min_iou: float) -> tuple[list[tuple[int, int]], list[int],
                                                          list[int]]:
    """Hungarian assignment on 1 - IoU; pairs below min_iou are left unmatched."""
    # imported here: scipy.optimize costs about 1 s and 40 MB in every process that imports this
    # package (ros_conv does, so the localizer, safety monitor and annotator nodes would too)
    from scipy.optimize import linear_sum_assignment

    rows, cols = iou.shape
    if rows == 0 or cols == 0:
        return [], list(range(rows)), list(range(cols))
    r, c = linear_sum_assignment(1.0 - iou)
    pairs = [(int(i), int(j)) for i, j in zip(r, c, strict=True) if iou[i, j] >= min_iou]
    used_r = {i for i, _ in pairs}
    used_c = {j for _, j in pairs}
    return (pairs, [i for i in range(rows) if i not in used_r],
            [j for j in range(cols) if j not in used_c])


class ByteTracker:
    """Track boxes over frames; ids are positive, stable and never reused.

    Per frame: predict every track to the frame stamp; associate high-score detections with
    confirmed and lost tracks (IoU >= match_iou); associate low-score detections with the
    confirmed tracks still unmatched (IoU >= second_match_iou); associate remaining high
    detections with tentative tracks. Birth: an unmatched detection with score >=
    new_track_thresh starts a tentative track, confirmed (and given an id) after min_hits
    consecutive hits. Death: a tentative track dies on its first miss; a confirmed track
    becomes lost when missed and is deleted max_age seconds after its last update.
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._last_stamp: float | None = None
        self.frames = 0

    @property
    def last_stamp(self) -> float | None:
        """Return the stamp of the latest accepted frame (s), None before the first."""
        return self._last_stamp

    def _boxes(self, tracks: Sequence[_Track]) -> np.ndarray:
        return np.array([t.kf.box for t in tracks]).reshape(-1, 4)

    def _iou(self, tracks: Sequence[_Track], dets: Sequence[Detection]) -> np.ndarray:
        iou = iou_matrix(self._boxes(tracks), np.array([d.as_array() for d in dets]))
        if self.config.class_aware and iou.size:
            same = np.array([[t.class_id == d.class_id for d in dets] for t in tracks])
            iou = np.where(same, iou, 0.0)
        return iou

    def update(self, detections: Sequence[Detection], stamp: float) -> list[TrackOutput]:
        """Process one frame at stamp (s); return the confirmed tracks to publish.

        Published: tracks updated in this frame and lost tracks missed for at most
        max_coast_frames frames (their predicted box; frames_since_update tells them apart).

        Raise OutOfOrderError if stamp is not later than the previous frame's.
        """
        cfg = self.config
        if self._last_stamp is not None and not stamp > self._last_stamp:
            raise OutOfOrderError(
                f'frame stamp {stamp:.6f} s is not after the previous {self._last_stamp:.6f} s')
        dt = 0.0 if self._last_stamp is None else stamp - self._last_stamp
        first_frame = self._last_stamp is None
        self._last_stamp = stamp
        self.frames += 1
        for t in self._tracks:
            t.kf.predict(dt)
            t.age += 1
        high = [d for d in detections if d.score >= cfg.high_thresh]
        low = [d for d in detections if cfg.low_thresh <= d.score < cfg.high_thresh]
        confirmed = [t for t in self._tracks if t.id]
        tentative = [t for t in self._tracks if not t.id]
        matched: set[int] = set()

        # 1st pass: high detections vs confirmed (active and lost) tracks
        pairs, um_t, um_d = match_iou(self._iou(confirmed, high), cfg.match_iou)
        for ti, di in pairs:
            confirmed[ti].update(high[di], stamp)
            matched.add(id(confirmed[ti]))
        high_left = [high[i] for i in um_d]
        # 2nd pass: low detections vs still-unmatched tracks that were not lost
        active_left = [confirmed[i] for i in um_t if not confirmed[i].lost]
        pairs, _, _ = match_iou(self._iou(active_left, low), cfg.second_match_iou)
        for ti, di in pairs:
            active_left[ti].update(low[di], stamp)
            matched.add(id(active_left[ti]))
        # 3rd pass: tentative tracks vs remaining high detections
        pairs, _, um_d = match_iou(self._iou(tentative, high_left), cfg.tentative_match_iou)
        for ti, di in pairs:
            tentative[ti].update(high_left[di], stamp)
            matched.add(id(tentative[ti]))
        births = [high_left[i] for i in um_d if high_left[i].score >= cfg.new_track_thresh]

        survivors: list[_Track] = []
        for t in self._tracks:
            if id(t) not in matched:
                t.misses += 1
                t.streak = 0
                if not t.id:
                    continue  # tentative: dies on its first miss
                t.lost = True
                if stamp - t.last_update > cfg.max_age:
                    continue
            elif not t.id and t.streak >= cfg.min_hits:
                t.id = self._take_id()
            survivors.append(t)
        for d in births:
            t = _Track(d, stamp, cfg)
            if first_frame or cfg.min_hits <= 1:
                t.id = self._take_id()
            survivors.append(t)
        self._tracks = survivors
        coast = cfg.max_coast_frames
        return [self._output(t) for t in survivors if t.id and t.misses <= coast]

    def _take_id(self) -> int:
        tid = self._next_id
        self._next_id += 1
        return tid

    def all_tracks(self) -> list[TrackOutput]:
        """Return every confirmed track, including lost ones (frames_since_update > 0)."""
        return [self._output(t) for t in self._tracks if t.id]

    @staticmethod
    def _output(t: _Track) -> TrackOutput:
        b = t.kf.box
        return TrackOutput(
            id=t.id, class_id=t.class_id, score=t.score,
            box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
            velocity=t.kf.velocity, age=t.age, hits=t.hits, frames_since_update=t.misses)
