"""Deterministic synthetic maps (warehouse rack rows and aisles) for tests and benchmarks."""

from __future__ import annotations

import numpy as np

from .mapio import FREE, OCCUPIED, OccupancyMap

__all__ = ['free_cells', 'warehouse_map']


def warehouse_map(cells: int = 1000, *, resolution: float = 0.05, seed: int = 0,
                  rack_depth: float = 1.0, aisle_width: float = 2.6, rack_length: float = 9.0,
                  cross_aisle: float = 3.0, pallets: int = 60) -> OccupancyMap:
    """Return a square warehouse: walls, rows of racks with aisles and cross aisles, pallets."""
    rng = np.random.default_rng(seed)
    data = np.full((cells, cells), FREE, dtype=np.int8)
    wall = max(int(round(0.2 / resolution)), 1)
    data[:wall, :] = OCCUPIED
    data[-wall:, :] = OCCUPIED
    data[:, :wall] = OCCUPIED
    data[:, -wall:] = OCCUPIED
    depth = int(round(rack_depth / resolution))
    aisle = int(round(aisle_width / resolution))
    length = int(round(rack_length / resolution))
    cross = int(round(cross_aisle / resolution))
    margin = int(round(3.0 / resolution))
    row = margin
    while row + depth < cells - margin:
        col = margin + int(rng.integers(0, cross))
        while col + length < cells - margin:
            seg = length - int(rng.integers(0, length // 4))
            data[row:row + depth, col:col + seg] = OCCUPIED
            col += seg + cross
        row += depth + aisle
    side = int(round(0.8 / resolution))
    for _ in range(pallets):
        r, c = rng.integers(wall, cells - wall - side, size=2)
        data[r:r + side, c:c + side] = OCCUPIED
    return OccupancyMap(data, resolution, (0.0, 0.0, 0.0))


def free_cells(mask: np.ndarray, count: int, *, seed: int = 0) -> np.ndarray:
    """Return `count` distinct (row, col) cells where mask is True, chosen with seed."""
    rows, cols = np.nonzero(mask)
    rng = np.random.default_rng(seed)
    pick = rng.choice(rows.size, size=count, replace=False)
    return np.column_stack((rows[pick], cols[pick]))
