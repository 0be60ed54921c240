"""Manifest + backend + pre/post-processing: images in, detections in original pixels out."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .backends.base import Backend, BackendInfo, ProgressFn
from .backends.registry import create_backend
from .cache import ArtifactCache, default_cache_dir, file_sha256
from .decoders import RawDetections, decode_classification, decode_yolov5, decode_yolov8
from .errors import BackendError, ManifestError, ModelLoadError
from .manifest import ModelManifest, load_manifest
from .partition import PartitionedBackend, split_model
from .preprocess import ImageMeta, preprocess_batch

__all__ = ['Detection', 'Pipeline', 'Timings', 'postprocess']


@dataclass(frozen=True)
class Detection:
    """One detected object; the box is in the original image's pixels."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    class_index: int
    label: str


@dataclass(frozen=True)
class Timings:
    """Milliseconds spent in pre-processing, inference and post-processing for one call."""

    pre_ms: float
    infer_ms: float
    post_ms: float

    @property
    def total_ms(self) -> float:
        """Return the sum of the three stages."""
        return self.pre_ms + self.infer_ms + self.post_ms


def _raw(manifest: ModelManifest, outputs: Sequence[np.ndarray]) -> list[RawDetections]:
    th, dec = manifest.thresholds, manifest.decoder
    if not outputs:
        raise BackendError('backend returned no outputs')
    if dec.type == 'yolov8':
        return decode_yolov8(outputs[0], manifest.num_classes, score=th.score, iou=th.iou,
                             max_det=th.max_detections, agnostic=dec.class_agnostic_nms)
    if dec.type == 'yolov5':
        return decode_yolov5(outputs[0], manifest.num_classes, score=th.score, iou=th.iou,
                             max_det=th.max_detections, agnostic=dec.class_agnostic_nms)
    result = []
    for classes, scores in decode_classification(outputs[0], manifest.num_classes,
                                                 apply_softmax=dec.softmax, top_k=dec.top_k,
                                                 score=th.score):
        boxes = np.tile([-np.inf, -np.inf, np.inf, np.inf], (len(classes), 1))
        result.append(RawDetections(boxes, scores, classes))
    return result


def postprocess(manifest: ModelManifest, outputs: Sequence[np.ndarray],
                metas: Sequence[ImageMeta]) -> list[list[Detection]]:
    """Decode outputs into detections in each original image's pixels.

    Classification models give their top-k classes as detections spanning the whole image.
    """
    raws = _raw(manifest, outputs)
    if len(raws) != len(metas):
        raise BackendError(f'backend returned {len(raws)} results for {len(metas)} images')
    result = []
    for raw, meta in zip(raws, metas, strict=True):
        boxes = meta.to_original(raw.boxes) if len(raw.boxes) else raw.boxes
        result.append([
            Detection(float(b[0]), float(b[1]), float(b[2]), float(b[3]), float(s), int(c),
                      manifest.labels[int(c)])
            for b, s, c in zip(boxes, raw.scores, raw.classes, strict=True)
        ])
    return result


