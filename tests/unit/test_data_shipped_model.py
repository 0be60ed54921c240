"""The shipped detector: manifest and report valid, and it finds objects in held-out sim frames."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from kpai_data.labels import read_yolo_labels
from kpai_data.metrics import box_iou, evaluate_map

MODELS = Path(__file__).resolve().parents[2] / 'src' / 'kpai_data' / 'models'
MODEL = MODELS / 'kpai_detector.onnx'
HELDOUT = MODELS / 'heldout'


def _frames() -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for image in sorted(HELDOUT.glob('*.jpg')):
        rgb = cv2.imread(str(image))[:, :, ::-1]
        labels = read_yolo_labels(image.with_suffix('.txt'), 5)
        h, w = rgb.shape[:2]
        xyxy = np.stack([(labels[:, 1] - labels[:, 3] / 2) * w,
                         (labels[:, 2] - labels[:, 4] / 2) * h,
                         (labels[:, 1] + labels[:, 3] / 2) * w,
                         (labels[:, 2] + labels[:, 4] / 2) * h], axis=1)
        out.append((np.ascontiguousarray(rgb), np.concatenate([labels[:, :1], xyxy], axis=1)))
    return out


def test_shipped_model_files_and_report() -> None:
    from kpai_npu_bridge.manifest import load_manifest

    manifest = load_manifest(MODEL)  # sha256 of the ONNX file checked
    assert manifest.decoder.type == 'yolov8' and manifest.task == 'detection'
    assert set(manifest.labels) >= {'person', 'pallet', 'box', 'robot'}
    assert MODEL.stat().st_size < 8 * 1024 * 1024
    report = json.loads((MODELS / 'kpai_detector.eval.json').read_text())
    assert report['sha256'] == manifest.sha256
    assert set(report['per_class']) == set(manifest.labels)
    assert 0.0 < report['map50'] <= 1.0
    assert (MODELS / 'kpai_detector.eval.md').is_file()


def test_shipped_model_detects_objects_in_heldout_frames(tmp_path: Path) -> None:
    from kpai_npu_bridge.pipeline import Pipeline

    frames = _frames()
    assert len(frames) >= 6, 'held-out frames missing'
    with Pipeline.open(MODEL, cache_dir=tmp_path) as pipe:
        names = list(pipe.manifest.labels)
        dets, _ = pipe.infer([rgb for rgb, _ in frames])
    preds, gts = [], []
    for (_, gt), found in zip(frames, dets, strict=True):
        preds.append((np.array([[d.x1, d.y1, d.x2, d.y2] for d in found]).reshape(-1, 4),
                      np.array([d.score for d in found]),
                      np.array([names.index(d.label) for d in found], int)))
        gts.append((gt[:, 1:5], gt[:, 0].astype(int)))
    # people (what safety depends on) are found: most person boxes of 16+ px matched
    person_hits = person_total = 0
    for (pb, _, pc), (gb, gc) in zip(preds, gts, strict=True):
        big = (gc == 0) & ((gb[:, 3] - gb[:, 1]) >= 16)
        person_total += int(big.sum())
        if big.any() and (pc == 0).any():
            iou = box_iou(gb[big], pb[pc == 0])
            person_hits += int((iou.max(axis=1) >= 0.5).sum())
    assert person_total > 0 and person_hits / person_total >= 0.7, (person_hits, person_total)
    m, per_class = evaluate_map(preds, gts, len(names))
    assert m >= 0.5, [(n, c.ap) for n, c in zip(names, per_class, strict=True)]


@pytest.mark.parametrize('name', ['kpai_detector.onnx', 'kpai_detector.yaml',
                                  'kpai_detector.eval.json', 'kpai_detector.eval.md'])
def test_shipped_files_present(name: str) -> None:
    assert (MODELS / name).is_file()
