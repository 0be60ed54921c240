"""Kinematic test world, synthetic maps and message conversions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kpai_planning.kinematic_sim import KinematicWorld, SimRobot
from kpai_planning.mapio import OccupancyMap
from kpai_planning.maps import free_cells, warehouse_map


def _box() -> OccupancyMap:
    data = np.zeros((100, 100), dtype=np.int8)  # 5 x 5 m, walls 1 cell thick
    data[0, :] = data[-1, :] = data[:, 0] = data[:, -1] = 100
    return OccupancyMap(data, 0.05)


def test_scan_ranges_match_walls_and_other_robots() -> None:
    world = KinematicWorld(_box(), [SimRobot('a', 2.5, 2.5, 0.0),
                                    SimRobot('b', 4.0, 2.5, 0.0, radius=0.25)])
    ranges = world.scan('a', beams=4)  # angles -pi, -pi/2, 0, pi/2 relative to heading
    assert ranges[0] == pytest.approx(2.45, abs=0.03)  # west wall inner face at x = 0.05
    assert ranges[1] == pytest.approx(2.45, abs=0.03)
    assert ranges[2] == pytest.approx(1.25, abs=1e-6)  # robot b's near side
    assert ranges[3] == pytest.approx(2.45, abs=0.03)


def test_motion_limits_contacts_and_bad_commands() -> None:
    world = KinematicWorld(_box(), [SimRobot('a', 1.0, 1.0, 0.0)], max_v=0.5)
    assert not world.command('a', math.nan, 0.0)
    assert world.command('a', 5.0, 0.0)
    for _ in range(20):
        world.step(0.1)
    assert world.robots['a'].x == pytest.approx(2.0)
    assert not world.contacts()
    world.robots['a'].x = 4.85
    assert world.contacts() == [('a', 'map')]


def test_warehouse_map_is_deterministic_and_connected_enough() -> None:
    a, b = warehouse_map(400, seed=5), warehouse_map(400, seed=5)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, warehouse_map(400, seed=6).data)
    occupied = (a.data == 100).mean()
    assert 0.1 < occupied < 0.6
    cells = free_cells(a.data == 0, 10, seed=1)
    assert len({tuple(c) for c in cells}) == 10
    assert all(a.data[r, c] == 0 for r, c in cells)


def test_message_conversions_round_trip() -> None:
    pytest.importorskip('nav_msgs')
    from kpai_planning.conversions import compose, grid_from_msg, grid_to_msg, path_to_msg

    grid = OccupancyMap(np.arange(-1, 99, dtype=np.int8).reshape(10, 10), 0.1, (1.0, 2.0, 0.5))
    back = grid_from_msg(grid_to_msg(grid))
    np.testing.assert_array_equal(back.data, grid.data)
    assert back.origin == pytest.approx(grid.origin)
    pts = np.array([[0.0, 0.0, 0.0], [1.0, 0.5, 1.0]])
    from builtin_interfaces.msg import Time

    msg = path_to_msg(pts, 'map', Time(sec=3))
    assert [p.pose.position.y for p in msg.poses] == [0.0, 0.5]
    assert msg.poses[1].header.frame_id == 'map'
    x, y, yaw = compose((1.0, 0.0, math.pi / 2), (1.0, 0.0, 0.0))
    assert (x, y, yaw) == pytest.approx((1.0, 1.0, math.pi / 2))
