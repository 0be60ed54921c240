"""Occupancy maps in the ROS map_server format (YAML + PGM/PNG): load, save, cell geometry."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .errors import MapFormatError

__all__ = [
    'FREE',
    'OCCUPIED',
    'UNKNOWN',
    'OccupancyMap',
    'convert_image',
    'load_map',
    'read_pgm',
    'save_map',
    'write_pgm',
]

FREE = 0
OCCUPIED = 100
UNKNOWN = -1
_MODES = ('trinary', 'scale', 'raw')


@dataclass(frozen=True)
class OccupancyMap:
    """An occupancy grid: data[row, col] in {-1, 0..100}, row 0 at the origin's y (bottom)."""

    data: np.ndarray
    resolution: float
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    frame_id: str = 'map'
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.data.ndim != 2 or self.data.size == 0:
            raise MapFormatError(f'map data must be a non-empty 2-D array, got {self.data.shape}')
        if not (math.isfinite(self.resolution) and self.resolution > 0):
            raise MapFormatError(f'resolution must be finite and > 0, got {self.resolution}')
        if not all(math.isfinite(v) for v in self.origin):
            raise MapFormatError(f'origin must be finite, got {self.origin}')

    @property
    def height(self) -> int:
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        return int(self.data.shape[1])

    def world_to_cell(self, x: Any, y: Any) -> tuple[Any, Any]:
        """Return (row, col) integer indices of world points (may lie outside the grid)."""
        ox, oy, yaw = self.origin
        dx = np.asarray(x, dtype=float) - ox
        dy = np.asarray(y, dtype=float) - oy
        if yaw:
            c, s = math.cos(yaw), math.sin(yaw)
            dx, dy = c * dx + s * dy, -s * dx + c * dy
        col = np.floor(dx / self.resolution).astype(np.int64)
        row = np.floor(dy / self.resolution).astype(np.int64)
        return row, col

    def cell_to_world(self, row: Any, col: Any) -> tuple[Any, Any]:
        """Return world (x, y) of cell centres."""
        ox, oy, yaw = self.origin
        lx = (np.asarray(col, dtype=float) + 0.5) * self.resolution
        ly = (np.asarray(row, dtype=float) + 0.5) * self.resolution
        if yaw:
            c, s = math.cos(yaw), math.sin(yaw)
            lx, ly = c * lx - s * ly, s * lx + c * ly
        return lx + ox, ly + oy

    def in_bounds(self, row: Any, col: Any) -> Any:
        """Return True where (row, col) lies inside the grid."""
        row = np.asarray(row)
        col = np.asarray(col)
        return (row >= 0) & (row < self.height) & (col >= 0) & (col < self.width)


def read_pgm(path: str | Path) -> np.ndarray:
    """Read a binary (P5) or ASCII (P2) PGM file into a 2-D uint8/uint16 array (row 0 = top)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise MapFormatError(f'cannot read map image {path}: {err.strerror}') from err
    magic = raw[:2]
    if magic not in (b'P5', b'P2'):
        raise MapFormatError(f'{path}: not a PGM file (magic {magic!r}, expected P5 or P2)')
    # header: magic, width, height, maxval separated by whitespace, '#' comments to end of line
    tokens: list[int] = []
    pos = 2
    token_re = re.compile(rb'\s*(?:#[^\n]*\n\s*)*(\d+)')
    while len(tokens) < 3:
        m = token_re.match(raw, pos)
        if m is None:
            raise MapFormatError(f'{path}: truncated or malformed PGM header')
        tokens.append(int(m.group(1)))
        pos = m.end()
    width, height, maxval = tokens
    if width <= 0 or height <= 0 or not 0 < maxval < 65536:
        raise MapFormatError(f'{path}: bad PGM header {width}x{height} maxval {maxval}')
    dtype = np.uint8 if maxval < 256 else np.dtype('>u2')
    if magic == b'P5':
        pos += 1  # exactly one whitespace byte after maxval
        count = width * height
        need = count * np.dtype(dtype).itemsize
        if len(raw) - pos < need:
            raise MapFormatError(
                f'{path}: PGM data truncated ({len(raw) - pos} bytes, need {need})')
        img = np.frombuffer(raw, dtype=dtype, count=count, offset=pos).reshape(height, width)
    else:
        body = re.sub(rb'#[^\n]*', b'', raw[pos:]).split()
        if len(body) < width * height:
            raise MapFormatError(
                f'{path}: PGM data truncated ({len(body)} values, need {width * height})')
        try:
            values = np.array([int(v) for v in body[: width * height]], dtype=np.int64)
        except ValueError as err:
            raise MapFormatError(f'{path}: non-numeric value in P2 data') from err
        if values.max(initial=0) > maxval:
            raise MapFormatError(f'{path}: P2 value above maxval {maxval}')
        img = values.reshape(height, width)
    if maxval != 255:
        img = np.round(img.astype(np.float64) * (255.0 / maxval))
    return np.ascontiguousarray(img, dtype=np.uint8)


def write_pgm(path: str | Path, image: np.ndarray) -> None:
    """Write a 2-D uint8 array as a binary P5 PGM (row 0 = top)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 2:
        raise MapFormatError(f'PGM image must be 2-D, got shape {image.shape}')
    header = f'P5\n# CREATOR: kpai_planning.mapio\n{image.shape[1]} {image.shape[0]}\n255\n'
    Path(path).write_bytes(header.encode('ascii') + image.tobytes())


