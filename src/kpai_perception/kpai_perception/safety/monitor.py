"""Safety monitor: people in fields -> CLEAR / WARNING / PROTECTIVE_STOP / FAULT + speed limit."""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from kpai_perception.errors import SafetyConfigError
from kpai_perception.safety.fields import FieldConfig, SafetyFields, compute_fields
from kpai_perception.safety.polygon import distance_to_polygon, point_in_polygon

__all__ = ['MonitorConfig', 'SafetyDecision', 'SafetyMonitor', 'SafetyState']


class SafetyState(enum.IntEnum):
    """States with the values of kpai_msgs/SafetyStatus."""

    CLEAR = 0
    WARNING = 1
    PROTECTIVE_STOP = 2
    FAULT = 3


@dataclass(frozen=True)
class MonitorConfig:
    """Speed limits per state, input timeout and hysteresis."""

    fields: FieldConfig = field(default_factory=FieldConfig)
    max_speed: float = 1.5        # m/s limit when CLEAR
    warning_speed: float = 0.3    # m/s limit when WARNING
    fault_speed: float = 0.0      # m/s limit when inputs are stale (0: stop; > 0: creep)
    input_timeout: float = 0.5    # s without tracked objects or odometry -> FAULT
    hold_time: float = 0.5        # s a STOP or WARNING is held after the cause has gone

    def __post_init__(self) -> None:
        values = (self.max_speed, self.warning_speed, self.fault_speed, self.input_timeout,
                  self.hold_time)
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise SafetyConfigError('speeds and times must be finite and >= 0')
        if self.warning_speed > self.max_speed or self.fault_speed > self.max_speed:
            raise SafetyConfigError('warning_speed and fault_speed must be <= max_speed')
        if self.input_timeout <= 0:
            raise SafetyConfigError('input_timeout must be > 0')


@dataclass(frozen=True)
class SafetyDecision:
    """What the monitor decided at one instant."""

    state: SafetyState
    speed_limit: float
    reason: str
    people_in_warning: int
    people_in_protective: int
    nearest_person_distance: float
    inputs_stale: bool
    fields: SafetyFields | None


class SafetyMonitor:
    """Combine the latest people positions (robot frame) and speed into a decision.

    Times are seconds on one monotonic clock chosen by the caller (the node's clock).
    """

    def __init__(self, config: MonitorConfig | None = None) -> None:
        self.config = config or MonitorConfig()
        self._people: list[tuple[float, float]] = []
        self._bad_people = 0
        self._people_time: float | None = None
        self._speed = 0.0
        self._speed_time: float | None = None
        self._held: tuple[SafetyState, float, str] | None = None  # state, until, reason
        self.rejected_inputs = 0
        self._footprint = np.asarray(self.config.fields.footprint, dtype=np.float64)

    def set_people(self, now: float, positions: Sequence[tuple[float, float]]) -> int:
        """Store people positions (x, y) in the robot frame; return how many were rejected.

        A person with a non-finite position is somewhere unknown: until the next update the
        monitor fails safe (FAULT) rather than ignoring them.
        """
        good = [(float(x), float(y)) for x, y in positions
                if math.isfinite(x) and math.isfinite(y)]
        bad = len(positions) - len(good)
        self.rejected_inputs += bad
        self._bad_people = bad
        self._people = good
        self._people_time = now
        return bad

    def set_speed(self, now: float, speed: float) -> bool:
        """Store the forward speed (m/s); a non-finite value is rejected (returns False)."""
        if not math.isfinite(speed):
            self.rejected_inputs += 1
            return False
        self._speed = float(speed)
        self._speed_time = now
        return True

    def _stale(self, now: float) -> str:
        timeout = self.config.input_timeout
        for name, t in (('tracked objects', self._people_time), ('odometry', self._speed_time)):
            if t is None:
                return f'no {name} received yet'
            if now - t > timeout:
                return f'no {name} for {now - t:.2f} s (timeout {timeout:.2f} s)'
        return ''

    def evaluate(self, now: float) -> SafetyDecision:
        """Return the decision at time now (s)."""
        cfg = self.config
        stale = self._stale(now)
        if stale:
            self._held = None
            return SafetyDecision(SafetyState.FAULT, cfg.fault_speed, f'fail-safe: {stale}', 0,
                                  0, math.inf, True, None)
        if self._bad_people:
            self._held = None
            return SafetyDecision(SafetyState.FAULT, cfg.fault_speed,
                                  f'fail-safe: {self._bad_people} person(s) with a non-finite '
                                  'position', 0, 0, math.inf, False, None)
        fields = compute_fields(self._speed, cfg.fields)
        fp = self._footprint
        in_prot = in_warn = 0
        nearest = math.inf
        for x, y in self._people:
            nearest = min(nearest, distance_to_polygon(x, y, fp))
            if point_in_polygon(x, y, fields.protective):
                in_prot += 1
            elif point_in_polygon(x, y, fields.warning):
                in_warn += 1
        if in_prot:
            state, reason = SafetyState.PROTECTIVE_STOP, (
                f'{in_prot} person(s) in the protective field, nearest {nearest:.2f} m')
        elif in_warn:
            state, reason = SafetyState.WARNING, (
                f'{in_warn} person(s) in the warning field, nearest {nearest:.2f} m')
        else:
            state, reason = SafetyState.CLEAR, 'no person in the fields'
        if state != SafetyState.CLEAR:
            held = self._held
            if held is None or state >= held[0] or now > held[1]:
                self._held = (state, now + cfg.hold_time, reason)
        if self._held is not None:
            held_state, until, held_reason = self._held
            if now <= until and held_state > state:
                state = held_state
                reason = f'holding ({until - now:.2f} s left): {held_reason}'
            elif now > until:
                self._held = None
        limit = {SafetyState.CLEAR: cfg.max_speed, SafetyState.WARNING: cfg.warning_speed,
                 SafetyState.PROTECTIVE_STOP: 0.0}[state]
        return SafetyDecision(state, limit, reason, in_warn, in_prot, nearest, False, fields)
