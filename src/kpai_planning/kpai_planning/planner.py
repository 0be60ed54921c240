"""Global planner: 8-connected A* on a costmap, plus clearance-keeping path smoothing.

A* is run as Dijkstra on potential-reduced edge weights w'(u, v) = w(u, v) - h(u) + h(v)
with the consistent octile heuristic h (distance to the goal), which expands exactly the nodes
A* expands. The search itself is scipy.sparse.csgraph.dijkstra (compiled), bounded by a
`limit` on the reduced cost that grows geometrically until the goal is reached, so the search
stops near the goal instead of sweeping the whole map. The graph structure over statically
free cells is built once per static map; per query only the edge weights are recomputed from
the current costmap (scan obstacles make their cells effectively impassable).
"""

from __future__ import annotations

import enum
import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from .costmap import INSCRIBED, LETHAL, MAX_NON_OBSTACLE, Costmap
from .errors import ConfigError, PlanningFailure

__all__ = [
    'FailureCode',
    'GridGraph',
    'Plan',
    'Planner',
    'PlannerParams',
    'line_of_sight',
    'smooth_path',
]

_SQRT2 = math.sqrt(2.0)
_BLOCKED = 1e9  # cost factor of cells that became impassable after the graph was built
_UNREACHABLE = 1e8  # any reduced cost above this is treated as no path
_STEPS = ((0, 1, 1.0), (1, 0, 1.0), (0, -1, 1.0), (-1, 0, 1.0),
          (1, 1, _SQRT2), (1, -1, _SQRT2), (-1, 1, _SQRT2), (-1, -1, _SQRT2))


class FailureCode(enum.IntEnum):
    """Why a plan could not be made."""

    START_OCCUPIED = 1
    GOAL_OCCUPIED = 2
    NO_PATH = 3
    OUT_OF_MAP = 4


@dataclass(frozen=True)
class PlannerParams:
    """Search and smoothing settings."""

    cost_weight: float = 3.0  # edge cost factor = 1 + cost_weight * cell_cost / 252
    allow_unknown: bool = True
    smooth: bool = True
    point_spacing: float = 0.05  # metres between output path points
    downsample: int = 1  # search on k x k blocks of cells (1 = full resolution)

    def validate(self) -> PlannerParams:
        """Return self or raise ConfigError naming the bad value."""
        if not (math.isfinite(self.cost_weight) and self.cost_weight >= 0):
            raise ConfigError(f'cost_weight must be finite and >= 0, got {self.cost_weight}')
        if not (math.isfinite(self.point_spacing) and self.point_spacing > 0):
            raise ConfigError(f'point_spacing must be > 0, got {self.point_spacing}')
        if not 1 <= self.downsample <= 8:
            raise ConfigError(f'downsample must be in 1..8, got {self.downsample}')
        return self


@dataclass
class Plan:
    """A planned path: dense world points with headings, the raw cells and its cost."""

    points: np.ndarray  # N x 3 (x, y, yaw)
    cells: np.ndarray  # M x 2 (row, col) of the raw A* path
    cost: float  # A* cost in metres weighted by cell costs
    length: float  # metres along the output points
    stats: dict[str, float] = field(default_factory=dict)


class GridGraph:
    """CSR 8-connected graph over the cells of a traversable mask (built once per map)."""

    def __init__(self, traversable: np.ndarray) -> None:
        traversable = np.asarray(traversable, dtype=bool)
        h, w = traversable.shape
        self.shape = (h, w)
        self.index = np.full(h * w, -1, dtype=np.int64)
        self.cells = np.flatnonzero(traversable)
        self.index[self.cells] = np.arange(self.cells.size)
        idx2 = self.index.reshape(h, w)
        rows, cols, lens = [], [], []
        for dr, dc, length in _STEPS:
            a = idx2[max(0, -dr):h - max(0, dr), max(0, -dc):w - max(0, dc)]
            b = idx2[max(0, dr):h - max(0, -dr), max(0, dc):w - max(0, -dc)]
            ok = (a >= 0) & (b >= 0)
            rows.append(a[ok])
            cols.append(b[ok])
            lens.append(np.full(int(ok.sum()), length))
        n = self.cells.size
        m = csr_matrix((np.concatenate(lens), (np.concatenate(rows), np.concatenate(cols))),
                       shape=(n, n))
        m.sort_indices()
        self.indptr = m.indptr
        self.indices = m.indices
        self.lengths = m.data
        self.src = np.repeat(np.arange(n, dtype=np.int32), np.diff(m.indptr))
        self.node_rc = np.column_stack(np.divmod(self.cells, w))
        self.weights = self.lengths.copy()

    @property
    def n_nodes(self) -> int:
        return int(self.cells.size)

    def node_of(self, row: int, col: int) -> int:
        """Return the node id of a cell, or -1 if it is not in the graph."""
        return int(self.index[row * self.shape[1] + col])

    def set_factors(self, factor: np.ndarray) -> None:
        """Set per-node cost factors (>= 1); edge weight = length * mean of its two factors."""
        half = 0.5 * np.asarray(factor, dtype=np.float64)
        self.weights = self.lengths * (half[self.src] + half[self.indices])

    def search(self, start: int, goal: int) -> tuple[list[int], float, int]:
        """A* between node ids; return (nodes, cost in cells, nodes reached)."""
        gr, gc = self.node_rc[goal]
        dr = np.abs(self.node_rc[:, 0] - gr)
        dc = np.abs(self.node_rc[:, 1] - gc)
        h = np.maximum(dr, dc) + (_SQRT2 - 1.0) * np.minimum(dr, dc)
        data = self.weights + h[self.indices]
        data -= h[self.src]
        np.maximum(data, 1e-12, out=data)  # rounding; explicit zeros must stay edges
        graph = csr_matrix((data, self.indices, self.indptr), shape=(self.n_nodes,) * 2)
        limit = max(0.15 * float(h[start]), 16.0)
        while True:
            dist, pred = dijkstra(graph, directed=True, indices=start, return_predecessors=True,
                                  limit=limit)
            if np.isfinite(dist[goal]) or limit >= _UNREACHABLE:
                break
            limit = _UNREACHABLE if limit > 1e5 else limit * 2.0
        reached = int(np.count_nonzero(np.isfinite(dist)))
        cost = float(dist[goal]) + float(h[start])
        if not cost < _UNREACHABLE:
            return [], math.inf, reached
        nodes = [goal]
        while nodes[-1] != start:
            nodes.append(int(pred[nodes[-1]]))
        nodes.reverse()
        return nodes, cost, reached


