"""KPAI topics beside the VDA 5050 ones: camera thumbnails on request, tracked objects.

VDA 5050 2.0 defines the topics order, instantActions, state, visualization, connection and
factsheet; `visualization` carries the vehicle's position only. The stack adds three topics
on the same <interface>/<v>/<manufacturer>/<serial>/ level, named `kpai...` so that no VDA
5050 topic name can collide:

- `kpaiCameraRequest` (server -> vehicle, QoS 0, JSON): send thumbnails for `leaseS` seconds.
  The server renews the lease while a dashboard shows the camera; without a live lease the
  vehicle does not even subscribe to its camera.
- `kpaiCamera` (vehicle -> server, QoS 0): one JPEG, raw bytes (no JSON around them).
- `kpaiObjects` (vehicle -> server, QoS 0, JSON): the tracked people and objects in the map.

Every parser here bounds its input before it looks inside, and never raises anything but
ValidationRejected.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from kpai_fleet.errors import ValidationRejected
from kpai_fleet.vda5050.guard import check_json_bytes

__all__ = ['CAMERA', 'CAMERA_REQUEST', 'KPAI_AGV_TOPICS', 'KPAI_MASTER_TOPICS', 'MAX_CLASS_CHARS',
           'MAX_JPEG_BYTES', 'MAX_JPEG_SIDE', 'MAX_LEASE_S', 'MAX_OBJECTS', 'OBJECTS',
           'CameraRequest', 'TrackedObject', 'build_camera_request', 'build_objects',
           'jpeg_size', 'parse_camera_request', 'parse_objects']

CAMERA_REQUEST = 'kpaiCameraRequest'
CAMERA = 'kpaiCamera'
OBJECTS = 'kpaiObjects'
KPAI_AGV_TOPICS = (CAMERA, OBJECTS)
KPAI_MASTER_TOPICS = (CAMERA_REQUEST,)

MAX_LEASE_S = 10.0         # a request keeps thumbnails coming at most this long
MAX_JPEG_BYTES = 128 * 1024  # a 320x240 thumbnail at quality 70 is ~15 KB
MAX_JPEG_SIDE = 1280
MAX_OBJECTS = 64
MAX_CLASS_CHARS = 32
_MAX_REQUEST_BYTES = 1024
_MAX_OBJECTS_BYTES = 16 * 1024
_MAX_COORD = 1e6


@dataclass(frozen=True)
class CameraRequest:
    """Send thumbnails until lease_s from now, at most one per period_s, max_width wide."""

    lease_s: float = 5.0
    period_s: float = 1.0
    max_width: int = 320


def build_camera_request(req: CameraRequest) -> bytes:
    """Return the JSON payload of a camera request."""
    return json.dumps({'leaseS': req.lease_s, 'periodS': req.period_s,
                       'maxWidth': req.max_width}).encode()


def _load(payload: bytes, max_bytes: int, what: str) -> Any:
    check_json_bytes(payload, max_bytes=max_bytes)
    try:
        return json.loads(payload)
    except (ValueError, RecursionError) as err:
        raise ValidationRejected(f'malformed JSON in {what}: {err}') from None


def _number(raw: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    v = raw.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValidationRejected(f'{key} must be a number')
    return min(hi, max(lo, float(v)))


def parse_camera_request(payload: bytes) -> CameraRequest:
    """Validate a camera request; out-of-range values are clamped to what the vehicle allows."""
    raw = _load(payload, _MAX_REQUEST_BYTES, CAMERA_REQUEST)
    if not isinstance(raw, dict):
        raise ValidationRejected(f'{CAMERA_REQUEST} must be a JSON object')
    return CameraRequest(lease_s=_number(raw, 'leaseS', 5.0, 0.0, MAX_LEASE_S),
                         period_s=_number(raw, 'periodS', 1.0, 0.5, 10.0),
                         max_width=int(_number(raw, 'maxWidth', 320, 64, 640)))


@dataclass(frozen=True)
class TrackedObject:
    """One tracked person or object in the map frame."""

    id: int
    class_id: str
    x: float
    y: float
    vx: float = 0.0
    vy: float = 0.0
    score: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """Return the wire form (camelCase like VDA 5050)."""
        return {'id': self.id, 'classId': self.class_id, 'x': round(self.x, 3),
                'y': round(self.y, 3), 'vx': round(self.vx, 3), 'vy': round(self.vy, 3),
                'score': round(self.score, 3)}


def build_objects(objects: list[TrackedObject], *, map_id: str, timestamp: str) -> bytes:
    """Return the JSON payload of a kpaiObjects message (at most MAX_OBJECTS objects)."""
    return json.dumps({'timestamp': timestamp, 'mapId': map_id,
                       'objects': [o.to_json() for o in objects[:MAX_OBJECTS]]}).encode()


def parse_objects(payload: bytes) -> tuple[str, list[TrackedObject]]:
    """Validate a kpaiObjects payload; return its mapId and objects."""
    raw = _load(payload, _MAX_OBJECTS_BYTES, OBJECTS)
    if not isinstance(raw, dict) or not isinstance(raw.get('objects'), list):
        raise ValidationRejected(f'{OBJECTS} must be an object with a list `objects`')
    map_id = raw.get('mapId', '')
    if not isinstance(map_id, str) or len(map_id) > 64:
        raise ValidationRejected('mapId must be a string of at most 64 characters')
    items = raw['objects']
    if len(items) > MAX_OBJECTS:
        raise ValidationRejected(f'{len(items)} objects (at most {MAX_OBJECTS})')
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise ValidationRejected('each object must be a JSON object')
        oid = item.get('id')
        cls = item.get('classId')
        if isinstance(oid, bool) or not isinstance(oid, int) or not 0 <= oid < 2 ** 63:
            raise ValidationRejected('object id must be an integer >= 0')
        if not isinstance(cls, str) or not 0 < len(cls) <= MAX_CLASS_CHARS:
            raise ValidationRejected(f'classId must be 1 to {MAX_CLASS_CHARS} characters')
        out.append(TrackedObject(
            oid, cls, _coord(item, 'x'), _coord(item, 'y'), _number(item, 'vx', 0.0, -100, 100),
            _number(item, 'vy', 0.0, -100, 100), _number(item, 'score', 0.0, 0.0, 1.0)))
    return map_id, out


def _coord(item: dict[str, Any], key: str) -> float:
    v = item.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (
            math.isfinite(v) and abs(v) <= _MAX_COORD):
        raise ValidationRejected(f'object {key} must be a finite number')
    return float(v)


def jpeg_size(data: bytes, *, max_bytes: int = MAX_JPEG_BYTES) -> tuple[int, int]:
    """Return (width, height) of a baseline/progressive JPEG; ValidationRejected if it is not
    one, is larger than max_bytes or wider or higher than MAX_JPEG_SIDE.

    Only the marker structure is read (no pixel is decoded): enough to refuse what is not a
    bounded JPEG before it is kept or served to a browser.
    """
    if len(data) > max_bytes:
        raise ValidationRejected(f'image of {len(data)} bytes exceeds {max_bytes}')
    if data[:3] != b'\xff\xd8\xff' or data[-2:] != b'\xff\xd9':
        raise ValidationRejected('not a JPEG (no start/end of image marker)')
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ValidationRejected('not a JPEG (broken marker structure)')
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2:i + 4], 'big')
        if length < 2:
            raise ValidationRejected('not a JPEG (bad segment length)')
        if marker in (0xC0, 0xC1, 0xC2):  # start of frame: baseline, extended, progressive
            if i + 9 > len(data):
                break
            h = int.from_bytes(data[i + 5:i + 7], 'big')
            w = int.from_bytes(data[i + 7:i + 9], 'big')
            if not (0 < w <= MAX_JPEG_SIDE and 0 < h <= MAX_JPEG_SIDE):
                raise ValidationRejected(f'JPEG of {w}x{h} (at most {MAX_JPEG_SIDE} a side)')
            return w, h
        if marker == 0xDA:  # start of scan before any frame header
            break
        i += 2 + length
    raise ValidationRejected('not a JPEG (no frame header)')
