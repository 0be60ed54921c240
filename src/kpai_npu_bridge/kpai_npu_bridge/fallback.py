"""Fallback policy: after N consecutive backend failures, run on the CPU backend until reset."""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ['FALLBACK_BACKEND', 'FallbackPolicy', 'FallbackState']

# The reference backend that every installation has (CPU execution provider).
FALLBACK_BACKEND = 'onnxruntime'


@dataclass(frozen=True)
class FallbackState:
    """What the policy currently says: fallback active, why, and the failure streak."""

    active: bool
    reason: str
    consecutive_failures: int
    total_failures: int


class FallbackPolicy:
    """Thread-safe consecutive-failure counter deciding when to switch to the CPU fallback.

    ``after_failures`` = 0 disables the fallback (failures are only counted). Once active, the
    policy stays active until ``reset()`` is called (an operator asks to return).
    """

    def __init__(self, after_failures: int) -> None:
        if after_failures < 0:
            raise ValueError(f'after_failures must be >= 0, got {after_failures}')
        self.after_failures = after_failures
        self._lock = threading.Lock()
        self._streak = 0
        self._total = 0
        self._active = False
        self._reason = ''

    def record_success(self) -> None:
        """Note a successful batch; the failure streak restarts."""
        with self._lock:
            self._streak = 0

    def record_failure(self, reason: str) -> bool:
        """Note a failed batch; return True exactly when the fallback must start now."""
        with self._lock:
            self._streak += 1
            self._total += 1
            if self._active or self.after_failures == 0 or self._streak < self.after_failures:
                return False
            self._active = True
            self._reason = f'{self._streak} consecutive backend failures, last: {reason}'
            return True

    def activate(self, reason: str) -> bool:
        """Enter the fallback now (the requested backend is unavailable); False if disabled."""
        with self._lock:
            if self.after_failures == 0:
                return False
            self._active = True
            self._reason = reason
            self._streak = 0
            return True

    def abandon(self) -> None:
        """Leave the active state without a reset (the fallback could not be started)."""
        with self._lock:
            self._active = False
            self._reason = ''
            self._streak = 0

    def reset(self) -> bool:
        """Return from fallback; True if it was active."""
        with self._lock:
            was = self._active
            self._active = False
            self._reason = ''
            self._streak = 0
            return was

    def state(self) -> FallbackState:
        """Return a consistent view of the policy."""
        with self._lock:
            return FallbackState(self._active, self._reason, self._streak, self._total)
