"""Track messages: boxes clipped to the image, every field a float (an int aborts rclpy's C
conversion and with it the tracker process)."""

from __future__ import annotations

import pytest
from kpai_perception.ros_conv import tracks_to_msg
from kpai_perception.tracking.tracker import TrackOutput
from std_msgs.msg import Header
from vision_msgs.msg import BoundingBox2D


def _track(box: tuple[float, float, float, float]) -> TrackOutput:
    return TrackOutput(id=1, class_id='person', score=0.9, box=box, velocity=(0.0, 0.0),
                       age=3, hits=3, frames_since_update=0)


@pytest.mark.parametrize('image_size', [(320, 240), None])
def test_boxes_clipped_and_float(image_size: tuple[int, int] | None) -> None:
    header = Header(frame_id='cam')
    msg = tracks_to_msg([_track((300.5, -10.0, 341.0, 250.0))], header, image_size=image_size)
    b = msg.tracks[0].bbox
    assert all(isinstance(v, float) for v in (b.center.position.x, b.center.position.y,
                                              b.size_x, b.size_y))
    BoundingBox2D(center=b.center, size_x=b.size_x, size_y=b.size_y)  # converts in C too
    right = b.center.position.x + b.size_x / 2
    if image_size is not None:
        assert right == 320.0 and b.center.position.y - b.size_y / 2 == 0.0
        assert b.center.position.y + b.size_y / 2 == 240.0
    else:
        assert right == 341.0
    assert msg.camera_frame_id == 'cam' and not msg.tracks[0].has_position


def test_a_box_beyond_the_edge_collapses_to_a_float_zero_width() -> None:
    msg = tracks_to_msg([_track((330.0, 10.0, 350.0, 50.0))], Header(), image_size=(320, 240))
    b = msg.tracks[0].bbox
    assert b.size_x == 0.0 and isinstance(b.size_x, float) and b.center.position.x == 320.0
