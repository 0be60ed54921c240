"""People walking their rounds among robots: they wait for a robot in their way, as people do
for AMRs, and step round one that stays there (a robot standing at a station on their path)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .layout import PersonPath, StaticObject

__all__ = ['PERSON_MARGIN', 'PERSON_PATIENCE_S', 'PERSON_YIELD_DISTANCE', 'Floor', 'Walker']

PERSON_YIELD_DISTANCE = 1.2  # a walking person waits while a robot is this close ahead (m)
PERSON_PATIENCE_S = 3.0  # then steps round a robot still in the way
PERSON_MARGIN = 0.15  # gap a person leaves between themselves and a robot they pass (m)
MAX_DETOUR = 1.5  # farthest a person leaves their path to pass a robot (m)
DETOUR_SAMPLE = 0.2  # spacing of the free-floor checks along a detour (m)
RETRY_S = 1.0  # a person who found no way round looks again after this long


class Floor:
    """Where a person (a disc) may stand: not inside walls, racks, pallets or dock panels."""

    def __init__(self, objects: Iterable[StaticObject], radius: float) -> None:
        rows = [(o.x, o.y, math.cos(o.yaw), math.sin(o.yaw), o.size[0] / 2 + radius,
                 o.size[1] / 2 + radius) for o in objects if o.z < 1.0]
        self._boxes = np.array(rows, dtype=np.float64).reshape(-1, 6)

    def free(self, x: float, y: float) -> bool:
        """Return True if a person centred at (x, y) touches no object (boxes, inflated)."""
        b = self._boxes
        dx, dy = x - b[:, 0], y - b[:, 1]
        lx = np.abs(dx * b[:, 2] + dy * b[:, 3])
        ly = np.abs(-dx * b[:, 3] + dy * b[:, 2])
        return not bool(np.any((lx < b[:, 4]) & (ly < b[:, 5])))


@dataclass
class Walker:
    """One person on their path, with a sideways offset while passing a robot.

    clearance: centre distance kept to a robot when passing it (robot footprint radius plus the
    person's radius plus a margin).
    """

    path: PersonPath
    clearance: float
    walked: float = 0.0  # metres along the path
    offset: float = 0.0  # metres to the left of the path
    side: int = 0  # +1 passing with the robot on the right, -1 on the left, 0 on the path
    waited: float = 0.0  # seconds waited for the robot ahead

    def pose(self) -> tuple[float, float, float]:
        """Return (x, y, heading) of the person."""
        return self._at(self.walked, self.offset)

    def _at(self, walked: float, offset: float) -> tuple[float, float, float]:
        x, y, h = self.path.pose_along(walked)
        return x - offset * math.sin(h), y + offset * math.cos(h), h

    def _relative(self, robots: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
        """Robots as (ahead along the path, left of the path) from the path point."""
        x, y, h = self.path.pose_along(self.walked)
        c, s = math.cos(h), math.sin(h)
        return [((rx - x) * c + (ry - y) * s, -(rx - x) * s + (ry - y) * c) for rx, ry in robots]

    def _near(self, rel: list[tuple[float, float]]) -> list[tuple[float, float]]:
        """The robots on this stretch of path (just behind to the yield distance ahead)."""
        return [(a, lat) for a, lat in rel if -self.clearance < a < PERSON_YIELD_DISTANCE
                and abs(lat) < self.clearance + MAX_DETOUR]

    def _detour(self, rel: list[tuple[float, float]], side: int) -> float:
        """Offset that passes every robot on this stretch of path on the given side."""
        want = max((side * lat + self.clearance for _, lat in self._near(rel)), default=0.0)
        return side * max(want, 0.0)

    def _clear_way(self, rel: list[tuple[float, float]], offset: float,
                   free: Callable[[float, float], bool]) -> bool:
        """Return True if the floor is free from here, sideways to offset, past the robots."""
        if abs(offset) > MAX_DETOUR:
            return False
        steps = max(1, math.ceil(abs(offset - self.offset) / DETOUR_SAMPLE))
        for k in range(steps + 1):
            x, y, _ = self._at(self.walked, self.offset + (offset - self.offset) * k / steps)
            if not free(x, y):
                return False
        # past the last robot, then back onto the path, all on this straight leg of the path
        # (an offset carried round a corner would make the person jump)
        end = max((a for a, _ in self._near(rel)), default=0.0) + self.clearance + abs(offset)
        heading = self.path.pose_along(self.walked)[2]
        for k in range(1, math.ceil(end / DETOUR_SAMPLE) + 1):
            x, y, h = self._at(self.walked + min(k * DETOUR_SAMPLE, end), offset)
            if h != heading or not free(x, y):
                return False
        return True

    def step(self, dt: float, robots: Sequence[tuple[float, float]],
             free: Callable[[float, float], bool]) -> None:
        """Advance dt seconds among robots at the given (x, y) positions."""
        rel = self._relative(robots)
        blocking = [(a, lat) for a, lat in rel
                    if 0.0 < a < PERSON_YIELD_DISTANCE and abs(lat - self.offset) < self.clearance]
        if blocking and self.side == 0:
            self.waited += dt
            if self.waited >= PERSON_PATIENCE_S:
                lat = min(blocking)[1]
                for side in sorted((1, -1), key=lambda s: abs(lat + s * self.clearance)):
                    target = self._detour(rel, side)
                    if self._clear_way(rel, target, free):
                        self.side = side
                        break
                else:
                    self.waited = PERSON_PATIENCE_S - RETRY_S
        elif not blocking:
            self.waited = 0.0
        target = self._detour(rel, self.side) if self.side else 0.0
        if self.side and target == 0.0 and abs(self.offset) < 1e-6:
            self.side = 0  # back on the path
        move = self.path.speed * dt
        self.offset += max(-move, min(move, target - self.offset))
        if not blocking:
            self.walked += move