class Pipeline:
    """A loaded model on a backend; not thread-safe (one caller at a time)."""

    def __init__(self, manifest: ModelManifest, backend: Backend, model_path: Path,
                 model_sha256: str, backend_name: str) -> None:
        self.manifest = manifest
        self.backend = backend
        self.model_path = model_path
        self.model_sha256 = model_sha256
        self.backend_name = backend_name
        spec = backend.inputs()[0]
        self._input_name = spec.name
        self._dynamic_batch = spec.dynamic_batch and manifest.input.batch is None
        self._fixed_batch = manifest.input.batch or (spec.shape[0] if spec.shape else 1) or 1

    @classmethod
    def open(cls, model_path: Path, *, backend: str = 'onnxruntime', device: str = '',
             cache_dir: Path | None = None, progress: ProgressFn | None = None,
             options: Mapping[str, Any] | None = None, warmup: bool = True) -> Pipeline:
        """Load the manifest (sha256 checked), create the backend, load via the cache, warm up.

        cache_dir None means the default cache directory (see cache.default_cache_dir).
        """
        model_path = Path(model_path)
        manifest = load_manifest(model_path, verify=False)
        sha = file_sha256(model_path) if model_path.is_file() else ''
        if not sha:
            raise ModelLoadError(f'model file not found: {model_path}')
        if sha != manifest.sha256:
            raise ManifestError(f'{manifest.source}: sha256 mismatch for {model_path.name}: '
                                f'manifest says {manifest.sha256}, file is {sha}')
        impl: Backend = create_backend(backend)
        cache = ArtifactCache(cache_dir if cache_dir is not None else default_cache_dir())
        try:
            if manifest.cpu_tail:  # the backend runs the head, onnxruntime the tail on CPU
                head, tail = split_model(model_path, manifest, cache.root)
                impl.load(head, device=device, options=options, cache=cache, progress=progress)
                impl = PartitionedBackend(impl, tail)
            else:
                impl.load(model_path, device=device, options=options, cache=cache,
                          progress=progress)
            _check_compatible(manifest, impl)
            pipeline = cls(manifest, impl, model_path, sha, backend)
            if warmup:
                if progress is not None:
                    progress(f'{backend}: warming up', 0.0)
                impl.warmup(1 if pipeline._dynamic_batch else pipeline._fixed_batch)
                if progress is not None:
                    progress(f'{backend}: ready', 1.0)
        except BaseException:
            impl.close()
            raise
        return pipeline

    @property
    def backend_info(self) -> BackendInfo:
        """Describe the backend the model runs on."""
        return self.backend.info()

    @property
    def dynamic_batch(self) -> bool:
        """Return True when several images run in one backend call."""
        return self._dynamic_batch

    def preprocess(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[ImageMeta]]:
        """Turn images (HxWx3 uint8 RGB, any size) into the input tensor and metadata."""
        return preprocess_batch(images, self.manifest.input, self.manifest.preprocess)

    def postprocess(self, outputs: Sequence[np.ndarray], metas: Sequence[ImageMeta]
                    ) -> list[list[Detection]]:
        """Decode backend outputs into per-image detections in original pixels."""
        return postprocess(self.manifest, outputs, metas)

    def run_tensor(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Run a preprocessed tensor of any batch size, splitting it for fixed-batch models."""
        if self._dynamic_batch or tensor.shape[0] == self._fixed_batch:
            return self.backend.run({self._input_name: tensor})
        parts: list[list[np.ndarray]] = []
        n = tensor.shape[0]
        step = self._fixed_batch
        for start in range(0, n, step):
            chunk = tensor[start:start + step]
            real = chunk.shape[0]
            if real < step:  # pad the last chunk to the model's fixed batch
                pad = np.zeros((step - real, *chunk.shape[1:]), dtype=chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            outs = self.backend.run({self._input_name: np.ascontiguousarray(chunk)})
            parts.append([o[:real] for o in outs])
        return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]

    def infer(self, images: Sequence[np.ndarray]) -> tuple[list[list[Detection]], Timings]:
        """Detect objects in images; return per-image detections and stage timings."""
        t0 = time.perf_counter()
        tensor, metas = self.preprocess(images)
        t1 = time.perf_counter()
        outputs = self.run_tensor(tensor)
        t2 = time.perf_counter()
        detections = self.postprocess(outputs, metas)
        t3 = time.perf_counter()
        return detections, Timings((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)

    def close(self) -> None:
        """Release the backend."""
        self.backend.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_compatible(manifest: ModelManifest, backend: Backend) -> None:
    inputs, outputs = backend.inputs(), backend.outputs()
    if len(inputs) != 1:
        raise ModelLoadError(f'the bridge feeds one image input; model has {len(inputs)}')
    spec, want = inputs[0], manifest.input
    if spec.name != want.name:
        raise ManifestError(f'{manifest.source}: input.name is {want.name!r} but the model '
                            f'input is {spec.name!r}')
    if spec.dtype != want.dtype:
        raise ManifestError(f'{manifest.source}: input.dtype is {want.dtype} but the model '
                            f'takes {spec.dtype}')
    shape = list(spec.shape)
    if len(shape) != 4 or any(
        m is not None and s is not None and m != s
        for m, s in zip(want.shape, shape, strict=True)
    ):
        raise ManifestError(f'{manifest.source}: input.shape {list(want.shape)} does not '
                            f'match the model input {shape}')
    if not outputs:
        raise ModelLoadError('model has no outputs')
