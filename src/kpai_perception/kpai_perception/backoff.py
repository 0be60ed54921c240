"""Exponential backoff for reconnecting to a source."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ['Backoff']


@dataclass
class Backoff:
    """Delays initial, initial*factor, ... capped at maximum; reset() after a success."""

    initial: float = 0.5
    maximum: float = 10.0
    factor: float = 2.0
    attempts: int = 0

    def __post_init__(self) -> None:
        if not (0 < self.initial <= self.maximum) or self.factor < 1:
            raise ValueError('need 0 < initial <= maximum and factor >= 1')

    def next_delay(self) -> float:
        """Return the delay before the next attempt and count the attempt."""
        delay = min(self.initial * self.factor ** self.attempts, self.maximum)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """Start over from the initial delay."""
        self.attempts = 0
