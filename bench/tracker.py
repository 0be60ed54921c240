"""Tracker benchmark: synthetic sequences with ground truth -> MOTA, IDF1, id switches, speed.

Each frame holds `objects` moving boxes (constant velocity with random acceleration, bouncing
off the image borders; now and then an object leaves and a new one enters). Detections: each
object is missed with probability `miss_rate`, otherwise reported with jittered corners; a
share of the reported ones get a low score (as when partly occluded), which only the
tracker's second, low-score pass can use; false positives (random boxes, random scores) are
added at `fp_rate` per object. Speed is tracker.update() alone, over the whole sequence.

Run:  python bench/tracker.py [--frames 900] [--objects 20] [--seed 1]
Writes bench/results/tracker.json {mota, idf1, id_switches, frames_per_s, ...}.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from kpai_perception.tracking import ByteTracker, Detection, TrackerConfig
from kpai_perception.tracking.metrics import MotAccumulator, MotSummary

CLASSES = ('person', 'pallet', 'box')
RESULTS = Path(__file__).resolve().parent / 'results' / 'tracker.json'


@dataclass
class Frame:
    """One synthetic frame: stamp, ground truth (ids, corner boxes) and detections."""

    stamp: float
    gt_ids: list[int]
    gt_boxes: np.ndarray
    detections: list[Detection] = field(default_factory=list)


def make_sequence(*, frames: int = 900, objects: int = 20, fps: float = 30.0,
                  size: tuple[int, int] = (1280, 720), miss_rate: float = 0.10,
                  fp_rate: float = 0.05, low_score_rate: float = 0.10,
                  jitter_px: float = 2.0, jitter_rel: float = 0.02,
                  replace_rate: float = 1 / 300, seed: int = 1) -> list[Frame]:
    """Generate a sequence of frames with ground truth and noisy detections."""
    rng = np.random.default_rng(seed)
    width, height = size
    next_id = 0

    def spawn() -> dict:
        nonlocal next_id
        next_id += 1
        h = rng.uniform(50, 200)
        w = h * rng.uniform(0.4, 1.0)
        return {'id': next_id, 'cls': CLASSES[rng.integers(len(CLASSES))],
                'pos': np.array([rng.uniform(w, width - w), rng.uniform(h, height - h)]),
                'vel': rng.uniform([-150, -60], [150, 60]), 'wh': np.array([w, h])}

    live = [spawn() for _ in range(objects)]
    dt = 1.0 / fps
    out: list[Frame] = []
    for k in range(frames):
        for i, obj in enumerate(live):
            if rng.random() < replace_rate:
                live[i] = obj = spawn()
            obj['vel'] += rng.normal(0.0, 60.0, 2) * dt
            obj['pos'] += obj['vel'] * dt
            half = obj['wh'] / 2
            for axis, limit in ((0, width), (1, height)):
                if obj['pos'][axis] < half[axis] or obj['pos'][axis] > limit - half[axis]:
                    obj['vel'][axis] = -obj['vel'][axis]
                    obj['pos'][axis] = np.clip(obj['pos'][axis], half[axis],
                                               limit - half[axis])
        ids = [o['id'] for o in live]
        boxes = np.array([np.concatenate([o['pos'] - o['wh'] / 2, o['pos'] + o['wh'] / 2])
                          for o in live])
        dets: list[Detection] = []
        for o, box in zip(live, boxes, strict=True):
            if rng.random() < miss_rate:
                continue
            noise = rng.normal(0.0, 1.0, 4) * (jitter_px + jitter_rel * o['wh'][1])
            b = box + noise
            score = (rng.uniform(0.15, 0.45) if rng.random() < low_score_rate
                     else rng.uniform(0.6, 1.0))
            dets.append(Detection(b[0], b[1], b[2], b[3], score, o['cls']))
        for _ in range(rng.poisson(fp_rate * objects)):
            h = rng.uniform(40, 200)
            w = h * rng.uniform(0.4, 1.0)
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            dets.append(Detection.from_center(cx, cy, w, h, rng.uniform(0.1, 0.8),
                                              CLASSES[rng.integers(len(CLASSES))]))
        rng.shuffle(dets)  # type: ignore[arg-type]
        out.append(Frame(k * dt, ids, boxes, dets))
    return out


def evaluate(frames: list[Frame], config: TrackerConfig | None = None
             ) -> tuple[MotSummary, float]:
    """Run the tracker over frames; return the metrics and tracked frames per second."""
    tracker = ByteTracker(config)
    outputs = []
    t0 = time.perf_counter()
    for f in frames:
        outputs.append(tracker.update(f.detections, f.stamp))
    elapsed = time.perf_counter() - t0
    acc = MotAccumulator(iou_threshold=0.5)
    for f, tracks in zip(frames, outputs, strict=True):
        acc.update(f.gt_ids, f.gt_boxes, [t.id for t in tracks],
                   np.array([t.box for t in tracks]).reshape(-1, 4))
    return acc.summary(), len(frames) / elapsed if elapsed > 0 else float('inf')


def main() -> None:
    """Run the benchmark, print the figures and write bench/results/tracker.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=900)
    parser.add_argument('--objects', type=int, default=20)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--output', type=Path, default=RESULTS)
    args = parser.parse_args()
    frames = make_sequence(frames=args.frames, objects=args.objects, seed=args.seed)
    summary, fps = evaluate(frames)
    result = {
        'mota': round(summary.mota, 4), 'idf1': round(summary.idf1, 4),
        'id_switches': summary.id_switches, 'frames_per_s': round(fps, 1),
        'frames': args.frames, 'objects_per_frame': args.objects, 'seed': args.seed,
        'misses': summary.misses, 'false_positives': summary.false_positives,
        'ground_truth': summary.num_gt, 'motp_iou': round(summary.motp_iou, 4),
        'scenario': {'miss_rate': 0.10, 'false_positive_rate': 0.05, 'low_score_rate': 0.10,
                     'jitter': '2 px + 2% of box height (1 sigma, per corner)', 'fps': 30,
                     'image': '1280x720'},
        'targets': {'mota': 0.9, 'idf1': 0.85, 'frames_per_s': 200},
    }
    for key in ('mota', 'idf1', 'id_switches', 'frames_per_s', 'misses', 'false_positives',
                'ground_truth'):
        print(f'{key:>16}: {result[key]}')
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + '\n')
    print(f'wrote {args.output}')


if __name__ == '__main__':
    main()
