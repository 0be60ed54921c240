"""`kpai-select`: pick frames for the next training round from recordings with ground truth.

Runs the exported detector (ONNX, onnxruntime CPU) on every camera frame paired with its
ground-truth boxes and ranks frames where it misses objects, raises false alarms, or is
unsure. Writes selection.jsonl and, with --dataset, a YOLO dataset of the selected frames.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .bag_reader import BagReader, find_bags
from .dataset import ExportReport, _Exporter, iter_pairs
from .errors import DataError, DatasetError
from .evaluation import decode_predictions
from .image_codec import image_fields_to_rgb
from .selection import FrameVerdict, SelectionConfig, judge_frame, select_frames
from .train_data import letterbox

__all__ = ['Detector', 'main', 'run_selection']


class Detector:
    """An exported detector (ONNX + manifest) run with onnxruntime on RGB frames."""

    def __init__(self, model: Path) -> None:
        import onnxruntime as ort

        manifest_file = model.with_suffix('.yaml')
        try:
            manifest = yaml.safe_load(manifest_file.read_text())
            self.labels = list(manifest['labels'])
            _, _, self.height, self.width = manifest['input']['shape']
            self.input_name = manifest['input']['name']
        except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as err:
            raise DataError(f'cannot read manifest {manifest_file}: {err}') from err
        self.session = ort.InferenceSession(str(model), providers=['CPUExecutionProvider'])

    def __call__(self, rgb: np.ndarray, *, score: float,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (xyxy in original pixels, scores, classes) for one frame."""
        boxed, ratio, px, py = letterbox(rgb, self.height, self.width)
        x = (boxed.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        (out,) = self.session.run(None, {self.input_name: x})[:1]
        boxes, scores, classes = decode_predictions(out, score=score)[0]
        boxes = (boxes - np.array([px, py, px, py])) / ratio
        return boxes, scores, classes


def run_selection(model: Path, recordings: list[str], out: Path, *, budget: int,
                  cfg: SelectionConfig, dataset: Path | None = None,
                  progress: bool = True) -> dict[str, Any]:
    """Judge every paired frame, write selection.jsonl (+ a dataset); return a summary."""
    from tqdm import tqdm

    detector = Detector(model)
    index = {name: i for i, name in enumerate(detector.labels)}
    frames: list[dict[str, Any]] = []
    verdicts: list[FrameVerdict] = []
    paths = find_bags(recordings)
    for path in paths:
        reader = BagReader(path)
        for ns, stamp, image, boxes in tqdm(iter_pairs(reader, ExportReport()),
                                            desc=f'judge {path.name}', disable=not progress,
                                            unit='frame'):
            try:
                rgb = image_fields_to_rgb(image)
            except DatasetError:
                continue
            known = [b for b in boxes if b.label in index]
            gt = np.array([[b.x1, b.y1, b.x2, b.y2] for b in known]).reshape(-1, 4)
            boxes_p, scores_p, classes_p = detector(rgb, score=cfg.unsure_low)
            verdict = judge_frame(boxes_p, scores_p, classes_p, gt,
                                  np.array([index[b.label] for b in known], int),
                                  detector.labels, cfg)
            verdicts.append(verdict)
            frames.append({'bag': str(path), 'namespace': ns, 'stamp_ns': stamp})
    chosen = select_frames(verdicts, budget=budget)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / 'selection.jsonl', 'w') as f:
        for i in chosen:
            v = verdicts[i]
            f.write(json.dumps({**frames[i], 'priority': v.priority, 'missed': v.missed,
                                'false_positives': v.false_positives, 'unsure': v.unsure,
                                'reasons': v.reasons}) + '\n')
    written = 0
    if dataset is not None and chosen:
        wanted = {(frames[i]['bag'], frames[i]['namespace'], frames[i]['stamp_ns'])
                  for i in chosen}
        dataset.mkdir(parents=True, exist_ok=True)
        exporter = _Exporter(dataset, detector.labels, min_diff=0.0, min_shift=0.0,
                             val_fraction=0.0, block=1, seed=0, image_format='jpg')
        try:
            for path in paths:
                for ns, stamp, image, boxes in iter_pairs(BagReader(path), ExportReport()):
                    if (str(path), ns, stamp) in wanted:
                        exporter.add(path.name, ns, stamp, image, boxes)
        finally:
            exporter.close()
        written = sum(exporter.report.written.values())
        (dataset / 'classes.txt').write_text(''.join(c + '\n' for c in detector.labels))
    return {'frames_judged': len(verdicts), 'selected': len(chosen),
            'with_misses': sum(1 for v in verdicts if v.missed),
            'with_false_positives': sum(1 for v in verdicts if v.false_positives),
            'with_unsure': sum(1 for v in verdicts if v.unsure), 'dataset_frames': written}


def main(argv: list[str] | None = None) -> int:
    """Command line: kpai-select MODEL.onnx RECORDING... -o OUT [--dataset DIR]."""
    p = argparse.ArgumentParser(prog='kpai-select', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('model', type=Path, help='ONNX model with its manifest beside it')
    p.add_argument('recordings', nargs='+')
    p.add_argument('-o', '--out', type=Path, required=True, help='directory for selection.jsonl')
    p.add_argument('--dataset', type=Path, help='also export the selected frames here (YOLO)')
    p.add_argument('--budget', type=int, default=200, help='max frames to select')
    p.add_argument('--score', type=float, default=0.25, help='detections >= this count')
    p.add_argument('--unsure-low', type=float, default=0.1,
                   help='detections between this and --score are "unsure"')
    p.add_argument('--iou', type=float, default=0.5)
    p.add_argument('--min-box', type=float, default=8.0,
                   help='ignore ground-truth boxes smaller than this (as kpai-dataset --min-box)')
    p.add_argument('--quiet', action='store_true')
    a = p.parse_args(argv)
    if not 0 <= a.unsure_low <= a.score <= 1 or not 0 < a.iou <= 1:
        print('kpai-select: need 0 <= --unsure-low <= --score <= 1 and 0 < --iou <= 1',
              file=sys.stderr)
        return 2
    try:
        summary = run_selection(a.model, a.recordings, a.out, budget=a.budget,
                                cfg=SelectionConfig(a.score, a.unsure_low, a.iou, a.min_box),
                                dataset=a.dataset, progress=not a.quiet)
    except DataError as err:
        print(f'kpai-select: {err}', file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