def _read_image(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Return (gray uint8 image, alpha or None), row 0 = top."""
    if path.suffix.lower() == '.pgm':
        return read_pgm(path), None
    if not path.is_file():
        raise MapFormatError(f'map image not found: {path}')
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise MapFormatError(f'{path}: unreadable or unsupported image format')
    if img.dtype == np.uint16:  # 16-bit PNG: scale to 8 bits
        img = (img.astype(np.float64) * (255.0 / 65535.0)).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        raise MapFormatError(f'{path}: unsupported image depth {img.dtype}')
    alpha = None
    if img.ndim == 3:
        if img.shape[2] == 4:
            alpha = img[:, :, 3]
        img = img[:, :, :3].mean(axis=2).round().astype(np.uint8)  # map_server averages colours
    return img, alpha


def _number(doc: dict[str, Any], key: str, default: float | None, path: Path) -> float:
    value = doc.get(key, default)
    if value is None:
        raise MapFormatError(f'{path}: missing required key {key!r}')
    try:
        out = float(value)
    except (TypeError, ValueError) as err:
        raise MapFormatError(f'{path}: {key!r} must be a number, got {value!r}') from err
    if not math.isfinite(out):
        raise MapFormatError(f'{path}: {key!r} must be finite, got {value!r}')
    return out


def load_map(yaml_path: str | Path) -> OccupancyMap:
    """Load a map_server YAML file and its image into an OccupancyMap."""
    yaml_path = Path(yaml_path)
    try:
        doc = yaml.safe_load(yaml_path.read_text())
    except OSError as err:
        raise MapFormatError(f'cannot read map file {yaml_path}: {err.strerror}') from err
    except yaml.YAMLError as err:
        raise MapFormatError(f'{yaml_path}: invalid YAML: {err}') from err
    if not isinstance(doc, dict):
        raise MapFormatError(f'{yaml_path}: expected a mapping at the top level')
    image = doc.get('image')
    if not isinstance(image, str) or not image:
        raise MapFormatError(f"{yaml_path}: missing required key 'image'")
    resolution = _number(doc, 'resolution', None, yaml_path)
    if resolution <= 0:
        raise MapFormatError(f'{yaml_path}: resolution must be > 0, got {resolution}')
    origin = doc.get('origin')
    if not (isinstance(origin, (list, tuple)) and len(origin) == 3):
        raise MapFormatError(f'{yaml_path}: origin must be a list [x, y, yaw], got {origin!r}')
    try:
        origin_t = (float(origin[0]), float(origin[1]), float(origin[2]))
    except (TypeError, ValueError) as err:
        raise MapFormatError(f'{yaml_path}: origin values must be numbers: {origin!r}') from err
    negate = doc.get('negate', 0)
    if negate not in (0, 1, True, False):
        raise MapFormatError(f'{yaml_path}: negate must be 0 or 1, got {negate!r}')
    occ_t = _number(doc, 'occupied_thresh', 0.65, yaml_path)
    free_t = _number(doc, 'free_thresh', 0.25, yaml_path)
    if not 0.0 <= free_t < occ_t <= 1.0:
        raise MapFormatError(
            f'{yaml_path}: need 0 <= free_thresh < occupied_thresh <= 1, got {free_t}, {occ_t}')
    mode = str(doc.get('mode', 'trinary'))
    if mode not in _MODES:
        raise MapFormatError(f'{yaml_path}: mode must be one of {_MODES}, got {mode!r}')
    img_path = Path(image)
    if not img_path.is_absolute():
        img_path = yaml_path.parent / img_path
    gray, alpha = _read_image(img_path)
    data = convert_image(gray, alpha, mode=mode, negate=bool(negate), occupied_thresh=occ_t,
                         free_thresh=free_t)
    meta = {'image': str(img_path), 'mode': mode, 'negate': int(bool(negate)),
            'occupied_thresh': occ_t, 'free_thresh': free_t}
    return OccupancyMap(np.flipud(data).copy(), resolution, origin_t, meta=meta)


def convert_image(gray: np.ndarray, alpha: np.ndarray | None = None, *, mode: str = 'trinary',
                  negate: bool = False, occupied_thresh: float = 0.65,
                  free_thresh: float = 0.25) -> np.ndarray:
    """Convert a gray image (row 0 = top) to occupancy values following map_server rules."""
    gray = np.asarray(gray, dtype=np.uint8)
    if mode == 'raw':
        return gray.astype(np.int16).clip(max=255).astype(np.int8)
    occ = gray.astype(np.float64) / 255.0 if negate else (255.0 - gray) / 255.0
    out = np.full(gray.shape, UNKNOWN, dtype=np.int8)
    if mode == 'trinary':
        out[occ > occupied_thresh] = OCCUPIED
        out[occ < free_thresh] = FREE
    elif mode == 'scale':
        mid = (occ >= free_thresh) & (occ <= occupied_thresh)
        scaled = np.rint(99.0 * (occ - free_thresh) / (occupied_thresh - free_thresh))
        out[mid] = scaled[mid].astype(np.int8)
        out[occ > occupied_thresh] = OCCUPIED
        out[occ < free_thresh] = FREE
        if alpha is not None:
            out[np.asarray(alpha) < 255] = UNKNOWN
    else:
        raise MapFormatError(f'unknown map mode {mode!r}')
    return out


def save_map(grid: OccupancyMap, yaml_path: str | Path, *, image_format: str = 'pgm',
             occupied_thresh: float = 0.65, free_thresh: float = 0.196) -> Path:
    """Save grid as map_server trinary YAML + image (free 254, occupied 0, unknown 205).

    free_thresh defaults to 0.196 so that the unknown gray (205) loads back as unknown.
    """
    yaml_path = Path(yaml_path)
    fmt = image_format.lower()
    if fmt not in ('pgm', 'png'):
        raise MapFormatError(f'image_format must be pgm or png, got {image_format!r}')
    data = np.asarray(grid.data)
    img = np.full(data.shape, 205, dtype=np.uint8)
    value = data.astype(np.int16)
    img[(value >= 0) & (value < free_thresh * 100)] = 254
    img[value > occupied_thresh * 100] = 0
    img = np.flipud(img)
    img_path = yaml_path.with_suffix('.' + fmt)
    if fmt == 'pgm':
        write_pgm(img_path, img)
    else:
        import cv2

        if not cv2.imwrite(str(img_path), img):
            raise MapFormatError(f'cannot write {img_path}')
    doc = {
        'image': img_path.name,
        'mode': 'trinary',
        'resolution': float(grid.resolution),
        'origin': [float(v) for v in grid.origin],
        'negate': 0,
        'occupied_thresh': occupied_thresh,
        'free_thresh': free_thresh,
    }
    yaml_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return img_path
