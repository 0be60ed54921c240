"""Protective and warning fields around the footprint that grow with speed.

With v the robot's forward speed (m/s, negative when reversing):

    stopping distance  S(v) = |v| * response_time + v^2 / (2 * deceleration)
    protective field   = hull(footprint grown by protective_clearance on every side,
                              the same shape shifted by S(v) along the direction of travel)
    warning field      = hull(footprint grown by protective_clearance + warning_clearance,
                              shifted by S(v) + |v| * warning_time along the direction of travel)

response_time covers perception, tracking and control latency; deceleration is what the base
can brake with. A person inside the protective field means the robot could not stop before
reaching them; inside the warning field it must slow down.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kpai_perception.errors import SafetyConfigError
from kpai_perception.safety.polygon import convex_hull

__all__ = ['FieldConfig', 'SafetyFields', 'compute_fields', 'stopping_distance']

DEFAULT_FOOTPRINT = ((0.35, 0.25), (0.35, -0.25), (-0.35, -0.25), (-0.35, 0.25))


@dataclass(frozen=True)
class FieldConfig:
    """Footprint (robot frame, x forward, m) and the field growth parameters."""

    footprint: tuple[tuple[float, float], ...] = DEFAULT_FOOTPRINT
    protective_clearance: float = 0.3   # m around the footprint at standstill
    warning_clearance: float = 1.0      # m beyond the protective field at standstill
    response_time: float = 0.3          # s from a person appearing to brakes applied
    deceleration: float = 1.0           # m/s^2 braking
    warning_time: float = 1.0           # s of extra travel the warning field looks ahead

    def __post_init__(self) -> None:
        values = (self.protective_clearance, self.warning_clearance, self.response_time,
                  self.deceleration, self.warning_time)
        if not all(math.isfinite(v) for v in values):
            raise SafetyConfigError('field parameters must be finite')
        if min(self.protective_clearance, self.warning_clearance, self.response_time,
               self.warning_time) < 0:
            raise SafetyConfigError('clearances and times must be >= 0')
        if self.deceleration <= 0:
            raise SafetyConfigError(f'deceleration must be > 0, got {self.deceleration}')
        fp = np.asarray(self.footprint, dtype=np.float64)
        if fp.ndim != 2 or fp.shape[1] != 2 or fp.shape[0] < 3 or not np.all(np.isfinite(fp)):
            raise SafetyConfigError('footprint needs at least 3 finite (x, y) points')
        if len(convex_hull(fp)) < 3:
            raise SafetyConfigError('footprint has no area')


def parse_footprint(flat: Sequence[float]) -> tuple[tuple[float, float], ...]:
    """Turn a flat [x0, y0, x1, y1, ...] list (a ROS parameter) into footprint points."""
    if len(flat) % 2 or len(flat) < 6:
        raise SafetyConfigError(f'footprint needs >= 3 x,y pairs, got {len(flat)} numbers')
    return tuple((float(flat[i]), float(flat[i + 1])) for i in range(0, len(flat), 2))


def stopping_distance(speed: float, config: FieldConfig) -> float:
    """Return |v| * response_time + v^2 / (2 * deceleration) in metres."""
    v = abs(speed)
    return v * config.response_time + v * v / (2 * config.deceleration)


@dataclass(frozen=True)
class SafetyFields:
    """The two field polygons (robot frame, counter-clockwise) for one speed."""

    speed: float
    protective: np.ndarray
    warning: np.ndarray


def _grown(footprint: np.ndarray, clearance: float, reach: float, direction: float
           ) -> np.ndarray:
    offsets = np.array([(dx, dy) for dx in (-clearance, clearance)
                        for dy in (-clearance, clearance)])
    grown = (footprint[:, None, :] + offsets[None, :, :]).reshape(-1, 2)
    shifted = grown + np.array([direction * reach, 0.0])
    return convex_hull(np.vstack([grown, shifted]))


def compute_fields(speed: float, config: FieldConfig) -> SafetyFields:
    """Return the protective and warning fields for forward speed (m/s)."""
    if not math.isfinite(speed):
        raise ValueError(f'speed must be finite, got {speed}')
    fp = np.asarray(config.footprint, dtype=np.float64)
    direction = 1.0 if speed >= 0 else -1.0
    stop = stopping_distance(speed, config)
    protective = _grown(fp, config.protective_clearance, stop, direction)
    warning = _grown(fp, config.protective_clearance + config.warning_clearance,
                     stop + abs(speed) * config.warning_time, direction)
    return SafetyFields(speed, protective, warning)
