"""Regulated pure pursuit path follower with collision checking and stuck recovery."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .errors import ConfigError

__all__ = [
    'Clearance',
    'Command',
    'ControllerParams',
    'ControllerStatus',
    'PurePursuit',
    'wrap_angle',
]

# clearance(xs, ys) -> distance (m) from each point to the nearest obstacle
Clearance = Callable[[np.ndarray, np.ndarray], np.ndarray]


def wrap_angle(a: float) -> float:
    """Wrap an angle to [-pi, pi)."""
    return (a + math.pi) % (2.0 * math.pi) - math.pi


class ControllerStatus(enum.Enum):
    """What the controller is doing this tick."""

    IDLE = 'IDLE'
    FOLLOWING = 'FOLLOWING'
    ROTATING = 'ROTATING'
    GOAL_REACHED = 'GOAL_REACHED'
    BLOCKED = 'BLOCKED'
    STOPPED = 'STOPPED'  # external speed limit is zero
    RECOVERING = 'RECOVERING'
    REPLAN = 'REPLAN'  # recovery done: the caller should plan again and call set_path


class Command(NamedTuple):
    """A velocity command and the controller status that produced it."""

    v: float
    w: float
    status: ControllerStatus


@dataclass(frozen=True)
class ControllerParams:
    """Regulated pure pursuit settings (SI units)."""

    desired_speed: float = 0.5
    max_angular: float = 1.2
    max_accel: float = 1.0
    lookahead_time: float = 1.5
    min_lookahead: float = 0.3
    max_lookahead: float = 1.0
    regulated_min_radius: float = 0.9
    proximity_distance: float = 0.7  # slow down when closer than this to an obstacle
    min_proximity_ratio: float = 0.3
    approach_distance: float = 0.6
    min_speed: float = 0.05
    rotate_to_heading_angle: float = 0.8
    rotate_gain: float = 2.0
    xy_goal_tolerance: float = 0.1
    yaw_goal_tolerance: float = 0.15
    robot_radius: float = 0.3
    collision_margin: float = 0.02
    collision_check_time: float = 1.0
    stuck_time: float = 4.0
    stuck_distance: float = 0.05
    backup_distance: float = 0.3
    backup_speed: float = 0.1
    backup_timeout: float = 5.0

    def validate(self) -> ControllerParams:
        """Return self or raise ConfigError naming the first bad value."""
        for name, value in vars(self).items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f'{name} must be finite and >= 0, got {value!r}')
        if self.desired_speed <= 0 or self.max_angular <= 0:
            raise ConfigError('desired_speed and max_angular must be > 0')
        if self.min_lookahead <= 0 or self.max_lookahead < self.min_lookahead:
            raise ConfigError('need 0 < min_lookahead <= max_lookahead, got '
                              f'{self.min_lookahead}, {self.max_lookahead}')
        if self.xy_goal_tolerance <= 0:
            raise ConfigError(f'xy_goal_tolerance must be > 0, got {self.xy_goal_tolerance}')
        return self


class PurePursuit:
    """Follow a path of (x, y, yaw) points; call compute() at the control rate."""

    def __init__(self, params: ControllerParams | None = None) -> None:
        self.params = (params or ControllerParams()).validate()
        self.path = np.zeros((0, 3))
        self._xy_tol = self.params.xy_goal_tolerance
        self._idx = 0
        self._v = 0.0
        self._last_t: float | None = None
        self._progress_pose: tuple[float, float] | None = None
        self._progress_t = 0.0
        self._backup_from: tuple[float, float] | None = None
        self._backup_t = 0.0
        self.recoveries = 0

    @property
    def active(self) -> bool:
        return len(self.path) > 0

    def set_path(self, points: np.ndarray, *, xy_tolerance: float | None = None) -> None:
        """Follow a new path (N x 3: x, y, yaw); an empty path stops.

        xy_tolerance: a tighter goal tolerance for this path (e.g. a docking leg). The robot
        also stops once it has passed the goal along the path's last direction while within
        the normal tolerance, so a tight goal it misses by a few millimetres is not circled.
        """
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        tol = self.params.xy_goal_tolerance if xy_tolerance is None else float(xy_tolerance)
        if not (math.isfinite(tol) and tol > 0):
            raise ConfigError(f'xy_tolerance must be finite and > 0, got {xy_tolerance!r}')
        self._xy_tol = min(tol, self.params.xy_goal_tolerance)
        self.path = pts
        self._idx = 0
        self._backup_from = None
        self._progress_pose = None

    def clear(self) -> None:
        """Forget the path (the next command is a stop)."""
        self.set_path(np.zeros((0, 3)))

    def distance_remaining(self, pose: tuple[float, float, float]) -> float:
        """Return metres along the path from the closest point to its end."""
        if not self.active:
            return 0.0
        p = self.path[self._idx:, :2]
        along = float(np.hypot(*np.diff(p, axis=0).T).sum()) if len(p) > 1 else 0.0
        return along + math.hypot(p[0, 0] - pose[0], p[0, 1] - pose[1])

    def _stop(self, status: ControllerStatus) -> Command:
        self._v = 0.0
        return Command(0.0, 0.0, status)

    def compute(self, pose: tuple[float, float, float], now: float, clearance: Clearance,
                speed_limit: float = math.inf) -> Command:
        """Return the velocity command for robot pose (x, y, yaw) at time now (s)."""
        p = self.params
        dt = 0.05 if self._last_t is None else min(max(now - self._last_t, 1e-3), 0.5)
        self._last_t = now
        if not self.active:
            return self._stop(ControllerStatus.IDLE)
        if not math.isfinite(speed_limit) and speed_limit != math.inf:
            speed_limit = 0.0  # NaN limit: fail safe
        if speed_limit <= 0.0:
            self._progress_pose = None  # a safety stop is not being stuck
            return self._stop(ControllerStatus.STOPPED)
        if self._backup_from is not None:
            return self._recover(pose, now, clearance)
        x, y, yaw = pose
        goal = self.path[-1]
        dist_goal = math.hypot(goal[0] - x, goal[1] - y)
        if dist_goal <= self._xy_tol or (dist_goal <= p.xy_goal_tolerance
                                         and self._passed_goal(x, y)):
            err = wrap_angle(goal[2] - yaw)
            if abs(err) <= p.yaw_goal_tolerance:
                self.clear()
                return self._stop(ControllerStatus.GOAL_REACHED)
            self._progress_pose = None
            w = math.copysign(min(max(p.rotate_gain * abs(err), 0.2), p.max_angular), err)
            self._v = 0.0
            return Command(0.0, w, ControllerStatus.ROTATING)
        # closest point, searched forward from the last one so loops in the path are kept
        window = self.path[self._idx:self._idx + 200, :2]
        d = np.hypot(window[:, 0] - x, window[:, 1] - y)
        self._idx += int(np.argmin(d))
        lookahead = min(max(abs(self._v) * p.lookahead_time, p.min_lookahead), p.max_lookahead)
        rest = self.path[self._idx:, :2]
        far = np.flatnonzero(np.hypot(rest[:, 0] - x, rest[:, 1] - y) >= lookahead)
        carrot = rest[far[0]] if len(far) else rest[-1]
        c, s = math.cos(yaw), math.sin(yaw)
        dx, dy = carrot[0] - x, carrot[1] - y
        lx, ly = c * dx + s * dy, -s * dx + c * dy
        angle = math.atan2(ly, lx)
        if abs(angle) > p.rotate_to_heading_angle:
            w = math.copysign(min(max(p.rotate_gain * abs(angle), 0.3), p.max_angular), angle)
            self._v = 0.0
            return self._check_stuck(pose, now, Command(0.0, w, ControllerStatus.ROTATING))
        dist2 = lx * lx + ly * ly
        curvature = 2.0 * ly / dist2 if dist2 > 1e-9 else 0.0
        v = p.desired_speed
        if abs(curvature) > 1e-9 and 1.0 / abs(curvature) < p.regulated_min_radius:
            v *= 1.0 / abs(curvature) / p.regulated_min_radius
        here = float(clearance(np.array([x]), np.array([y]))[0])
        if here < p.proximity_distance:
            span = max(p.proximity_distance - p.robot_radius, 1e-6)
            v *= min(max((here - p.robot_radius) / span, p.min_proximity_ratio), 1.0)
        if dist_goal < p.approach_distance:
            v *= dist_goal / p.approach_distance
        v = max(v, p.min_speed)
        v = min(v, speed_limit)
        v = min(v, self._v + p.max_accel * dt)
        w = v * curvature
        if abs(w) > p.max_angular:
            w = math.copysign(p.max_angular, w)
            v = abs(w / curvature)
        if self._arc_collides(pose, max(v, p.min_speed), curvature, lookahead, clearance):
            return self._check_stuck(pose, now, self._stop(ControllerStatus.BLOCKED))
        self._v = v
        return self._check_stuck(pose, now, Command(v, w, ControllerStatus.FOLLOWING))

    def _passed_goal(self, x: float, y: float) -> bool:
        """True when (x, y) lies beyond the path's end along its last segment."""
        if len(self.path) < 2:
            return True
        (ax, ay), (bx, by) = self.path[-2, :2], self.path[-1, :2]
        return (x - bx) * (bx - ax) + (y - by) * (by - ay) >= 0.0

    def _arc_collides(self, pose: tuple[float, float, float], v: float, curvature: float,
                      lookahead: float, clearance: Clearance) -> bool:
        """Check the circular footprint along the arc the command would drive."""
        p = self.params
        length = max(lookahead, v * p.collision_check_time)
        s = np.linspace(0.05, length, max(int(length / 0.05), 2))
        x, y, yaw = pose
        if abs(curvature) < 1e-6:
            xs, ys = x + s * math.cos(yaw), y + s * math.sin(yaw)
        else:
            r = 1.0 / curvature
            th = yaw + s * curvature
            xs = x + r * (np.sin(th) - math.sin(yaw))
            ys = y - r * (np.cos(th) - math.cos(yaw))
        d = clearance(xs, ys)
        # only obstacles we are approaching count: a pose already close may move away
        here = float(clearance(np.array([x]), np.array([y]))[0])
        limit = min(p.robot_radius + p.collision_margin, here)
        return bool(np.any(d < limit))

    def _check_stuck(self, pose: tuple[float, float, float], now: float, cmd: Command
                     ) -> Command:
        p = self.params
        if self._progress_pose is None:
            self._progress_pose, self._progress_t = (pose[0], pose[1]), now
            return cmd
        moved = math.hypot(pose[0] - self._progress_pose[0], pose[1] - self._progress_pose[1])
        if moved >= p.stuck_distance:
            self._progress_pose, self._progress_t = (pose[0], pose[1]), now
            return cmd
        if now - self._progress_t >= p.stuck_time and p.stuck_time > 0:
            self._backup_from, self._backup_t = (pose[0], pose[1]), now
            self.recoveries += 1
            return Command(0.0, 0.0, ControllerStatus.RECOVERING)
        return cmd

    def _recover(self, pose: tuple[float, float, float], now: float, clearance: Clearance
                 ) -> Command:
        """Back up along the heading, then ask for a new plan."""
        p = self.params
        assert self._backup_from is not None
        moved = math.hypot(pose[0] - self._backup_from[0], pose[1] - self._backup_from[1])
        x, y, yaw = pose
        behind = clearance(np.array([x - 0.1 * math.cos(yaw)]),
                           np.array([y - 0.1 * math.sin(yaw)]))
        done = (moved >= p.backup_distance or now - self._backup_t >= p.backup_timeout
                or float(behind[0]) < p.robot_radius)
        if done:
            self.clear()
            return self._stop(ControllerStatus.REPLAN)
        self._v = -p.backup_speed
        return Command(-p.backup_speed, 0.0, ControllerStatus.RECOVERING)
