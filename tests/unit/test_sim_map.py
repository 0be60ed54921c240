"""Occupancy map export in the ROS map_server format."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from kpai_sim.errors import SimError
from kpai_sim.layout import build_layout
from kpai_sim.mapgen import main, rasterize, write_map_server


def read_pgm(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    m = re.match(rb'P5\s+(?:#[^\n]*\n\s*)*(\d+)\s+(\d+)\s+(\d+)\s', raw)
    assert m is not None, 'not a binary PGM'
    w, h, maxval = (int(v) for v in m.groups())
    assert maxval == 255
    return np.frombuffer(raw, np.uint8, count=w * h, offset=m.end()).reshape(h, w)


def read_yaml(path: Path) -> dict[str, str]:
    return dict(line.split(': ', 1) for line in path.read_text().splitlines() if line)


def test_export_format_and_content(tmp_path: Path) -> None:
    layout = build_layout(seed=0)
    grid = rasterize(layout, 0.05)
    yaml_path, pgm_path = write_map_server(grid, tmp_path / 'factory.yaml')
    meta = read_yaml(yaml_path)
    assert meta['image'] == 'factory.pgm' and meta['mode'] == 'trinary'
    assert float(meta['resolution']) == 0.05 and meta['negate'] == '0'
    ox, oy, oyaw = (float(v) for v in meta['origin'].strip('[]').split(','))
    assert (ox, oy, oyaw) == (-12.2, -8.2, 0.0)
    img = read_pgm(pgm_path)
    assert img.shape == (round(16.4 / 0.05), round(24.4 / 0.05))
    assert set(np.unique(img)) == {0, 254}

    def pixel(x: float, y: float) -> int:
        col = math.floor((x - ox) / 0.05)
        row = img.shape[0] - 1 - math.floor((y - oy) / 0.05)  # PGM row 0 is the top
        return int(img[row, col])

    assert pixel(0.0, 0.0) == 254  # main aisle
    assert pixel(-12.1, 0.0) == 0 and pixel(0.0, 8.1) == 0  # west and north walls
    rack = next(o for o in layout.objects if o.class_id == 'rack')
    assert pixel(rack.x, rack.y) == 0
    assert pixel(rack.x, rack.y + rack.size[1] / 2 + 0.1) == 254  # just beside it: free
    dock = layout.docks[0].panel()
    assert pixel(dock.x, dock.y) == 0


def test_obstacle_edges_are_accurate_to_a_cell() -> None:
    layout = build_layout(seed=2)
    grid = rasterize(layout, 0.05)
    for obj in layout.objects:
        if abs(math.sin(obj.yaw)) > 1e-6 and abs(math.cos(obj.yaw)) > 1e-6:
            continue
        sx, sy = (obj.size[0], obj.size[1]) if abs(math.cos(obj.yaw)) > 0.5 else \
            (obj.size[1], obj.size[0])
        r0, c0 = grid.world_to_cell(obj.x - sx / 2 + 0.03, obj.y - sy / 2 + 0.03)
        r1, c1 = grid.world_to_cell(obj.x + sx / 2 - 0.03, obj.y + sy / 2 - 0.03)
        assert grid.occupied[r0:r1 + 1, c0:c1 + 1].all(), obj.name
        px, py = obj.x + sx / 2 + 0.08, obj.y
        inside_other = any(
            o.name != obj.name and abs(px - o.x) < max(o.size[:2]) / 2 + 0.1
            and abs(py - o.y) < max(o.size[:2]) / 2 + 0.1 for o in layout.obstacles())
        if not inside_other:
            r, c = grid.world_to_cell(px, py)
            assert not grid.occupied[r, c], obj.name


def test_cli_and_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / 'm.yaml'), '--resolution', '0.1', '--seed', '3']) == 0
    assert read_pgm(tmp_path / 'm.pgm').shape == (164, 244)
    stations = (tmp_path / 'm_stations.yaml').read_text()
    assert 'tag_size: 0.24' in stations and 'pose: [11, -4, 0]' in stations
    assert main([str(tmp_path / 'm.yaml'), '--resolution', '0']) == 2
    assert 'resolution' in capsys.readouterr().err
    with pytest.raises(SimError):
        write_map_server(rasterize(build_layout()), tmp_path / 'm.png')
