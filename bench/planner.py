"""Planner and controller benchmark on warehouse-like 1000 x 1000-cell maps (5 cm cells).

Maps: kpai_planning.maps.warehouse_map (walls, rows of 1 m racks with 2.6 m aisles and 3 m
cross aisles, 0.8 m pallets), generated deterministically from a seed; costmap with robot
radius 0.3 m, inflation 0.9 m. Start/goal pairs: random free cells (cost 0), seeded.

1. planner: kpai_planning.planner.Planner.plan (search + smoothing + densifying) per pair:
   default configuration (downsample 2: search on 2 x 2 blocks, Nav2 Smac-style) and full
   resolution (downsample 1: exact 8-connected A*). The graph is built once per map (reported
   separately as graph_build_ms); per query only the heuristic re-weighting and search run.
2. reference: networkx.astar_path (plain-Python A*) on the same maps, the same pairs and the
   same edge weights (8-connected grid graph of cells with cost < inscribed), octile heuristic.
   Its graph build time is excluded too. speedup_vs_reference = reference p50 / default p50
   (speedup_vs_reference_full_resolution uses the full-resolution p50). Full-resolution costs
   are checked equal to the reference's.
3. controller: regulated pure pursuit following a planned path in a kinematic unicycle loop at
   20 Hz wall clock for `--controller-seconds` s, with a 360-beam scan converted every other
   tick (as the controller node does); controller_hz = ticks / wall time,
   controller_cpu_percent = process CPU time of the computation / wall time * 100.

Run:  python bench/planner.py [--maps 2] [--pairs 10] [--reference-pairs 10]
Writes bench/results/planner.json and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from kpai_planning.controller import ControllerStatus
from kpai_planning.costmap import INSCRIBED, Costmap, CostmapParams, scan_points
from kpai_planning.kinematic_sim import KinematicWorld, SimRobot
from kpai_planning.maps import free_cells, warehouse_map
from kpai_planning.navigator import Navigator
from kpai_planning.planner import Planner, PlannerParams

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'bench' / 'results' / 'planner.json'
COSTMAP = CostmapParams(robot_radius=0.3, inflation_radius=0.9)
SQRT2 = math.sqrt(2.0)


def reference_graph(cm: Costmap, cost_weight: float = 3.0) -> Any:
    """Build the networkx grid graph with the planner's edge weights (metres)."""
    import networkx as nx

    cost = cm.cost.astype(float)
    ok = cost < INSCRIBED
    factor = 1.0 + cost_weight * np.minimum(cost, 252) / 252.0
    h, w = cost.shape
    g = nx.Graph()
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        r0, r1 = max(0, -dr), h - max(0, dr)
        c0, c1 = max(0, -dc), w - max(0, dc)
        both = ok[r0:r1, c0:c1] & ok[r0 + dr:r1 + dr, c0 + dc:c1 + dc]
        rr, cc = np.nonzero(both)
        rr += r0
        cc += c0
        weight = math.hypot(dr, dc) * 0.5 * (factor[rr, cc] + factor[rr + dr, cc + dc])
        a = (rr * w + cc).tolist()
        b = ((rr + dr) * w + cc + dc).tolist()
        g.add_weighted_edges_from(zip(a, b, (weight * cm.resolution).tolist(), strict=True))
    return g


