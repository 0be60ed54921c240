"""Multi-object tracking in image space (pure: Kalman filter, IoU association, ByteTrack)."""

from kpai_perception.tracking.boxes import Detection, iou_matrix, sanitize_detections
from kpai_perception.tracking.tracker import ByteTracker, TrackerConfig, TrackOutput

__all__ = [
    'ByteTracker',
    'Detection',
    'TrackOutput',
    'TrackerConfig',
    'iou_matrix',
    'sanitize_detections',
]
