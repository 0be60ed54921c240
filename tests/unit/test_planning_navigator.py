"""Navigator (planner + controller + recovery + priority yielding) in the kinematic world."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kpai_planning.controller import ControllerParams
from kpai_planning.costmap import CostmapParams, scan_points
from kpai_planning.errors import ConfigError
from kpai_planning.kinematic_sim import KinematicWorld, SimRobot
from kpai_planning.mapio import OccupancyMap
from kpai_planning.navigator import FleetParams, Navigator, NavStatus, must_yield
from kpai_planning.planner import FailureCode

DT = 0.05


def _room() -> OccupancyMap:
    data = np.zeros((120, 200), dtype=np.int8)  # 10 x 6 m
    data[:3, :] = data[-3:, :] = 100
    data[:, :3] = data[:, -3:] = 100
    data[40:80, 90:110] = 100  # a pillar in the middle
    return OccupancyMap(data, 0.05)


def _nav(fleet: FleetParams | None = None) -> Navigator:
    nav = Navigator(costmap_params=CostmapParams(robot_radius=0.3, inflation_radius=0.8),
                    controller_params=ControllerParams(stuck_time=2.0), fleet=fleet)
    nav.set_map(_room())
    return nav


def _drive(world: KinematicWorld, navs: dict[str, Navigator], seconds: float,
           contacts: list) -> float:
    t = 0.0
    while t < seconds:
        for name, nav in navs.items():
            r = world.robots[name]
            pose = (r.x, r.y, r.yaw)
            if round(t / DT) % 2 == 0:  # 10 Hz scans
                ranges = world.scan(name)
                pts, hits = scan_points(ranges, angle_min=-math.pi,
                                        angle_increment=2 * math.pi / 360, range_min=0.05,
                                        range_max=8.0, pose=pose)
                nav.add_scan((r.x, r.y), pts, hits, t)
            for other, o in world.robots.items():
                if other != name:
                    nav.update_other(other, (o.x, o.y, o.yaw), t)
            ev = nav.step(pose, t)
            world.command(name, ev.command.v, ev.command.w)
        world.step(DT)
        contacts.extend(world.contacts())
        t += DT
        if all(n.status != NavStatus.ACTIVE for n in navs.values()):
            break
    return t


def test_navigates_around_static_obstacle() -> None:
    world = KinematicWorld(_room(), [SimRobot('r1', 1.0, 3.0, 0.0)])
    nav = _nav()
    assert nav.start((1.0, 3.0, 0.0), (9.0, 3.0, math.pi / 2), 0.0)
    contacts: list = []
    t = _drive(world, {'r1': nav}, 60.0, contacts)
    assert nav.status == NavStatus.SUCCEEDED, nav.message
    r = world.robots['r1']
    assert math.hypot(r.x - 9.0, r.y - 3.0) <= 0.1
    assert not contacts
    assert t < 40.0


def test_plan_failure_code_is_reported() -> None:
    nav = _nav()
    assert not nav.start((1.0, 3.0, 0.0), (5.0, 3.0, 0.0), 0.0)  # goal inside the pillar
    assert nav.status == NavStatus.FAILED and nav.failure == FailureCode.GOAL_OCCUPIED


def test_blocked_by_unmapped_obstacle_recovers_and_replans() -> None:
    # a parked robot (not in the map) blocks the straight route; only the lidar sees it
    world = KinematicWorld(_room(), [SimRobot('r1', 1.0, 1.2, 0.0),
                                     SimRobot('parked', 5.0, 1.2, 0.0, radius=0.4)])
    nav = _nav()
    assert nav.start((1.0, 1.2, 0.0), (9.0, 1.2, 0.0), 0.0)
    contacts: list = []
    _drive(world, {'r1': nav}, 90.0, contacts)
    assert nav.status == NavStatus.SUCCEEDED, nav.message
    assert not contacts


def test_must_yield_only_to_higher_priority_ahead() -> None:
    fleet = FleetParams(robots=('a', 'b'), name='b', yield_distance=2.0, yield_cone=1.0)
    ahead = {'a': (1.0, 0.0, math.pi, 10.0)}
    assert must_yield(fleet, (0.0, 0.0, 0.0), ahead, 10.0) == 'a'
    assert must_yield(fleet, (0.0, 0.0, math.pi), ahead, 10.0) == ''  # behind us
    assert must_yield(fleet, (0.0, 0.0, 0.0), ahead, 13.0) == ''  # stale pose
    assert must_yield(fleet, (-3.0, 0.0, 0.0), ahead, 10.0) == ''  # too far
    top = FleetParams(robots=('a', 'b'), name='a', yield_distance=2.0)
    assert must_yield(top, (0.0, 0.0, 0.0), {'b': (1.0, 0.0, 0.0, 10.0)}, 10.0) == ''
    with pytest.raises(ConfigError, match='not in the fleet'):
        FleetParams(robots=('a',), name='z').validate()


def test_two_robots_swap_sides_without_contact() -> None:
    world = KinematicWorld(_room(), [SimRobot('a', 1.0, 1.2, 0.0),
                                     SimRobot('b', 9.0, 1.2, math.pi)])
    navs = {name: _nav(FleetParams(robots=('a', 'b'), name=name)) for name in ('a', 'b')}
    assert navs['a'].start((1.0, 1.2, 0.0), (9.0, 1.2, 0.0), 0.0)
    assert navs['b'].start((9.0, 1.2, math.pi), (1.0, 1.2, math.pi), 0.0)
    contacts: list = []
    _drive(world, navs, 150.0, contacts)
    assert not contacts
    assert navs['a'].status == NavStatus.SUCCEEDED, navs['a'].message
    assert navs['b'].status == NavStatus.SUCCEEDED, navs['b'].message



def test_a_parked_higher_priority_robot_is_passed_after_the_yield_timeout() -> None:
    # 'a' (higher priority) stands still in b's way and never moves; without the timeout 'b'
    # would wait for it forever
    world = KinematicWorld(_room(), [SimRobot('a', 3.4, 1.2, 0.0),
                                     SimRobot('b', 2.0, 1.2, 0.0)])
    nav = _nav(FleetParams(robots=('a', 'b'), name='b', yield_timeout=3.0))
    assert nav.start((2.0, 1.2, 0.0), (8.5, 1.2, 0.0), 0.0)
    contacts: list = []
    t = _drive(world, {'b': nav}, 120.0, contacts)
    assert nav.status == NavStatus.SUCCEEDED, nav.message
    assert not contacts
    assert t > 3.0  # it did wait first


def test_goal_blocked_by_a_scan_obstacle_waits_until_it_clears() -> None:
    """A person standing on the goal: wait (stopped), then go once the scans see it gone."""
    world = KinematicWorld(_room(), [SimRobot('r1', 1.0, 1.2, 0.0),
                                     SimRobot('person', 8.0, 1.2, 0.0, radius=0.25)])
    nav = _nav()
    r = world.robots['r1']
    pts, hits = scan_points(world.scan('r1'), angle_min=-math.pi,
                            angle_increment=2 * math.pi / 360, range_min=0.05, range_max=8.0,
                            pose=(r.x, r.y, r.yaw))
    nav.add_scan((r.x, r.y), pts, hits, 0.0)
    assert nav.start((r.x, r.y, r.yaw), (8.0, 1.2, 0.0), 0.0)  # not a failure: waiting
    assert nav.blocked and nav.status == NavStatus.ACTIVE and 'waiting' in nav.message
    ev = nav.step((r.x, r.y, r.yaw), 0.5)
    assert ev.command.v == 0.0 and ev.status == NavStatus.ACTIVE
    del world.robots['person']  # the person walks off; the next scans clear the cell
    contacts: list = []
    _drive(world, {'r1': nav}, 60.0, contacts)
    assert nav.status == NavStatus.SUCCEEDED, nav.message
    assert not contacts


def test_goal_blocked_for_too_long_fails_and_static_goal_fails_at_once() -> None:
    nav = Navigator(costmap_params=CostmapParams(robot_radius=0.3, inflation_radius=0.8,
                                                 obstacle_decay_s=1000.0),
                    blocked_goal_timeout=5.0)
    nav.set_map(_room())
    nav.add_scan((1.0, 1.2), np.array([[8.0, 1.2]]), np.array([True]), 0.0)
    assert nav.start((1.0, 1.2, 0.0), (8.0, 1.2, 0.0), 0.0)
    for t in np.arange(0.0, 5.0, 0.5):
        assert nav.step((1.0, 1.2, 0.0), float(t)).status == NavStatus.ACTIVE
    ev = nav.step((1.0, 1.2, 0.0), 6.5)
    assert ev.status == NavStatus.FAILED and ev.failure == FailureCode.GOAL_OCCUPIED
    assert 'blocked for more than 5 s' in ev.message
    with pytest.raises(ConfigError, match='blocked_goal_timeout'):
        Navigator(blocked_goal_timeout=math.nan)


def test_a_scan_hit_inside_the_robot_does_not_make_the_start_occupied() -> None:
    """Footprint clearing (Nav2's footprint_clearing_enabled): a person brushing the robot's
    side left a mark 0.2 m from its centre, which made every plan's start "occupied": each new
    order failed at once (a likely cause of a CI chaos run where one robot, stopped with a
    person beside it, failed 52 tasks in a row; the run's logs were not kept)."""
    nav = Navigator(costmap_params=CostmapParams(robot_radius=0.3, inflation_radius=0.8,
                                                 obstacle_decay_s=1000.0))
    nav.set_map(_room())
    assert nav.costmap is not None
    nav.add_scan((2.0, 1.2), np.array([[2.0, 1.4], [2.0, 2.2]]), np.array([True, True]), 0.0)
    nav.costmap.update(0.0)
    assert nav.costmap.cost_at(2.0, 1.2)[()] >= 253  # what the planner saw before
    assert nav.start((2.0, 1.2, 0.0), (8.0, 1.2, 0.0), 0.1), nav.message
    assert nav.status == NavStatus.ACTIVE and not nav.blocked
    # only the mark inside the robot is gone: the one a metre away still stands
    assert nav.costmap.cost_at(2.0, 2.2)[()] == 254
    assert nav.costmap.cost_at(2.0, 1.4)[()] < 253


def test_a_scan_hit_just_outside_the_robot_stays_marked() -> None:
    from kpai_planning.costmap import Costmap

    cm = Costmap(_room(), CostmapParams(robot_radius=0.3, inflation_radius=0.8,
                                        obstacle_decay_s=1000.0))
    cm.mark_scan((2.0, 1.2), np.array([[2.0, 1.6], [2.0, 1.45]]), np.array([True, True]), 0.0)
    cm.clear_footprint(2.0, 1.2)
    cm.update(0.0)
    marks = cm.dynamic_obstacles(0.0)
    assert marks[cm.grid.world_to_cell(2.0, 1.6)] and not marks[cm.grid.world_to_cell(2.0, 1.45)]
    assert cm.cost_at(2.0, 1.6)[()] == 254
    cm.clear_footprint(math.nan, 1.0)  # a pose not known yet clears nothing
    assert cm.cost_at(2.0, 1.6)[()] == 254


def test_a_higher_priority_robot_that_moves_is_waited_for_beyond_the_yield_timeout() -> None:
    # 'a' (higher priority) shuffles back and forth in b's way for 8 s: it is manoeuvring, not
    # parked, so b keeps waiting instead of driving round it; once it stays put, the timeout runs
    nav = _nav(FleetParams(robots=('a', 'b'), name='b', yield_timeout=3.0))
    assert nav.start((2.0, 1.2, 0.0), (8.5, 1.2, 0.0), 0.0)
    t, waited_while_moving = 0.0, True
    while t < 8.0:
        ax = 3.2 + (0.3 if int(t) % 2 else 0.0)  # 0.3 m to and fro every second
        nav.update_other('a', (ax, 1.2, 0.0), t)
        ev = nav.step((2.0, 1.2, 0.0), t)
        waited_while_moving &= ev.yielding_to == 'a' and ev.command.v == 0.0
        t += DT
    assert waited_while_moving
    while t < 12.0:  # now it stays put: given up on after the timeout
        nav.update_other('a', (3.2, 1.2, 0.0), t)
        ev = nav.step((2.0, 1.2, 0.0), t)
        t += DT
    assert ev.yielding_to == ''
    with pytest.raises(ConfigError, match='yield_still_distance'):
        FleetParams(yield_still_distance=0.0).validate()
