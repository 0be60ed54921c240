"""Export YOLO-format datasets from recordings with ground-truth boxes (`kpai-dataset`)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .bag_reader import BagReader, find_bags
from .errors import DataError, DatasetError
from .image_codec import image_fields_to_rgb
from .labels import (
    DEFAULT_CLASSES,
    Box,
    NearDuplicateFilter,
    boxes_from_detections,
    read_yolo_labels,
    split_of,
    yolo_lines,
)

__all__ = ['ExportReport', 'Sample', 'export_dataset', 'iter_pairs', 'load_dataset', 'main']

IMAGE_TOPIC = re.compile(r'^(.*)/camera/image_raw$')
GT_TOPIC = re.compile(r'^(.*)/ground_truth/detections$')
_PENDING_LIMIT = 256


@dataclass
class ExportReport:
    """What an export did."""

    images_seen: int = 0
    paired: int = 0
    unpaired: int = 0
    duplicates: int = 0
    bad_images: int = 0
    written: Counter[str] = field(default_factory=Counter)  # per split
    boxes: Counter[str] = field(default_factory=Counter)  # per class

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain data."""
        return {'images_seen': self.images_seen, 'paired': self.paired,
                'unpaired': self.unpaired, 'duplicates_skipped': self.duplicates,
                'bad_images': self.bad_images, 'written': dict(self.written),
                'boxes_per_class': dict(self.boxes)}


@dataclass(frozen=True)
class Sample:
    """One dataset image and its labels ([N, 5]: cls, cx, cy, w, h normalised)."""

    image: Path
    labels: np.ndarray


def _stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def _safe(text: str) -> str:
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', text).strip('_') or 'root'


class _Exporter:
    def __init__(self, out: Path, classes: Sequence[str], *, min_diff: float, min_shift: float,
                 val_fraction: float, block: int, seed: int, image_format: str,
                 min_box: float = 2.0) -> None:
        import cv2

        self.cv2 = cv2
        self.out, self.classes = out, list(classes)
        self.filter = NearDuplicateFilter(min_diff, min_shift)
        self.val_fraction, self.block, self.seed = val_fraction, max(1, block), seed
        self.ext = image_format
        self.min_box = min_box
        self.report = ExportReport()
        self.kept_per_stream: Counter[str] = Counter()
        self.frames = open(out / 'frames.jsonl', 'a')  # noqa: SIM115 - closed in close()
        for split in ('train', 'val'):
            (out / 'images' / split).mkdir(parents=True, exist_ok=True)
            (out / 'labels' / split).mkdir(parents=True, exist_ok=True)

    def add(self, bag: str, ns: str, stamp: int, image_msg: Any, boxes: list[Box]) -> None:
        try:
            rgb = image_fields_to_rgb(image_msg)
        except DatasetError:
            self.report.bad_images += 1
            return
        stream = f'{bag}:{ns}'
        known = [b for b in boxes if b.label in self.classes]
        if not self.filter.keep(stream, rgb, known):
            self.report.duplicates += 1
            return
        index = self.kept_per_stream[stream]
        self.kept_per_stream[stream] += 1
        split = split_of(f'{stream}:{index // self.block}', val_fraction=self.val_fraction,
                         seed=self.seed)
        h, w = rgb.shape[:2]
        lines = yolo_lines(known, self.classes, w, h, min_size=self.min_box)
        name = f'{_safe(bag)}_{_safe(ns)}_{stamp}'
        image_path = self.out / 'images' / split / f'{name}.{self.ext}'
        params = [self.cv2.IMWRITE_JPEG_QUALITY, 95] if self.ext == 'jpg' else []
        if not self.cv2.imwrite(str(image_path), rgb[:, :, ::-1], params):
            raise DatasetError(f'cannot write {image_path}')
        (self.out / 'labels' / split / f'{name}.txt').write_text(
            ''.join(line + '\n' for line in lines))
        for line in lines:
            self.report.boxes[self.classes[int(line.split()[0])]] += 1
        self.report.written[split] += 1
        self.frames.write(json.dumps({'image': str(image_path.relative_to(self.out)),
                                      'split': split, 'bag': bag, 'namespace': ns,
                                      'stamp_ns': stamp, 'boxes': len(lines)}) + '\n')

    def close(self) -> None:
        self.frames.close()


def iter_pairs(reader: BagReader, report: ExportReport,
           ) -> Iterable[tuple[str, int, Any, list[Box]]]:
    """Yield (namespace, stamp, image message, boxes) matched by header (stamp, frame_id)."""
    topics = [t for t in reader.topics if IMAGE_TOPIC.match(t) or GT_TOPIC.match(t)]
    images: dict[tuple[str, int, str], Any] = {}
    truths: dict[tuple[str, int, str], list[Box]] = {}
    for raw, msg in reader.decoded(topics):
        img = IMAGE_TOPIC.match(raw.topic)
        ns = (img or GT_TOPIC.match(raw.topic)).group(1)  # type: ignore[union-attr]
        key = (ns, _stamp_ns(msg.header), str(msg.header.frame_id))
        if img:
            report.images_seen += 1
            boxes = truths.pop(key, None)
            if boxes is None:
                images[key] = msg
                if len(images) > _PENDING_LIMIT:
                    images.pop(next(iter(images)))
                    report.unpaired += 1
                continue
            yield ns, key[1], msg, boxes
        else:
            boxes = boxes_from_detections(msg)
            image = images.pop(key, None)
            if image is None:
                truths[key] = boxes
                if len(truths) > _PENDING_LIMIT:
                    truths.pop(next(iter(truths)))
                continue
            yield ns, key[1], image, boxes
    report.unpaired += len(images)


