"""Standalone global_planner + controller, and mission pause/resume/cancel, on kinematic_sim."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from kpai_testing import RosGraph
from planning_world import odom_log, start_world, world_map

pytest.importorskip('kpai_msgs')


def test_goal_pose_to_plan_to_cmd_vel(graph: RosGraph, tmp_path: Path) -> None:
    from geometry_msgs.msg import PoseStamped, Twist
    from nav_msgs.msg import Path as PathMsg
    from rclpy.qos import DurabilityPolicy, QoSProfile

    start_world(graph, world_map(tmp_path))
    graph.start_node('kpai_planning', 'global_planner', '-r', '__ns:=/robot1')
    graph.start_node('kpai_planning', 'controller', '-r', '__ns:=/robot1')
    graph.start_safety_limit('/robot1')
    node = graph.node
    odom = odom_log(graph)
    plans: list = []
    cmds: list = []
    node.create_subscription(PathMsg, '/robot1/plan', plans.append,
                             QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    node.create_subscription(Twist, '/robot1/cmd_vel', cmds.append, 10)
    pub = node.create_publisher(PoseStamped, '/robot1/goal_pose', 10)
    graph.spin_until(lambda: pub.get_subscription_count() > 0 and odom, timeout=20,
                     what='planner subscribed and odometry flowing')
    goal = PoseStamped()
    goal.header.frame_id = 'map'
    goal.pose.position.x, goal.pose.position.y = 10.0, 1.5
    goal.pose.orientation.w = 1.0

    sent = [0.0]

    def planned() -> bool:
        # the planner may still be waiting for the map: re-send the goal once a second
        if not plans and time.monotonic() - sent[0] > 1.0:
            sent[0] = time.monotonic()
            pub.publish(goal)
        return bool(plans)

    graph.spin_until(planned, timeout=20, what='a plan')
    ys = [p.pose.position.y for p in plans[-1].poses]
    assert max(ys) > 3.5  # it goes round the wall
    graph.spin_until(lambda: math.hypot(odom[-1].pose.pose.position.x - 10.0,
                                        odom[-1].pose.pose.position.y - 1.5) < 0.12,
                     timeout=60, what='robot at the goal')
    assert max(c.linear.x for c in cmds) <= 0.5 + 1e-9


def test_pause_resume_cancel(graph: RosGraph, tmp_path: Path) -> None:
    from geometry_msgs.msg import PoseStamped
    from rclpy.action import ActionClient

    from kpai_msgs.action import ExecuteMission
    from kpai_msgs.msg import MissionStep
    from kpai_msgs.srv import SetPaused

    start_world(graph, world_map(tmp_path))
    graph.start_node('kpai_planning', 'mission_executor', '-r', '__ns:=/robot1')
    graph.start_safety_limit('/robot1')
    node = graph.node
    odom = odom_log(graph)
    client = ActionClient(node, ExecuteMission, '/robot1/execute_mission')
    pause = node.create_client(SetPaused, '/robot1/mission_executor/set_paused')
    graph.spin_until(lambda: client.server_is_ready() and pause.service_is_ready(),
                     timeout=20, what='action server and pause service')
    step = MissionStep(type=MissionStep.NAVIGATE, step_id='far')
    step.target = PoseStamped()
    step.target.pose.position.x, step.target.pose.position.y = 10.0, 1.5
    step.target.pose.orientation.w = 1.0
    goal = ExecuteMission.Goal(mission_id='m', steps=[step])
    feedback: list = []
    handle = graph.send_goal(client, goal,
                             feedback_callback=lambda f: feedback.append(f.feedback))
    assert handle.accepted
    # a second mission while one runs is rejected
    second = client.send_goal_async(goal)
    graph.spin_until(second.done, timeout=10, what='second goal answered')
    assert not second.result().accepted

    def moved() -> bool:
        p = odom[-1].pose.pose.position if odom else None
        return p is not None and math.hypot(p.x - 1.5, p.y - 1.5) > 0.5

    graph.spin_until(moved, timeout=30, what='robot moving')

    def call(paused: bool):
        return graph.call(pause, SetPaused.Request(paused=paused), timeout=10,
                          what='set_paused')

    assert call(True).success
    graph.spin_until(lambda: feedback and feedback[-1].paused, timeout=5, what='paused fb')
    graph.spin_until(lambda: abs(odom[-1].twist.twist.linear.x) < 1e-6, timeout=3,
                     what='robot stopped')
    p0 = odom[-1].pose.pose.position
    stop_x = p0.x
    n = len(odom)
    graph.spin_until(lambda: len(odom) > n + 40, timeout=5, what='odometry while paused')
    assert abs(odom[-1].pose.pose.position.x - stop_x) < 0.02
    assert not call(True).success  # already paused
    assert call(False).success
    graph.spin_until(lambda: abs(odom[-1].twist.twist.linear.x) > 0.05
                     or abs(odom[-1].twist.twist.angular.z) > 0.05, timeout=10,
                     what='moving again')
    cancel = handle.cancel_goal_async()
    graph.spin_until(cancel.done, timeout=5, what='cancel answered')
    res = handle.get_result_async()
    graph.spin_until(res.done, timeout=10, what='result')
    result = res.result().result
    assert not result.success and result.error_code == ExecuteMission.Result.CANCELED
    graph.spin_until(lambda: abs(odom[-1].twist.twist.linear.x) < 1e-6, timeout=3,
                     what='robot stopped after cancel')
