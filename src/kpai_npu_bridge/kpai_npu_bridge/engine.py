"""Inference engine of the bridge: batching worker thread, hot swap and CPU fallback (pure)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from .batcher import FrameBatcher
from .errors import BackendUnavailableError
from .fallback import FALLBACK_BACKEND, FallbackPolicy, FallbackState
from .stats import InferenceStats

__all__ = [
    'EngineStatus',
    'FrameResult',
    'InferenceEngine',
    'PipelineLike',
    'PipelineSpec',
    'SwapOutcome',
]

M = TypeVar('M')

ProgressFn = Callable[[str, float], None]


class PipelineLike(Protocol):
    """What the engine needs of kpai_npu_bridge.pipeline.Pipeline."""

    model_sha256: str

    @property
    def backend_info(self) -> Any: ...

    def infer(self, images: Sequence[np.ndarray]) -> tuple[list[list[Any]], Any]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class PipelineSpec:
    """Which model to run on which backend and device."""

    model_path: str
    backend: str
    device: str = ''


Opener = Callable[[PipelineSpec, ProgressFn], PipelineLike]


@dataclass(frozen=True)
class FrameResult(Generic[M]):
    """Detections of one frame with the metadata (e.g. header) it was submitted with."""

    camera: int
    meta: M
    detections: list[Any]
    received: float


@dataclass(frozen=True)
class SwapOutcome:
    """Result of a load/switch/return request."""

    success: bool
    message: str
    model_sha256: str = ''
    unavailable: bool = False  # the backend cannot run here (SDK, runtime or device absent)


@dataclass(frozen=True)
class EngineStatus:
    """A consistent view of the engine for diagnostics and statistics."""

    spec: PipelineSpec | None
    requested: PipelineSpec | None
    backend_info: Any
    model_sha256: str
    compiling: bool
    compile_message: str
    fallback: FallbackState
    last_error: str


@dataclass(frozen=True)
class _Item(Generic[M]):
    image: np.ndarray
    meta: M


_WARMUP_IMAGE = np.zeros((64, 64, 3), dtype=np.uint8)


class InferenceEngine(Generic[M]):
    """Runs a pipeline on batched frames in a worker thread; swaps pipelines without a gap.

    ``submit`` never blocks (newest frame per camera). Loading happens on a separate loader
    thread: the new pipeline is opened and warmed while the current one keeps running, then
    replaced between two batches, so frames queued during a swap are inferred by the new one.
    After ``fallback_after`` consecutive failed batches the engine loads the same model on
    CPU onnxruntime and stays there until ``return_from_fallback``.
    """

    def __init__(self, *, cameras: int, max_batch: int, max_wait_s: float,
                 fallback_after: int, opener: Opener,
                 on_results: Callable[[list[FrameResult[M]]], None],
                 on_event: Callable[[str, str], None] = lambda level, msg: None,
                 score_threshold: float | None = None,
                 stats: InferenceStats | None = None) -> None:
        self._batcher: FrameBatcher[_Item[M]] = FrameBatcher(
            cameras, max_batch=max_batch, max_wait=max_wait_s)
        self._opener = opener
        self._on_results = on_results
        self._on_event = on_event
        self._threshold = score_threshold
        self.stats = stats if stats is not None else InferenceStats()
        self.fallback = FallbackPolicy(fallback_after)
        self._pipe_lock = threading.Lock()  # held by the worker during one batch
        self._state_lock = threading.Lock()
        self._pipeline: PipelineLike | None = None
        self._spec: PipelineSpec | None = None
        self._requested: PipelineSpec | None = None
        self._compiling = 0
        self._compile_message = ''
        self._last_error = ''
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix='npu-loader')
        self._worker: threading.Thread | None = None
        self._running = False

    # -- loading -----------------------------------------------------------------------------

    def load(self, spec: PipelineSpec) -> SwapOutcome:
        """Open, warm and install spec's pipeline now (blocking); the user's chosen spec.

        When the backend is unavailable here (its SDK or device is absent) and the fallback is
        enabled, the same model runs on the CPU fallback instead and the outcome says why;
        ``return_from_fallback`` retries the requested backend later.
        """
        outcome = self._load_and_swap(spec, requested=True)
        if outcome.success or not outcome.unavailable or spec.backend == FALLBACK_BACKEND:
            return outcome
        reason = f'backend {spec.backend} unavailable: {outcome.message}'
        if not self.fallback.activate(reason):
            return outcome
        with self._state_lock:
            self._requested = spec
        self._on_event('warn', f'falling back to CPU {FALLBACK_BACKEND}: {reason}')
        fallback = self._load_and_swap(PipelineSpec(spec.model_path, FALLBACK_BACKEND, ''),
                                       requested=False)
        if not fallback.success:
            self.fallback.abandon()
            return SwapOutcome(False, f'{outcome.message}; fallback failed: {fallback.message}')
        return SwapOutcome(True, f'running {spec.model_path} on CPU {FALLBACK_BACKEND} '
                                 f'(fallback): {reason}', fallback.model_sha256)

    def load_async(self, spec: PipelineSpec) -> Future[SwapOutcome]:
        """Load spec in the background and swap it in when warm; the user's chosen spec."""
        return self._loader.submit(self._load_and_swap, spec, requested=True)

    def return_from_fallback(self) -> Future[SwapOutcome]:
        """Leave the CPU fallback: reload the requested spec in the background."""
        return self._loader.submit(self._return)

    def _return(self) -> SwapOutcome:
        state = self.fallback.state()
        if not state.active:
            return SwapOutcome(False, 'fallback is not active')
        with self._state_lock:
            spec = self._requested
        if spec is None:
            return SwapOutcome(False, 'no model requested')
        outcome = self._load_and_swap(spec, requested=True)
        if not outcome.success:
            return SwapOutcome(False, f'still on fallback: {outcome.message}')
        return outcome

    def _progress(self, message: str, fraction: float) -> None:
        with self._state_lock:
            self._compile_message = f'{message} ({100.0 * fraction:.0f}%)'

    def _load_and_swap(self, spec: PipelineSpec, *, requested: bool) -> SwapOutcome:
        with self._state_lock:
            self._compiling += 1
            self._compile_message = f'loading {spec.model_path} on {spec.backend}'
        try:
            try:
                new = self._opener(spec, self._progress)
            except Exception as err:  # noqa: BLE001 - any plug-in failure becomes a message
                msg = f'cannot load {spec.model_path} on {spec.backend}: {err}'
                self._set_error(msg)
                return SwapOutcome(False, msg,
                                   unavailable=isinstance(err, BackendUnavailableError))
            try:
                new.infer([_WARMUP_IMAGE])
            except Exception as err:  # noqa: BLE001
                new.close()
                msg = f'warm-up on {spec.backend} failed: {err}'
                self._set_error(msg)
                return SwapOutcome(False, msg)
            with self._pipe_lock:  # between two batches: no frame is lost, none is half-done
                old, self._pipeline = self._pipeline, new
                with self._state_lock:
                    self._spec = spec
                    if requested:
                        self._requested = spec
            if requested:
                self.fallback.reset()
            if old is not None and old is not new:
                old.close()
            return SwapOutcome(True, f'running {spec.model_path} on {spec.backend}',
                               new.model_sha256)
        finally:
            with self._state_lock:
                self._compiling -= 1
                if not self._compiling:
                    self._compile_message = ''

    def _start_fallback(self) -> None:
        with self._state_lock:
            spec = self._spec
        if spec is None:
            return
        target = PipelineSpec(spec.model_path, FALLBACK_BACKEND, '')
        reason = self.fallback.state().reason
        self._on_event('warn', f'falling back to CPU {FALLBACK_BACKEND}: {reason}')

        def run() -> SwapOutcome:
            outcome = self._load_and_swap(target, requested=False)
            if not outcome.success:
                self._on_event('error', f'fallback failed: {outcome.message}')
                self.fallback.abandon()
            return outcome

        self._loader.submit(run)

    # -- streaming ---------------------------------------------------------------------------

    def submit(self, camera: int, image: np.ndarray, meta: M,
               received: float | None = None) -> None:
        """Queue a frame; replaces (and counts as dropped) an untaken frame of that camera."""
        self.stats.add_received()
        if self._batcher.put(camera, _Item(image, meta), received=received):
            self.stats.add_dropped()

    def start(self) -> None:
        """Start the worker thread."""
        if self._worker is not None:
            return
        self._running = True
        self._worker = threading.Thread(target=self._run, name='npu-worker', daemon=True)
        self._worker.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker thread after its current batch."""
        self._running = False
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.join(timeout)

    def close(self) -> None:
        """Stop everything and release the pipeline."""
        self.stop()
        self._batcher.close()
        self._loader.shutdown(wait=True, cancel_futures=True)
        with self._pipe_lock:
            pipe, self._pipeline = self._pipeline, None
        if pipe is not None:
            pipe.close()

    def _run(self) -> None:
        while self._running:
            batch = self._batcher.take(timeout=0.1)
            if batch:
                self._process(batch)

    def _process(self, batch: list[Any]) -> None:
        images = [f.payload.image for f in batch]
        with self._pipe_lock:
            pipe = self._pipeline
            if pipe is None:
                return
            try:
                detections, timings = pipe.infer(images)
            except Exception as err:  # noqa: BLE001 - backends are plug-ins; never crash
                self.stats.add_error()
                self._set_error(f'{type(err).__name__}: {err}')
                self._on_event('error', f'inference failed on a batch of {len(batch)}: {err}')
                if self.fallback.record_failure(str(err)):
                    self._start_fallback()
                return
        self.fallback.record_success()
        if self._threshold is not None:
            thr = self._threshold
            detections = [[d for d in dets if d.score >= thr] for dets in detections]
        results = [FrameResult(f.camera, f.payload.meta, list(dets), f.received)
                   for f, dets in zip(batch, detections, strict=True)]
        try:
            self._on_results(results)
        except Exception as err:  # noqa: BLE001 - a failed publish must not end the worker
            self.stats.add_error()
            self._set_error(f'delivering results: {type(err).__name__}: {err}')
            self._on_event('error', f'could not deliver {len(results)} result(s): {err}')
        now = time.monotonic()
        self.stats.record_batch(
            pre_ms=float(timings.pre_ms), infer_ms=float(timings.infer_ms),
            post_ms=float(timings.post_ms),
            totals_ms=[1000.0 * (now - f.received) for f in batch], now=now)

    def _set_error(self, message: str) -> None:
        with self._state_lock:
            self._last_error = message

    # -- status ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Return True while the worker thread runs."""
        return self._worker is not None

    def status(self) -> EngineStatus:
        """Return what runs, whether something compiles, the fallback state, the last error."""
        with self._state_lock:
            pipe = self._pipeline
            return EngineStatus(
                spec=self._spec, requested=self._requested,
                backend_info=None if pipe is None else pipe.backend_info,
                model_sha256='' if pipe is None else pipe.model_sha256,
                compiling=self._compiling > 0, compile_message=self._compile_message,
                fallback=self.fallback.state(), last_error=self._last_error)

    def with_threshold(self, threshold: float | None) -> None:
        """Change the score threshold override (None: the manifest's)."""
        self._threshold = threshold

