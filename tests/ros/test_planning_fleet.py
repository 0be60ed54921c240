"""Two namespaced robots swap ends of a corridor: lidar sees the other robot, priority yields."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from kpai_planning.mapio import OccupancyMap, save_map
from kpai_testing import RosGraph

pytest.importorskip('kpai_msgs')


def test_two_robots_swap_without_collision(graph: RosGraph, tmp_path: Path) -> None:
    from geometry_msgs.msg import PoseStamped
    from rclpy.action import ActionClient

    from kpai_msgs.action import ExecuteMission
    from kpai_msgs.msg import Collision, MissionStep

    data = np.zeros((80, 240), dtype=np.int8)  # 12 x 4 m hall with a pillar row in the middle
    data[:4, :] = data[-4:, :] = 100
    data[:, :4] = data[:, -4:] = 100
    data[36:44, 60:180:30] = 100
    path = tmp_path / 'hall.yaml'
    save_map(OccupancyMap(data, 0.05), path)
    starts = {'robot1': (1.5, 1.0, 0.0), 'robot2': (10.5, 1.0, math.pi)}
    goals = {'robot1': (10.5, 1.0, 0.0), 'robot2': (1.5, 1.0, math.pi)}
    graph.start_node('kpai_planning', 'map_server', '-p', f'yaml_filename:={path}')
    graph.start_node('kpai_planning', 'kinematic_sim', '-p', f'yaml_filename:={path}',
                     '-p', 'robots:=[robot1, robot2]',
                     '-p', 'initial_poses:=[1.5, 1.0, 0.0, 10.5, 1.0, 3.14159]')
    for name in starts:
        graph.start_node('kpai_planning', 'mission_executor', '-r', f'__ns:=/{name}',
                         '-p', 'fleet_robots:=[robot1, robot2]', '-p', 'desired_speed:=0.6',
                         name=f'executor_{name}')
        graph.start_safety_limit(f'/{name}')
    node = graph.node
    collisions: list = []
    for name in starts:
        node.create_subscription(Collision, f'/{name}/collisions', collisions.append, 10)
    clients = {n: ActionClient(node, ExecuteMission, f'/{n}/execute_mission') for n in starts}
    graph.spin_until(lambda: all(c.server_is_ready() for c in clients.values()), timeout=30,
                     what='both action servers')
    results = {}
    for name, client in clients.items():
        step = MissionStep(type=MissionStep.NAVIGATE, step_id=f'{name}-swap')
        step.target = PoseStamped()
        x, y, yaw = goals[name]
        step.target.pose.position.x, step.target.pose.position.y = x, y
        step.target.pose.orientation.z, step.target.pose.orientation.w = (
            math.sin(yaw / 2), math.cos(yaw / 2))
        handle = graph.send_goal(client, ExecuteMission.Goal(mission_id=name, steps=[step]))
        assert handle.accepted, name
        results[name] = handle.get_result_async()
    graph.spin_until(lambda: all(r.done() for r in results.values()), timeout=120,
                     what='both missions done')
    for name, res in results.items():
        r = res.result().result
        assert r.success, f'{name}: {r.message}'
    assert not collisions, [(c.robot, c.other) for c in collisions]
