"""Map loading/saving in the map_server format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kpai_planning.errors import MapFormatError
from kpai_planning.mapio import (
    OccupancyMap,
    convert_image,
    load_map,
    read_pgm,
    save_map,
    write_pgm,
)


def _grid() -> OccupancyMap:
    data = np.zeros((4, 6), dtype=np.int8)
    data[0, :] = 100
    data[2, 3] = -1
    return OccupancyMap(data, 0.05, (1.0, -2.0, 0.0))


def test_round_trip_pgm_and_png(tmp_path: Path) -> None:
    grid = _grid()
    for fmt in ('pgm', 'png'):
        yaml_path = tmp_path / f'map_{fmt}.yaml'
        save_map(grid, yaml_path, image_format=fmt)
        back = load_map(yaml_path)
        np.testing.assert_array_equal(back.data, grid.data)
        assert back.resolution == pytest.approx(0.05)
        assert back.origin == (1.0, -2.0, 0.0)


def test_bottom_row_of_image_is_row_zero(tmp_path: Path) -> None:
    img = np.full((3, 2), 254, dtype=np.uint8)
    img[2, 0] = 0  # bottom-left pixel occupied
    write_pgm(tmp_path / 'm.pgm', img)
    (tmp_path / 'm.yaml').write_text('image: m.pgm\nresolution: 0.1\norigin: [0, 0, 0]\n')
    grid = load_map(tmp_path / 'm.yaml')
    assert grid.data[0, 0] == 100
    assert grid.data.sum() == 100
    row, col = grid.world_to_cell(0.05, 0.05)
    assert (int(row), int(col)) == (0, 0)


def test_ascii_p2_with_comments(tmp_path: Path) -> None:
    (tmp_path / 'a.pgm').write_text('P2\n# comment\n3 2\n# another\n15\n0 15 7\n15 15 0\n')
    img = read_pgm(tmp_path / 'a.pgm')
    np.testing.assert_array_equal(img, [[0, 255, 119], [255, 255, 0]])


def test_modes_and_negate() -> None:
    gray = np.array([[0, 100, 128, 210, 255]], dtype=np.uint8)
    tri = convert_image(gray, occupied_thresh=0.65, free_thresh=0.196)
    np.testing.assert_array_equal(tri, [[100, -1, -1, 0, 0]])
    neg = convert_image(gray, negate=True, occupied_thresh=0.65, free_thresh=0.196)
    np.testing.assert_array_equal(neg, [[0, -1, -1, 100, 100]])
    scale = convert_image(gray, mode='scale', occupied_thresh=0.65, free_thresh=0.196)
    assert scale[0, 0] == 100 and scale[0, 4] == 0
    assert 0 < scale[0, 1] < 100 and scale[0, 2] < scale[0, 1]
    raw = convert_image(np.array([[0, 50, 100]], dtype=np.uint8), mode='raw')
    np.testing.assert_array_equal(raw, [[0, 50, 100]])


@pytest.mark.parametrize('text, needle', [
    ('resolution: 0.1\norigin: [0, 0, 0]\n', "'image'"),
    ('image: m.pgm\norigin: [0, 0, 0]\n', "'resolution'"),
    ('image: m.pgm\nresolution: -1\norigin: [0, 0, 0]\n', 'resolution must be > 0'),
    ('image: m.pgm\nresolution: 0.1\norigin: [0, 0]\n', 'origin'),
    ('image: m.pgm\nresolution: 0.1\norigin: [0, 0, 0]\nmode: fancy\n', 'mode'),
    ('image: m.pgm\nresolution: 0.1\norigin: [0, 0, 0]\nfree_thresh: 0.9\n', 'free_thresh'),
    ('image: missing.pgm\nresolution: 0.1\norigin: [0, 0, 0]\n', 'missing.pgm'),
    ('image: [unclosed\n', 'invalid YAML'),
])
def test_errors_are_clear(tmp_path: Path, text: str, needle: str) -> None:
    write_pgm(tmp_path / 'm.pgm', np.zeros((2, 2), dtype=np.uint8))
    (tmp_path / 'm.yaml').write_text(text)
    with pytest.raises(MapFormatError, match=None) as info:
        load_map(tmp_path / 'm.yaml')
    assert needle in str(info.value)


def test_truncated_and_non_pgm(tmp_path: Path) -> None:
    (tmp_path / 't.pgm').write_bytes(b'P5\n4 4\n255\n' + bytes(5))
    with pytest.raises(MapFormatError, match='truncated'):
        read_pgm(tmp_path / 't.pgm')
    (tmp_path / 'x.pgm').write_bytes(b'GIF89a')
    with pytest.raises(MapFormatError, match='not a PGM'):
        read_pgm(tmp_path / 'x.pgm')
    with pytest.raises(MapFormatError):
        load_map(tmp_path / 'nope.yaml')
