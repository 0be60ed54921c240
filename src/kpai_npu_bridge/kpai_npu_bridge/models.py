"""Builders of test and benchmark ONNX models (with their manifests); nothing is downloaded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .manifest import (
    DecoderSpec,
    InputSpec,
    ModelManifest,
    PreprocessSpec,
    Thresholds,
    write_manifest,
)

__all__ = [
    'STACK_LABELS',
    'build_color_classifier',
    'build_constant_detector',
    'build_yolov8n_like',
]

STACK_LABELS = ('person', 'pallet', 'box', 'robot', 'rack')
_OPSET = 17
# Class logits are calibrated on golden images so that the median maps to _LOGIT_MEDIAN and
# the top 0.2% of (anchor, class) pairs score above 0.25, leaving NMS realistic work to do.
_LOGIT_MEDIAN, _LOGIT_TOP, _TOP_PERCENTILE = -5.0, -0.9, 99.8


class _Graph:
    """Tiny ONNX graph builder: named nodes, initialisers and seeded random weights."""

    def __init__(self, seed: int = 0) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)
        self._count = 0

    def name(self, prefix: str) -> str:
        self._count += 1
        return f'{prefix}_{self._count}'

    def const(self, array: np.ndarray, prefix: str = 'c') -> str:
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], outputs: int = 1, **attrs: Any
           ) -> list[str]:
        names = [self.name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, **attrs))
        return names

    def one(self, op_type: str, inputs: Sequence[str], **attrs: Any) -> str:
        return self.op(op_type, inputs, **attrs)[0]

    def conv(self, x: str, cin: int, cout: int, k: int = 3, stride: int = 1, *,
             act: bool = True, bias_init: float = 0.0, gain: float = 1.0) -> str:
        fan_in = cin * k * k
        weight = self.rng.normal(0.0, gain * np.sqrt(1.0 / fan_in), (cout, cin, k, k))
        bias = np.full(cout, bias_init) + self.rng.normal(0.0, 0.01, cout)
        y = self.one('Conv', [x, self.const(weight.astype(np.float32), 'w'),
                              self.const(bias.astype(np.float32), 'b')],
                     kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4)
        return self.one('Mul', [y, self.one('Sigmoid', [y])]) if act else y

    def c2f(self, x: str, cin: int, cout: int, n: int = 1) -> str:
        """CSP bottleneck with two convolutions (YOLOv8's C2f block)."""
        hidden = cout // 2
        y = self.conv(x, cin, 2 * hidden, 1)
        parts = self.op('Split', [y, self.const(np.array([hidden, hidden], np.int64))],
                        outputs=2, axis=1)
        branches = list(parts)
        last = parts[1]
        for _ in range(n):
            inner = self.conv(self.conv(last, hidden, hidden, 3), hidden, hidden, 3)
            last = self.one('Add', [last, inner])
            branches.append(last)
        return self.conv(self.one('Concat', branches, axis=1), (2 + n) * hidden, cout, 1)

    def sppf(self, x: str, channels: int) -> str:
        hidden = channels // 2
        y = self.conv(x, channels, hidden, 1)
        pools = [y]
        for _ in range(3):
            pools.append(self.one('MaxPool', [pools[-1]], kernel_shape=[5, 5], pads=[2] * 4,
                                  strides=[1, 1]))
        return self.conv(self.one('Concat', pools, axis=1), 4 * hidden, channels, 1)

    def upsample(self, x: str) -> str:
        scales = self.const(np.array([1, 1, 2, 2], np.float32))
        return self.one('Resize', [x, '', scales], mode='nearest')

    def save(self, path: Path, input_name: str, input_shape: list[int | str],
             outputs: list[tuple[str, list[int | str]]], graph_name: str) -> None:
        graph = helper.make_graph(
            self.nodes, graph_name,
            [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', _OPSET)],
                                  producer_name='kpai_npu_bridge.models')
        model.ir_version = 8
        onnx.checker.check_model(model)
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(path))


def _rename_output(g: _Graph, tensor: str, name: str) -> None:
    g.nodes.append(helper.make_node('Identity', [tensor], [name]))


def _calibrate_logits(path: Path, heads: Sequence[tuple[str, str, str]], size: int) -> None:
    """Rescale each level's final class conv so a few anchors score above 0.25."""
    import onnxruntime as ort

    from .golden import golden_images
    from .preprocess import letterbox

    model = onnx.load(str(path))
    for _, _, logits in heads:
        model.graph.output.append(helper.make_tensor_value_info(logits, TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])
    images = [letterbox(img, size, size)[0] for img in golden_images(8)]
    batch = (np.stack(images).transpose(0, 3, 1, 2) / 255.0).astype(np.float32)
    values = session.run([h[2] for h in heads], {'images': batch})
    inits = {t.name: t for t in model.graph.initializer}
    for (weight_name, bias_name, _), value in zip(heads, values, strict=True):
        per_class = value.transpose(1, 0, 2, 3).reshape(value.shape[1], -1)
        median = np.median(per_class, axis=1)
        spread = np.maximum(np.percentile(per_class, _TOP_PERCENTILE, axis=1) - median, 1e-12)
        k = (_LOGIT_TOP - _LOGIT_MEDIAN) / spread
        weight = numpy_helper.to_array(inits[weight_name]) * k[:, None, None, None]
        bias = (numpy_helper.to_array(inits[bias_name]) - median) * k + _LOGIT_MEDIAN
        inits[weight_name].CopyFrom(numpy_helper.from_array(weight.astype(np.float32),
                                                            weight_name))
        inits[bias_name].CopyFrom(numpy_helper.from_array(bias.astype(np.float32), bias_name))
    del model.graph.output[1:]
    onnx.save(model, str(path))


def _manifest(path: Path, task: str, size: int, decoder: DecoderSpec, labels: Sequence[str],
              thresholds: Thresholds, resize: str, description: str,
              batch: int | None = None) -> ModelManifest:
    manifest = ModelManifest(
        task=task, input=InputSpec('images', (batch, 3, size, size), 'NCHW', 'float32'),
        decoder=decoder, labels=tuple(labels), sha256='0' * 64,
        preprocess=PreprocessSpec(resize=resize), thresholds=thresholds,
        description=description,
    )
    written = write_manifest(manifest, path)
    from .manifest import load_manifest

    loaded = load_manifest(path)
    assert loaded.source == written
    return loaded


def build_constant_detector(
    path: Path, *, boxes: Sequence[Sequence[float]], num_classes: int, input_size: int = 64,
    head: str = 'yolov8', labels: Sequence[str] | None = None,
    thresholds: Thresholds | None = None, resize: str = 'letterbox', batch: int | None = None,
) -> ModelManifest:
    """Write a detector whose output is always the given boxes, plus its manifest.

    boxes: (x1, y1, x2, y2, score, class_index) in model-input pixels. The output does not
    depend on the image, so tests can predict the exact detections in original pixels.
    batch None gives a dynamic batch dimension, an integer a fixed one.
    """
    if head not in ('yolov8', 'yolov5'):
        raise ValueError(f"head must be 'yolov8' or 'yolov5', got {head!r}")
    labels = list(labels) if labels is not None else [f'class{i}' for i in range(num_classes)]
    if len(labels) != num_classes:
        raise ValueError(f'{len(labels)} labels for {num_classes} classes')
    anchors = max(1, len(boxes))
    table = np.zeros((anchors, 5 + num_classes), np.float32)  # cx cy w h obj classes
    for i, (x1, y1, x2, y2, score, cls) in enumerate(boxes):
        if not 0 <= int(cls) < num_classes:
            raise ValueError(f'box {i}: class {cls} out of range')
        table[i, :5] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, score]
        table[i, 5 + int(cls)] = 1.0 if head == 'yolov5' else score
    if head == 'yolov8':
        constant = np.concatenate([table[:, :4], table[:, 5:]], axis=1).T[None]
    else:
        constant = table[None]
    g = _Graph()
    mean = g.one('ReduceMean', ['images'], axes=[1, 2, 3], keepdims=1)
    zero = g.one('Mul', [mean, g.const(np.zeros(1, np.float32))])
    per_image = g.one('Reshape', [zero, g.const(np.array([-1, 1, 1], np.int64))])
    out = g.one('Add', [g.const(constant.astype(np.float32), 'boxes'), per_image])
    _rename_output(g, out, 'output0')
    path = Path(path)
    dim: int | str = 'N' if batch is None else batch
    g.save(path, 'images', [dim, 3, input_size, input_size],
           [('output0', [dim, *constant.shape[1:]])], 'constant_detector')
    return _manifest(path, 'detection', input_size, DecoderSpec(type=head), labels,
                     thresholds or Thresholds(), resize, f'constant {head} test detector', batch)


