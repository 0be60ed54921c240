"""Dataset export from synthetic recordings: pairing, YOLO labels, near-duplicates, split."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from kpai_data.dataset import export_dataset, load_dataset
from kpai_data.errors import DatasetError
from kpai_data.image_codec import image_fields_to_rgb
from kpai_data.labels import (
    Box,
    NearDuplicateFilter,
    read_yolo_labels,
    split_of,
    yolo_lines,
)
from kpai_data.synthetic import write_synthetic_recording
from kpai_data.train_data import augment, letterbox, load_split


def test_yolo_lines_normalise_clip_and_skip() -> None:
    boxes = [Box('person', 10, 20, 30, 60), Box('box', -10, 0, 10, 10), Box('ufo', 0, 0, 5, 5),
             Box('pallet', 99, 99, 100, 100)]
    lines = yolo_lines(boxes, ['person', 'pallet', 'box'], 100, 100)
    assert lines == ['0 0.200000 0.400000 0.200000 0.400000',
                     '2 0.050000 0.050000 0.100000 0.100000']  # clipped; ufo and sliver dropped


def test_read_yolo_labels_validates(tmp_path: Path) -> None:
    good = tmp_path / 'a.txt'
    good.write_text('1 0.5 0.5 0.2 0.2\n\n')
    assert np.allclose(read_yolo_labels(good, 2), [[1, 0.5, 0.5, 0.2, 0.2]])
    assert read_yolo_labels(tmp_path / 'missing.txt', 2).shape == (0, 5)
    bad = tmp_path / 'b.txt'
    bad.write_text('7 0.5 0.5 0.2 0.2\n')
    with pytest.raises(DatasetError, match='b.txt:1'):
        read_yolo_labels(bad, 2)


def test_near_duplicate_filter() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    f = NearDuplicateFilter(min_diff=0.02, min_shift=4)
    person = [Box('person', 10, 10, 20, 30)]
    assert f.keep('cam', img, person)
    assert not f.keep('cam', img.copy(), person)  # identical frame
    assert not f.keep('cam', img, [Box('person', 12, 11, 22, 31)])  # tiny motion
    assert f.keep('cam', img, [Box('person', 20, 10, 30, 30)])  # the person moved 10 px
    assert f.keep('cam', img, person + [Box('box', 0, 0, 5, 5)])  # a new object
    assert f.keep('other', img, person)  # streams are independent
    assert f.keep('cam', 255 - img, person + [Box('box', 0, 0, 5, 5)])  # the view changed
    assert (f.kept, f.skipped) == (5, 2)


def test_split_is_stable_and_roughly_proportional() -> None:
    splits = [split_of(f'g{i}', val_fraction=0.25, seed=3) for i in range(2000)]
    assert splits == [split_of(f'g{i}', val_fraction=0.25, seed=3) for i in range(2000)]
    assert 0.2 < splits.count('val') / 2000 < 0.3
    assert split_of('x', val_fraction=1.0) == 'val' and split_of('x', val_fraction=0.0) == 'train'


def test_image_codec_encodings() -> None:
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    padded = np.zeros((2, 12), np.uint8)
    padded[:, :9] = rgb.reshape(2, 9)
    msg = SimpleNamespace(encoding='rgb8', height=2, width=3, step=12, data=padded.tobytes())
    assert (image_fields_to_rgb(msg) == rgb).all()
    bgr = SimpleNamespace(encoding='bgr8', height=2, width=3, step=9,
                          data=rgb[:, :, ::-1].tobytes())
    assert (image_fields_to_rgb(bgr) == rgb).all()
    mono = SimpleNamespace(encoding='mono8', height=1, width=2, step=2, data=b'\x05\x07')
    assert image_fields_to_rgb(mono).tolist() == [[[5, 5, 5], [7, 7, 7]]]
    with pytest.raises(DatasetError, match='encoding'):
        image_fields_to_rgb(SimpleNamespace(encoding='yuv422', height=1, width=1, step=2,
                                            data=b'00'))
    with pytest.raises(DatasetError, match='bytes'):
        image_fields_to_rgb(SimpleNamespace(encoding='rgb8', height=2, width=2, step=6,
                                            data=b'000'))


def test_export_synthetic_recording(tmp_path: Path) -> None:
    rec = write_synthetic_recording(tmp_path / 'rec.mcap', frames=30, robots=2, still_every=3,
                                    seed=4)
    out = tmp_path / 'ds'
    report = export_dataset([rec], out, val_fraction=0.5, block=3, progress=False)
    assert report.images_seen == 60 and report.paired == 60 and report.unpaired == 0
    assert report.duplicates >= 2 * 9  # every third frame repeats its predecessor
    assert sum(report.written.values()) == 60 - report.duplicates
    data = yaml.safe_load((out / 'data.yaml').read_text())
    assert data['names'][:4] == ['person', 'pallet', 'box', 'robot'] and data['nc'] == 5
    train, classes = load_dataset(out, 'train')
    val, _ = load_dataset(out, 'val')
    assert train and val and len(train) + len(val) == sum(report.written.values())
    assert sum(len(s.labels) for s in train + val) == sum(report.boxes.values())
    # a label box covers the drawn object: its centre pixel has the class colour
    import cv2
    from kpai_data.synthetic import SHAPES

    sample = next(s for s in train if len(s.labels))
    img = cv2.imread(str(sample.image))[:, :, ::-1]
    h, w = img.shape[:2]
    cls, cx, cy, bw, bh = sample.labels[0]
    colour = np.array(SHAPES[classes[int(cls)]][0])
    y, x = int(cy * h + bh * h * 0.3), int(cx * w)  # below the person's head band
    assert np.abs(img[y, x].astype(int) - colour).max() < 40
    # loaded for training: letterboxed boxes stay on the object, augmentation keeps them valid
    split = load_split(train, 192, 256)
    assert split.images.shape[1:] == (192, 256, 3) and len(split.targets) == len(train)
    rng = np.random.default_rng(0)
    for img_lb, target in zip(split.images, split.targets, strict=True):
        aug, t = augment(rng, img_lb, target)
        assert aug.shape == img_lb.shape
        assert (t[:, 1] < t[:, 3]).all() and (t[:, 3] <= 256).all() and (t[:, 1] >= 0).all()


def test_letterbox_matches_symmetric_padding() -> None:
    img = np.full((240, 320, 3), 7, np.uint8)
    out, ratio, px, py = letterbox(img, 256, 320)
    assert (ratio, px, py) == (1.0, 0, 8)
    assert (out[:8] == 114).all() and (out[8:248] == 7).all() and (out[248:] == 114).all()
