"""Server side of the KPAI live topics: camera thumbnails by lease, tracked objects aged out.

Both live in memory only, bounded: a thumbnail is kept per robot (the newest, within a total
byte budget), and only for a robot whose camera the server asked for recently; tracked
objects are kept per robot and dropped after `objects_max_age_s`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kpai_fleet.errors import ValidationRejected
from kpai_fleet.vda5050.kpai_ext import (
    MAX_JPEG_BYTES,
    CameraRequest,
    TrackedObject,
    jpeg_size,
    parse_objects,
)

__all__ = ['CameraHub', 'Thumbnail', 'TrackedObjects']


@dataclass(frozen=True)
class Thumbnail:
    """The newest JPEG of one robot."""

    jpeg: bytes
    width: int
    height: int
    received: float


class CameraHub:
    """Requests thumbnails while someone looks at them; keeps the newest per robot.

    `want(robot)` is called on every dashboard poll: it renews the vehicle's lease (a request
    goes out when the last one is older than half a lease). A thumbnail that arrives for a
    robot nobody asked for within two leases is dropped, so no vehicle can fill the memory.
    """

    def __init__(self, send_request: Callable[[str, CameraRequest], None], *,
                 request: CameraRequest | None = None, max_bytes: int = 32 * 1024 * 1024,
                 max_age_s: float = 5.0) -> None:
        self.send_request = send_request
        self.request = request or CameraRequest()
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._asked: dict[str, float] = {}
        self._images: OrderedDict[str, Thumbnail] = OrderedDict()
        self._bytes = 0
        self.counts: dict[str, int] = {'requests': 0, 'accepted': 0, 'rejected': 0,
                                       'unsolicited': 0, 'evicted': 0}

    def want(self, robot_id: str, now: float | None = None) -> None:
        """A viewer wants robot_id's camera: renew its lease when due."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if now - self._asked.get(robot_id, -1e18) < self.request.lease_s / 2:
                return
            self._asked[robot_id] = now
            self.counts['requests'] += 1
        self.send_request(robot_id, self.request)

    def watched(self, now: float | None = None) -> list[str]:
        """Return the robots whose lease the server renewed within the last lease."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return sorted(r for r, t in self._asked.items() if now - t < self.request.lease_s)

    def accept(self, robot_id: str, payload: bytes, now: float | None = None) -> None:
        """Keep a thumbnail from robot_id; ValidationRejected if unasked for or not a JPEG."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if now - self._asked.get(robot_id, -1e18) > 2 * self.request.lease_s:
                self.counts['unsolicited'] += 1
                raise ValidationRejected(f'camera image from {robot_id} that nobody asked for')
        try:
            w, h = jpeg_size(payload, max_bytes=MAX_JPEG_BYTES)
        except ValidationRejected:
            self.counts['rejected'] += 1
            raise
        thumb = Thumbnail(bytes(payload), w, h, now)
        with self._lock:
            old = self._images.pop(robot_id, None)
            if old is not None:
                self._bytes -= len(old.jpeg)
            self._images[robot_id] = thumb
            self._bytes += len(thumb.jpeg)
            while self._bytes > self.max_bytes and len(self._images) > 1:
                _, gone = self._images.popitem(last=False)
                self._bytes -= len(gone.jpeg)
                self.counts['evicted'] += 1
            self.counts['accepted'] += 1

    def latest(self, robot_id: str, now: float | None = None) -> Thumbnail | None:
        """Return robot_id's thumbnail if it is younger than max_age_s."""
        now = time.monotonic() if now is None else now
        with self._lock:
            thumb = self._images.get(robot_id)
        if thumb is None or now - thumb.received > self.max_age_s:
            return None
        return thumb

    def status(self) -> dict[str, Any]:
        """Counters and memory use for /api/metrics."""
        with self._lock:
            return dict(self.counts, images=len(self._images), bytes=self._bytes,
                        watched=len(self._asked))


class TrackedObjects:
    """The people and objects each robot tracks, newest message per robot, aged out."""

    def __init__(self, *, max_age_s: float = 3.0, max_robots: int = 10000) -> None:
        self.max_age_s = max_age_s
        self.max_robots = max_robots
        self._lock = threading.Lock()
        self._by_robot: dict[str, tuple[float, str, list[TrackedObject]]] = {}
        self.version = 0  # moves on every accepted message (the live stream sends then)

    def accept(self, robot_id: str, payload: bytes, now: float | None = None) -> int:
        """Validate and keep a kpaiObjects payload; return the number of objects."""
        map_id, objects = parse_objects(payload)
        now = time.time() if now is None else now
        with self._lock:
            if robot_id not in self._by_robot and len(self._by_robot) >= self.max_robots:
                raise ValidationRejected('too many robots with tracked objects')
            old = self._by_robot.get(robot_id)
            self._by_robot[robot_id] = (now, map_id, objects)
            if objects or (old is not None and old[2]):  # no news: nothing seen, still
                self.version += 1
        return len(objects)

    def snapshot(self, now: float | None = None) -> list[dict[str, Any]]:
        """Return the objects not older than max_age_s, each with its robot and age."""
        now = time.time() if now is None else now
        out = []
        with self._lock:
            for rid in [r for r, v in self._by_robot.items() if now - v[0] > self.max_age_s]:
                del self._by_robot[rid]
            for rid, (received, map_id, objects) in sorted(self._by_robot.items()):
                out += [dict(o.to_json(), robot_id=rid, map_id=map_id,
                             age_s=round(now - received, 2)) for o in objects]
        return out
