"""Convert between ROS messages and the pure types (message modules only, never rclpy)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from builtin_interfaces.msg import Time

from kpai_msgs.msg import Track, TrackArray
from kpai_perception.tracking.boxes import Detection
from kpai_perception.tracking.tracker import TrackOutput

__all__ = [
    'detections_from_msg',
    'sec_to_stamp',
    'stamp_to_sec',
    'tracks_to_msg',
]


def stamp_to_sec(stamp: Any) -> float:
    """Return a builtin_interfaces/Time as float seconds."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def sec_to_stamp(seconds: float) -> Time:
    """Return float seconds as builtin_interfaces/Time."""
    sec = math.floor(seconds)
    nanosec = min(int(round((seconds - sec) * 1e9)), 999_999_999)
    return Time(sec=int(sec), nanosec=nanosec)


def detections_from_msg(msg: Any) -> list[Detection]:
    """Return the Detection2DArray's detections; the best hypothesis gives class and score.

    A detection without hypotheses gets an empty class and score 1.0. Values are not checked
    here: run tracking.sanitize_detections on the result.
    """
    out: list[Detection] = []
    for det in msg.detections:
        class_id, score = '', 1.0
        if det.results:
            best = max(det.results, key=lambda r: r.hypothesis.score)
            class_id, score = str(best.hypothesis.class_id), float(best.hypothesis.score)
        c = det.bbox.center.position
        out.append(Detection.from_center(float(c.x), float(c.y), float(det.bbox.size_x),
                                         float(det.bbox.size_y), score, class_id))
    return out


def tracks_to_msg(tracks: Sequence[TrackOutput], header: Any,
                  image_size: tuple[int, int] | None = None) -> TrackArray:
    """Build a TrackArray in image space (has_position false) with header and camera frame.

    image_size (width, height): boxes are clipped to the image (the filtered box of an object
    at the edge can overhang it).
    """
    msg = TrackArray()
    msg.header = header
    msg.camera_frame_id = header.frame_id
    for t in tracks:
        m = Track()
        m.id = t.id
        m.class_id = t.class_id
        m.score = float(t.score)
        x1, y1, x2, y2 = t.box
        if image_size is not None:
            w, h = float(image_size[0]), float(image_size[1])
            x1, x2 = min(max(x1, 0.0), w), min(max(x2, 0.0), w)
            y1, y2 = min(max(y1, 0.0), h), min(max(y2, 0.0), h)
        # float() on every field: the C conversion aborts the process on an int
        m.bbox.center.position.x = float(x1 + x2) / 2
        m.bbox.center.position.y = float(y1 + y2) / 2
        m.bbox.size_x = float(x2 - x1)
        m.bbox.size_y = float(y2 - y1)
        m.bbox_velocity.x, m.bbox_velocity.y = t.velocity
        m.has_position = False
        m.age = t.age
        m.hits = t.hits
        m.frames_since_update = t.frames_since_update
        msg.tracks.append(m)
    return msg
