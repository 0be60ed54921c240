"""Simulated people among robots: wait for a robot in the way, step round one that stays."""

from __future__ import annotations

import math

import pytest
from kpai_sim.crowd import PERSON_PATIENCE_S, Floor, Walker
from kpai_sim.layout import PersonPath, StaticObject

DT = 0.05
CLEARANCE = 0.75
SPEED = 1.0
# a straight walk east along y = 0 (and back along y = 3, far from everything here)
PATH = PersonPath('person1', ((-5.0, 0.0), (5.0, 0.0), (5.0, 3.0), (-5.0, 3.0)), SPEED, 0.0)


def _wall(name: str, y: float) -> StaticObject:
    return StaticObject(name, 'wall', 0.0, y, 0.0, (10.0, 0.2, 2.0))


def _walk(walker: Walker, robot: tuple[float, float], floor: Floor, seconds: float
          ) -> tuple[float, float]:
    """Walk for a while beside a standing robot; return (closest approach, time waited)."""
    closest, waited = math.inf, 0.0
    for _ in range(round(seconds / DT)):
        before = walker.walked
        walker.step(DT, [robot], floor.free)
        if walker.walked == before:
            waited += DT
        x, y, _ = walker.pose()
        closest = min(closest, math.dist((x, y), robot))
    return closest, waited


def test_floor_is_not_free_inside_inflated_objects() -> None:
    rack = StaticObject('rack', 'rack', 2.0, 1.0, math.pi / 4, (2.0, 0.5, 2.0))
    floor = Floor([rack], radius=0.2)
    assert not floor.free(2.0, 1.0)
    # along the rotated long axis: inside at 0.9 + 0.2 m, outside beyond
    d = 1.15 / math.sqrt(2)
    assert not floor.free(2.0 + d * 0.95, 1.0 + d * 0.95)
    assert floor.free(2.0 + d * 1.1, 1.0 + d * 1.1)
    # across the short axis: half width 0.25 + 0.2
    assert not floor.free(2.0 - 0.4 / math.sqrt(2), 1.0 + 0.4 / math.sqrt(2))
    assert floor.free(2.0 - 0.5 / math.sqrt(2), 1.0 + 0.5 / math.sqrt(2))
    assert Floor([], radius=0.2).free(0.0, 0.0)


def test_person_waits_then_steps_round_a_standing_robot() -> None:
    walker = Walker(PATH, CLEARANCE)
    robot = (1.0, 0.0)  # on the path, 6 m ahead
    closest, waited = _walk(walker, robot, Floor([], 0.22), 13.0)
    x, y, _ = walker.pose()
    assert x > robot[0] + 2.0, 'the person must have passed the robot'
    assert closest >= CLEARANCE - 1e-6
    assert PERSON_PATIENCE_S - DT <= waited <= PERSON_PATIENCE_S + 2.0
    assert walker.offset == 0.0 and walker.side == 0, 'back on the path after passing'


def test_person_passes_on_the_free_side() -> None:
    walker = Walker(PATH, CLEARANCE)
    walls = Floor([_wall('left', 1.0)], 0.22)  # 1 m to the left: no room to pass there
    _walk(walker, (1.0, 0.0), walls, 9.0)
    assert walker.side == -1 and walker.offset < -0.5


def test_person_keeps_waiting_without_room_to_pass() -> None:
    walker = Walker(PATH, CLEARANCE)
    corridor = Floor([_wall('left', 0.9), _wall('right', -0.9)], 0.22)
    closest, waited = _walk(walker, (1.0, 0.0), corridor, 20.0)
    x, y, _ = walker.pose()
    assert x < 1.0 - CLEARANCE and abs(y) < 1e-9
    assert walker.side == 0 and waited > 10.0
    assert closest >= 1.0 - 1e-6  # stopped at the yield distance


def test_person_does_not_leave_the_path_for_a_robot_that_drives_on() -> None:
    walker = Walker(PATH, CLEARANCE)
    floor = Floor([], 0.22)
    offsets, waited = [], 0.0
    robot_x = -3.9  # in the way, standing for 2 s, then driving east faster than people walk
    for k in range(round(8.0 / DT)):
        if k * DT >= 2.0:
            robot_x += 1.5 * DT
        before = walker.walked
        walker.step(DT, [(robot_x, 0.0)], floor.free)
        waited += DT if walker.walked == before else 0.0
        offsets.append(walker.offset)
    assert 1.5 < waited < PERSON_PATIENCE_S
    assert max(abs(o) for o in offsets) == 0.0


def test_person_does_not_step_round_a_robot_at_a_corner() -> None:
    walker = Walker(PATH, CLEARANCE)
    # the path turns north at x = 5: passing a robot at x = 4.5 would carry the offset round it
    closest, waited = _walk(walker, (4.5, 0.0), Floor([], 0.22), 20.0)
    assert walker.side == 0 and waited > 10.0
    assert closest >= 1.0


@pytest.mark.parametrize('lateral', [0.5, 1.0])
def test_person_ignores_a_robot_beside_the_path(lateral: float) -> None:
    walker = Walker(PATH, CLEARANCE)
    # 0.5 m to the side blocks (within the clearance), 1.0 m does not
    closest, waited = _walk(walker, (1.0, lateral), Floor([], 0.22), 8.0)
    assert (waited > 0.0) == (lateral < CLEARANCE)
    assert closest >= CLEARANCE - 1e-6
