"""Wandering policy for data collection: drive, turn away from near obstacles (pure logic)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ['WanderPolicy']


@dataclass
class WanderPolicy:
    """Cruise forward; when the front sector is blocked turn on the spot toward open space."""

    speed: float = 0.4
    turn_rate: float = 0.8
    clearance: float = 0.9
    front_half_angle: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._turn = 0.0
        self._wobble = 0.0

    def command(self, ranges: Sequence[float], angle_min: float, angle_increment: float,
                ) -> tuple[float, float]:
        """Return (linear m/s, angular rad/s) from one laser scan."""
        r = np.asarray(ranges, np.float64)
        r = np.where(np.isfinite(r) & (r > 0), r, np.inf)
        angles = angle_min + angle_increment * np.arange(r.size)
        angles = np.arctan2(np.sin(angles), np.cos(angles))
        front = np.abs(angles) < self.front_half_angle
        nearest = float(r[front].min()) if front.any() else math.inf
        if nearest < self.clearance:
            if self._turn == 0.0:
                left = r[(angles > 0) & (angles < math.pi / 2)]
                right = r[(angles < 0) & (angles > -math.pi / 2)]
                left_open = float(np.median(np.minimum(left, 10))) if left.size else 0.0
                right_open = float(np.median(np.minimum(right, 10))) if right.size else 0.0
                self._turn = self.turn_rate if left_open >= right_open else -self.turn_rate
            return 0.0, self._turn
        self._turn = 0.0
        if self._rng.random() < 0.05:
            self._wobble = float(self._rng.uniform(-0.4, 0.4))
        return self.speed, self._wobble
