"""ROS test: the tracker node turns detections into tracks and drops out-of-order frames."""

from __future__ import annotations

import math

from kpai_perception.ros_conv import sec_to_stamp
from rclpy.qos import QoSProfile
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from kpai_msgs.msg import TrackArray


def _dets(stamp: float, boxes: list[tuple[float, float, float, float]]) -> Detection2DArray:
    msg = Detection2DArray()
    msg.header.stamp = sec_to_stamp(stamp)
    msg.header.frame_id = 'robot1/camera_optical'
    for cx, cy, w, h in boxes:
        d = Detection2D()
        d.bbox.center.position.x, d.bbox.center.position.y = float(cx), float(cy)
        d.bbox.size_x, d.bbox.size_y = float(w), float(h)
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id, hyp.hypothesis.score = 'person', 0.9
        d.results.append(hyp)
        msg.detections.append(d)
    return msg


def test_tracker_node(graph) -> None:
    graph.start_node('kpai_perception', 'tracker', '-p', 'image_width:=640',
                     '-p', 'image_height:=480')
    node = graph.node
    got: list[TrackArray] = []
    sub = node.create_subscription(TrackArray, 'tracks', got.append, QoSProfile(depth=50))
    pub = node.create_publisher(Detection2DArray, 'detections', QoSProfile(depth=50))
    graph.spin_until(lambda: pub.get_subscription_count() > 0, timeout=10, what='tracker')
    # matched both ways: a graph entry alone does not mean the first tracks would arrive
    graph.spin_until(lambda: sub.get_publisher_count() > 0, timeout=10, what='tracks')
    bad = (math.nan, 10.0, 10.0, 10.0)
    for k in range(10):
        pub.publish(_dets(100.0 + k * 0.1, [(100 + 5 * k, 200, 40, 80), (400, 300, 50, 90), bad]))
        graph.spin_until(lambda k=k: len(got) > k, timeout=5, what=f'tracks #{k}')
    pub.publish(_dets(100.05, [(100, 200, 40, 80)]))  # out of order: dropped
    pub.publish(_dets(101.5, [(175, 200, 40, 80), (400, 300, 50, 90)]))
    graph.spin_until(lambda: len(got) >= 11, timeout=5, what='last tracks')
    # reliable and in order: had the out-of-order frame produced tracks, they came first
    assert len(got) == 11, 'the out-of-order frame must not produce tracks'
    last = got[-1]
    assert last.header.frame_id == last.camera_frame_id == 'robot1/camera_optical'
    assert (last.header.stamp.sec, last.header.stamp.nanosec) == (101, 500_000_000)
    assert sorted(t.id for t in last.tracks) == [1, 2]
    person = next(t for t in last.tracks if t.bbox.center.position.x < 300)
    assert person.class_id == 'person' and not person.has_position
    assert abs(person.bbox.center.position.x - 175) < 10
    assert 30 < person.bbox_velocity.x < 70  # 50 px/s


def test_tracker_clips_to_camera_info_size(graph) -> None:
    from sensor_msgs.msg import CameraInfo

    graph.start_node('kpai_perception', 'tracker')
    node = graph.node
    got: list[TrackArray] = []
    node.create_subscription(TrackArray, 'tracks', got.append, QoSProfile(depth=50))
    pub = node.create_publisher(Detection2DArray, 'detections', QoSProfile(depth=50))
    info_pub = node.create_publisher(CameraInfo, 'camera/camera_info', QoSProfile(depth=5))
    graph.spin_until(lambda: pub.get_subscription_count() and info_pub.get_subscription_count(),
                     timeout=10, what='tracker')
    info = CameraInfo(width=320, height=240)
    k = [0]

    def step() -> bool:  # a box hanging over the right edge: x 300..340 in a 320 px image
        k[0] += 1
        if k[0] % 5 == 1:
            info_pub.publish(info)
            pub.publish(_dets(10.0 + k[0] * 0.01, [(320, 120, 40, 80)]))
        return any(t.bbox.size_x < 25 for m in got for t in m.tracks)

    graph.spin_until(step, timeout=10, what='a track clipped at the image edge')
    t = next(t for m in got for t in m.tracks if t.bbox.size_x < 25)
    assert t.bbox.center.position.x + t.bbox.size_x / 2 <= 320.5
