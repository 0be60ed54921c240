"""The data loop at small scale: record -> export -> train -> certify -> load in the bridge."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from kpai_data.bag_reader import BagReader
from kpai_data.bag_writer import BagWriter
from kpai_data.dataset import export_dataset
from kpai_data.recording import ThreadedRecorder
from kpai_data.synthetic import write_synthetic_recording

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec('torch') is None,
                       reason='PyTorch (optional training extra, requirements/train.txt) '
                              'is not installed'),
]


def test_record_export_train_certify_load(tmp_path: Path) -> None:
    from kpai_data.select import run_selection
    from kpai_data.selection import SelectionConfig
    from kpai_data.train import TrainConfig, train
    from kpai_npu_bridge.certify import certify
    from kpai_npu_bridge.manifest import load_manifest
    from kpai_npu_bridge.pipeline import Pipeline

    # "record": the recorder's writer thread fed with camera + ground-truth messages
    source = BagReader(write_synthetic_recording(tmp_path / 'src.mcap', frames=24, robots=2,
                                                 seed=2))
    rec = ThreadedRecorder(BagWriter(tmp_path / 'bag'))
    for name, topic in source.topics.items():
        rec.add_topic(name, topic.type, [])
    for raw in source.messages():
        rec.put(raw.topic, raw.data, raw.log_time)
    rec.close()
    assert rec.stats.lost == 0 and sum(rec.stats.written.values()) == 96

    report = export_dataset([tmp_path / 'bag'], tmp_path / 'ds', val_fraction=0.3, block=2,
                            min_shift=0.0, min_diff=0.0, progress=False)
    assert report.written['train'] > 0 and report.written['val'] > 0

    cfg = TrainConfig(dataset=str(tmp_path / 'ds'), out=str(tmp_path / 'model'), epochs=2,
                      batch=8, width=128, height=96, eval_every=1, name='tiny')
    result = train(cfg, progress=False)
    onnx = Path(result['onnx'])
    assert 0.0 <= result['map50'] <= 1.0 and result['epochs_run'] == 2
    report_json = json.loads((tmp_path / 'model' / 'tiny.eval.json').read_text())
    assert set(report_json['per_class']) == {'person', 'pallet', 'box', 'robot', 'rack'}
    assert (tmp_path / 'model' / 'tiny.eval.md').read_text().startswith('# Evaluation')
    manifest = load_manifest(onnx)  # sha256 verified
    assert manifest.labels[:4] == ('person', 'pallet', 'box', 'robot')
    assert manifest.input.shape[1:] == (3, 96, 128)

    # resumable: a second run with more epochs continues from the checkpoint
    more = train(TrainConfig(**{**cfg.__dict__, 'epochs': 3}), resume=True, progress=False)
    history = json.loads((tmp_path / 'model' / 'tiny.history.json').read_text())
    assert more['epochs_run'] == 3 and [h['epoch'] for h in history] == [1, 2, 3]

    cert = certify(onnx, 'onnxruntime', iterations=2, batch_sizes=(1, 2), num_images=2,
                   isolate=False, cache_dir=tmp_path / 'cache')
    assert cert.checks and cert.checks[0].name == 'load' and cert.checks[0].passed

    with Pipeline.open(onnx, cache_dir=tmp_path / 'cache') as pipe:
        image = np.zeros((120, 160, 3), np.uint8)
        (dets,), timings = pipe.infer([image])
        assert isinstance(dets, list) and timings.total_ms > 0

    # the loop closes: frames are judged against ground truth and selected
    summary = run_selection(onnx, [str(tmp_path / 'bag')], tmp_path / 'sel', budget=5,
                            cfg=SelectionConfig(), dataset=tmp_path / 'next', progress=False)
    assert summary['frames_judged'] == 48 and summary['selected'] <= 5
    assert summary['dataset_frames'] == summary['selected']


def test_training_is_deterministic_with_a_seed(tmp_path: Path) -> None:
    from kpai_data.train import TrainConfig, train

    write_synthetic_recording(tmp_path / 'r.mcap', frames=12, robots=1, seed=3)
    export_dataset([tmp_path / 'r.mcap'], tmp_path / 'ds', val_fraction=0.4, block=2,
                   min_shift=0.0, min_diff=0.0, progress=False)
    common = dict(dataset=str(tmp_path / 'ds'), epochs=1, batch=4, width=64, height=64,
                  seed=7, eval_every=1)
    a = train(TrainConfig(out=str(tmp_path / 'a'), **common), progress=False)  # type: ignore
    b = train(TrainConfig(out=str(tmp_path / 'b'), **common), progress=False)  # type: ignore
    assert a['sha256'] == b['sha256']
