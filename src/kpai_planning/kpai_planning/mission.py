"""Mission state machine: ordered steps, pause/resume, cancel, failures, feedback and ETA.

The machine is pure: an executor calls update() at its control rate, starts motion when
`motion_request()` names a target, and reports arrivals and failures back. Time only advances
through the `now` arguments, so tests drive it with a fake clock.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from .errors import MissionError

__all__ = [
    'ErrorCode',
    'Mission',
    'MissionState',
    'MotionRequest',
    'Step',
    'StepType',
    'resolve_station',
    'station_table',
    'validate_steps',
]


class StepType(enum.IntEnum):
    """Mission step types (values of kpai_msgs/MissionStep.type)."""

    NAVIGATE = 0
    DOCK = 1
    WAIT = 2
    LOAD = 3
    UNLOAD = 4
    CHARGE = 5


class ErrorCode(enum.IntEnum):
    """Result codes (values of the ExecuteMission result error_code)."""

    SUCCEEDED = 0
    CANCELED = 1
    PLANNING_FAILED = 2
    NAVIGATION_FAILED = 3
    DOCKING_FAILED = 4
    INVALID_MISSION = 5
    SAFETY_STOP = 6
    INTERNAL_ERROR = 7


class MissionState(enum.Enum):
    """Overall mission state."""

    RUNNING = 'RUNNING'
    PAUSED = 'PAUSED'
    SUCCEEDED = 'SUCCEEDED'
    FAILED = 'FAILED'
    CANCELED = 'CANCELED'


_MOTION = (StepType.NAVIGATE, StepType.DOCK)
_TIMED = (StepType.WAIT, StepType.LOAD, StepType.UNLOAD)


@dataclass(frozen=True)
class Step:
    """One mission step; target pose in the map frame."""

    type: StepType
    step_id: str = ''
    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0
    station_id: str = ''
    duration_s: float = 0.0
    battery_target: float = 0.0


@dataclass(frozen=True)
class MotionRequest:
    """Where the executor should drive now; `straight` means no global plan (final docking)."""

    x: float
    y: float
    yaw: float
    straight: bool = False


def station_table(names: list[str], poses: list[float]) -> dict[str, tuple[float, float, float]]:
    """Return {station: (x, y, yaw)} from parallel parameter lists (3 poses values a name)."""
    names = [n for n in names if n]
    if not names:
        return {}
    if len(poses) != 3 * len(names):
        raise MissionError(f'station_poses needs 3 values (x, y, yaw) for each of the '
                           f'{len(names)} station_names, got {len(poses)}')
    if not all(math.isfinite(v) for v in poses):
        raise MissionError('station_poses must be finite')
    if len(set(names)) != len(names):
        raise MissionError('station_names must be unique')
    return {n: (float(poses[3 * i]), float(poses[3 * i + 1]), float(poses[3 * i + 2]))
            for i, n in enumerate(names)}


def resolve_station(station_id: str, table: dict[str, tuple[float, float, float]]
                    ) -> tuple[float, float, float]:
    """Return the docked pose of a station; MissionError naming the known ones if unknown."""
    try:
        return table[station_id]
    except KeyError:
        known = ', '.join(sorted(table)) or 'none configured'
        raise MissionError(f'unknown station {station_id!r} (known: {known}); give the dock '
                           'pose in target or configure station_names/station_poses') from None


def validate_steps(steps: list[Step], *, max_duration_s: float = 86400.0) -> None:
    """Raise MissionError with the first problem found in steps."""
    if not steps:
        raise MissionError('mission has no steps')
    for i, s in enumerate(steps):
        where = f'step {i} ({s.step_id or "no id"})'
        try:
            StepType(s.type)
        except ValueError as err:
            raise MissionError(f'{where}: unknown step type {s.type}') from err
        if s.type in _MOTION and not all(math.isfinite(v) for v in (s.x, s.y, s.yaw)):
            raise MissionError(f'{where}: target pose is not finite')
        if not (math.isfinite(s.duration_s) and 0.0 <= s.duration_s <= max_duration_s):
            raise MissionError(f'{where}: duration_s must be in [0, {max_duration_s}], '
                               f'got {s.duration_s}')
        if s.type == StepType.CHARGE:
            if not 0.0 <= s.battery_target <= 1.0:
                raise MissionError(f'{where}: battery_target must be in [0, 1], '
                                   f'got {s.battery_target}')
            if s.battery_target == 0.0 and s.duration_s == 0.0:
                raise MissionError(f'{where}: CHARGE needs battery_target or duration_s')


@dataclass
class Mission:
    """Progress through a validated list of steps."""

    mission_id: str
    steps: list[Step]
    now: float
    dock_offset: float = 0.6  # metres before a dock pose where the straight approach starts
    nominal_speed: float = 0.4  # m/s, for the ETA
    state: MissionState = MissionState.RUNNING
    index: int = 0
    error_code: ErrorCode = ErrorCode.SUCCEEDED
    message: str = ''
    phase: str = ''
    _step_elapsed: float = 0.0
    _last_now: float = 0.0
    _motion_started: bool = False
    _distance_remaining: float = math.nan
    _history: list[str] = field(default_factory=list)
    _dock_target: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        validate_steps(self.steps)
        self._last_now = self.now
        self._enter_step()

    # -- queries --------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.state in (MissionState.SUCCEEDED, MissionState.FAILED,
                              MissionState.CANCELED)

    @property
    def current(self) -> Step | None:
        return self.steps[self.index] if self.index < len(self.steps) else None

    @property
    def steps_completed(self) -> int:
        return self.index

    @property
    def awaiting_dock(self) -> bool:
        """True at the pre-dock pose, before the final straight leg has been requested."""
        step = self.current
        return (self.state == MissionState.RUNNING and step is not None
                and step.type == StepType.DOCK and self.phase == 'dock'
                and not self._motion_started)

    def refine_dock(self, x: float, y: float, yaw: float) -> bool:
        """Use a measured docked pose (e.g. from the station's tag) for the final leg."""
        if not self.awaiting_dock or not all(math.isfinite(v) for v in (x, y, yaw)):
            return False
        self._dock_target = (x, y, yaw)
        return True

    def motion_request(self) -> MotionRequest | None:
        """Return the motion the executor should start, once per (sub)phase, else None."""
        step = self.current
        if self.state != MissionState.RUNNING or step is None or step.type not in _MOTION:
            return None
        if self._motion_started:
            return None
        self._motion_started = True
        if self.phase == 'approach':
            return MotionRequest(step.x - self.dock_offset * math.cos(step.yaw),
                                 step.y - self.dock_offset * math.sin(step.yaw), step.yaw)
        if self.phase == 'dock' and self._dock_target is not None:
            return MotionRequest(*self._dock_target, straight=True)
        return MotionRequest(step.x, step.y, step.yaw, straight=self.phase == 'dock')

    def feedback(self) -> dict[str, object]:
        """Return ExecuteMission feedback fields."""
        step = self.current
        dist = self._distance_remaining if step is not None and step.type in _MOTION else 0.0
        return {
            'current_step': min(self.index, len(self.steps) - 1),
            'current_step_id': step.step_id if step else '',
            'current_step_type': int(step.type) if step else 0,
            'state': self.state.value + (f':{self.phase}' if self.phase else ''),
            'distance_remaining': 0.0 if math.isnan(dist) else dist,
            'eta_s': self.eta(),
            'paused': self.state == MissionState.PAUSED,
        }

    def eta(self) -> float:
        """Estimate seconds to mission completion (straight-line legs at nominal speed)."""
        if self.done:
            return 0.0
        total = 0.0
        step = self.current
        pos: tuple[float, float] | None = None
        if step is not None:
            if step.type in _MOTION:
                d = 0.0 if math.isnan(self._distance_remaining) else self._distance_remaining
                total += d / self.nominal_speed
                pos = (step.x, step.y)
            elif step.type in _TIMED or step.type == StepType.CHARGE:
                total += max(step.duration_s - self._step_elapsed, 0.0)
        for s in self.steps[self.index + 1:]:
            if s.type in _MOTION:
                if pos is not None:
                    total += math.hypot(s.x - pos[0], s.y - pos[1]) / self.nominal_speed
                pos = (s.x, s.y)
            else:
                total += s.duration_s
        return total

    # -- events -----------------------------------------------------------------
    def update(self, now: float, *, battery: float | None = None,
               distance_remaining: float | None = None) -> MissionState:
        """Advance timers and timed steps; return the state."""
        dt = max(now - self._last_now, 0.0)
        self._last_now = now
        if distance_remaining is not None:
            self._distance_remaining = distance_remaining
        if self.state != MissionState.RUNNING:
            return self.state
        step = self.current
        assert step is not None
        self._step_elapsed += dt
        if step.type in _TIMED and self._step_elapsed >= step.duration_s:
            self._advance()
        elif step.type == StepType.CHARGE:
            charged = (step.battery_target > 0 and battery is not None
                       and battery >= step.battery_target)
            timed_out = step.duration_s > 0 and self._step_elapsed >= step.duration_s
            if charged or (timed_out and step.battery_target == 0):
                self._advance()
            elif timed_out:
                self.fail(ErrorCode.INTERNAL_ERROR,
                          f'battery {battery} below target {step.battery_target} '
                          f'after {step.duration_s:.0f} s of charging')
        return self.state

    def arrived(self, now: float) -> None:
        """The executor reached the current motion target at time now."""
        self.update(now)
        step = self.current
        if self.state != MissionState.RUNNING or step is None or step.type not in _MOTION:
            return
        if self.phase == 'approach':
            self.phase = 'dock'
            self._motion_started = False
            return
        self._advance()

    def fail(self, code: ErrorCode, message: str) -> None:
        """End the mission with a failure code and reason."""
        if self.done:
            return
        step = self.current
        if step is not None and step.type == StepType.DOCK and code in (
                ErrorCode.PLANNING_FAILED, ErrorCode.NAVIGATION_FAILED) and self.phase == 'dock':
            code = ErrorCode.DOCKING_FAILED
        self.state = MissionState.FAILED
        self.error_code = ErrorCode(code)
        self.message = f'step {self.index} ({step.step_id if step else ""}): {message}'

    def cancel(self) -> None:
        """Cancel the mission (the executor stops the robot)."""
        if not self.done:
            self.state = MissionState.CANCELED
            self.error_code = ErrorCode.CANCELED
            self.message = 'canceled'

    def pause(self) -> bool:
        """Pause; motion stops and timers freeze. Return False if not running."""
        if self.state != MissionState.RUNNING:
            return False
        self.state = MissionState.PAUSED
        return True

    def resume(self) -> bool:
        """Resume a paused mission; an interrupted motion is requested again."""
        if self.state != MissionState.PAUSED:
            return False
        self.state = MissionState.RUNNING
        self._motion_started = False
        return True

    # -- internals --------------------------------------------------------------
    def _enter_step(self) -> None:
        step = self.current
        self._step_elapsed = 0.0
        self._motion_started = False
        self._distance_remaining = math.nan
        self._dock_target = None
        self.phase = 'approach' if step is not None and step.type == StepType.DOCK else ''

    def _advance(self) -> None:
        step = self.current
        if step is not None:
            self._history.append(step.step_id)
        self.index += 1
        if self.index >= len(self.steps):
            self.state = MissionState.SUCCEEDED
            self.message = f'{len(self.steps)} steps completed'
            self.phase = ''
            return
        self._enter_step()
