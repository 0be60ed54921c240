"""The workspace's interface packages load, serialize and travel between processes."""

from __future__ import annotations

import sys

from kpai_testing import RosGraph
from rclpy.serialization import deserialize_message, serialize_message


def test_round_trip_serialization() -> None:
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    from kpai_msgs.msg import SafetyStatus, Track, TrackArray

    tracks = TrackArray(camera_frame_id='robot1/camera_optical')
    t = Track(id=7, class_id='person', score=0.9, has_position=True)
    t.bbox.center.position.x = 12.5
    t.position.x = 3.0
    tracks.tracks.append(t)
    back = deserialize_message(serialize_message(tracks), TrackArray)
    assert back.tracks[0].id == 7 and back.tracks[0].bbox.center.position.x == 12.5
    assert back.camera_frame_id == 'robot1/camera_optical'

    det = Detection2D(id='a')
    det.results.append(ObjectHypothesisWithPose())
    det.results[0].hypothesis.class_id = 'pallet'
    arr = Detection2DArray(detections=[det])
    assert deserialize_message(serialize_message(arr), Detection2DArray).detections[0].results[
        0].hypothesis.class_id == 'pallet'
    assert SafetyStatus.PROTECTIVE_STOP == 2


def test_message_crosses_processes(graph: RosGraph) -> None:
    from kpai_msgs.msg import SafetyStatus

    # a separate process publishes SafetyStatus; the test node must receive it intact
    code = (
        'import rclpy, time\n'
        'from kpai_msgs.msg import SafetyStatus\n'
        'rclpy.init(); n = rclpy.create_node("pub")\n'
        'p = n.create_publisher(SafetyStatus, "safety/status", 10)\n'
        'while rclpy.ok():\n'
        '    p.publish(SafetyStatus(state=2, speed_limit=0.0, reason="person in field"))\n'
        '    rclpy.spin_once(n, timeout_sec=0.1)\n')
    graph.start([sys.executable, '-c', code], name='pub')
    got: list[SafetyStatus] = []
    graph.node.create_subscription(SafetyStatus, 'safety/status', got.append, 10)
    graph.spin_until(lambda: got, timeout=15, what='SafetyStatus from another process')
    assert got[0].state == SafetyStatus.PROTECTIVE_STOP and got[0].reason == 'person in field'
