"""Sample -> ROS message conversion of the sim node."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kpai_sim.factory import CameraSpec
from kpai_sim.groundtruth import Box2D
from kpai_sim.samples import CameraFrame, CollisionEvent, OdomSample, ScanSample

from kpai_sim import messages as conv


def test_stamp_rounding() -> None:
    assert (conv.stamp(1.9999999999).sec, conv.stamp(1.9999999999).nanosec) == (2, 0)
    assert (conv.stamp(3.25).sec, conv.stamp(3.25).nanosec) == (3, 250_000_000)


def test_scan_message_geometry() -> None:
    ranges = np.full(360, 5.0, np.float32)
    ranges[0] = np.inf
    msg = conv.scan_msg(ScanSample('robot2', 1.0, ranges, -math.pi, 2 * math.pi / 360, 0.12,
                                   12.0, 0.1))
    assert msg.header.frame_id == 'robot2/laser'
    assert msg.angle_max == pytest.approx(math.pi - 2 * math.pi / 360)
    assert len(msg.ranges) == 360 and math.isinf(msg.ranges[0]) and msg.ranges[1] == 5.0
    assert msg.time_increment == pytest.approx(0.1 / 360)


def test_image_info_and_detections_share_the_header() -> None:
    cam = CameraSpec(160, 120, 1.2)
    frame = CameraFrame('robot1', 2.5, np.zeros((120, 160, 3), np.uint8),
                        [Box2D('person3', 'person', 10, 20, 30, 80, 900)],
                        {'person3': (0.5, 0.1, 4.0)})
    image = conv.image_msg(frame)
    assert (image.width, image.height, image.step, image.encoding) == (160, 120, 480, 'rgb8')
    assert len(image.data) == 160 * 120 * 3
    info = conv.camera_info_msg(image.header, cam)
    fx = 80 / math.tan(0.6)
    assert info.k[0] == pytest.approx(fx) and info.k[2] == pytest.approx(79.5)
    det = conv.detections_msg(image.header, frame)
    assert det.header == image.header and info.header == image.header
    d = det.detections[0]
    assert d.id == 'person3' and d.results[0].hypothesis.class_id == 'person'
    assert (d.bbox.center.position.x, d.bbox.center.position.y) == (20.0, 50.0)
    assert (d.bbox.size_x, d.bbox.size_y) == (20.0, 60.0)
    assert d.results[0].pose.pose.position.z == 4.0


def test_odometry_and_collision_frames() -> None:
    odom, tf = conv.odom_msgs(OdomSample('robot1', 1.0, 1.0, 2.0, math.pi / 2, 0.3, 0.1), 0.02)
    assert (odom.header.frame_id, odom.child_frame_id) == ('robot1/odom', 'robot1/base_link')
    assert (tf.header.frame_id, tf.child_frame_id) == ('robot1/odom', 'robot1/base_link')
    assert odom.pose.pose.orientation.z == pytest.approx(math.sqrt(0.5))
    col = conv.collision_msg(CollisionEvent('robot1', 3.0, 'rack1_2', (1.0, 2.0, 0.1), 0.4))
    assert (col.robot, col.other, col.header.frame_id) == ('robot1', 'rack1_2', 'map')
