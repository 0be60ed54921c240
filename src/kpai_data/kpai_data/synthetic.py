"""Synthetic recordings (drawn shapes + exact boxes) for tests and pipeline checks.

Not a substitute for the simulation: objects are flat coloured shapes. The files have the
same topics, types and header pairing as the simulation's camera and ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from mcap_ros2.writer import Writer as Ros2Writer

from .labels import DEFAULT_CLASSES
from .msgdefs import MessageDefinitions

__all__ = ['SHAPES', 'draw_scene', 'write_synthetic_recording']

# class -> (rgb colour, width/height aspect, relative size)
SHAPES: dict[str, tuple[tuple[int, int, int], float, float]] = {
    'person': ((230, 120, 40), 0.4, 0.45),
    'pallet': ((150, 100, 50), 2.5, 0.2),
    'box': ((200, 170, 110), 1.0, 0.22),
    'robot': ((40, 90, 220), 1.4, 0.25),
    'rack': ((120, 120, 130), 0.8, 0.6),
}


def draw_scene(rng: np.random.Generator, width: int, height: int,
               objects: Sequence[tuple[str, float, float, float]]) -> tuple[np.ndarray, list]:
    """Draw objects (label, cx, cy, scale in 0..1) on a floor; return image and pixel boxes."""
    yy = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    floor = (np.array([90, 95, 100], np.float32) + 60 * yy).repeat(width, axis=1)
    img = np.clip(floor + rng.normal(0, 4, (height, width, 3)), 0, 255).astype(np.uint8)
    boxes = []
    for label, cx, cy, scale in objects:
        colour, aspect, size = SHAPES[label]
        h = max(4, int(size * scale * height))
        w = max(4, int(h * aspect))
        x1, y1 = int(cx * width - w / 2), int(cy * height - h / 2)
        x2, y2 = x1 + w, y1 + h
        xa, ya, xb, yb = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
        if xb - xa < 2 or yb - ya < 2:
            continue
        img[ya:yb, xa:xb] = colour
        if label == 'person':  # a darker head on top
            img[ya:ya + max(1, (yb - ya) // 5), xa:xb] = (90, 60, 40)
        elif label == 'robot':  # wheels
            img[max(ya, yb - 3):yb, xa:xb] = (20, 20, 20)
        elif label == 'rack':  # shelves
            img[ya:yb:max(2, (yb - ya) // 4), xa:xb] = (60, 60, 60)
        boxes.append((label, float(xa), float(ya), float(xb), float(yb)))
    return img, boxes


def _header(stamp_ns: int, frame: str) -> dict[str, Any]:
    return {'stamp': {'sec': stamp_ns // 10**9, 'nanosec': stamp_ns % 10**9}, 'frame_id': frame}


def _detections(header: dict[str, Any], boxes: list) -> dict[str, Any]:
    dets = []
    for i, (label, x1, y1, x2, y2) in enumerate(boxes):
        pose = {'pose': {'position': {'x': 0.0, 'y': 0.0, 'z': 0.0},
                         'orientation': {'x': 0.0, 'y': 0.0, 'z': 0.0, 'w': 1.0}},
                'covariance': [0.0] * 36}
        dets.append({'header': header,
                     'results': [{'hypothesis': {'class_id': label, 'score': 1.0},
                                  'pose': pose}],
                     'bbox': {'center': {'position': {'x': (x1 + x2) / 2, 'y': (y1 + y2) / 2},
                                         'theta': 0.0},
                              'size_x': x2 - x1, 'size_y': y2 - y1},
                     'id': str(i)})
    return {'header': header, 'detections': dets}


def write_synthetic_recording(path: str | Path, *, frames: int = 40, robots: int = 1,
                              width: int = 160, height: int = 120, seed: int = 0,
                              classes: Sequence[str] = DEFAULT_CLASSES[:4],
                              still_every: int = 0) -> Path:
    """Write an MCAP file with per-robot camera images and ground-truth detections.

    Objects drift between frames; with still_every > 0 every such frame repeats the previous
    image exactly (to exercise near-duplicate removal).
    """
    rng = np.random.default_rng(seed)
    defs = MessageDefinitions()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'wb') as stream:
        writer = Ros2Writer(stream)
        img_schema = writer.register_msgdef('sensor_msgs/msg/Image',
                                            defs.full_text('sensor_msgs/msg/Image'))
        det_schema = writer.register_msgdef('vision_msgs/msg/Detection2DArray',
                                            defs.full_text('vision_msgs/msg/Detection2DArray'))
        for r in range(1, robots + 1):
            objects = [(str(rng.choice(list(classes))), rng.uniform(0.1, 0.9),
                        rng.uniform(0.3, 0.8), rng.uniform(0.6, 1.4)) for _ in range(4)]
            velocity = rng.normal(0, 0.01, (len(objects), 2))
            previous = None
            for f in range(frames):
                stamp = 1_000_000_000 + f * 100_000_000 + r * 1000
                header = _header(stamp, f'robot{r}/camera_optical')
                if still_every and previous is not None and f % still_every == 0:
                    img, boxes = previous
                else:
                    objects = [(lbl, float(np.clip(cx + v[0], 0.05, 0.95)),
                                float(np.clip(cy + v[1], 0.2, 0.9)), s)
                               for (lbl, cx, cy, s), v in zip(objects, velocity, strict=True)]
                    img, boxes = draw_scene(rng, width, height, objects)
                previous = (img, boxes)
                ns = f'/robot{r}'
                writer.write_message(f'{ns}/camera/image_raw', img_schema, {
                    'header': header, 'height': height, 'width': width, 'encoding': 'rgb8',
                    'is_bigendian': 0, 'step': width * 3, 'data': img.tobytes()},
                    log_time=stamp, publish_time=stamp)
                # ground truth arrives just after its image, as from the simulation
                writer.write_message(f'{ns}/ground_truth/detections', det_schema,
                                     _detections(header, boxes), log_time=stamp + 1,
                                     publish_time=stamp + 1)
        writer.finish()
    return path
