"""Differential-drive command handling: validation, velocity and acceleration limits, timeout."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ConfigError

__all__ = ['DiffDrive', 'DriveLimits']


@dataclass(frozen=True)
class DriveLimits:
    """Velocity and acceleration limits of the base, and the command timeout."""

    max_linear: float = 1.0  # m/s
    max_angular: float = 1.5  # rad/s
    max_linear_accel: float = 1.0  # m/s^2
    max_angular_accel: float = 3.0  # rad/s^2
    cmd_timeout: float = 0.5  # s without cmd_vel -> decelerate to a stop

    def validate(self) -> DriveLimits:
        """Return self when every limit is finite and > 0, else raise ConfigError."""
        for name in ('max_linear', 'max_angular', 'max_linear_accel', 'max_angular_accel',
                     'cmd_timeout'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f'{name} must be finite and > 0, got {value}')
        return self


def _ramp(current: float, target: float, step: float) -> float:
    return current + max(-step, min(step, target - current))


class DiffDrive:
    """Turns cmd_vel requests into a limited (v, w) setpoint for one robot."""

    def __init__(self, limits: DriveLimits) -> None:
        self.limits = limits.validate()
        self.target = (0.0, 0.0)
        self.setpoint = (0.0, 0.0)
        self.last_cmd_time = -math.inf
        self.rejected = 0
        self.clamped = 0

    def command(self, linear: float, angular: float, now: float) -> str | None:
        """Accept a (v, w) request at sim time now; return why it was altered, or None."""
        if not (math.isfinite(linear) and math.isfinite(angular)):
            self.rejected += 1
            return f'ignored non-finite cmd_vel ({linear}, {angular})'
        lim = self.limits
        v = max(-lim.max_linear, min(lim.max_linear, linear))
        w = max(-lim.max_angular, min(lim.max_angular, angular))
        self.target = (v, w)
        self.last_cmd_time = now
        if (v, w) != (linear, angular):
            self.clamped += 1
            return f'clamped cmd_vel ({linear:.3g}, {angular:.3g}) to ({v:.3g}, {w:.3g})'
        return None

    def update(self, dt: float, now: float) -> tuple[float, float]:
        """Advance the setpoint by dt towards the target under the acceleration limits."""
        lim = self.limits
        target = self.target
        if now - self.last_cmd_time > lim.cmd_timeout:
            target = (0.0, 0.0)
        self.setpoint = (_ramp(self.setpoint[0], target[0], lim.max_linear_accel * dt),
                         _ramp(self.setpoint[1], target[1], lim.max_angular_accel * dt))
        return self.setpoint
