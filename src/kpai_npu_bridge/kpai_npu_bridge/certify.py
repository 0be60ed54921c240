"""Certification of a backend against the onnxruntime CPU reference on one model."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .aot import compile_model, supports_compile
from .backends.registry import BackendStatus, backend_status
from .benchmark import LatencyStats, bench_tensor
from .compile_worker import WorkerError
from .conformance import (
    TASK_TOLERANCES,
    Tolerances,
    compare_outputs,
    match_detections,
    probe_bad_inputs,
    probe_bad_inputs_isolated,
)
from .errors import BackendUnavailableError, NpuBridgeError
from .golden import golden_images
from .manifest import load_manifest
from .pipeline import Pipeline

__all__ = [
    'EXIT_CODES',
    'REFERENCE_BACKEND',
    'STAGES',
    'CertificationReport',
    'Check',
    'certify',
]

REFERENCE_BACKEND = 'onnxruntime'
# the checks a full run makes, in order (compile is added when a backend cannot run here)
STAGES = ('load', 'parity', 'determinism', 'batching', 'bad_inputs')
# kpai-npu certify exit codes per verdict (2 is a usage or setup error of the CLI itself)
EXIT_CODES = {'pass': 0, 'fail': 1, 'incomplete': 3}


@dataclass
class Check:
    """One certification check: pass/fail, a one-line detail and its figures."""

    name: str
    passed: bool
    detail: str
    metrics: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False  # not run here (no device, no compiler): neither pass nor fail


@dataclass
class CertificationReport:
    """Everything a certification run found."""

    backend: str
    device: str
    model: str
    model_sha256: str
    task: str
    reference: str
    tolerances: dict[str, float]
    candidate_info: dict[str, str] = field(default_factory=dict)
    reference_info: dict[str, str] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    latency: dict[str, list[LatencyStats]] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    duration_s: float = 0.0
    host: str = field(default_factory=lambda: f'{platform.machine()}, {os.cpu_count()} CPUs, '
                                              f'{platform.platform(terse=True)}')

    incomplete: str = ''  # why the run stopped early (e.g. no device), '' for a full run

    @property
    def verdict(self) -> str:
        """Return 'fail' if a check failed, 'incomplete' if checks were not run, else 'pass'."""
        if self.failures():
            return 'fail'
        if self.incomplete or not self.checks or any(c.skipped for c in self.checks):
            return 'incomplete'
        return 'pass'

    @property
    def passed(self) -> bool:
        """Return True when every check ran and passed (and there was at least one)."""
        return self.verdict == 'pass'

    def failures(self) -> list[Check]:
        """Return the failed checks (skipped ones are not failures)."""
        return [c for c in self.checks if not c.passed and not c.skipped]

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            'passed': self.passed, 'verdict': self.verdict, 'incomplete': self.incomplete,
            'backend': self.backend, 'device': self.device, 'model': self.model,
            'model_sha256': self.model_sha256, 'task': self.task, 'reference': self.reference,
            'tolerances': self.tolerances, 'candidate_info': self.candidate_info,
            'reference_info': self.reference_info,
            'checks': [asdict(c) for c in self.checks],
            'latency': {k: [s.as_dict() for s in v] for k, v in self.latency.items()},
            'started': self.started, 'duration_s': round(self.duration_s, 3),
            'host': self.host,
        }


def _info(pipeline: Pipeline) -> dict[str, str]:
    return {k: str(v) for k, v in asdict(pipeline.backend_info).items()}


def _row(tensor: np.ndarray, i: int) -> np.ndarray:
    return np.ascontiguousarray(tensor[i:i + 1])


def certify(
    model_path: Path, backend: str, *, device: str = '', reference: str = REFERENCE_BACKEND,
    iterations: int = 20, batch_sizes: Sequence[int] = (1, 2, 4), num_images: int = 8,
    seed: int = 0, cache_dir: Path | None = None, tolerances: Tolerances | None = None,
    isolate: bool = True, progress: Callable[[str], None] | None = None,
) -> CertificationReport:
    """Run every conformance check of backend against the reference on the model.

    A backend that cannot load the model, gives different results, is non-deterministic,
    batches wrongly or mishandles bad inputs fails with the reason in the report.
    """
    say = progress or (lambda message: None)
    model_path = Path(model_path)
    manifest = load_manifest(model_path)
    tol = tolerances or TASK_TOLERANCES[manifest.task]
    report = CertificationReport(backend, device, str(model_path), manifest.sha256,
                                 manifest.task, f'{reference} (cpu)', asdict(tol))
    t_start = time.monotonic()

    def compile_progress(message: str, fraction: float) -> None:
        say(f'  {message}' + (f' ({fraction:.0%})' if 0.0 < fraction < 1.0 else ''))

    try:
        status: BackendStatus | None = backend_status(backend)
    except BackendUnavailableError:
        status = None  # an unknown name: the load check below fails with the known names
    if status is not None and not status.available:
        _partial(report, status, model_path, device, cache_dir, say)
        report.duration_s = time.monotonic() - t_start
        return report
    say(f'[1/7] loading reference {reference} (cpu) and candidate {backend}')
    ref = Pipeline.open(model_path, backend=reference, device='cpu', cache_dir=cache_dir,
                        progress=compile_progress)
    try:
        try:
            cand = Pipeline.open(model_path, backend=backend, device=device,
                                 cache_dir=cache_dir, progress=compile_progress)
        except NpuBridgeError as err:
            report.checks.append(Check('load', False, f'{type(err).__name__}: {err}'))
            report.duration_s = time.monotonic() - t_start
            return report
        try:
            report.reference_info, report.candidate_info = _info(ref), _info(cand)
            report.checks.append(Check('load', True, f'loaded on {cand.backend_info.device}'))
            _run_checks(report, ref, cand, manifest.thresholds.score, tol, iterations,
                        batch_sizes, num_images, seed, say)
            say('[7/7] bad inputs' + (' (isolated process)' if isolate else ''))
            good = ref.preprocess(golden_images(1, seed))[0]
            if isolate:
                results = probe_bad_inputs_isolated(backend, model_path, device, cache_dir, good)
            else:
                results = probe_bad_inputs(cand.backend, good)
            bad = [r for r in results if not r['ok']]
            report.checks.append(Check(
                'bad_inputs', not bad,
                'all malformed inputs rejected cleanly' if not bad else
                '; '.join(f"{r['case']}: {r['outcome']}" for r in bad), {'cases': results}))
        finally:
            cand.close()
    finally:
        ref.close()
    report.duration_s = time.monotonic() - t_start
    return report


def _partial(report: CertificationReport, status: BackendStatus, model_path: Path,
             device: str, cache_dir: Path | None, say: Callable[[str], None]) -> None:
    """Record what can be checked without the device (compile), and skip the rest."""
    report.incomplete = f'{status.name} cannot run here: {status.reason}'
    say(f'{report.incomplete}; only the compile stage can run')
    if status.cls is not None and supports_compile(status.cls):
        say(f'[1/1] compiling for {status.name}')
        try:
            result = compile_model(status.name, model_path, device=device, cache_dir=cache_dir,
                                   progress=lambda m, f: say(f'  {m}'))
        except BackendUnavailableError as err:  # no compiler here: not the backend's fault
            report.checks.append(Check('compile', False, f'not run: {err}', skipped=True))
        except WorkerError as err:
            # an incomplete toolchain is a setup problem; a compiler that ran and failed is not
            report.checks.append(Check('compile', False, f'not run: {err}' if err.kind == 'missing'
                                       else f'{type(err).__name__}: {err}',
                                       {'kind': err.kind}, skipped=err.kind == 'missing'))
        except NpuBridgeError as err:  # the compiler ran and rejected the model
            report.checks.append(Check('compile', False, f'{type(err).__name__}: {err}'))
        else:
            how = 'cache hit, compiled earlier' if result.cache_hit else 'compiled'
            report.checks.append(Check(
                'compile', True, f'{how} in {result.compile_seconds:.1f} s by {result.compiler}: '
                f'{result.artifact_bytes} bytes', result.as_dict()))
    else:
        report.checks.append(Check('compile', False, f'not run: {status.name} has no '
                                   'ahead-of-time compile step', skipped=True))
    for stage in STAGES:
        report.checks.append(Check(stage, False, f'not run: {status.name} cannot run here '
                                   '(reason above)', skipped=True))


def _run_checks(report: CertificationReport, ref: Pipeline, cand: Pipeline, score_floor: float,
                tol: Tolerances, iterations: int, batch_sizes: Sequence[int], num_images: int,
                seed: int, say: Callable[[str], None]) -> None:
    images = golden_images(num_images, seed)
    tensor, metas = ref.preprocess(images)
    say(f'[2/7] output parity on {num_images} golden images')
    ref_out = [ref.run_tensor(_row(tensor, i)) for i in range(num_images)]
    cand_out: list[list[np.ndarray]] = []
    worst: dict[str, Any] = {'ratio': 0.0, 'max_abs': 0.0, 'reason': ''}
    th = cand.manifest.thresholds
    match_iou = tol.match_iou if tol.match_iou is not None else th.iou
    recall = [0, 0]  # reference results found in the candidate's
    precision = [0, 0]  # candidate results found in the reference's
    for i in range(num_images):
        try:
            out = cand.run_tensor(_row(tensor, i))
        except NpuBridgeError as err:
            report.checks.append(Check('parity', False, f'image {i}: {err}'))
            return
        cand_out.append(out)
        cmp = compare_outputs(out, ref_out[i], rtol=tol.rtol, atol=tol.atol)
        if cmp['ratio'] >= worst['ratio'] or not cmp['ok']:
            worst = {**cmp, 'image': i}
        try:
            got = cand.postprocess(out, metas[i:i + 1])[0]
        except NpuBridgeError as err:
            report.checks.append(Check('parity', False, f'image {i}: decoding failed: {err}'))
            return
        want = ref.postprocess(ref_out[i], metas[i:i + 1])[0]
        for counts, a, b in ((recall, got, want), (precision, want, got)):
            m, r = match_detections(a, b, iou=match_iou, score_abs=tol.score_abs,
                                    score_floor=score_floor + tol.score_abs)
            counts[0] += m
            counts[1] += r
    rates = [c[0] / c[1] if c[1] else 1.0 for c in (recall, precision)]
    ok = bool(worst.get('ok', True)) and worst['ratio'] <= 1.0 and min(rates) >= tol.min_match_rate
    detail = (f'raw outputs within tolerance (worst ratio {worst["ratio"]:.3g}); '
              f'{recall[0]}/{recall[1]} reference and {precision[0]}/{precision[1]} candidate '
              'results matched')
    if not ok:
        parts = []
        if worst['ratio'] > 1.0 or not worst.get('ok', True):
            parts.append(f'image {worst.get("image")}: {worst["reason"]}')
        for (m, r), rate, whose in ((recall, rates[0], 'reference'),
                                    (precision, rates[1], 'candidate')):
            if rate < tol.min_match_rate:
                parts.append(f'only {m}/{r} {whose} results matched '
                             f'(need {tol.min_match_rate:.0%})')
        detail = '; '.join(parts)
    report.checks.append(Check('parity', ok, detail, {
        'worst_ratio': worst['ratio'], 'max_abs_diff': worst['max_abs'],
        'matched': recall[0], 'required': recall[1], 'match_rate': rates[0],
        'candidate_matched': precision[0], 'candidate_required': precision[1],
        'candidate_match_rate': rates[1], 'match_iou': match_iou}))

    say('[3/7] determinism (same input twice)')
    again = [cand.run_tensor(_row(tensor, i)) for i in range(min(3, num_images))]
    cmps = [compare_outputs(a, cand_out[i], rtol=tol.determinism_rtol,
                            atol=tol.determinism_atol) for i, a in enumerate(again)]
    bitwise = all(all(np.array_equal(x, y) for x, y in zip(a, cand_out[i], strict=True))
                  for i, a in enumerate(again))
    bad = [c for c in cmps if not c['ok']]
    report.checks.append(Check(
        'determinism', not bad,
        ('bitwise identical' if bitwise else 'identical within tolerance') if not bad
        else bad[0]['reason'],
        {'bitwise': bitwise, 'max_abs_diff': max(c['max_abs'] for c in cmps)}))

    say(f'[4/7] batch behaviour at batch sizes {list(batch_sizes)}')
    report.checks.append(_batch_check(cand, tensor, cand_out, batch_sizes, tol))

    say(f'[5/7] latency of the reference ({iterations} iterations per batch size)')
    report.latency['reference'] = bench_tensor(ref, tensor, batch_sizes, iterations=iterations,
                                               max_seconds=20.0)
    say(f'[6/7] latency of {report.backend}')
    report.latency['candidate'] = bench_tensor(cand, tensor, batch_sizes,
                                               iterations=iterations, max_seconds=20.0)


def _batch_check(cand: Pipeline, tensor: np.ndarray, singles: list[list[np.ndarray]],
                 batch_sizes: Sequence[int], tol: Tolerances) -> Check:
    metrics: dict[str, Any] = {'dynamic_batch': cand.dynamic_batch}
    problems = []
    for b in batch_sizes:
        rows = np.resize(np.arange(tensor.shape[0]), b)
        try:
            outs = cand.run_tensor(np.ascontiguousarray(tensor[rows]))
        except NpuBridgeError as err:
            problems.append(f'batch {b}: {err}')
            continue
        worst = 0.0
        for k, i in enumerate(rows):
            if any(o.shape[0] != b for o in outs):
                problems.append(f'batch {b}: output batch dims {[o.shape[0] for o in outs]}')
                break
            cmp = compare_outputs([o[k:k + 1] for o in outs], singles[int(i)],
                                  rtol=tol.batch_rtol, atol=tol.batch_atol)
            worst = max(worst, cmp['ratio'])
            if not cmp['ok']:
                problems.append(f'batch {b} item {k} differs from batch 1: {cmp["reason"]}')
                break
        metrics[f'batch_{b}_worst_ratio'] = worst
    mode = 'one call per batch' if cand.dynamic_batch else 'fixed batch, pipeline loops'
    return Check('batching', not problems,
                 f'batches {list(batch_sizes)} equal to single runs ({mode})' if not problems
                 else '; '.join(problems), metrics)