def export_dataset(bags: Iterable[str | Path], out: str | Path, *,
                   classes: Sequence[str] = DEFAULT_CLASSES, min_diff: float = 0.02,
                   min_shift: float = 4.0, val_fraction: float = 0.2, block: int = 10,
                   seed: int = 0, image_format: str = 'jpg', min_box: float = 2.0,
                   progress: bool = True) -> ExportReport:
    """Export image/ground-truth pairs of recordings into a YOLO dataset directory."""
    from tqdm import tqdm

    if image_format not in ('jpg', 'png'):
        raise DatasetError(f'image_format must be jpg or png, not {image_format!r}')
    if not classes or len(set(classes)) != len(classes):
        raise DatasetError(f'classes must be unique and non-empty: {list(classes)}')
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = find_bags(bags)
    if not paths:
        raise DatasetError('no recordings given')
    exporter = _Exporter(out, classes, min_diff=min_diff, min_shift=min_shift,
                         val_fraction=val_fraction,
                         block=block, seed=seed, image_format=image_format, min_box=min_box)
    try:
        for path in paths:
            reader = BagReader(path)
            total = sum(s.message_count for t, s in reader.topics.items()
                        if IMAGE_TOPIC.match(t) or GT_TOPIC.match(t))
            bar = tqdm(total=total, desc=f'export {path.name}', unit='msg', disable=not progress)
            before = exporter.report.images_seen
            for ns, stamp, image, boxes in iter_pairs(reader, exporter.report):
                exporter.report.paired += 1
                exporter.add(path.name, ns, stamp, image, boxes)
                bar.update(2)
            bar.close()
            if exporter.report.images_seen == before:
                print(f'kpai-dataset: {path}: no */camera/image_raw topic', file=sys.stderr)
    finally:
        exporter.close()
    (out / 'classes.txt').write_text(''.join(c + '\n' for c in classes))
    (out / 'data.yaml').write_text(yaml.safe_dump({
        'path': str(out.resolve()), 'train': 'images/train', 'val': 'images/val',
        'nc': len(classes), 'names': list(classes)}, sort_keys=False))
    (out / 'export_report.json').write_text(json.dumps(exporter.report.to_dict(), indent=2))
    return exporter.report


def load_dataset(root: str | Path, split: str) -> tuple[list[Sample], list[str]]:
    """Load one split of a YOLO dataset: samples and class names."""
    root = Path(root)
    classes_file = root / 'classes.txt'
    if not classes_file.is_file():
        raise DatasetError(f'{root} is not a dataset (no classes.txt)')
    classes = [c for c in classes_file.read_text().splitlines() if c.strip()]
    images = sorted(p for p in (root / 'images' / split).glob('*')
                    if p.suffix.lower() in ('.jpg', '.jpeg', '.png'))
    samples = [Sample(p, read_yolo_labels(root / 'labels' / split / f'{p.stem}.txt',
                                          len(classes))) for p in images]
    return samples, classes


def main(argv: list[str] | None = None) -> int:
    """Command line: kpai-dataset RECORDING... -o OUT [options]."""
    parser = argparse.ArgumentParser(
        prog='kpai-dataset',
        description='Export a YOLO dataset from recordings with */camera/image_raw and '
                    '*/ground_truth/detections (boxes paired by header stamp and frame).')
    parser.add_argument('recordings', nargs='+', help='bag directories, .mcap files or folders')
    parser.add_argument('-o', '--out', required=True, help='dataset directory')
    parser.add_argument('--classes', default=','.join(DEFAULT_CLASSES),
                        help='comma-separated class names in label order')
    parser.add_argument('--min-diff', type=float, default=0.02,
                        help='skip frames whose thumbnail differs less than this (0..1)')
    parser.add_argument('--min-shift', type=float, default=4.0,
                        help='...unless a labelled box moved more than this many pixels')
    parser.add_argument('--val', type=float, default=0.2, help='validation fraction')
    parser.add_argument('--block', type=int, default=10,
                        help='consecutive frames that go to the same split')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--min-box', type=float, default=2.0,
                        help='drop labels narrower or lower than this many pixels')
    parser.add_argument('--format', choices=('jpg', 'png'), default='jpg')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    args = parser.parse_args(argv)
    try:
        report = export_dataset(args.recordings, args.out,
                                classes=[c.strip() for c in args.classes.split(',') if c.strip()],
                                min_diff=args.min_diff, min_shift=args.min_shift,
                                val_fraction=args.val, block=args.block,
                                seed=args.seed, image_format=args.format,
                                min_box=args.min_box,
                                progress=not args.quiet)
    except DataError as err:
        print(f'kpai-dataset: {err}', file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
