"""Global planner: optimal cost vs Dijkstra, smoothing clearance, failure codes."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from kpai_planning.costmap import INSCRIBED, Costmap, CostmapParams
from kpai_planning.errors import PlanningFailure
from kpai_planning.mapio import OccupancyMap
from kpai_planning.maps import free_cells, warehouse_map
from kpai_planning.planner import FailureCode, Planner, PlannerParams

RES = 0.05


def _random_map(seed: int, n: int = 40) -> OccupancyMap:
    rng = np.random.default_rng(seed)
    data = np.zeros((n, n), dtype=np.int8)
    for _ in range(12):
        r, c = rng.integers(0, n - 4, size=2)
        h, w = rng.integers(1, 8, size=2)
        data[r:r + h, c:c + w] = 100
    return OccupancyMap(data, RES)


def _reference_cost(cm: Costmap, a: tuple[int, int], b: tuple[int, int], weight: float) -> float:
    """Dijkstra (networkx) on an independently built 8-connected graph of the same costs."""
    cost = cm.cost.astype(float)
    ok = cost < INSCRIBED
    factor = 1.0 + weight * np.minimum(cost, 252) / 252.0
    g = nx.Graph()
    h, w = cost.shape
    for r in range(h):
        for c in range(w):
            if not ok[r, c]:
                continue
            for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
                rr, cc = r + dr, c + dc
                if 0 <= rr < h and 0 <= cc < w and ok[rr, cc]:
                    length = math.hypot(dr, dc)
                    g.add_edge((r, c), (rr, cc),
                               weight=length * 0.5 * (factor[r, c] + factor[rr, cc]))
    try:
        return nx.dijkstra_path_length(g, a, b) * cm.resolution
    except nx.NetworkXNoPath:
        return math.inf


@pytest.mark.parametrize('seed', range(6))
def test_cost_equals_dijkstra_on_small_random_maps(seed: int) -> None:
    cm = Costmap(_random_map(seed), CostmapParams(robot_radius=0.1, inflation_radius=0.4))
    planner = Planner(cm, PlannerParams(cost_weight=3.0, smooth=False))
    cells = free_cells(cm.cost < INSCRIBED, 8, seed=seed)
    for a, b in zip(cells[::2], cells[1::2], strict=True):
        start = tuple(float(v) for v in cm.grid.cell_to_world(a[0], a[1]))
        goal = tuple(float(v) for v in cm.grid.cell_to_world(b[0], b[1]))
        ref = _reference_cost(cm, tuple(a), tuple(b), 3.0)
        if math.isinf(ref):
            with pytest.raises(PlanningFailure) as info:
                planner.plan(start, goal)
            assert info.value.code == FailureCode.NO_PATH
            continue
        plan = planner.plan(start, goal)
        assert plan.cost == pytest.approx(ref, rel=1e-6)
        steps = np.abs(np.diff(plan.cells, axis=0)).max(axis=1)
        assert steps.max() == 1  # 8-connected, contiguous
        assert all(cm.cost[r, c] < INSCRIBED for r, c in plan.cells)


def test_smoothing_keeps_clearance_and_shortens() -> None:
    grid = warehouse_map(300, seed=3, pallets=10)
    cm = Costmap(grid)
    raw = Planner(cm, PlannerParams(smooth=False))
    smooth = Planner(cm, PlannerParams(smooth=True))
    cells = free_cells(cm.cost == 0, 12, seed=4)
    for a, b in zip(cells[::2], cells[1::2], strict=True):
        start = tuple(float(v) for v in grid.cell_to_world(a[0], a[1]))
        goal = tuple(float(v) for v in grid.cell_to_world(b[0], b[1]))
        p_raw = raw.plan(start, goal)
        p_smooth = smooth.plan(start, goal)
        clear_raw = cm.distance_at(p_raw.points[:, 0], p_raw.points[:, 1]).min()
        clear_smooth = cm.distance_at(p_smooth.points[:, 0], p_smooth.points[:, 1]).min()
        assert clear_smooth >= clear_raw - 1e-9
        assert clear_smooth > cm.params.robot_radius
        assert p_smooth.length <= p_raw.length + 1e-9
        np.testing.assert_allclose(p_smooth.points[0, :2], start)
        np.testing.assert_allclose(p_smooth.points[-1, :2], goal)
        gaps = np.hypot(*np.diff(p_smooth.points[:, :2], axis=0).T)
        assert gaps.max() <= 0.05 + 1e-9


def test_downsampled_search_is_close_to_full_resolution() -> None:
    grid = warehouse_map(400, seed=1, pallets=15)
    cm = Costmap(grid)
    full = Planner(cm)
    coarse = Planner(cm, PlannerParams(downsample=2))
    cells = free_cells(cm.cost == 0, 10, seed=2)
    for a, b in zip(cells[::2], cells[1::2], strict=True):
        start = tuple(float(v) for v in grid.cell_to_world(a[0], a[1]))
        goal = tuple(float(v) for v in grid.cell_to_world(b[0], b[1]))
        pf, pc = full.plan(start, goal), coarse.plan(start, goal)
        assert pc.length <= pf.length * 1.1 + 0.3
        assert cm.distance_at(pc.points[:, 0], pc.points[:, 1]).min() > 0.3


def test_failure_codes() -> None:
    data = np.zeros((60, 60), dtype=np.int8)
    data[:, 30] = 100  # a wall splits the map
    data[50, 20] = 100
    cm = Costmap(OccupancyMap(data, RES), CostmapParams(robot_radius=0.1, inflation_radius=0.3))
    planner = Planner(cm)
    free_a, free_b = (0.5, 0.5), (2.5, 0.5)
    at_obstacle = tuple(float(v) for v in cm.grid.cell_to_world(50, 20))
    cases = [
        ((at_obstacle, free_a), FailureCode.START_OCCUPIED),
        ((free_a, at_obstacle), FailureCode.GOAL_OCCUPIED),
        ((free_a, free_b), FailureCode.NO_PATH),
        ((free_a, (50.0, 0.5)), FailureCode.OUT_OF_MAP),
        (((-1.0, 0.5), free_a), FailureCode.OUT_OF_MAP),
        ((free_a, (math.nan, 0.5)), FailureCode.OUT_OF_MAP),
    ]
    for (start, goal), code in cases:
        with pytest.raises(PlanningFailure) as info:
            planner.plan(start, goal)
        assert info.value.code == code, (start, goal)
    assert planner.plan(free_a, (0.5, 2.5)).length == pytest.approx(2.0, abs=0.01)


def test_dynamic_obstacle_blocks_after_graph_built() -> None:
    data = np.zeros((40, 80), dtype=np.int8)
    data[:, 40] = 100
    data[18:22, 40] = 0  # a doorway
    cm = Costmap(OccupancyMap(data, RES), CostmapParams(robot_radius=0.05, inflation_radius=0.1))
    planner = Planner(cm)
    start, goal = (0.5, 1.0), (3.5, 1.0)
    assert planner.plan(start, goal).length < 3.2
    door = np.array([[2.025, 1.0]])
    cm.mark_scan((1.0, 1.0), door, np.array([True]), stamp=0.0)
    cm.update(0.0)
    with pytest.raises(PlanningFailure) as info:
        planner.plan(start, goal)
    assert info.value.code == FailureCode.NO_PATH
