"""A small kinematic world for planning tests: a room with a wall, map server and simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from kpai_planning.mapio import OccupancyMap, save_map
from kpai_testing import RosGraph

__all__ = ['odom_log', 'start_world', 'world_map']


def world_map(tmp_path: Path) -> Path:
    data = np.zeros((120, 240), dtype=np.int8)  # 12 x 6 m room
    data[:4, :] = data[-4:, :] = 100
    data[:, :4] = data[:, -4:] = 100
    data[0:70, 110:130] = 100  # a wall from the bottom: go round it at the top
    path = tmp_path / 'room.yaml'
    save_map(OccupancyMap(data, 0.05), path)
    return path


def start_world(graph: RosGraph, path: Path) -> None:
    graph.start_node('kpai_planning', 'map_server', '-p', f'yaml_filename:={path}')
    graph.start_node('kpai_planning', 'kinematic_sim', '-p', f'yaml_filename:={path}',
                     '-p', 'robots:=[robot1]', '-p', 'initial_poses:=[1.5, 1.5, 0.0]')


def odom_log(graph: RosGraph) -> list:
    from nav_msgs.msg import Odometry
    from rclpy.qos import qos_profile_sensor_data

    got: list = []
    graph.node.create_subscription(Odometry, '/robot1/odom', got.append,
                                   qos_profile_sensor_data)
    return got
