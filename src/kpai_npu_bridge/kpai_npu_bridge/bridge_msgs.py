"""Message conversion for npu_bridge: detections, statistics and diagnostics (no rclpy)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from kpai_msgs.msg import InferenceStats, LatencyStats

from .engine import EngineStatus
from .stats import Percentiles, StatsSnapshot

__all__ = ['detections_msg', 'diagnostic_status', 'stats_msg']


def detections_msg(header: Any, detections: Sequence[Any]) -> Detection2DArray:
    """Build a Detection2DArray in image pixels with the source image's header."""
    out = Detection2DArray(header=header)
    for d in detections:
        det = Detection2D(header=header)
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id = str(d.label) if d.label else str(d.class_index)
        hyp.hypothesis.score = float(d.score)
        det.results.append(hyp)
        x1, y1, x2, y2 = float(d.x1), float(d.y1), float(d.x2), float(d.y2)
        det.bbox.center.position.x = 0.5 * (x1 + x2)
        det.bbox.center.position.y = 0.5 * (y1 + y2)
        det.bbox.size_x = x2 - x1
        det.bbox.size_y = y2 - y1
        out.detections.append(det)
    return out


def _latency(p: Percentiles) -> LatencyStats:
    return LatencyStats(p50_ms=p.p50, p95_ms=p.p95, p99_ms=p.p99)


def _model_name(status: EngineStatus) -> str:
    if status.spec is None:
        return ''
    return status.spec.model_path.rsplit('/', 1)[-1]


def stats_msg(snap: StatsSnapshot, status: EngineStatus, *, node_name: str,
              stamp: Any) -> InferenceStats:
    """Build kpai_msgs/InferenceStats from a stats snapshot and the engine status."""
    msg = InferenceStats()
    msg.header.stamp = stamp
    msg.node_name = node_name
    info = status.backend_info
    if info is not None:
        msg.backend = str(info.name)
        msg.vendor = str(info.vendor)
        msg.device = str(info.device)
        msg.runtime_version = str(info.runtime_version)
    elif status.spec is not None:
        msg.backend = status.spec.backend
    msg.model_name = _model_name(status)
    msg.model_sha256 = status.model_sha256
    msg.fallback_active = status.fallback.active
    msg.fallback_reason = status.fallback.reason
    msg.compiling = status.compiling
    msg.fps = snap.fps
    msg.mean_batch_size = snap.mean_batch_size
    msg.preprocess = _latency(snap.pre)
    msg.inference = _latency(snap.infer)
    msg.postprocess = _latency(snap.post)
    msg.total = _latency(snap.total)
    msg.frames_received = snap.frames_received
    msg.frames_inferred = snap.frames_inferred
    msg.frames_dropped = snap.frames_dropped
    msg.frames_rejected = snap.frames_rejected
    msg.errors = snap.errors
    return msg


def diagnostic_status(snap: StatsSnapshot, status: EngineStatus, *, name: str, state: str,
                      error: str) -> DiagnosticStatus:
    """Summarise the bridge as one DiagnosticStatus.

    ERROR when no model could be loaded (error says why), WARN while on the CPU fallback,
    otherwise OK; the message says 'compiling' while a model is being loaded or compiled.
    """
    d = DiagnosticStatus(name=name)
    info = status.backend_info
    d.hardware_id = f'{info.name}/{info.device}' if info is not None else ''
    parts = []
    if error and status.spec is None:
        d.level = DiagnosticStatus.ERROR
        parts.append(error)
    elif status.fallback.active:
        d.level = DiagnosticStatus.WARN
        parts.append(f'fallback to CPU onnxruntime: {status.fallback.reason}')
    elif status.spec is None:
        d.level = DiagnosticStatus.WARN if not status.compiling else DiagnosticStatus.OK
        parts.append(f'no model loaded ({state})')
    else:
        d.level = DiagnosticStatus.OK
        parts.append(f'{state}: {_model_name(status)} on {status.spec.backend}'
                     f' at {snap.fps:.1f} fps')
    if status.compiling:
        parts.insert(0, f'compiling: {status.compile_message}')
    d.message = '; '.join(parts)
    values = {
        'state': state,
        'backend': '' if info is None else str(info.name),
        'vendor': '' if info is None else str(info.vendor),
        'device': '' if info is None else str(info.device),
        'runtime_version': '' if info is None else str(info.runtime_version),
        'model': _model_name(status),
        'model_sha256': status.model_sha256,
        'compiling': str(status.compiling).lower(),
        'fallback_active': str(status.fallback.active).lower(),
        'fallback_reason': status.fallback.reason,
        'fps': f'{snap.fps:.2f}',
        'mean_batch_size': f'{snap.mean_batch_size:.2f}',
        'frames_received': str(snap.frames_received),
        'frames_inferred': str(snap.frames_inferred),
        'frames_dropped': str(snap.frames_dropped),
        'frames_rejected': str(snap.frames_rejected),
        'errors': str(snap.errors),
        'last_error': status.last_error or error,
    }
    for stage, p in (('pre', snap.pre), ('infer', snap.infer), ('post', snap.post),
                     ('total', snap.total), ('added', snap.overhead)):
        for q, v in (('p50', p.p50), ('p95', p.p95), ('p99', p.p99)):
            values[f'{stage}_latency_{q}_ms'] = f'{v:.3f}'
    d.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    return d
