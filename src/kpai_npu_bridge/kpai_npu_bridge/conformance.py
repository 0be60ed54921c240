"""Comparison primitives and the bad-input probe used by the certification kit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .backends.base import Backend
from .decoders import box_iou
from .errors import InputError, NpuBridgeError
from .pipeline import Detection

__all__ = [
    'TASK_TOLERANCES',
    'Tolerances',
    'compare_outputs',
    'match_detections',
    'probe_bad_inputs',
    'probe_bad_inputs_isolated',
]


@dataclass(frozen=True)
class Tolerances:
    """Pass criteria; raw outputs pass when |a - b| <= atol + rtol * |b| everywhere."""

    rtol: float
    atol: float
    determinism_rtol: float = 1e-6
    determinism_atol: float = 1e-6
    batch_rtol: float = 1e-3
    batch_atol: float = 1e-3
    match_iou: float | None = None  # None: the manifest's NMS IoU threshold
    score_abs: float = 0.02
    min_match_rate: float = 0.95


# Raw-output tolerances allow fp16-class accelerators; decoded results must agree closely.
TASK_TOLERANCES = {
    'detection': Tolerances(rtol=1e-2, atol=1e-2),
    'classification': Tolerances(rtol=1e-2, atol=1e-2, min_match_rate=1.0, score_abs=0.01),
}


def compare_outputs(candidate: Sequence[np.ndarray], reference: Sequence[np.ndarray], *,
                    rtol: float, atol: float) -> dict[str, Any]:
    """Return worst error ratio (<= 1 passes), max abs diff and a reason when they differ."""
    if len(candidate) != len(reference):
        return {'ok': False, 'ratio': float('inf'), 'max_abs': float('inf'),
                'reason': f'{len(candidate)} outputs, reference has {len(reference)}'}
    worst, max_abs = 0.0, 0.0
    for i, (a, b) in enumerate(zip(candidate, reference, strict=True)):
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return {'ok': False, 'ratio': float('inf'), 'max_abs': float('inf'),
                    'reason': f'output {i} shape {list(a.shape)}, reference {list(b.shape)}'}
        finite = np.isfinite(b)
        if not np.array_equal(np.isfinite(a), finite):
            return {'ok': False, 'ratio': float('inf'), 'max_abs': float('inf'),
                    'reason': f'output {i} has NaN/inf where the reference does not'}
        if not finite.any():
            continue
        diff = np.abs(a[finite] - b[finite])
        max_abs = max(max_abs, float(diff.max()))
        worst = max(worst, float((diff / (atol + rtol * np.abs(b[finite]))).max()))
    ok = worst <= 1.0
    return {'ok': ok, 'ratio': worst, 'max_abs': max_abs,
            'reason': '' if ok else f'max |diff| {max_abs:.3g} exceeds atol {atol} + '
                                    f'rtol {rtol} x |ref| (worst ratio {worst:.3g})'}


def match_detections(candidate: Sequence[Detection], reference: Sequence[Detection], *,
                     iou: float, score_abs: float, score_floor: float) -> tuple[int, int]:
    """Return (matched, required): reference detections scoring >= score_floor that some
    same-class candidate overlaps with IoU >= iou at a score within score_abs.

    Not one-to-one on purpose: with near-equal scores, NMS may keep a neighbouring box
    instead, which then stands for the whole cluster; with iou at the NMS threshold that
    neighbour still matches. Raw-output parity is the strict check.
    """
    required = [d for d in reference if d.score >= score_floor]
    if not candidate:
        return 0, len(required)
    boxes = np.array([[d.x1, d.y1, d.x2, d.y2] for d in candidate])
    classes = np.array([d.class_index for d in candidate])
    scores = np.array([d.score for d in candidate])
    matched = 0
    for ref in required:
        if np.isfinite([ref.x1, ref.x2]).all():
            overlaps = box_iou(np.array([ref.x1, ref.y1, ref.x2, ref.y2]), boxes) >= iou
        else:  # whole-image classification results
            overlaps = np.ones(len(boxes), dtype=bool)
        ok = overlaps & (classes == ref.class_index) & (np.abs(scores - ref.score) <= score_abs)
        matched += bool(ok.any())
    return matched, len(required)


def probe_bad_inputs(backend: Backend, good: np.ndarray) -> list[dict[str, Any]]:
    """Feed malformed batches; each must raise a kpai_npu_bridge error, never anything else.

    Finally the good batch must still give the same outputs (the backend survived).
    """
    spec = backend.inputs()[0]
    name = spec.name
    before = backend.run({name: good})
    bigger = list(good.shape)
    bigger[-1] += 1
    cases: list[tuple[str, Any, bool]] = [
        ('wrong spatial shape', {name: np.zeros(bigger, dtype=good.dtype)}, True),
        ('missing batch dimension', {name: np.ascontiguousarray(good[0])}, True),
        ('float64 instead of ' + spec.dtype, {name: good.astype(np.float64)}, True),
        ('uint8 instead of ' + spec.dtype, {name: good.astype(np.uint8)}, spec.dtype != 'uint8'),
        ('empty batch', {name: np.zeros((0, *good.shape[1:]), dtype=good.dtype)}, True),
        ('unknown input name', {name + '_nope': good}, True),
        ('not an array', {name: good.tolist()[:1]}, True),
        ('NaN pixels', {name: np.full_like(good, np.nan)}, False),
    ]
    results = []
    for label, batch, must_raise in cases:
        try:
            backend.run(batch)
        except InputError as err:
            results.append({'case': label, 'ok': True, 'outcome': f'InputError: {err}'})
        except NpuBridgeError as err:
            results.append({'case': label, 'ok': True,
                            'outcome': f'{type(err).__name__}: {err}'})
        except Exception as err:  # the point of the probe: anything else is a failure
            results.append({'case': label, 'ok': False,
                            'outcome': f'unclean {type(err).__name__}: {err}'})
        else:
            results.append({'case': label, 'ok': not must_raise,
                            'outcome': 'accepted' + (' (must be rejected)' if must_raise
                                                     else ' (allowed)')})
    try:
        after = backend.run({name: good})
        same = compare_outputs(after, before, rtol=1e-6, atol=1e-6)['ok']
        results.append({'case': 'good input afterwards', 'ok': same,
                        'outcome': 'same outputs' if same else 'outputs changed'})
    except Exception as err:
        results.append({'case': 'good input afterwards', 'ok': False,
                        'outcome': f'{type(err).__name__}: {err}'})
    return results


def _probe_child(conn: Any, backend_name: str, model_path: str, device: str,
                 cache_dir: str | None, good: np.ndarray) -> None:
    from .backends.registry import create_backend
    from .cache import ArtifactCache

    try:
        backend = create_backend(backend_name)
        backend.load(Path(model_path), device=device,
                     cache=ArtifactCache(Path(cache_dir)) if cache_dir else None)
        try:
            conn.send(('ok', probe_bad_inputs(backend, good)))
        finally:
            backend.close()
    except Exception as err:
        conn.send(('error', f'{type(err).__name__}: {err}'))
    finally:
        conn.close()


def probe_bad_inputs_isolated(backend_name: str, model_path: Path, device: str,
                              cache_dir: Path | None, good: np.ndarray, *,
                              timeout: float = 300.0) -> list[dict[str, Any]]:
    """Run probe_bad_inputs in a child process, so a crashing or hanging runtime is a failed
    check instead of taking the certification down."""
    import multiprocessing

    context = multiprocessing.get_context('spawn')
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_probe_child, daemon=True, name='kpai-npu-bad-input-probe',
        args=(sender, backend_name, str(model_path), device,
              str(cache_dir) if cache_dir else None, good))
    child.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            return [{'case': 'bad inputs', 'ok': False,
                     'outcome': f'the backend did not answer within {timeout:.0f} s (hung)'}]
        try:
            status, payload = receiver.recv()
        except EOFError:
            child.join(10.0)
            return [{'case': 'bad inputs', 'ok': False,
                     'outcome': f'the backend process crashed (exit code {child.exitcode})'}]
        if status != 'ok':
            return [{'case': 'bad inputs', 'ok': False,
                     'outcome': f'could not run the probe: {payload}'}]
        return list(payload)
    finally:
        receiver.close()
        child.join(5.0)
        if child.is_alive():
            child.kill()
            child.join()
