"""Model manifests: the YAML file beside a model that says how to feed it and decode it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .cache import file_sha256
from .errors import ManifestError

__all__ = [
    'DECODERS',
    'TASKS',
    'DecoderSpec',
    'InputSpec',
    'ModelManifest',
    'PreprocessSpec',
    'Thresholds',
    'load_manifest',
    'manifest_from_dict',
    'manifest_path',
    'manifest_to_dict',
    'write_manifest',
]

TASKS = ('detection', 'classification')
DECODERS = {'yolov8': 'detection', 'yolov5': 'detection', 'classification': 'classification'}
_LAYOUTS = ('NCHW', 'NHWC')
_DTYPES = ('float32', 'float16', 'uint8')
_RESIZES = ('letterbox', 'resize')
_COLORS = ('rgb', 'bgr')
_DYNAMIC = (-1, None, 'N', 'n', 'batch', '?')


@dataclass(frozen=True)
class InputSpec:
    """The model input: name, 4-D shape (batch None when dynamic), layout and dtype."""

    name: str
    shape: tuple[int | None, int, int, int]
    layout: str = 'NCHW'
    dtype: str = 'float32'

    @property
    def batch(self) -> int | None:
        """Return the fixed batch size, or None when the batch dimension is dynamic."""
        return self.shape[0]

    @property
    def height(self) -> int:
        """Return the input height in pixels."""
        return self.shape[2] if self.layout == 'NCHW' else self.shape[1]

    @property
    def width(self) -> int:
        """Return the input width in pixels."""
        return self.shape[3] if self.layout == 'NCHW' else self.shape[2]

    @property
    def channels(self) -> int:
        """Return the number of colour channels."""
        return self.shape[1] if self.layout == 'NCHW' else self.shape[3]


@dataclass(frozen=True)
class PreprocessSpec:
    """How an RGB uint8 image becomes the input tensor: (resize(img) * scale - mean) / std."""

    resize: str = 'letterbox'
    color: str = 'rgb'
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    pad_value: int = 114


@dataclass(frozen=True)
class DecoderSpec:
    """Which output decoder to use and its options."""

    type: str = 'yolov8'
    softmax: bool = False
    top_k: int = 1
    class_agnostic_nms: bool = False


@dataclass(frozen=True)
class Thresholds:
    """Score and NMS thresholds and the per-image detection cap."""

    score: float = 0.25
    iou: float = 0.45
    max_detections: int = 100


@dataclass(frozen=True)
class ModelManifest:
    """Everything the bridge needs to know about one model file."""

    task: str
    input: InputSpec
    decoder: DecoderSpec
    labels: tuple[str, ...]
    sha256: str
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)
    thresholds: Thresholds = field(default_factory=Thresholds)
    description: str = ''
    source: Path | None = None
    # tensors where the accelerator's part ends: what consumes them runs on CPU onnxruntime
    # (kpai_npu_bridge.partition); empty: the whole model runs on the backend
    cpu_tail: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        """Return the number of classes (labels)."""
        return len(self.labels)


def manifest_path(model_path: Path) -> Path:
    """Return the manifest beside a model: <stem>.yaml, or <name>.yaml if only that exists."""
    model_path = Path(model_path)
    plain = model_path.with_suffix('.yaml')
    appended = model_path.with_name(model_path.name + '.yaml')
    if not plain.exists() and appended.exists():
        return appended
    return plain


class _Reader:
    """Typed field access with errors naming the file and the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> ManifestError:
        return ManifestError(f'{self.source}: {where}: {message}')

    def section(self, data: Mapping[str, Any], key: str, *, required: bool) -> Mapping[str, Any]:
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(key, 'missing (required section)')
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(key, f'must be a mapping, got {type(value).__name__}')
        return value

    def unknown(self, data: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
        extra = sorted(str(k) for k in data if k not in allowed)
        if extra:
            raise self.fail(where or 'manifest', f'unknown field(s) {extra}; allowed {allowed}')

    def choice(self, data: Mapping[str, Any], key: str, where: str, options: tuple[str, ...],
               default: str | None = None) -> str:
        value = data.get(key, default)
        if value is None:
            raise self.fail(f'{where}{key}', f'missing; one of {options}')
        if not isinstance(value, str) or value not in options:
            raise self.fail(f'{where}{key}', f'must be one of {options}, got {value!r}')
        return value

    def number(self, data: Mapping[str, Any], key: str, where: str, default: float, *,
               low: float, high: float, low_open: bool = False) -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f'{where}{key}', f'must be a number, got {value!r}')
        value = float(value)
        if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
            bracket = '(' if low_open else '['
            raise self.fail(f'{where}{key}', f'must be in {bracket}{low}, {high}], got {value}')
        return value

    def integer(self, data: Mapping[str, Any], key: str, where: str, default: int, *,
                low: int, high: int) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(f'{where}{key}',
                            f'must be an integer in [{low}, {high}], got {value!r}')
        return value

    def flag(self, data: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f'{where}{key}', f'must be true or false, got {value!r}')
        return value

    def triple(self, data: Mapping[str, Any], key: str, where: str, default: tuple[float, ...],
               channels: int, *, nonzero: bool = False) -> tuple[float, ...]:
        value = data.get(key, list(default))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value] * channels
        if not isinstance(value, list) or len(value) != channels or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in value
        ):
            raise self.fail(f'{where}{key}', f'must be {channels} finite numbers, got {value!r}')
        if nonzero and any(v == 0 for v in value):
            raise self.fail(f'{where}{key}', f'must not contain 0, got {value!r}')
        return tuple(float(v) for v in value)


