"""Draw tracks, labels and safety fields onto RGB images (pure, OpenCV)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from kpai_perception.geometry.camera import CameraModel
from kpai_perception.geometry.transform import Transform

__all__ = ['TrackBox', 'class_colour', 'draw_banner', 'draw_floor_polygon', 'draw_tracks']

_PALETTE = {'person': (255, 64, 64), 'pallet': (64, 160, 255), 'box': (255, 190, 0),
            'robot': (160, 90, 255), 'rack': (0, 200, 120)}
STATE_COLOURS = {0: (40, 200, 40), 1: (255, 190, 0), 2: (230, 30, 30), 3: (200, 0, 200)}


@dataclass(frozen=True)
class TrackBox:
    """What is drawn for one track."""

    track_id: int
    class_id: str
    score: float
    cx: float
    cy: float
    width: float
    height: float
    distance: float | None = None  # metres, shown when known
    coasting: bool = False         # drawn dashed-looking (thin) when not updated this frame


def class_colour(class_id: str) -> tuple[int, int, int]:
    """Return a stable RGB colour for a class label."""
    if class_id in _PALETTE:
        return _PALETTE[class_id]
    h = sum(ord(c) * 31 ** i for i, c in enumerate(class_id)) % 180
    hsv = np.array([[[h, 200, 255]]], dtype=np.uint8)
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def draw_tracks(image: np.ndarray, tracks: Sequence[TrackBox]) -> int:
    """Draw boxes and 'id class score [distance]' labels in place; return how many were drawn.

    Boxes partly outside the image are clipped; non-finite ones are skipped.
    """
    h, w = image.shape[:2]
    drawn = 0
    for t in tracks:
        if not _finite(t.cx, t.cy, t.width, t.height) or t.width <= 0 or t.height <= 0:
            continue
        x1, y1 = int(round(t.cx - t.width / 2)), int(round(t.cy - t.height / 2))
        x2, y2 = int(round(t.cx + t.width / 2)), int(round(t.cy + t.height / 2))
        if x2 < 0 or y2 < 0 or x1 >= w or y1 >= h:
            continue
        colour = class_colour(t.class_id)
        cv2.rectangle(image, (max(x1, 0), max(y1, 0)), (min(x2, w - 1), min(y2, h - 1)),
                      colour, 1 if t.coasting else 2)
        label = f'{t.track_id} {t.class_id} {t.score:.2f}'
        if t.distance is not None and math.isfinite(t.distance):
            label += f' {t.distance:.1f}m'
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        ty = max(y1, th + base + 1)
        tx = min(max(x1, 0), max(w - tw - 1, 0))
        cv2.rectangle(image, (tx, ty - th - base - 1), (tx + tw + 1, ty), colour, -1)
        cv2.putText(image, label, (tx + 1, ty - base), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
        drawn += 1
    return drawn


def draw_floor_polygon(image: np.ndarray, polygon: np.ndarray, camera: CameraModel,
                       camera_from_base: Transform, colour: tuple[int, int, int], *,
                       samples_per_m: float = 20.0, min_depth: float = 0.05) -> bool:
    """Draw a floor polygon (base frame, z = 0) as seen by the camera; False if not visible.

    Edges are sampled densely so distortion bends them correctly; points behind the camera
    or closer than min_depth are left out.
    """
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    pts: list[np.ndarray] = []
    for i in range(len(poly)):
        a, b = poly[i], poly[(i + 1) % len(poly)]
        n = max(2, int(np.linalg.norm(b - a) * samples_per_m))
        t = np.linspace(0.0, 1.0, n, endpoint=False)[:, None]
        pts.append(a + t * (b - a))
    floor = np.concatenate(pts)
    cam_pts = camera_from_base.apply(np.column_stack([floor, np.zeros(len(floor))]))
    visible = cam_pts[:, 2] > min_depth
    if visible.sum() < 2:
        return False
    drawn = False
    # split into runs of visible points so the line never jumps across hidden stretches
    idx = np.flatnonzero(visible)
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    for run in runs:
        if len(run) < 2:
            continue
        uv = camera.project(cam_pts[run])
        ok = np.all(np.isfinite(uv), axis=1) & (np.abs(uv) < 1e5).all(axis=1)
        if ok.sum() < 2:
            continue
        cv2.polylines(image, [np.round(uv[ok]).astype(np.int32).reshape(-1, 1, 2)], False,
                      colour, 2, cv2.LINE_AA)
        drawn = True
    return drawn


def draw_banner(image: np.ndarray, text: str, colour: tuple[int, int, int]) -> None:
    """Write a one-line status banner across the top of the image."""
    h, w = image.shape[:2]
    bar = max(14, h // 16)
    cv2.rectangle(image, (0, 0), (w - 1, bar), colour, -1)
    cv2.putText(image, text[:120], (3, bar - 4), cv2.FONT_HERSHEY_SIMPLEX, bar / 36.0,
                (0, 0, 0), 1, cv2.LINE_AA)
