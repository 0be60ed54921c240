"""Regulated pure pursuit on a kinematic unicycle: convergence, speed limit, stuck recovery."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kpai_planning.controller import (
    ControllerParams,
    ControllerStatus,
    PurePursuit,
    wrap_angle,
)
from kpai_planning.errors import ConfigError

DT = 0.05


def _free(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    return np.full(np.shape(xs), 10.0)


def _with_points(obstacles: np.ndarray):
    def clearance(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        d = np.hypot(np.asarray(xs)[:, None] - obstacles[:, 0], np.asarray(ys)[:, None]
                     - obstacles[:, 1])
        return d.min(axis=1)
    return clearance


def _run(ctrl: PurePursuit, pose, clearance=_free, speed_limit=math.inf, steps: int = 2000,
         stop_on=(ControllerStatus.GOAL_REACHED,), move=True):
    x, y, yaw = pose
    trace, statuses, cmds = [], [], []
    for i in range(steps):
        cmd = ctrl.compute((x, y, yaw), i * DT, clearance, speed_limit)
        statuses.append(cmd.status)
        cmds.append(cmd)
        if cmd.status in stop_on:
            break
        if move:
            x += cmd.v * math.cos(yaw) * DT
            y += cmd.v * math.sin(yaw) * DT
            yaw = wrap_angle(yaw + cmd.w * DT)
        trace.append((x, y, yaw))
    return np.array(trace), statuses, cmds


def _line(a, b, n=200, yaw=None):
    t = np.linspace(0, 1, n)[:, None]
    p = np.asarray(a) + (np.asarray(b) - np.asarray(a)) * t
    heading = math.atan2(b[1] - a[1], b[0] - a[0])
    yaws = np.full(n, heading)
    if yaw is not None:
        yaws[-1] = yaw
    return np.column_stack((p, yaws))


def test_converges_on_straight_path_with_heading() -> None:
    ctrl = PurePursuit()
    ctrl.set_path(_line((0, 0), (5, 0), yaw=math.pi / 2))
    trace, statuses, _ = _run(ctrl, (0.0, 0.3, 0.4))  # offset and misaligned start
    assert statuses[-1] == ControllerStatus.GOAL_REACHED
    x, y, yaw = trace[-1]
    assert math.hypot(x - 5, y) <= ctrl.params.xy_goal_tolerance
    assert abs(wrap_angle(yaw - math.pi / 2)) <= ctrl.params.yaw_goal_tolerance
    assert len(trace) * DT < 20.0
    late = trace[len(trace) // 3:]
    assert np.abs(late[:, 1]).max() < 0.1  # cross-track error settles


def test_converges_on_curved_path_and_slows_in_curves() -> None:
    th = np.linspace(-math.pi / 2, math.pi / 2, 300)
    r = 1.5
    pts = np.column_stack((r * np.cos(th), r * np.sin(th) + r, th + math.pi / 2))
    ctrl = PurePursuit(ControllerParams(desired_speed=0.6, regulated_min_radius=2.0))
    ctrl.set_path(pts)
    trace, statuses, cmds = _run(ctrl, (0.0, 0.0, 0.0))
    assert statuses[-1] == ControllerStatus.GOAL_REACHED
    radial = np.abs(np.hypot(trace[:, 0], trace[:, 1] - r) - r)
    assert radial[20:].max() < 0.12
    speeds = [c.v for c in cmds if c.status == ControllerStatus.FOLLOWING]
    assert max(speeds) < 0.6  # curvature regulation: radius 1.5 < 2.0


def test_obeys_speed_limit_and_stops_at_zero() -> None:
    ctrl = PurePursuit()
    ctrl.set_path(_line((0, 0), (5, 0)))
    _, _, cmds = _run(ctrl, (0.0, 0.0, 0.0), speed_limit=0.2, steps=100)
    assert max(c.v for c in cmds) <= 0.2 + 1e-12
    assert max(c.v for c in cmds[-20:]) > 0.15
    _, statuses, cmds = _run(ctrl, (1.0, 0.0, 0.0), speed_limit=0.0, steps=200)
    assert all(c.v == 0.0 and c.w == 0.0 for c in cmds)
    assert set(statuses) == {ControllerStatus.STOPPED}  # never "stuck" while safety-stopped
    _, _, cmds = _run(ctrl, (1.0, 0.0, 0.0), speed_limit=math.nan, steps=5)
    assert all(c.v == 0.0 for c in cmds)


def test_blocked_by_obstacle_then_backs_up_and_asks_replan() -> None:
    params = ControllerParams(stuck_time=2.0, backup_distance=0.2)
    ctrl = PurePursuit(params)
    ctrl.set_path(_line((0, 0), (5, 0)))
    obstacle = np.array([[1.2, 0.0]])
    trace, statuses, cmds = _run(ctrl, (0.0, 0.0, 0.0), clearance=_with_points(obstacle),
                                 stop_on=(ControllerStatus.REPLAN,), steps=1000)
    assert ControllerStatus.BLOCKED in statuses
    assert statuses[-1] == ControllerStatus.REPLAN
    # it never drove into the obstacle
    gaps = np.hypot(trace[:, 0] - 1.2, trace[:, 1])
    assert gaps.min() >= params.robot_radius
    backing = [c for c in cmds if c.status == ControllerStatus.RECOVERING and c.v < 0]
    assert backing and all(c.v == -params.backup_speed for c in backing)
    assert ctrl.recoveries == 1 and not ctrl.active


def test_stuck_without_motion_triggers_recovery() -> None:
    ctrl = PurePursuit(ControllerParams(stuck_time=1.0))
    ctrl.set_path(_line((0, 0), (5, 0)))
    _, statuses, _ = _run(ctrl, (0.0, 0.0, 0.0), move=False, steps=60,
                          stop_on=(ControllerStatus.RECOVERING,))
    assert statuses[-1] == ControllerStatus.RECOVERING
    assert 1.0 <= (len(statuses) - 1) * DT <= 1.2


def test_rotates_in_place_when_path_is_behind() -> None:
    ctrl = PurePursuit()
    ctrl.set_path(_line((0, 0), (-3, 0)))
    cmd = ctrl.compute((0.0, 0.0, 0.0), 0.0, _free)
    assert cmd.status == ControllerStatus.ROTATING and cmd.v == 0.0 and abs(cmd.w) > 0


def test_bad_params() -> None:
    with pytest.raises(ConfigError, match='min_lookahead'):
        ControllerParams(min_lookahead=2.0, max_lookahead=1.0).validate()
    with pytest.raises(ConfigError, match='desired_speed'):
        ControllerParams(desired_speed=math.inf).validate()


@pytest.mark.parametrize('offset', [0.12, -0.2, 0.05])
def test_slanted_docking_leg_ends_on_the_dock_axis_with_a_tight_tolerance(offset: float) -> None:
    """A 0.6 m leg to a dock `offset` m to the side: 0.1 m tolerance stops far off the axis."""
    start, dock = (0.0, offset, 0.0), (0.6, 0.0, 0.0)
    ends = {}
    for tol in (None, 0.02):
        ctrl = PurePursuit()
        ctrl.set_path(_line(start[:2], dock[:2], n=13, yaw=0.0), xy_tolerance=tol)
        trace, statuses, _ = _run(ctrl, start)
        assert statuses[-1] == ControllerStatus.GOAL_REACHED
        ends[tol] = trace[-1]
    loose, tight = ends[None], ends[0.02]
    assert math.hypot(tight[0] - dock[0], tight[1] - dock[1]) <= 0.02 + 1e-9
    assert abs(tight[1]) < 0.25 * abs(offset) + 0.002          # close to the dock's axis
    assert abs(tight[1]) < abs(loose[1])
    assert abs(wrap_angle(tight[2])) <= ControllerParams().yaw_goal_tolerance


def test_tight_goal_missed_by_millimetres_is_not_circled() -> None:
    """Past a tight goal but within the normal tolerance: the leg ends, no turning back."""
    ctrl = PurePursuit()
    ctrl.set_path(_line((0, 0), (1, 0), yaw=0.0), xy_tolerance=0.005)
    before = ctrl.compute((0.98, 0.02, 0.0), 0.0, _free)
    assert before.status == ControllerStatus.FOLLOWING and before.v > 0   # short of it: drive on
    passed = ctrl.compute((1.01, 0.02, 0.0), 0.05, _free)
    assert passed.status == ControllerStatus.GOAL_REACHED
    ctrl.set_path(_line((0, 0), (1, 0), yaw=0.0), xy_tolerance=0.005)
    far = ctrl.compute((1.2, 0.0, 0.0), 0.0, _free)     # past it, but beyond the 0.1 m tolerance
    assert far.status == ControllerStatus.ROTATING


def test_bad_path_tolerance() -> None:
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ConfigError, match='xy_tolerance'):
            PurePursuit().set_path(_line((0, 0), (1, 0)), xy_tolerance=bad)
