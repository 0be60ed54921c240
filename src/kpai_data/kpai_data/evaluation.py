"""Evaluation reports of a trained detector (JSON + Markdown) and decoding of raw outputs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import ClassAP, nms

__all__ = ['decode_predictions', 'write_report']


def decode_predictions(output: np.ndarray, *, score: float = 0.001, iou: float = 0.45,
                       max_detections: int = 100, max_candidates: int = 300,
                       ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Decode [B, 4+C, A] (cx, cy, w, h, scores) into per-image (xyxy, scores, classes)."""
    results = []
    for pred in np.asarray(output, np.float32):
        boxes_cxcywh, scores = pred[:4].T, pred[4:].T
        xyxy = np.concatenate([boxes_cxcywh[:, :2] - boxes_cxcywh[:, 2:] / 2,
                               boxes_cxcywh[:, :2] + boxes_cxcywh[:, 2:] / 2], axis=1)
        # the best max_candidates (anchor, class) pairs above score go into per-class NMS
        flat = scores.ravel()
        cand = np.nonzero(flat > score)[0]
        if cand.size > max_candidates:
            cand = cand[np.argpartition(-flat[cand], max_candidates)[:max_candidates]]
        anchors, cls_of = np.divmod(cand, scores.shape[1])
        keep_b, keep_s, keep_c = [], [], []
        for c in np.unique(cls_of):
            idx = anchors[cls_of == c]
            idx = idx[np.argsort(-scores[idx, c], kind='stable')]
            kept = idx[nms(xyxy[idx], scores[idx, c], iou)]
            keep_b.append(xyxy[kept])
            keep_s.append(scores[kept, c])
            keep_c.append(np.full(kept.size, c))
        if not keep_b:
            results.append((np.zeros((0, 4)), np.zeros(0), np.zeros(0, int)))
            continue
        b, s, cl = np.concatenate(keep_b), np.concatenate(keep_s), np.concatenate(keep_c)
        order = np.argsort(-s)[:max_detections]
        results.append((b[order], s[order], cl[order]))
    return results


def write_report(out_dir: Path, name: str, *, classes: Sequence[str], map50: float,
                 per_class: Sequence[ClassAP], extra: dict[str, Any]) -> tuple[Path, Path]:
    """Write <name>.eval.json and <name>.eval.md with mAP@0.5 per class."""
    data: dict[str, Any] = {
        'model': name,
        'map50': round(map50, 4),
        'per_class': {
            c: {'ap50': None if r.ap is None else round(r.ap, 4), 'ground_truth': r.ground_truth,
                'detections': r.detections, 'true_positives': r.true_positives}
            for c, r in zip(classes, per_class, strict=True)},
        **extra,
    }
    json_path = out_dir / f'{name}.eval.json'
    json_path.write_text(json.dumps(data, indent=2) + '\n')
    lines = [f'# Evaluation of `{name}`', '',
             f'mAP@0.5 on the held-out split: **{map50:.3f}**', '',
             '| class | AP@0.5 | ground-truth boxes | detections | true positives |',
             '|---|---|---|---|---|']
    for c, r in zip(classes, per_class, strict=True):
        ap = 'n/a (no boxes)' if r.ap is None else f'{r.ap:.3f}'
        lines.append(f'| {c} | {ap} | {r.ground_truth} | {r.detections} | {r.true_positives} |')
    lines += ['', '| property | value |', '|---|---|']
    for key, value in extra.items():
        lines.append(f'| {key} | {value} |')
    md_path = out_dir / f'{name}.eval.md'
    md_path.write_text('\n'.join(lines) + '\n')
    return json_path, md_path
