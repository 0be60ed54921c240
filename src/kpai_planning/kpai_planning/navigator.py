"""In-process navigation: costmap + global planner + controller + fleet yielding, one object.

Both the controller node and the mission executor drive a Navigator, so planning, following,
re-planning after a recovery and multi-robot yielding behave identically everywhere.

Deadlock avoidance (priority yielding): every robot publishes its map pose; a robot yields
(stops) while a robot of higher priority (smaller index in the fleet list) is closer than
`yield_distance` and inside the +-`yield_cone` sector ahead of it. Higher-priority robots never
yield to lower ones, so two robots can never wait for each other; a higher-priority robot that
is blocked by a yielding one sees it in its lidar, backs up and re-plans around it.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .controller import Command, ControllerParams, ControllerStatus, PurePursuit, wrap_angle
from .costmap import INSCRIBED, Costmap, CostmapParams
from .errors import ConfigError, PlanningFailure
from .mapio import OccupancyMap
from .planner import FailureCode, Planner, PlannerParams

__all__ = [
    'FleetParams',
    'NavEvent',
    'NavStatus',
    'Navigator',
    'must_yield',
]


@dataclass(frozen=True)
class FleetParams:
    """Priority-yielding settings; priority is the robot's index in `robots` (0 = highest)."""

    robots: tuple[str, ...] = ()
    name: str = ''
    yield_distance: float = 1.5
    yield_cone: float = 1.2  # half-angle (rad) of the sector ahead that is checked
    pose_timeout: float = 2.0
    # a higher-priority robot that has not cleared the way after this long (parked, idle or
    # stuck) is treated as an obstacle instead: lidar + costmap, re-plan around it
    yield_timeout: float = 8.0
    # ... but only one that stays put: moving this far (m) restarts the wait. Driving round a
    # robot that is itself manoeuvring past put two simulated robots into contact (CI)
    yield_still_distance: float = 0.2

    def validate(self) -> FleetParams:
        """Return self or raise ConfigError."""
        if self.robots and self.name and self.name not in self.robots:
            raise ConfigError(f'robot {self.name!r} is not in the fleet list {self.robots}')
        if not (self.yield_distance >= 0 and 0 <= self.yield_cone <= math.pi):
            raise ConfigError('yield_distance must be >= 0 and yield_cone in [0, pi]')
        if not self.yield_timeout > 0:
            raise ConfigError('yield_timeout must be > 0')
        if not self.yield_still_distance > 0:
            raise ConfigError('yield_still_distance must be > 0')
        return self

    def priority(self, robot: str) -> int:
        """Return the robot's priority index (unknown robots rank last)."""
        return self.robots.index(robot) if robot in self.robots else len(self.robots)


def must_yield(params: FleetParams, pose: tuple[float, float, float],
               others: dict[str, tuple[float, float, float, float]], now: float,
               ignore: frozenset[str] = frozenset()) -> str:
    """Return the name of a higher-priority robot we must wait for, or ''."""
    mine = params.priority(params.name)
    for name, (x, y, _yaw, stamp) in others.items():
        if name == params.name or name in ignore or params.priority(name) >= mine:
            continue
        if now - stamp > params.pose_timeout:
            continue
        dx, dy = x - pose[0], y - pose[1]
        if math.hypot(dx, dy) > params.yield_distance:
            continue
        if abs(wrap_angle(math.atan2(dy, dx) - pose[2])) <= params.yield_cone:
            return name
    return ''


class NavStatus(enum.Enum):
    """Navigator state."""

    IDLE = 'IDLE'
    ACTIVE = 'ACTIVE'
    SUCCEEDED = 'SUCCEEDED'
    FAILED = 'FAILED'


class NavEvent(NamedTuple):
    """One control step's output."""

    command: Command
    status: NavStatus
    failure: FailureCode | None
    message: str
    yielding_to: str


