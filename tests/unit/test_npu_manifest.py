"""Model manifest validation: every bad field gives a clear error naming it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from kpai_npu_bridge.cache import file_sha256
from kpai_npu_bridge.errors import ManifestError
from kpai_npu_bridge.manifest import (
    load_manifest,
    manifest_from_dict,
    manifest_path,
    manifest_to_dict,
    write_manifest,
)

GOOD: dict[str, Any] = {
    'task': 'detection',
    'input': {'name': 'images', 'shape': [-1, 3, 320, 256], 'layout': 'NCHW',
              'dtype': 'float32'},
    'preprocess': {'resize': 'letterbox', 'color': 'rgb', 'scale': 0.00392156862745098,
                   'mean': [0, 0, 0], 'std': [1, 1, 1]},
    'decoder': {'type': 'yolov8'},
    'thresholds': {'score': 0.3, 'iou': 0.5, 'max_detections': 50},
    'labels': ['person', 'pallet'],
    'sha256': 'ab' * 32,
}


def test_good_manifest_parses_with_defaults_and_properties() -> None:
    m = manifest_from_dict(GOOD)
    assert m.task == 'detection' and m.num_classes == 2
    assert m.input.batch is None and (m.input.height, m.input.width) == (320, 256)
    assert m.thresholds.max_detections == 50 and m.preprocess.pad_value == 114
    nhwc = copy.deepcopy(GOOD)
    nhwc['input'].update(shape=[1, 240, 320, 3], layout='NHWC')
    m2 = manifest_from_dict(nhwc)
    assert (m2.input.batch, m2.input.height, m2.input.width, m2.input.channels) == (1, 240, 320,
                                                                                    3)
    assert manifest_from_dict(manifest_to_dict(m)) == m


def _with(path: str, value: object) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    node: Any = data
    keys = path.split('.')
    for key in keys[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(('field', 'value', 'expected'), [
    ('task', 'segmentation', 'task: must be one of'),
    ('task', _DELETE, 'task: missing'),
    ('input', _DELETE, 'input: missing'),
    ('input.name', '', 'input.name'),
    ('input.shape', [1, 3, 640], 'input.shape: must be a list of 4'),
    ('input.shape', [1, 3, 0, 640], 'dimension 2 must be a positive integer'),
    ('input.shape', [1, 3, -1, 640], 'only the batch may be dynamic'),
    ('input.shape', [1, 1, 64, 64], 'has 1 channels'),
    ('input.layout', 'CHW', 'input.layout: must be one of'),
    ('input.dtype', 'int64', 'input.dtype'),
    ('input.colour', 'rgb', "unknown field(s) ['colour']"),
    ('preprocess.resize', 'crop', 'preprocess.resize'),
    ('preprocess.color', 'yuv', 'preprocess.color'),
    ('preprocess.scale', 0, 'preprocess.scale: must be in (0.0'),
    ('preprocess.mean', [0, 0], 'preprocess.mean: must be 3 finite numbers'),
    ('preprocess.std', [1, 0, 1], 'preprocess.std: must not contain 0'),
    ('preprocess.pad_value', 300, 'preprocess.pad_value'),
    ('decoder', _DELETE, 'decoder: missing'),
    ('decoder.type', 'ssd', 'decoder.type: must be one of'),
    ('decoder.type', 'classification', "decodes classification, but task is 'detection'"),
    ('decoder.top_k', 5, 'exceeds the 2 labels'),
    ('thresholds.score', 1.5, 'thresholds.score: must be in [0.0, 1.0]'),
    ('thresholds.iou', 0, 'thresholds.iou'),
    ('thresholds.max_detections', 0, 'thresholds.max_detections'),
    ('thresholds.score', float('nan'), 'thresholds.score'),
    ('labels', [], 'labels: must be a non-empty list'),
    ('labels', ['a', ''], 'labels: entry 1'),
    ('labels', ['a', 'b', 'a'], "duplicate class names ['a']"),
    ('sha256', 'abc', 'sha256: must be 64 hex digits'),
    ('sha256', _DELETE, 'sha256'),
    ('extra', 1, "unknown field(s) ['extra']"),
])
def test_invalid_fields_are_rejected_with_the_field_named(field: str, value: object,
                                                          expected: str) -> None:
    with pytest.raises(ManifestError, match=None) as info:
        manifest_from_dict(_with(field, value), source='m.yaml')
    assert expected in str(info.value)
    assert str(info.value).startswith('m.yaml: ')


def test_uint8_input_must_not_normalise() -> None:
    data = _with('input.dtype', 'uint8')
    with pytest.raises(ManifestError, match='uint8 input takes raw pixels'):
        manifest_from_dict(data)
    data['preprocess'] = {'scale': 1.0}
    assert manifest_from_dict(data).input.dtype == 'uint8'


def test_load_verifies_sha256_and_reports_both_hashes(tmp_path: Path) -> None:
    model = tmp_path / 'det.onnx'
    model.write_bytes(b'not really a model')
    (tmp_path / 'det.yaml').write_text(yaml.safe_dump(GOOD))
    with pytest.raises(ManifestError) as info:
        load_manifest(model)
    assert GOOD['sha256'] in str(info.value) and file_sha256(model) in str(info.value)
    assert load_manifest(model, verify=False).sha256 == GOOD['sha256']
    written = write_manifest(manifest_from_dict(GOOD), model)
    assert written == tmp_path / 'det.yaml'
    assert load_manifest(model).sha256 == file_sha256(model)


def test_missing_or_malformed_manifest_files(tmp_path: Path) -> None:
    model = tmp_path / 'm.onnx'
    model.write_bytes(b'x')
    with pytest.raises(ManifestError, match='no manifest'):
        load_manifest(model)
    (tmp_path / 'm.yaml').write_text('task: [unclosed')
    with pytest.raises(ManifestError, match='cannot parse YAML'):
        load_manifest(model)
    (tmp_path / 'm.yaml').write_text('- just\n- a list\n')
    with pytest.raises(ManifestError, match='must be a mapping'):
        load_manifest(model)
    (tmp_path / 'm.yaml').unlink()
    (tmp_path / 'm.onnx.yaml').write_text(yaml.safe_dump(GOOD))
    assert manifest_path(model) == tmp_path / 'm.onnx.yaml'