def build_color_classifier(path: Path, *, input_size: int = 32,
                           labels: Sequence[str] = ('red', 'green', 'blue')) -> ModelManifest:
    """Write a classifier whose logits are the mean R, G, B of the image (x10), plus manifest."""
    if len(labels) != 3:
        raise ValueError('the colour classifier has exactly 3 classes (r, g, b)')
    g = _Graph()
    pooled = g.one('GlobalAveragePool', ['images'])
    flat = g.one('Flatten', [pooled], axis=1)
    logits = g.one('Gemm', [flat, g.const(np.eye(3, dtype=np.float32) * 10.0),
                            g.const(np.zeros(3, np.float32))])
    _rename_output(g, logits, 'logits')
    path = Path(path)
    g.save(path, 'images', ['N', 3, input_size, input_size], [('logits', ['N', 3])],
           'color_classifier')
    return _manifest(path, 'classification', input_size,
                     DecoderSpec(type='classification', softmax=True), labels,
                     Thresholds(score=0.0), 'resize', 'mean-colour test classifier')


def build_yolov8n_like(path: Path, input_size: int = 640, *, labels: Sequence[str] = STACK_LABELS,
                       width: float = 1.0, seed: int = 0) -> ModelManifest:
    """Write a YOLOv8n-shaped detector with random weights (~3M params at width 1) + manifest.

    Real conv backbone (C2f, SPPF), FPN/PAN neck and decoupled DFL head; output
    [N, 4 + C, A] in input pixels with A = (s/8)^2 + (s/16)^2 + (s/32)^2 (8400 at 640).
    """
    if input_size % 32:
        raise ValueError('input_size must be a multiple of 32')
    nc = len(labels)

    def ch(c: int) -> int:
        return max(8, int(round(c * width / 8)) * 8)

    g = _Graph(seed)
    x = g.conv('images', 3, ch(16), 3, 2)
    x = g.conv(x, ch(16), ch(32), 3, 2)
    x = g.c2f(x, ch(32), ch(32))
    x = g.conv(x, ch(32), ch(64), 3, 2)
    p3 = g.c2f(x, ch(64), ch(64), 2)
    x = g.conv(p3, ch(64), ch(128), 3, 2)
    p4 = g.c2f(x, ch(128), ch(128), 2)
    x = g.conv(p4, ch(128), ch(256), 3, 2)
    x = g.c2f(x, ch(256), ch(256))
    p5 = g.sppf(x, ch(256))
    up = g.one('Concat', [g.upsample(p5), p4], axis=1)
    n4 = g.c2f(up, ch(256) + ch(128), ch(128))
    up = g.one('Concat', [g.upsample(n4), p3], axis=1)
    o3 = g.c2f(up, ch(128) + ch(64), ch(64))
    down = g.one('Concat', [g.conv(o3, ch(64), ch(64), 3, 2), n4], axis=1)
    o4 = g.c2f(down, ch(64) + ch(128), ch(128))
    down = g.one('Concat', [g.conv(o4, ch(128), ch(128), 3, 2), p5], axis=1)
    o5 = g.c2f(down, ch(128) + ch(256), ch(256))
    reg = 16
    box_ch, cls_ch = max(16, ch(64) // 4, reg * 4), max(ch(64), min(nc, 100))
    boxes, scores, anchors, strides = [], [], [], []
    cls_logits: list[tuple[str, str, str]] = []
    for feat, cin, stride in ((o3, ch(64), 8), (o4, ch(128), 16), (o5, ch(256), 32)):
        side = input_size // stride
        b = g.conv(g.conv(g.conv(feat, cin, box_ch), box_ch, box_ch), box_ch, 4 * reg, 1,
                   act=False, bias_init=1.0)
        c = g.conv(g.conv(g.conv(feat, cin, cls_ch), cls_ch, cls_ch), cls_ch, nc, 1,
                   act=False)
        cls_logits.append((g.nodes[-1].input[1], g.nodes[-1].input[2], c))
        shape = g.const(np.array([-1, 4 * reg, side * side], np.int64))
        boxes.append(g.one('Reshape', [b, shape]))
        shape = g.const(np.array([-1, nc, side * side], np.int64))
        scores.append(g.one('Reshape', [c, shape]))
        ys, xs = np.meshgrid(np.arange(side) + 0.5, np.arange(side) + 0.5, indexing='ij')
        anchors.append(np.stack([xs.ravel(), ys.ravel()]))
        strides.append(np.full((1, side * side), stride))
    total = sum(a.shape[1] for a in anchors)
    dist = g.one('Reshape', [g.one('Concat', boxes, axis=2),
                             g.const(np.array([-1, 4, reg, total], np.int64))])
    prob = g.one('Softmax', [dist], axis=2)
    bins = g.const(np.arange(reg, dtype=np.float32).reshape(1, 1, reg, 1))
    ltrb = g.one('ReduceSum', [g.one('Mul', [prob, bins]),
                               g.const(np.array([2], np.int64))], keepdims=0)
    lt, rb = g.op('Split', [ltrb, g.const(np.array([2, 2], np.int64))], outputs=2, axis=1)
    anchor = g.const(np.concatenate(anchors, axis=1)[None].astype(np.float32), 'anchors')
    stride_c = g.const(np.concatenate(strides, axis=1)[None].astype(np.float32), 'strides')
    x1y1 = g.one('Sub', [anchor, lt])
    x2y2 = g.one('Add', [anchor, rb])
    centre = g.one('Div', [g.one('Add', [x1y1, x2y2]), g.const(np.array(2.0, np.float32))])
    size = g.one('Sub', [x2y2, x1y1])
    xywh = g.one('Mul', [g.one('Concat', [centre, size], axis=1), stride_c])
    cls = g.one('Sigmoid', [g.one('Concat', scores, axis=2)])
    _rename_output(g, g.one('Concat', [xywh, cls], axis=1), 'output0')
    path = Path(path)
    g.save(path, 'images', ['N', 3, input_size, input_size], [('output0', ['N', 4 + nc, total])],
           'yolov8n_like')
    _calibrate_logits(path, cls_logits, input_size)
    return _manifest(path, 'detection', input_size, DecoderSpec(type='yolov8'), labels,
                     Thresholds(), 'letterbox', f'YOLOv8n-shaped random-weight detector '
                     f'(width {width}, seed {seed}) for benchmarks')