def _input(r: _Reader, data: Mapping[str, Any]) -> InputSpec:
    r.unknown(data, ('name', 'shape', 'layout', 'dtype'), 'input')
    name = data.get('name')
    if not isinstance(name, str) or not name:
        raise r.fail('input.name', f'must be a non-empty string, got {name!r}')
    layout = r.choice(data, 'layout', 'input.', _LAYOUTS, 'NCHW')
    dtype = r.choice(data, 'dtype', 'input.', _DTYPES, 'float32')
    raw = data.get('shape')
    if not isinstance(raw, list) or len(raw) != 4:
        raise r.fail('input.shape', f'must be a list of 4 dimensions ({layout}), got {raw!r}')
    batch = None if raw[0] in _DYNAMIC else raw[0]
    dims = [batch, *raw[1:]]
    for i, d in enumerate(dims):
        if i == 0 and d is None:
            continue
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise r.fail('input.shape', f'dimension {i} must be a positive integer '
                         f'(only the batch may be dynamic: -1), got {raw!r}')
    shape = (batch, int(dims[1]), int(dims[2]), int(dims[3]))
    spec = InputSpec(name, shape, layout, dtype)
    if spec.channels != 3:
        raise r.fail('input.shape', f'{layout} shape {raw!r} has {spec.channels} channels, '
                     'the bridge feeds 3-channel colour images')
    return spec


def _preprocess(r: _Reader, data: Mapping[str, Any], dtype: str) -> PreprocessSpec:
    allowed = ('resize', 'color', 'scale', 'mean', 'std', 'pad_value')
    r.unknown(data, allowed, 'preprocess')
    w = 'preprocess.'
    spec = PreprocessSpec(
        resize=r.choice(data, 'resize', w, _RESIZES, 'letterbox'),
        color=r.choice(data, 'color', w, _COLORS, 'rgb'),
        scale=r.number(data, 'scale', w, 1.0 / 255.0, low=0.0, high=1e6, low_open=True),
        mean=r.triple(data, 'mean', w, (0.0, 0.0, 0.0), 3),
        std=r.triple(data, 'std', w, (1.0, 1.0, 1.0), 3, nonzero=True),
        pad_value=r.integer(data, 'pad_value', w, 114, low=0, high=255),
    )
    if dtype == 'uint8' and (spec.scale != 1.0 or any(spec.mean) or spec.std != (1.0,) * 3):
        raise r.fail('preprocess', 'a uint8 input takes raw pixels: scale must be 1, mean 0, '
                     'std 1')
    return spec