def line_of_sight(distance: np.ndarray, a: np.ndarray, b: np.ndarray, min_clearance: float
                  ) -> bool:
    """Return True if every cell on segment a-b (cell coords) has distance >= min_clearance."""
    n = int(math.ceil(2.0 * float(np.max(np.abs(b - a))))) + 1
    t = np.linspace(0.0, 1.0, n)
    rows = np.rint(a[0] + (b[0] - a[0]) * t).astype(np.int64)
    cols = np.rint(a[1] + (b[1] - a[1]) * t).astype(np.int64)
    return bool(np.all(distance[rows, cols] >= min_clearance))


def smooth_path(cells: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Shortcut a cell path: keep a segment only if its clearance >= the stretch it replaces.

    Returns the kept waypoints (K x 2 cell coordinates). Clearance never drops below the
    minimum clearance of the original path between the same two waypoints.
    """
    cells = np.asarray(cells)
    n = len(cells)
    if n <= 2:
        return cells.copy()
    raw_clear = distance[cells[:, 0], cells[:, 1]]
    out = [0]
    i = 0
    while i < n - 1:

        def ok(j: int, i: int = i) -> bool:
            return line_of_sight(distance, cells[i], cells[j], float(raw_clear[i:j + 1].min()))

        good, step = i + 1, 1
        bad = n
        while good + step < n:  # exponential probe, then bisection
            if ok(good + step):
                good += step
                step *= 2
            else:
                bad = good + step
                break
        else:
            if good != n - 1 and ok(n - 1):
                good = n - 1
            elif good != n - 1:
                bad = n - 1
        while bad - good > 1:
            mid = (good + bad) // 2
            if ok(mid):
                good = mid
            else:
                bad = mid
        out.append(good)
        i = good
    return cells[out]


def _densify(xy: np.ndarray, spacing: float, goal_yaw: float | None) -> np.ndarray:
    """Return N x 3 (x, y, yaw) points about `spacing` apart along polyline xy."""
    pts = [xy[0]]
    for a, b in zip(xy[:-1], xy[1:], strict=True):
        seg = float(np.hypot(*(b - a)))
        k = max(int(math.ceil(seg / spacing)), 1)
        t = np.arange(1, k + 1)[:, None] / k
        pts.extend(a + (b - a) * t)
    p = np.asarray(pts)
    d = np.diff(p, axis=0)
    yaw = np.arctan2(d[:, 1], d[:, 0]) if len(d) else np.zeros(0)
    last = goal_yaw if goal_yaw is not None else (float(yaw[-1]) if len(yaw) else 0.0)
    yaw = np.append(yaw, last)
    return np.column_stack((p, yaw))


def _pool_max(a: np.ndarray, k: int) -> np.ndarray:
    """Return the k x k block maximum of a (edges padded by repetition)."""
    if k == 1:
        return a
    h, w = a.shape
    ph, pw = -h % k, -w % k
    if ph or pw:
        a = np.pad(a, ((0, ph), (0, pw)), mode='edge')
    return a.reshape(a.shape[0] // k, k, a.shape[1] // k, k).max(axis=(1, 3))


class Planner:
    """Plan on a Costmap; the graph is rebuilt only when the static map changes.

    With downsample k > 1 the search runs on k x k blocks (block cost = worst cell, so it is
    conservative) and the path is smoothed against the full-resolution clearance.
    """

    def __init__(self, costmap: Costmap, params: PlannerParams | None = None) -> None:
        self.params = (params or PlannerParams()).validate()
        self.costmap = costmap
        self.k = self.params.downsample
        t0 = time.perf_counter()
        static = costmap.static_cost
        if not self.params.allow_unknown:
            static = np.where(costmap.unknown, LETHAL, static)
        self.graph = GridGraph(_pool_max(static, self.k) < INSCRIBED)
        self._factor_key: tuple[int, int] | None = None
        self.build_s = time.perf_counter() - t0

    def _fine_cell(self, x: float, y: float, code: FailureCode, what: str) -> tuple[int, int]:
        grid = self.costmap.grid
        if not (math.isfinite(x) and math.isfinite(y)):
            raise PlanningFailure(FailureCode.OUT_OF_MAP, f'{what} ({x}, {y}) is not finite')
        row, col = grid.world_to_cell(x, y)
        if not grid.in_bounds(row, col):
            raise PlanningFailure(FailureCode.OUT_OF_MAP,
                                  f'{what} ({x:.2f}, {y:.2f}) is outside the map')
        r, c = int(row), int(col)
        if self.costmap.cost[r, c] >= INSCRIBED or (
                not self.params.allow_unknown and self.costmap.unknown[r, c]):
            raise PlanningFailure(code, f'{what} ({x:.2f}, {y:.2f}) is in an obstacle or '
                                  'closer to one than the robot radius')
        return r, c

    def _node(self, r: int, c: int, code: FailureCode, what: str) -> int:
        """Return the graph node of fine cell (r, c), or the nearest node within 2 blocks."""
        g, k = self.graph, self.k
        node = g.node_of(r // k, c // k)
        if node >= 0 or k == 1:
            if node < 0:
                raise PlanningFailure(code, f'{what} cell ({r}, {c}) is not traversable')
            return node
        best, best_d = -1, math.inf
        for dr in range(-2, 3):
            for dc in range(-2, 3):
                br, bc = r // k + dr, c // k + dc
                if 0 <= br < g.shape[0] and 0 <= bc < g.shape[1]:
                    cand = g.node_of(br, bc)
                    d = math.hypot(br * k + 0.5 * (k - 1) - r, bc * k + 0.5 * (k - 1) - c)
                    if cand >= 0 and d < best_d:
                        best, best_d = cand, d
        if best < 0:
            raise PlanningFailure(code, f'{what} cell ({r}, {c}) has no traversable block nearby')
        return best

    def _update_factors(self) -> None:
        key = (self.costmap.version, id(self.costmap.cost))
        if key == self._factor_key:
            return
        g = self.graph
        cost = _pool_max(self.costmap.cost, self.k).ravel()[g.cells].astype(np.float64)
        factor = 1.0 + self.params.cost_weight * np.minimum(cost, MAX_NON_OBSTACLE) / 252.0
        factor[cost >= INSCRIBED] = _BLOCKED
        g.set_factors(factor)
        self._factor_key = key

    def plan(self, start: tuple[float, float], goal: tuple[float, float],
             goal_yaw: float | None = None) -> Plan:
        """Plan from start to goal (world x, y); raise PlanningFailure with a FailureCode."""
        t0 = time.perf_counter()
        sr, sc = self._fine_cell(start[0], start[1], FailureCode.START_OCCUPIED, 'start')
        gr, gc = self._fine_cell(goal[0], goal[1], FailureCode.GOAL_OCCUPIED, 'goal')
        s = self._node(sr, sc, FailureCode.START_OCCUPIED, 'start')
        g = self._node(gr, gc, FailureCode.GOAL_OCCUPIED, 'goal')
        self._update_factors()
        nodes, total, reached = self.graph.search(s, g)
        if not nodes:
            raise PlanningFailure(FailureCode.NO_PATH,
                                  f'no path from ({start[0]:.2f}, {start[1]:.2f}) to '
                                  f'({goal[0]:.2f}, {goal[1]:.2f})')
        k = self.k
        cells = self.graph.node_rc[np.asarray(nodes)] * k + (k - 1) // 2
        cells[0] = (sr, sc)
        cells[-1] = (gr, gc)
        t_search = time.perf_counter() - t0
        way = smooth_path(cells, self.costmap.distance) if self.params.smooth else cells
        wx, wy = self.costmap.grid.cell_to_world(way[:, 0], way[:, 1])
        xy = np.column_stack((wx, wy))
        xy[0] = start
        xy[-1] = goal
        points = _densify(xy, self.params.point_spacing, goal_yaw)
        length = float(np.hypot(*np.diff(points[:, :2], axis=0).T).sum())
        stats = {'search_s': t_search, 'total_s': time.perf_counter() - t0,
                 'reached': float(reached), 'waypoints': float(len(way))}
        return Plan(points, cells, total * self.costmap.resolution * k, length, stats)
