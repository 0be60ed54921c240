"""Convert ROS messages (any objects with the ROS fields) into Foxglove schema messages."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
from foxglove.messages import (
    Color,
    CompressedImage,
    FrameTransform,
    FrameTransforms,
    Grid,
    ImageAnnotations,
    PackedElementField,
    PackedElementFieldNumericType,
    Point2,
    PointsAnnotation,
    PointsAnnotationType,
    Pose,
    PosesInFrame,
    Quaternion,
    RawImage,
    TextAnnotation,
    Timestamp,
    Vector2,
    Vector3,
)

__all__ = [
    'class_color',
    'detections_to_annotations',
    'grid_from_occupancy',
    'image_to_compressed',
    'image_to_raw',
    'path_to_poses',
    'tf_to_transforms',
    'tracks_to_annotations',
]


def _stamp(header: Any) -> Timestamp:
    return Timestamp(int(header.stamp.sec), int(header.stamp.nanosec))


def class_color(label: str, alpha: float = 1.0) -> Color:
    """Return a stable distinct colour for a class name."""
    hue = (zlib.crc32(label.encode()) % 360) / 360.0
    i, f = int(hue * 6) % 6, hue * 6 - int(hue * 6)
    q, t = 1 - f, f
    r, g, b = [(1, t, 0), (q, 1, 0), (0, 1, t), (0, q, 1), (t, 0, 1), (1, 0, q)][i]
    return Color(r=float(r), g=float(g), b=float(b), a=alpha)


def image_to_raw(msg: Any) -> RawImage:
    """sensor_msgs/Image -> RawImage (same encoding and bytes)."""
    return RawImage(timestamp=_stamp(msg.header), frame_id=str(msg.header.frame_id),
                    width=int(msg.width), height=int(msg.height), encoding=str(msg.encoding),
                    step=int(msg.step), data=bytes(msg.data))


def image_to_compressed(rgb: np.ndarray, header: Any, quality: int = 80) -> CompressedImage:
    """An RGB array -> JPEG CompressedImage (less bandwidth for remote viewers)."""
    import cv2

    ok, buf = cv2.imencode('.jpg', np.ascontiguousarray(rgb[:, :, ::-1]),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError('JPEG encoding failed')
    return CompressedImage(timestamp=_stamp(header), frame_id=str(header.frame_id),
                           data=buf.tobytes(), format='jpeg')


def _box(cx: float, cy: float, w: float, h: float, label: str, text: str, stamp: Timestamp,
         ) -> tuple[PointsAnnotation, TextAnnotation]:
    x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    color = class_color(label)
    box = PointsAnnotation(
        timestamp=stamp, type=PointsAnnotationType.LineLoop,
        points=[Point2(x=x1, y=y1), Point2(x=x2, y=y1), Point2(x=x2, y=y2), Point2(x=x1, y=y2)],
        outline_color=color, thickness=2.0)
    label_ann = TextAnnotation(timestamp=stamp, position=Point2(x=x1, y=max(0.0, y1 - 2)),
                               text=text, font_size=12.0, text_color=Color(r=1, g=1, b=1, a=1),
                               background_color=class_color(label, 0.7))
    return box, label_ann


def detections_to_annotations(msg: Any) -> ImageAnnotations:
    """vision_msgs/Detection2DArray -> ImageAnnotations (box + 'class score' per detection)."""
    stamp = _stamp(msg.header)
    points, texts = [], []
    for det in msg.detections:
        if not det.results:
            continue
        best = max(det.results, key=lambda r: float(r.hypothesis.score))
        label = str(best.hypothesis.class_id)
        b, t = _box(float(det.bbox.center.position.x), float(det.bbox.center.position.y),
                    float(det.bbox.size_x), float(det.bbox.size_y), label,
                    f'{label} {float(best.hypothesis.score):.2f}', stamp)
        points.append(b)
        texts.append(t)
    return ImageAnnotations(points=points, texts=texts)


def tracks_to_annotations(msg: Any) -> ImageAnnotations:
    """kpai_msgs/TrackArray (image space) -> ImageAnnotations ('#id class' per track)."""
    stamp = _stamp(msg.header)
    points, texts = [], []
    for tr in msg.tracks:
        label = str(tr.class_id)
        b, t = _box(float(tr.bbox.center.position.x), float(tr.bbox.center.position.y),
                    float(tr.bbox.size_x), float(tr.bbox.size_y), label,
                    f'#{int(tr.id)} {label}', stamp)
        points.append(b)
        texts.append(t)
    return ImageAnnotations(points=points, texts=texts)


def tf_to_transforms(msg: Any) -> FrameTransforms:
    """tf2_msgs/TFMessage -> FrameTransforms."""
    out = []
    for tf in msg.transforms:
        tr, rot = tf.transform.translation, tf.transform.rotation
        out.append(FrameTransform(
            timestamp=_stamp(tf.header), parent_frame_id=str(tf.header.frame_id),
            child_frame_id=str(tf.child_frame_id),
            translation=Vector3(x=float(tr.x), y=float(tr.y), z=float(tr.z)),
            rotation=Quaternion(x=float(rot.x), y=float(rot.y), z=float(rot.z),
                                w=float(rot.w))))
    return FrameTransforms(transforms=out)


def _pose(p: Any) -> Pose:
    return Pose(position=Vector3(x=float(p.position.x), y=float(p.position.y),
                                 z=float(p.position.z)),
                orientation=Quaternion(x=float(p.orientation.x), y=float(p.orientation.y),
                                       z=float(p.orientation.z), w=float(p.orientation.w)))


def path_to_poses(msg: Any) -> PosesInFrame:
    """nav_msgs/Path -> PosesInFrame."""
    return PosesInFrame(timestamp=_stamp(msg.header), frame_id=str(msg.header.frame_id),
                        poses=[_pose(ps.pose) for ps in msg.poses])


def grid_from_occupancy(msg: Any) -> Grid:
    """nav_msgs/OccupancyGrid -> RGBA Grid: free light, occupied dark, unknown transparent."""
    w, h = int(msg.info.width), int(msg.info.height)
    values = np.asarray(msg.data, np.int16).reshape(h, w) if w * h else np.zeros((0, 0))
    rgba = np.zeros((h, w, 4), np.uint8)
    known = values >= 0
    shade = (235.0 - np.clip(values, 0, 100).astype(np.float32) * 2.2).astype(np.uint8)
    rgba[..., 0] = rgba[..., 1] = rgba[..., 2] = np.where(known, shade, 0)
    rgba[..., 3] = np.where(known, 200, 0)
    fields = [PackedElementField(name=n, offset=i, type=PackedElementFieldNumericType.Uint8)
              for i, n in enumerate(('red', 'green', 'blue', 'alpha'))]
    res = float(msg.info.resolution)
    return Grid(timestamp=_stamp(msg.header), frame_id=str(msg.header.frame_id),
                pose=_pose(msg.info.origin), column_count=w,
                cell_size=Vector2(x=res, y=res),
                row_stride=w * 4, cell_stride=4, fields=fields, data=rgba.tobytes())
