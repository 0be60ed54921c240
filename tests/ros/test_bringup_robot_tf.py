"""robot_tf latches the robot's URDF fixed joints and an optional map -> odom on /tf_static."""

from __future__ import annotations

from kpai_testing import RosGraph
from rclpy.qos import DurabilityPolicy, QoSProfile


def test_robot_tf_latches_fixed_joints(graph: RosGraph) -> None:
    from tf2_msgs.msg import TFMessage

    graph.start_node('kpai_bringup', 'robot_tf', '-r', '__ns:=/amr7',
                     '-p', 'map_to_odom:=[1.0, 2.0, 0.5]')
    got: list[TFMessage] = []
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    graph.node.create_subscription(TFMessage, '/tf_static', got.append, latched)
    graph.spin_until(lambda: got, timeout=20, what='/tf_static from robot_tf')
    pairs = {(t.header.frame_id, t.child_frame_id): t for t in got[0].transforms}
    assert ('amr7/base_link', 'amr7/laser') in pairs or any(
        p == 'amr7/base_link' for p, _ in pairs), pairs.keys()
    assert any(c == 'amr7/camera_optical' for _, c in pairs), pairs.keys()
    odom = pairs[('map', 'amr7/odom')].transform
    assert (odom.translation.x, odom.translation.y) == (1.0, 2.0)
    assert abs(odom.rotation.z - 0.2474) < 1e-3  # sin(0.25)


def test_robot_tf_rejects_a_bad_pose(graph: RosGraph) -> None:
    proc = graph.start_node('kpai_bringup', 'robot_tf', '-p', 'map_to_odom:=[1.0, 2.0]')
    assert proc.proc.wait(timeout=30) == 2
    assert 'map_to_odom must be [x, y, yaw]' in proc.output()