def manifest_from_dict(data: Any, *, source: str | Path = '<manifest>') -> ModelManifest:
    """Validate a parsed manifest; raise ManifestError naming the bad field."""
    r = _Reader(str(source))
    if not isinstance(data, Mapping):
        raise r.fail('manifest', f'must be a mapping, got {type(data).__name__}')
    r.unknown(data, ('task', 'description', 'input', 'preprocess', 'decoder', 'thresholds',
                     'labels', 'sha256', 'cpu_tail'), '')
    task = r.choice(data, 'task', '', TASKS)
    inp = _input(r, r.section(data, 'input', required=True))
    pre = _preprocess(r, r.section(data, 'preprocess', required=False), inp.dtype)
    dec_data = data.get('decoder')
    if isinstance(dec_data, str):
        dec_data = {'type': dec_data}
    if dec_data is None:
        raise r.fail('decoder', 'missing (required section)')
    if not isinstance(dec_data, Mapping):
        raise r.fail('decoder', f'must be a mapping or a decoder name, got {dec_data!r}')
    r.unknown(dec_data, ('type', 'softmax', 'top_k', 'class_agnostic_nms'), 'decoder')
    decoder = DecoderSpec(
        type=r.choice(dec_data, 'type', 'decoder.', tuple(DECODERS)),
        softmax=r.flag(dec_data, 'softmax', 'decoder.', False),
        top_k=r.integer(dec_data, 'top_k', 'decoder.', 1, low=1, high=1000),
        class_agnostic_nms=r.flag(dec_data, 'class_agnostic_nms', 'decoder.', False),
    )
    if DECODERS[decoder.type] != task:
        raise r.fail('decoder.type', f'{decoder.type!r} decodes {DECODERS[decoder.type]}, '
                     f'but task is {task!r}')
    th = r.section(data, 'thresholds', required=False)
    r.unknown(th, ('score', 'iou', 'max_detections'), 'thresholds')
    thresholds = Thresholds(
        score=r.number(th, 'score', 'thresholds.', 0.25, low=0.0, high=1.0),
        iou=r.number(th, 'iou', 'thresholds.', 0.45, low=0.0, high=1.0, low_open=True),
        max_detections=r.integer(th, 'max_detections', 'thresholds.', 100, low=1, high=100000),
    )
    labels = data.get('labels')
    if not isinstance(labels, list) or not labels:
        raise r.fail('labels', f'must be a non-empty list of class names, got {labels!r}')
    for i, label in enumerate(labels):
        if not isinstance(label, str) or not label.strip():
            raise r.fail('labels', f'entry {i} must be a non-empty string, got {label!r}')
    if len(set(labels)) != len(labels):
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        raise r.fail('labels', f'duplicate class names {dupes}')
    if decoder.top_k > len(labels):
        raise r.fail('decoder.top_k', f'{decoder.top_k} exceeds the {len(labels)} labels')
    sha = data.get('sha256')
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in '0123456789abcdef'
                                                          for c in sha.lower()):
        raise r.fail('sha256', f'must be 64 hex digits, got {sha!r}')
    description = data.get('description', '')
    if not isinstance(description, str):
        raise r.fail('description', 'must be a string')
    cut = data.get('cpu_tail', [])
    if not isinstance(cut, list) or not all(isinstance(c, str) and c for c in cut):
        raise r.fail('cpu_tail', f'must be a list of tensor names, got {cut!r}')
    if len(set(cut)) != len(cut):
        raise r.fail('cpu_tail', f'duplicate tensor names in {cut!r}')
    return ModelManifest(task, inp, decoder, tuple(labels), sha.lower(), pre, thresholds,
                         description, Path(source) if source != '<manifest>' else None,
                         tuple(cut))


def load_manifest(model_path: Path, *, verify: bool = True) -> ModelManifest:
    """Load and validate the manifest beside a model; verify the model's sha256 by default."""
    model_path = Path(model_path)
    path = manifest_path(model_path)
    if not path.is_file():
        raise ManifestError(f'no manifest for {model_path}: expected {path}')
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ManifestError(f'{path}: cannot parse YAML: {err}') from err
    manifest = manifest_from_dict(data, source=path)
    if verify:
        if not model_path.is_file():
            raise ManifestError(f'{path}: model file {model_path} not found')
        actual = file_sha256(model_path)
        if actual != manifest.sha256:
            raise ManifestError(
                f'{path}: sha256 mismatch for {model_path.name}: manifest says '
                f'{manifest.sha256}, file is {actual}'
            )
    return manifest


def manifest_to_dict(manifest: ModelManifest) -> dict[str, Any]:
    """Return the manifest as plain data (the YAML layout)."""
    inp = manifest.input
    return {
        'task': manifest.task,
        'description': manifest.description,
        'input': {'name': inp.name, 'shape': [-1 if d is None else d for d in inp.shape],
                  'layout': inp.layout, 'dtype': inp.dtype},
        'preprocess': {'resize': manifest.preprocess.resize, 'color': manifest.preprocess.color,
                       'scale': manifest.preprocess.scale, 'mean': list(manifest.preprocess.mean),
                       'std': list(manifest.preprocess.std),
                       'pad_value': manifest.preprocess.pad_value},
        'decoder': {'type': manifest.decoder.type, 'softmax': manifest.decoder.softmax,
                    'top_k': manifest.decoder.top_k,
                    'class_agnostic_nms': manifest.decoder.class_agnostic_nms},
        'thresholds': {'score': manifest.thresholds.score, 'iou': manifest.thresholds.iou,
                       'max_detections': manifest.thresholds.max_detections},
        'labels': list(manifest.labels),
        'sha256': manifest.sha256,
        **({'cpu_tail': list(manifest.cpu_tail)} if manifest.cpu_tail else {}),
    }


def write_manifest(manifest: ModelManifest, model_path: Path, *, rehash: bool = True) -> Path:
    """Write <model>.yaml beside the model (with the model's actual sha256 when rehash)."""
    model_path = Path(model_path)
    if rehash:
        manifest = replace(manifest, sha256=file_sha256(model_path))
    path = model_path.with_suffix('.yaml')
    path.write_text(yaml.safe_dump(manifest_to_dict(manifest), sort_keys=False))
    return path
