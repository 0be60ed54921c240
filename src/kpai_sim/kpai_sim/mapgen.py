"""Occupancy map of a layout, exported in the ROS map_server format (YAML + PGM)."""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import SimError
from .layout import Layout, build_layout

__all__ = ['GridMap', 'main', 'rasterize', 'write_map_server', 'write_stations']

OCCUPIED_PGM = 0
FREE_PGM = 254


@dataclass(frozen=True)
class GridMap:
    """Boolean occupancy: occupied[row, col], row 0 at origin y (bottom), cells of resolution m."""

    occupied: np.ndarray
    resolution: float
    origin: tuple[float, float]

    def world_to_cell(self, x: float, y: float) -> tuple[int, int]:
        """Return (row, col) of the cell containing (x, y)."""
        return (int(math.floor((y - self.origin[1]) / self.resolution)),
                int(math.floor((x - self.origin[0]) / self.resolution)))

    def cell_centre(self, row: int, col: int) -> tuple[float, float]:
        """Return world (x, y) of a cell centre."""
        return (self.origin[0] + (col + 0.5) * self.resolution,
                self.origin[1] + (row + 0.5) * self.resolution)

    def clearance(self) -> np.ndarray:
        """Return each cell's distance (m) to the nearest occupied cell."""
        free = (~self.occupied).astype(np.uint8)
        return cv2.distanceTransform(free, cv2.DIST_L2, 5) * self.resolution


def rasterize(layout: Layout, resolution: float = 0.05) -> GridMap:
    """Rasterize walls, objects and dock panels of a layout; cells touched by one are occupied."""
    if not (math.isfinite(resolution) and 0.005 <= resolution <= 1.0):
        raise SimError(f'map resolution must be within 0.005..1.0 m, got {resolution}')
    t = layout.wall_thickness
    ox, oy = -layout.width / 2 - t, -layout.depth / 2 - t
    cols = int(math.ceil((layout.width + 2 * t) / resolution - 1e-9))
    rows = int(math.ceil((layout.depth + 2 * t) / resolution - 1e-9))
    grid = np.zeros((rows, cols), np.uint8)
    # supersample by 8 so footprints are covered conservatively, with sub-cell accuracy
    shift = 3
    for obj in layout.obstacles():
        # cv2 puts pixel centres at integers, cells span [c, c + 1) here: shift by half a cell
        pts = ((obj.corners() - np.array([ox, oy])) / resolution - 0.5) * (1 << shift)
        cv2.fillPoly(grid, [np.round(pts).astype(np.int32)], 1, lineType=cv2.LINE_8,
                     shift=shift)
    return GridMap(grid.astype(bool), resolution, (ox, oy))


def write_map_server(grid: GridMap, yaml_path: str | Path) -> tuple[Path, Path]:
    """Write <name>.yaml and <name>.pgm (trinary, negate 0); return both paths."""
    yaml_path = Path(yaml_path)
    if yaml_path.suffix not in ('.yaml', '.yml'):
        raise SimError(f'map file must end in .yaml, got {yaml_path}')
    pgm_path = yaml_path.with_suffix('.pgm')
    yaml_path.parent.mkdir(parents=True, exist_ok=True)
    img = np.where(grid.occupied, OCCUPIED_PGM, FREE_PGM).astype(np.uint8)[::-1]
    header = f'P5\n# kpai_sim factory map\n{img.shape[1]} {img.shape[0]}\n255\n'.encode()
    pgm_path.write_bytes(header + img.tobytes())
    yaml_path.write_text(
        f'image: {pgm_path.name}\n'
        'mode: trinary\n'
        f'resolution: {grid.resolution:.6g}\n'
        f'origin: [{grid.origin[0]:.6g}, {grid.origin[1]:.6g}, 0.0]\n'
        'negate: 0\n'
        'occupied_thresh: 0.65\n'
        'free_thresh: 0.25\n')
    return yaml_path, pgm_path


def write_stations(layout: Layout, path: str | Path) -> Path:
    """Write the docking stations (pose where a docked robot stands, tag id) as YAML."""
    from .factory import TAG_HEIGHT, TAG_SIZE

    path = Path(path)
    lines = ['# Docking/charging stations of the simulated factory (map frame).',
             '# pose: where base_link stands when docked, facing the panel with the tag.',
             '# tag_size: edge of the black square (what AprilTag pose estimation wants);',
             '# the printed tag with its white ring is 10/8 of it. tag_height: its centre.',
             'tag_family: tag36h11', f'tag_size: {TAG_SIZE * 0.8:.6g}',
             f'tag_height: {TAG_HEIGHT}',
             'stations:']
    for d in layout.docks:
        lines += [f'- name: {d.name}', f'  tag_id: {d.tag_id}',
                  f'  pose: [{d.x:.6g}, {d.y:.6g}, {d.yaw:.6g}]']
    path.write_text('\n'.join(lines) + '\n')
    return path


def main(argv: list[str] | None = None) -> int:
    """Console entry: write the factory map for a seed (kpai-sim-map OUT.yaml)."""
    parser = argparse.ArgumentParser(
        prog='kpai-sim-map', description='Export the simulated factory occupancy map '
        '(ROS map_server YAML + PGM).')
    parser.add_argument('output', help='output YAML path; the PGM is written beside it')
    parser.add_argument('--seed', type=int, default=0, help='world seed (default 0)')
    parser.add_argument('--resolution', type=float, default=0.05,
                        help='cell size in metres (default 0.05)')
    args = parser.parse_args(argv)
    try:
        grid = rasterize(build_layout(seed=args.seed), args.resolution)
        yaml_path, pgm_path = write_map_server(grid, args.output)
        stations = write_stations(build_layout(seed=args.seed),
                                  yaml_path.with_name(yaml_path.stem + '_stations.yaml'))
    except (SimError, OSError) as err:
        print(f'kpai-sim-map: {err}', file=sys.stderr)
        return 2
    rows, cols = grid.occupied.shape
    print(f'wrote {yaml_path}, {pgm_path} ({cols}x{rows} cells at {grid.resolution} m) and '
          f'{stations}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
