"""Cross-camera frame batching: newest frame per camera, bounded wait, drops counted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ['Frame', 'FrameBatcher']

T = TypeVar('T')


@dataclass(frozen=True)
class Frame(Generic[T]):
    """One pending frame: its camera index, payload and monotonic receipt time (s)."""

    camera: int
    payload: T
    received: float


class FrameBatcher(Generic[T]):
    """Thread-safe slots holding the newest frame of each camera, released in batches.

    A batch is ready when ``min(max_batch, cameras)`` cameras have a pending frame, or when
    ``max_wait`` seconds have passed since the oldest pending frame was received. A batch holds
    at most ``max_batch`` frames, oldest first; a frame replaced by a newer one of the same
    camera before it was taken is counted as dropped.
    """

    def __init__(self, cameras: int, *, max_batch: int, max_wait: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if cameras < 1:
            raise ValueError(f'cameras must be >= 1, got {cameras}')
        if max_batch < 1:
            raise ValueError(f'max_batch must be >= 1, got {max_batch}')
        if max_wait < 0.0:
            raise ValueError(f'max_wait must be >= 0, got {max_wait}')
        self.cameras = cameras
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._clock = clock
        self._slots: list[Frame[T] | None] = [None] * cameras
        self._cond = threading.Condition()
        self._closed = False
        self._received = 0
        self._dropped = 0
        self._taken = 0

    @property
    def target(self) -> int:
        """Return the number of pending cameras that makes a batch ready at once."""
        return min(self.max_batch, self.cameras)

    def put(self, camera: int, payload: T, *, received: float | None = None) -> bool:
        """Store the newest frame of camera; return True if it replaced an untaken one."""
        if not 0 <= camera < self.cameras:
            raise IndexError(f'camera index {camera} outside 0..{self.cameras - 1}')
        stamp = self._clock() if received is None else received
        with self._cond:
            replaced = self._slots[camera] is not None
            self._slots[camera] = Frame(camera, payload, stamp)
            self._received += 1
            if replaced:
                self._dropped += 1
            self._cond.notify_all()
        return replaced

    def pending(self) -> int:
        """Return how many cameras have a frame waiting."""
        with self._cond:
            return self._pending_locked()

    def take(self, timeout: float | None = None) -> list[Frame[T]]:
        """Block until a batch is ready and return it; [] on timeout or when closed."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while not self._closed:
                wait = self._ready_in_locked()
                if wait is not None and wait <= 0.0:
                    return self._pop_locked()
                if deadline is not None:
                    remaining = deadline - self._clock()
                    if remaining <= 0.0:
                        return []
                    wait = remaining if wait is None else min(wait, remaining)
                self._cond.wait(wait)
            return []

    def take_now(self) -> list[Frame[T]]:
        """Return every pending frame (up to max_batch) without waiting for a full batch."""
        with self._cond:
            return self._pop_locked()

    def close(self) -> None:
        """Wake any waiting taker; later takes return [] at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def counters(self) -> tuple[int, int, int]:
        """Return (received, dropped, taken) frame counts since creation."""
        with self._cond:
            return self._received, self._dropped, self._taken

    def _pending_locked(self) -> int:
        return sum(1 for s in self._slots if s is not None)

    def _ready_in_locked(self) -> float | None:
        """Seconds until a batch is ready (<= 0: ready now); None when nothing is pending."""
        frames = [s for s in self._slots if s is not None]
        if not frames:
            return None
        if len(frames) >= self.target:
            return 0.0
        oldest = min(f.received for f in frames)
        return oldest + self.max_wait - self._clock()

    def _pop_locked(self) -> list[Frame[T]]:
        frames = sorted((s for s in self._slots if s is not None), key=lambda f: f.received)
        batch = frames[: self.max_batch]
        for f in batch:
            self._slots[f.camera] = None
        self._taken += len(batch)
        return batch