class Navigator:
    """Plan to a goal, follow it, recover and re-plan; all inputs given by the caller."""

    def __init__(self, *, costmap_params: CostmapParams | None = None,
                 planner_params: PlannerParams | None = None,
                 controller_params: ControllerParams | None = None,
                 fleet: FleetParams | None = None, max_replans: int = 3,
                 dock_xy_tolerance: float = 0.02, blocked_goal_timeout: float = 20.0) -> None:
        self.costmap_params = (costmap_params or CostmapParams()).validate()
        self.planner_params = (planner_params or PlannerParams()).validate()
        self.controller = PurePursuit(controller_params)
        self.fleet = (fleet or FleetParams()).validate()
        self.max_replans = max_replans
        if not (math.isfinite(dock_xy_tolerance) and dock_xy_tolerance > 0):
            raise ConfigError(f'dock_xy_tolerance must be finite and > 0, got {dock_xy_tolerance}')
        self.dock_xy_tolerance = dock_xy_tolerance
        if not (math.isfinite(blocked_goal_timeout) and blocked_goal_timeout >= 0):
            raise ConfigError(f'blocked_goal_timeout must be finite and >= 0, '
                              f'got {blocked_goal_timeout}')
        self.blocked_goal_timeout = blocked_goal_timeout
        self._blocked_since: float | None = None  # goal blocked by a scan obstacle since
        self._blocked_retry = 0.0
        self.costmap: Costmap | None = None
        self.planner: Planner | None = None
        self.goal: tuple[float, float, float] | None = None
        self.straight = False
        self.status = NavStatus.IDLE
        self.failure: FailureCode | None = None
        self.message = ''
        self.replans = 0
        self.others: dict[str, tuple[float, float, float, float]] = {}
        self._waiting_for = ('', 0.0, 0.0, 0.0)  # (blocker, since, its x, its y then)
        self._given_up: frozenset[str] = frozenset()  # blockers now treated as obstacles
        self.last_plan: np.ndarray | None = None
        self._scan_xy: np.ndarray | None = None
        self.plan_count = 0

    def set_map(self, grid: OccupancyMap) -> None:
        """Use a new static map (rebuilds the costmap and the planner graph)."""
        self.costmap = Costmap(grid, self.costmap_params)
        self.planner = Planner(self.costmap, self.planner_params)

    def add_scan(self, origin: tuple[float, float], points: np.ndarray, hits: np.ndarray,
                 stamp: float, *, mark: bool = True) -> None:
        """Use scan hits (world frame) for collision checks; mark/clear them in the costmap."""
        self._scan_xy = np.asarray(points)[np.asarray(hits, dtype=bool)]
        if mark and self.costmap is not None:
            self.costmap.mark_scan(origin, points, hits, stamp)

    def update_other(self, name: str, pose: tuple[float, float, float], stamp: float) -> None:
        """Record another robot's map pose."""
        self.others[name] = (pose[0], pose[1], pose[2], stamp)

    def clearance(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Distance to the nearest obstacle: static map plus the latest scan hits."""
        xs = np.asarray(xs, dtype=float)
        ys = np.asarray(ys, dtype=float)
        if self.costmap is None:
            return np.full(xs.shape, np.inf)
        d = self.costmap.distance_at(xs, ys, static_only=True)
        scan = self._scan_xy
        if scan is not None and len(scan):
            dd = np.hypot(xs[:, None] - scan[None, :, 0], ys[:, None] - scan[None, :, 1])
            d = np.minimum(d, dd.min(axis=1))
        return d

    def start(self, pose: tuple[float, float, float], goal: tuple[float, float, float],
              now: float, *, straight: bool = False) -> bool:
        """Start navigating to goal; return False (and set failure) if no plan can be made."""
        self.goal = goal
        self.straight = straight
        self.replans = 0
        self.status = NavStatus.ACTIVE
        self.failure = None
        self.message = ''
        self._blocked_since = None
        return self._plan(pose, now)

    def cancel(self) -> None:
        """Stop navigating."""
        self.controller.clear()
        self.goal = None
        self.status = NavStatus.IDLE

    def _plan(self, pose: tuple[float, float, float], now: float) -> bool:
        assert self.goal is not None
        gx, gy, gyaw = self.goal
        if self.straight:
            n = max(int(math.hypot(gx - pose[0], gy - pose[1]) / 0.05), 1) + 1
            t = np.linspace(0.0, 1.0, n)
            heading = math.atan2(gy - pose[1], gx - pose[0])
            pts = np.column_stack((pose[0] + (gx - pose[0]) * t, pose[1] + (gy - pose[1]) * t,
                                   np.full(n, heading)))
            pts[-1, 2] = gyaw
        else:
            if self.planner is None or self.costmap is None:
                return self._fail(FailureCode.NO_PATH, 'no map received yet')
            self.costmap.clear_footprint(pose[0], pose[1])
            self.costmap.update(now)
            try:
                plan = self.planner.plan((pose[0], pose[1]), (gx, gy), gyaw)
            except PlanningFailure as err:
                return self._blocked_or_fail(FailureCode(err.code), str(err), (gx, gy), now)
            self._blocked_since = None
            pts = plan.points
        # a straight (docking) leg ends on its own tighter tolerance: stopping 10 cm short on a
        # slanted leg would leave the robot centimetres off the dock's axis
        self.controller.set_path(pts, xy_tolerance=self.dock_xy_tolerance if self.straight
                                 else None)
        self.last_plan = pts
        self.plan_count += 1
        return True

    def _blocked_or_fail(self, code: FailureCode, message: str, goal: tuple[float, float],
                         now: float) -> bool:
        """Wait (stopped, re-planning each second) while only scan obstacles block the goal.

        A person or robot standing on the goal clears away; a goal inside the static map
        fails at once. After blocked_goal_timeout the original failure is reported.
        """
        assert self.costmap is not None
        static_free = bool(self.costmap.cost_at(*goal, static_only=True) < INSCRIBED)
        if code not in (FailureCode.GOAL_OCCUPIED, FailureCode.NO_PATH) or not static_free:
            return self._fail(code, message)
        if self._blocked_since is None:
            self._blocked_since = now
        if now - self._blocked_since > self.blocked_goal_timeout:
            self._blocked_since = None
            return self._fail(code, f'{message} (blocked for more than '
                                    f'{self.blocked_goal_timeout:.0f} s)')
        self.controller.clear()
        self.message = f'waiting: {message}'
        self._blocked_retry = now + 1.0
        return True

    @property
    def blocked(self) -> bool:
        """True while waiting for scan obstacles to clear the goal."""
        return self._blocked_since is not None

    def _fail(self, code: FailureCode, message: str) -> bool:
        self.status = NavStatus.FAILED
        self.failure = code
        self.message = message
        self.controller.clear()
        return False

    def step(self, pose: tuple[float, float, float], now: float,
             speed_limit: float = math.inf) -> NavEvent:
        """Compute one control command; re-plan after a controller recovery."""
        stop = Command(0.0, 0.0, ControllerStatus.IDLE)
        if self.status != NavStatus.ACTIVE:
            return NavEvent(stop, self.status, self.failure, self.message, '')
        if self._blocked_since is not None:
            if now >= self._blocked_retry:
                self._plan(pose, now)
            if self._blocked_since is not None or self.status != NavStatus.ACTIVE:
                return NavEvent(stop, self.status, self.failure, self.message, '')
        blocker = self._blocker(pose, now)
        limit = 0.0 if blocker else speed_limit
        cmd = self.controller.compute(pose, now, self.clearance, limit)
        if cmd.status == ControllerStatus.GOAL_REACHED:
            self.status = NavStatus.SUCCEEDED
            self.goal = None
        elif cmd.status == ControllerStatus.REPLAN:
            self.replans += 1
            if self.replans > self.max_replans:
                self._fail(FailureCode.NO_PATH,
                           f'still blocked after {self.max_replans} recoveries')
            else:
                self._plan(pose, now)
        return NavEvent(cmd, self.status, self.failure, self.message, blocker)

    def _blocker(self, pose: tuple[float, float, float], now: float) -> str:
        """Return the robot to wait for, giving up on one that does not clear the way."""
        if not self.fleet.robots:
            return ''
        # a robot we gave up on counts again once it is no longer in the way
        in_way = must_yield(self.fleet, pose, self.others, now)
        if not in_way:
            self._given_up = frozenset()
        blocker = must_yield(self.fleet, pose, self.others, now, self._given_up)
        if not blocker:
            self._waiting_for = ('', now, 0.0, 0.0)
            return ''
        bx, by = self.others[blocker][0], self.others[blocker][1]
        name, since, x0, y0 = self._waiting_for
        if blocker != name or math.hypot(bx - x0, by - y0) > self.fleet.yield_still_distance:
            self._waiting_for = (blocker, now, bx, by)  # a new blocker, or it moves: wait anew
        elif now - since > self.fleet.yield_timeout:
            self._given_up = self._given_up | {blocker}
            self._waiting_for = ('', now, 0.0, 0.0)
            self._plan(pose, now)  # around it: the scan marks it in the costmap
            return ''
        return blocker

    def distance_remaining(self, pose: tuple[float, float, float]) -> float:
        """Return metres left on the current path."""
        return self.controller.distance_remaining(pose)