def reference_plan(g: Any, width: int, res: float, a: np.ndarray, b: np.ndarray
                   ) -> tuple[float, float]:
    """Return (seconds, cost in metres) of networkx.astar_path between cells a and b."""
    import networkx as nx

    def octile(u: int, v: int) -> float:
        dr, dc = abs(u // width - v // width), abs(u % width - v % width)
        return (max(dr, dc) + (SQRT2 - 1.0) * min(dr, dc)) * res

    s, t = int(a[0] * width + a[1]), int(b[0] * width + b[1])
    t0 = time.perf_counter()
    path = nx.astar_path(g, s, t, heuristic=octile, weight='weight')
    dt = time.perf_counter() - t0
    cost = sum(g[u][v]['weight'] for u, v in zip(path[:-1], path[1:], strict=True))
    return dt, cost


def bench_planner(maps: int, pairs: int, ref_pairs: int, cells: int = 1000
                  ) -> dict[str, Any]:
    """Time plans on warehouse maps for the default, full-resolution and reference planners."""
    default_ms: list[float] = []
    full_ms: list[float] = []
    ref_ms: list[float] = []
    default_on_ref: list[float] = []
    full_on_ref: list[float] = []
    build_ms: list[float] = []
    build_full_ms: list[float] = []
    cost_err = 0.0
    for seed in range(maps):
        grid = warehouse_map(cells, seed=seed)
        cm = Costmap(grid, COSTMAP)
        coarse = Planner(cm, PlannerParams(downsample=2))
        full = Planner(cm, PlannerParams(downsample=1))
        build_ms.append(coarse.build_s * 1000)
        build_full_ms.append(full.build_s * 1000)
        cells_ = free_cells(cm.cost == 0, 2 * pairs, seed=100 + seed)
        g = reference_graph(cm) if ref_pairs > 0 else None
        for i in range(pairs):
            a, b = cells_[2 * i], cells_[2 * i + 1]
            start = (float(grid.cell_to_world(a[0], a[1])[0]),
                     float(grid.cell_to_world(a[0], a[1])[1]))
            goal = (float(grid.cell_to_world(b[0], b[1])[0]),
                    float(grid.cell_to_world(b[0], b[1])[1]))
            t0 = time.perf_counter()
            coarse.plan(start, goal)
            d_ms = (time.perf_counter() - t0) * 1000
            t0 = time.perf_counter()
            p_full = full.plan(start, goal)
            f_ms = (time.perf_counter() - t0) * 1000
            default_ms.append(d_ms)
            full_ms.append(f_ms)
            if g is not None and i < ref_pairs:
                r_s, r_cost = reference_plan(g, cm.shape[1], cm.resolution, a, b)
                ref_ms.append(r_s * 1000)
                default_on_ref.append(d_ms)
                full_on_ref.append(f_ms)
                cost_err = max(cost_err, abs(p_full.cost - r_cost) / r_cost)
        del g
    out: dict[str, Any] = {
        'plan_p50_ms_1000x1000': float(np.median(default_ms)),
        'plan_p95_ms_1000x1000': float(np.percentile(default_ms, 95)),
        'plan_p50_ms_1000x1000_full_resolution': float(np.median(full_ms)),
        'plan_p95_ms_1000x1000_full_resolution': float(np.percentile(full_ms, 95)),
        'planner_downsample': 2,
        'graph_build_ms': float(np.median(build_ms)),
        'graph_build_ms_full_resolution': float(np.median(build_full_ms)),
        'plans': len(default_ms),
        'maps': maps,
        'map_cells': f'{cells}x{cells}',
    }
    if ref_ms:
        out.update({
            'reference': 'networkx.astar_path, same graph weights and octile heuristic',
            'reference_plans': len(ref_ms),
            'reference_p50_ms': float(np.median(ref_ms)),
            'speedup_vs_reference': float(np.median(ref_ms) / np.median(default_on_ref)),
            'speedup_vs_reference_full_resolution':
                float(np.median(ref_ms) / np.median(full_on_ref)),
            'full_resolution_cost_max_rel_error_vs_reference': cost_err,
        })
    return out


def bench_controller(seconds: float, rate: float = 20.0) -> dict[str, Any]:
    """Run the controller loop at `rate` Hz wall clock on a kinematic robot; CPU share."""
    grid = warehouse_map(1000, seed=0)
    nav = Navigator(costmap_params=COSTMAP, planner_params=PlannerParams(downsample=2))
    nav.set_map(grid)
    cm = nav.costmap
    assert cm is not None
    cells = free_cells(cm.cost == 0, 2, seed=7)
    (sx, sy), (gx, gy) = (grid.cell_to_world(*cells[0]), grid.cell_to_world(*cells[1]))
    robot = SimRobot('r', float(sx), float(sy), 0.0)
    world = KinematicWorld(grid, [robot])
    assert nav.start((robot.x, robot.y, robot.yaw), (float(gx), float(gy), 0.0), 0.0)
    period = 1.0 / rate
    ticks = 0
    cpu = 0.0
    statuses: dict[str, int] = {}
    t_start = time.perf_counter()
    next_t = t_start
    while time.perf_counter() - t_start < seconds:
        c0 = time.process_time()
        pose = (robot.x, robot.y, robot.yaw)
        if ticks % 2 == 0:  # scans at 10 Hz, converted and used for the collision check
            ranges = world.scan('r')
            pts, hits = scan_points(ranges, angle_min=-math.pi,
                                    angle_increment=2 * math.pi / 360, range_min=0.05,
                                    range_max=8.0, pose=pose)
            nav.add_scan((robot.x, robot.y), pts, hits, ticks * period, mark=False)
        cmd = nav.controller.compute(pose, ticks * period, nav.clearance)
        cpu += time.process_time() - c0
        statuses[cmd.status.value] = statuses.get(cmd.status.value, 0) + 1
        world.command('r', cmd.v, cmd.w)
        world.step(period)
        ticks += 1
        if cmd.status == ControllerStatus.GOAL_REACHED:
            nav.start((robot.x, robot.y, robot.yaw), (float(sx), float(sy), 0.0),
                      ticks * period)
            sx, sy, gx, gy = gx, gy, sx, sy
        next_t += period
        time.sleep(max(next_t - time.perf_counter(), 0.0))
    wall = time.perf_counter() - t_start
    # the scan simulation is not part of the controller: measured CPU covers only the
    # controller's own work (scan conversion, clearance, pursuit, collision check)
    return {
        'controller_hz': ticks / wall,
        'controller_cpu_percent': 100.0 * cpu / wall,
        'controller_tick_ms_mean': 1000.0 * cpu / max(ticks, 1),
        'controller_ticks': ticks,
        'controller_statuses': statuses,
    }


def main() -> None:
    """Run the benchmark and write the JSON results."""
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--maps', type=int, default=2)
    ap.add_argument('--pairs', type=int, default=10, help='start/goal pairs per map')
    ap.add_argument('--reference-pairs', type=int, default=10, help='per map, 0 = skip')
    ap.add_argument('--controller-seconds', type=float, default=20.0)
    ap.add_argument('--cells', type=int, default=1000)
    ap.add_argument('--out', type=Path, default=RESULTS)
    args = ap.parse_args()
    results = bench_planner(args.maps, args.pairs, args.reference_pairs, args.cells)
    results.update(bench_controller(args.controller_seconds))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + '\n')
    for key, value in results.items():
        print(f'{key}: {value:.3f}' if isinstance(value, float) else f'{key}: {value}')
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
