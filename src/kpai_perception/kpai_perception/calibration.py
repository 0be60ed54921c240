"""Parse and validate standard ROS camera_info YAML files (camera_calibration's format)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from kpai_perception.errors import CalibrationError

__all__ = ['Calibration', 'dump_calibration', 'load_calibration', 'parse_calibration']

_MATRICES = {  # key -> (rows, cols); None: any length (distortion)
    'camera_matrix': (3, 3),
    'distortion_coefficients': None,
    'rectification_matrix': (3, 3),
    'projection_matrix': (3, 4),
}


@dataclass(frozen=True)
class Calibration:
    """Contents of a camera_info YAML file."""

    width: int
    height: int
    camera_name: str
    k: tuple[float, ...]
    d: tuple[float, ...]
    r: tuple[float, ...]
    p: tuple[float, ...]
    distortion_model: str

    def to_camera_info(self, header: Any = None) -> Any:
        """Return a sensor_msgs/CameraInfo with these values."""
        from sensor_msgs.msg import CameraInfo

        msg = CameraInfo()
        if header is not None:
            msg.header = header
        msg.width, msg.height = self.width, self.height
        msg.distortion_model = self.distortion_model
        msg.k, msg.r, msg.p = list(self.k), list(self.r), list(self.p)
        msg.d = list(self.d)
        return msg


def _matrix(doc: dict[str, Any], key: str, shape: tuple[int, int] | None, where: str
            ) -> tuple[float, ...]:
    node = doc.get(key)
    if not isinstance(node, dict) or 'data' not in node:
        raise CalibrationError(f'{where}: {key} must be a mapping with rows, cols and data')
    data = node['data']
    if not isinstance(data, list):
        raise CalibrationError(f'{where}: {key}.data must be a list')
    try:
        values = tuple(float(v) for v in data)
        rows, cols = int(node.get('rows', 1)), int(node.get('cols', len(values)))
    except (TypeError, ValueError) as err:
        raise CalibrationError(f'{where}: {key} has a non-numeric value: {err}') from err
    if rows * cols != len(values):
        raise CalibrationError(
            f'{where}: {key} says {rows}x{cols} but has {len(values)} values')
    if shape is not None and (rows, cols) != shape:
        raise CalibrationError(f'{where}: {key} must be {shape[0]}x{shape[1]}, got {rows}x{cols}')
    if not all(math.isfinite(v) for v in values):
        raise CalibrationError(f'{where}: {key} contains NaN or inf')
    return values


def parse_calibration(text: str, *, source: str = '<string>') -> Calibration:
    """Parse camera_info YAML text; CalibrationError with the file and reason when invalid."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise CalibrationError(f'{source}: not valid YAML: {err}') from err
    if not isinstance(doc, dict):
        raise CalibrationError(f'{source}: expected a mapping at the top level')
    try:
        width, height = int(doc['image_width']), int(doc['image_height'])
    except KeyError as err:
        raise CalibrationError(f'{source}: missing {err.args[0]}') from err
    except (TypeError, ValueError) as err:
        raise CalibrationError(f'{source}: image size must be integers: {err}') from err
    if width <= 0 or height <= 0:
        raise CalibrationError(f'{source}: image size must be > 0, got {width}x{height}')
    mats = {key: _matrix(doc, key, shape, source) for key, shape in _MATRICES.items()}
    k = np.array(mats['camera_matrix']).reshape(3, 3)
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise CalibrationError(f'{source}: focal lengths must be > 0 (fx={k[0, 0]}, fy={k[1, 1]})')
    model = str(doc.get('distortion_model', 'plumb_bob'))
    expected = {'plumb_bob': (5,), 'rational_polynomial': (8, 14), 'equidistant': (4,)}
    if model not in expected:
        raise CalibrationError(f'{source}: unsupported distortion_model {model!r}')
    if len(mats['distortion_coefficients']) not in expected[model]:
        raise CalibrationError(
            f'{source}: {model} needs {" or ".join(map(str, expected[model]))} distortion '
            f'coefficients, got {len(mats["distortion_coefficients"])}')
    return Calibration(width, height, str(doc.get('camera_name', '')), mats['camera_matrix'],
                       mats['distortion_coefficients'], mats['rectification_matrix'],
                       mats['projection_matrix'], model)


def load_calibration(url: str) -> Calibration:
    """Load a camera_info YAML from a path or a file:// URL."""
    path = Path(url[len('file://'):] if url.startswith('file://') else url).expanduser()
    if '://' in str(url) and not url.startswith('file://'):
        raise CalibrationError(f'only file paths and file:// URLs are supported, got {url!r}')
    try:
        text = path.read_text()
    except OSError as err:
        raise CalibrationError(f'cannot read camera calibration {path}: {err}') from err
    return parse_calibration(text, source=str(path))


def dump_calibration(cal: Calibration) -> str:
    """Return cal as camera_info YAML text (the format parse_calibration reads)."""
    def mat(values: tuple[float, ...], rows: int, cols: int) -> dict[str, Any]:
        return {'rows': rows, 'cols': cols, 'data': [float(v) for v in values]}

    doc = {'image_width': cal.width, 'image_height': cal.height, 'camera_name': cal.camera_name,
           'camera_matrix': mat(cal.k, 3, 3), 'distortion_model': cal.distortion_model,
           'distortion_coefficients': mat(cal.d, 1, len(cal.d)),
           'rectification_matrix': mat(cal.r, 3, 3), 'projection_matrix': mat(cal.p, 3, 4)}
    return yaml.safe_dump(doc, sort_keys=False)
