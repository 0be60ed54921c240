"""Inflation values and the decaying LaserScan obstacle layer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kpai_planning.costmap import (
    INSCRIBED,
    LETHAL,
    Costmap,
    CostmapParams,
    inflate,
    scan_points,
)
from kpai_planning.errors import ConfigError
from kpai_planning.mapio import OccupancyMap


def test_inflation_values_follow_exponential_decay() -> None:
    lethal = np.zeros((1, 60), dtype=bool)
    lethal[0, 0] = True
    dist, cost = inflate(lethal, 0.05, robot_radius=0.3, inflation_radius=1.0,
                         cost_scaling_factor=3.0)
    assert cost[0, 0] == LETHAL
    assert all(cost[0, 1:7] == INSCRIBED)  # 0.05..0.30 m
    for col in range(7, 21):
        d = col * 0.05
        assert dist[0, col] == pytest.approx(d)
        assert cost[0, col] == math.floor(252 * math.exp(-3.0 * (d - 0.3)))
    assert all(cost[0, 21:] == 0)  # beyond the inflation radius
    assert all(np.diff(cost[0, 6:].astype(int)) <= 0)


def _empty(n: int = 100) -> OccupancyMap:
    return OccupancyMap(np.zeros((n, n), dtype=np.int8), 0.05)


def test_scan_marks_clears_and_decays() -> None:
    cm = Costmap(_empty(), CostmapParams(obstacle_decay_s=1.0))
    pts, hits = scan_points([2.0, np.inf, np.nan, 0.01], angle_min=0.0,
                            angle_increment=math.pi / 2, range_min=0.05, range_max=3.0,
                            pose=(1.0, 1.0, 0.0))
    assert hits.tolist() == [True, False]  # NaN and below range_min dropped
    np.testing.assert_allclose(pts[0], (3.0, 1.0))
    np.testing.assert_allclose(pts[1], (1.0, 4.0), atol=1e-9)
    cm.mark_scan((1.0, 1.0), pts, hits, stamp=10.0)
    assert cm.update(10.0)
    assert cm.cost_at(3.0, 1.0)[()] == LETHAL
    assert cm.cost_at(3.2, 1.0)[()] == INSCRIBED
    # the obstacle moved away: a new scan sees through the old cell and clears it
    pts2, hits2 = scan_points([2.5], angle_min=0.0, angle_increment=0.1, range_min=0.05,
                              range_max=3.0, pose=(1.0, 1.0, 0.0))
    cm.mark_scan((1.0, 1.0), pts2, hits2, stamp=10.5)
    cm.update(10.5)
    assert cm.cost_at(3.0, 1.0)[()] < INSCRIBED
    assert cm.cost_at(3.5, 1.0)[()] == LETHAL
    # nothing refreshes it: it decays after obstacle_decay_s
    cm.update(11.4)
    assert cm.cost_at(3.5, 1.0)[()] == LETHAL
    cm.update(11.6)
    assert cm.cost_at(3.5, 1.0)[()] == 0


def test_static_obstacles_are_not_cleared_by_rays() -> None:
    grid = _empty()
    grid.data[20, 40] = 100
    cm = Costmap(grid)
    y = float(grid.cell_to_world(20, 40)[1])
    pts, hits = scan_points([4.0], angle_min=0.0, angle_increment=0.1, range_min=0.05,
                            range_max=5.0, pose=(0.5, y, 0.0))
    cm.mark_scan((0.5, y), pts, hits, stamp=1.0)
    cm.update(1.0)
    assert cm.cost[20, 40] == LETHAL


def test_bad_params_rejected() -> None:
    with pytest.raises(ConfigError, match='inflation_radius'):
        CostmapParams(robot_radius=0.5, inflation_radius=0.2).validate()
    with pytest.raises(ConfigError, match='robot_radius'):
        CostmapParams(robot_radius=-1).validate()


def test_ray_clearing_matches_walking_the_rays() -> None:
    """Clearing from the marked cells agrees with a fine walk along every ray."""
    rng = np.random.default_rng(4)
    grid = _empty(200)
    cm = Costmap(grid, CostmapParams(obstacle_decay_s=100.0, raytrace_range=6.0))
    marks = rng.uniform(0.2, 9.8, size=(3000, 2))
    cm.mark_scan((5.0, 5.0), marks, np.ones(len(marks), dtype=bool), stamp=1.0)
    rows0, cols0 = np.nonzero(np.isfinite(cm._marks))
    before = set(zip(rows0.tolist(), cols0.tolist(), strict=True))
    ranges = rng.uniform(0.5, 7.0, size=360)
    origin = (4.3, 5.6)
    pts, hits = scan_points(ranges, angle_min=-math.pi, angle_increment=2 * math.pi / 360,
                            range_min=0.05, range_max=10.0, pose=(*origin, 0.0))
    cm._clear_seen(origin, pts - origin, np.hypot(*(pts - origin).T))
    rows1, cols1 = np.nonzero(np.isfinite(cm._marks))
    cleared = before - set(zip(rows1.tolist(), cols1.tolist(), strict=True))
    # reference: every cell a ray passes through (fine steps), up to one cell short of its end
    walked = set()
    for (px, py) in pts:
        length = math.hypot(px - origin[0], py - origin[1])
        t = np.arange(0.0, min(length - 0.06, 6.0), 0.002)
        r, c = grid.world_to_cell(origin[0] + (px - origin[0]) * t / length,
                                  origin[1] + (py - origin[1]) * t / length)
        walked |= set(zip(r.tolist(), c.tolist(), strict=True))
    expected = before & walked
    assert len(expected) > 200
    assert len(cleared - walked) <= 0.02 * len(expected)    # (almost) never clears unseen cells
    assert len(expected & cleared) >= 0.9 * len(expected)   # and clears what the rays cross


def test_a_reading_too_close_to_measure_is_an_obstacle_at_range_min() -> None:
    # REP 117: -inf = an object closer than range_min. Dropped, a robot standing right in
    # front of the lidar would vanish from the collision check
    pts, hits = scan_points([-np.inf, 0.01, np.inf], angle_min=0.0, angle_increment=math.pi / 2,
                            range_min=0.12, range_max=3.0, pose=(1.0, 1.0, 0.0))
    assert hits.tolist() == [True, False]  # 0.01 (a reading below range_min) still dropped
    np.testing.assert_allclose(pts[0], (1.12, 1.0))
