"""Pick transport tasks for the demo: short hops between stations near each idle robot."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

__all__ = ['choose_task']

Point = tuple[float, float]


def _nearest(origin: Point, names: list[str], stations: Mapping[str, Point],
             min_distance: float, count: int) -> list[str]:
    ranked = sorted(names, key=lambda n: (math.dist(origin, stations[n]), n))
    far_enough = [n for n in ranked if math.dist(origin, stations[n]) >= min_distance]
    return far_enough[:count] or ranked[:1]


def choose_task(position: Point, stations: Mapping[str, Point], rng: random.Random, *,
                min_leg: float = 3.0, exclude_prefix: str = 'dock') -> tuple[str, str]:
    """Return (pickup, dropoff): a station near position, then a station near the pickup.

    Each is drawn from the two nearest stations at least min_leg away (so the robot drives),
    keeping tasks short; docks (names starting with exclude_prefix) are not used.
    """
    names = sorted(n for n in stations if not n.startswith(exclude_prefix))
    if len(names) < 2:
        raise ValueError('need at least two stations that are not docks')
    pickup = rng.choice(_nearest(position, names, stations, min_leg, 2))
    others = [n for n in names if n != pickup]
    dropoff = rng.choice(_nearest(stations[pickup], others, stations, min_leg, 2))
    return pickup, dropoff
