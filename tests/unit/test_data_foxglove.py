"""ROS -> Foxglove schema conversions on hand-made messages."""

from __future__ import annotations

from types import SimpleNamespace as NS
from typing import Any

import numpy as np

from kpai_data import foxglove_convert as conv


def _d(msg: object) -> object:
    """Decode a Foxglove message through its protobuf schema (the wire format)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    schema = msg.get_schema()  # type: ignore[attr-defined]
    assert schema.encoding == 'protobuf'
    pool = descriptor_pool.DescriptorPool()
    for f in descriptor_pb2.FileDescriptorSet.FromString(bytes(schema.data)).file:
        pool.Add(f)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(schema.name))
    return cls.FromString(bytes(msg.encode()))  # type: ignore[attr-defined]


def _header(sec: int = 3, frame: str = 'robot1/camera_optical') -> NS:
    return NS(stamp=NS(sec=sec, nanosec=5), frame_id=frame)


def _pose(x: float = 0.0, y: float = 0.0) -> NS:
    return NS(position=NS(x=x, y=y, z=0.0), orientation=NS(x=0.0, y=0.0, z=0.0, w=1.0))


def test_image_and_detections() -> None:
    img = NS(header=_header(), width=2, height=1, encoding='rgb8', step=6, data=bytes(range(6)))
    raw: Any = _d(conv.image_to_raw(img))
    assert (raw.width, raw.height, raw.encoding, raw.step) == (2, 1, 'rgb8', 6)
    assert raw.data == bytes(range(6)) and raw.frame_id == 'robot1/camera_optical'
    hyp = [NS(hypothesis=NS(class_id='person', score=0.3)),
           NS(hypothesis=NS(class_id='box', score=0.9))]
    det = NS(results=hyp, bbox=NS(center=NS(position=NS(x=50.0, y=40.0)), size_x=20.0,
                                  size_y=10.0))
    arr = NS(header=_header(), detections=[det, NS(results=[])])
    ann: Any = _d(conv.detections_to_annotations(arr))
    assert len(ann.points) == 1 and len(ann.texts) == 1
    corners = [(p.x, p.y) for p in ann.points[0].points]
    assert corners == [(40.0, 35.0), (60.0, 35.0), (60.0, 45.0), (40.0, 45.0)]
    assert ann.texts[0].text == 'box 0.90'  # the best hypothesis
    track = NS(id=7, class_id='person', bbox=det.bbox)
    tann: Any = _d(conv.tracks_to_annotations(NS(header=_header(), tracks=[track])))
    assert tann.texts[0].text == '#7 person'
    jpeg: Any = _d(conv.image_to_compressed(np.zeros((8, 8, 3), np.uint8), _header()))
    assert jpeg.format == 'jpeg' and jpeg.data[:2] == b'\xff\xd8'
    assert repr(conv.class_color('person')) == repr(conv.class_color('person'))
    assert repr(conv.class_color('person')) != repr(conv.class_color('box'))


def test_tf_path_and_grid() -> None:
    tf = NS(header=_header(frame='map'), child_frame_id='robot1/odom',
            transform=NS(translation=NS(x=1.0, y=2.0, z=0.0),
                         rotation=NS(x=0.0, y=0.0, z=0.0, w=1.0)))
    out: Any = _d(conv.tf_to_transforms(NS(transforms=[tf])))
    (t,) = out.transforms
    assert (t.parent_frame_id, t.child_frame_id, t.translation.x) == ('map', 'robot1/odom', 1.0)
    path = NS(header=_header(frame='map'), poses=[NS(pose=_pose(1, 2)), NS(pose=_pose(3, 4))])
    poses: Any = _d(conv.path_to_poses(path))
    assert [p.position.x for p in poses.poses] == [1.0, 3.0] and poses.frame_id == 'map'
    grid_msg = NS(header=_header(frame='map'), data=[0, 100, -1, 50, 0, 0],
                  info=NS(width=3, height=2, resolution=0.05, origin=_pose(-1.0, -2.0)))
    grid: Any = _d(conv.grid_from_occupancy(grid_msg))
    assert grid.column_count == 3 and grid.row_stride == 12 and grid.cell_stride == 4
    assert [f.name for f in grid.fields] == ['red', 'green', 'blue', 'alpha']
    rgba = np.frombuffer(grid.data, np.uint8).reshape(2, 3, 4)
    assert rgba[0, 0, 0] > rgba[0, 1, 0]  # free is lighter than occupied
    assert rgba[0, 2, 3] == 0 and rgba[0, 0, 3] > 0  # unknown is transparent
    assert grid.cell_size.x == 0.05 and grid.pose.position.x == -1.0
