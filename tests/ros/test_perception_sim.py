"""Integration with the MuJoCo simulation: true 2D boxes -> tracker -> localizer vs /ground_truth.

The simulation's `ground_truth/detections` (true boxes of what its camera sees, header equal
to the image's) stand in for the detector, so this checks tracking and ground-plane
localisation in the simulated factory, with the simulation's own camera, transforms and clock.
The robot turns on the spot so people walk through the camera's view. A person's position is
compared with the ground-truth pose at the same stamp; the box's foot point is the nearest
bottom edge of the person, so up to a body radius (~0.2 m) is expected.
"""

from __future__ import annotations

import bisect
import math

import pytest
from geometry_msgs.msg import Twist
from kpai_perception.ros_conv import stamp_to_sec
from rclpy.qos import QoSProfile

from kpai_msgs.msg import GroundTruth, TrackArray


def test_people_localised_in_the_simulated_factory(graph) -> None:
    try:
        graph.start_node('kpai_sim', 'sim', '-p', 'robots:=1', '-p', 'seed:=0')
    except FileNotFoundError:
        pytest.skip('kpai_sim is not built')
    ns = ['-r', '__ns:=/robot1', '-p', 'use_sim_time:=true']
    graph.start_node('kpai_perception', 'tracker', *ns, '-r',
                     'detections:=ground_truth/detections', '-p', 'image_width:=320',
                     '-p', 'image_height:=240')
    graph.start_node('kpai_perception', 'object_localizer', *ns,
                     '-p', 'robot_frame:=robot1/base_link')
    node = graph.node
    truth_stamps: list[float] = []
    truth: list[list[tuple[float, float]]] = []
    errors: list[float] = []
    robot_frame: list[TrackArray] = []

    def on_truth(msg: GroundTruth) -> None:
        truth_stamps.append(stamp_to_sec(msg.header.stamp))
        truth.append([(o.pose.position.x, o.pose.position.y) for o in msg.objects
                      if o.class_id == 'person'])

    def on_objects(msg: TrackArray) -> None:
        t = stamp_to_sec(msg.header.stamp)
        i = bisect.bisect_left(truth_stamps, t)
        near = [j for j in (i - 1, i) if 0 <= j < len(truth_stamps)]
        if not near:
            return
        j = min(near, key=lambda k: abs(truth_stamps[k] - t))
        if abs(truth_stamps[j] - t) > 0.051 or not truth[j]:
            return
        for trk in msg.tracks:
            if trk.class_id == 'person' and trk.has_position and trk.frames_since_update == 0:
                errors.append(min(math.hypot(trk.position.x - x, trk.position.y - y)
                                  for x, y in truth[j]))

    node.create_subscription(GroundTruth, '/ground_truth', on_truth, QoSProfile(depth=50))
    node.create_subscription(TrackArray, '/robot1/tracked_objects', on_objects,
                             QoSProfile(depth=50))
    node.create_subscription(TrackArray, '/robot1/tracked_objects/robot', robot_frame.append,
                             QoSProfile(depth=50))
    cmd = node.create_publisher(Twist, '/robot1/cmd_vel', QoSProfile(depth=10))
    turn = Twist()
    turn.angular.z = 0.4
    node.create_timer(0.1, lambda: cmd.publish(turn))
    graph.spin_until(lambda: len(errors) >= 20, timeout=90, what='20 localised people')
    errors.sort()
    median, p90 = errors[len(errors) // 2], errors[int(len(errors) * 0.9)]
    print(f'\nsim people: {len(errors)} samples, error median {median * 100:.1f} cm, '
          f'p90 {p90 * 100:.1f} cm, max {errors[-1] * 100:.1f} cm')
    assert median < 0.25 and p90 < 0.5
    assert robot_frame and robot_frame[-1].header.frame_id == 'robot1/base_link'
