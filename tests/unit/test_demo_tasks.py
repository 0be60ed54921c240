"""Demo task choice: near the robot, a real drive, never a dock, reproducible."""

from __future__ import annotations

import math
import random

import pytest
from kpai_bringup.demo_tasks import choose_task

STATIONS = {'a': (0.0, 0.0), 'b': (4.0, 0.0), 'c': (8.0, 0.0), 'd': (30.0, 0.0),
            'e': (1.0, 0.5), 'dock1': (0.5, 0.0)}


def test_pickup_near_the_robot_and_dropoff_near_the_pickup() -> None:
    rng = random.Random(0)
    for _ in range(50):
        pickup, dropoff = choose_task((0.2, 0.0), STATIONS, rng)
        assert pickup in ('b', 'c')  # a and e are closer than min_leg, d is far
        assert dropoff != pickup and dropoff != 'd'
        assert math.dist(STATIONS[pickup], STATIONS[dropoff]) >= 3.0


def test_docks_are_never_chosen() -> None:
    rng = random.Random(1)
    chosen = {s for _ in range(100) for s in choose_task((0.5, 0.0), STATIONS, rng)}
    assert 'dock1' not in chosen


def test_same_seed_same_tasks() -> None:
    a = [choose_task((3.0, 1.0), STATIONS, random.Random(7)) for _ in range(3)]
    b = [choose_task((3.0, 1.0), STATIONS, random.Random(7)) for _ in range(3)]
    assert a == b


def test_falls_back_to_the_nearest_when_all_are_close() -> None:
    pickup, dropoff = choose_task((0.0, 0.0), {'x': (1.0, 0.0), 'y': (0.0, 1.0)},
                                  random.Random(0))
    assert {pickup, dropoff} == {'x', 'y'}


def test_needs_two_stations() -> None:
    with pytest.raises(ValueError):
        choose_task((0.0, 0.0), {'x': (1.0, 0.0), 'dock1': (2.0, 0.0)}, random.Random(0))
