"""A small transform buffer (tf2 is not on PyPI): static and timed transforms, chained lookups."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kpai_perception.errors import ConnectivityError, ExtrapolationError, FrameLookupError
from kpai_perception.geometry.transform import Transform

__all__ = ['TransformBuffer', 'transform_from_msg']


def _strip(frame: str) -> str:
    return frame[1:] if frame.startswith('/') else frame


def transform_from_msg(msg: Any) -> tuple[str, str, float, Transform]:
    """Return (parent, child, stamp s, Transform) from a geometry_msgs/TransformStamped."""
    t, r = msg.transform.translation, msg.transform.rotation
    stamp = float(msg.header.stamp.sec) + float(msg.header.stamp.nanosec) * 1e-9
    tf = Transform.create((t.x, t.y, t.z), (r.w, r.x, r.y, r.z))
    return _strip(str(msg.header.frame_id)), _strip(str(msg.child_frame_id)), stamp, tf


@dataclass
class _Edge:
    parent: str
    static: bool
    stamps: list[float] = field(default_factory=list)
    values: list[Transform] = field(default_factory=list)


class TransformBuffer:
    """Store the transform tree (child -> parent edges) and look transforms up between frames.

    Dynamic edges keep cache_time seconds of history and are interpolated linearly (slerp for
    rotation); a request outside an edge's history raises ExtrapolationError, unless it is
    within `tolerance` s of the newest or oldest sample. Static edges hold at any time.
    """

    def __init__(self, *, cache_time: float = 10.0, tolerance: float = 0.0) -> None:
        self.cache_time = cache_time
        self.tolerance = tolerance
        self._edges: dict[str, _Edge] = {}
        self.rejected = 0

    def frames(self) -> set[str]:
        """Return every frame known to the buffer."""
        return set(self._edges) | {e.parent for e in self._edges.values()}

    def clear(self) -> None:
        """Forget every transform (e.g. after the clock jumped back)."""
        self._edges.clear()

    def set_transform(self, parent: str, child: str, stamp: float, transform: Transform, *,
                      static: bool = False) -> None:
        """Add the pose of child in parent at stamp (ignored for static transforms)."""
        parent, child = _strip(parent), _strip(child)
        if not parent or not child or parent == child:
            raise ValueError(f'invalid transform edge {parent!r} -> {child!r}')
        edge = self._edges.get(child)
        if edge is None or edge.parent != parent or edge.static != static:
            edge = _Edge(parent, static)  # a re-parented frame starts a new history
            self._edges[child] = edge
        if static:
            edge.stamps, edge.values = [stamp], [transform]
            return
        i = bisect.bisect_left(edge.stamps, stamp)
        if i < len(edge.stamps) and edge.stamps[i] == stamp:
            edge.values[i] = transform
        else:
            edge.stamps.insert(i, stamp)
            edge.values.insert(i, transform)
        cutoff = edge.stamps[-1] - self.cache_time
        drop = bisect.bisect_left(edge.stamps, cutoff)
        if drop:
            del edge.stamps[:drop]
            del edge.values[:drop]

    def add_message(self, msg: Any, *, static: bool = False) -> int:
        """Add every transform of a tf2_msgs/TFMessage; return how many were rejected."""
        return self.add_transforms(msg.transforms, static=static)

    def add_transforms(self, transforms: Iterable[Any], *, static: bool = False) -> int:
        """Add geometry_msgs/TransformStamped items; bad ones (NaN, empty frame) are counted."""
        bad = 0
        for item in transforms:
            try:
                parent, child, stamp, tf = transform_from_msg(item)
                self.set_transform(parent, child, stamp, tf, static=static)
            except ValueError:
                bad += 1
        self.rejected += bad
        return bad

    def _path_to_root(self, frame: str) -> list[str]:
        path = [frame]
        seen = {frame}
        while path[-1] in self._edges:
            nxt = self._edges[path[-1]].parent
            if nxt in seen:
                raise ConnectivityError(f'transform loop through {nxt!r}')
            path.append(nxt)
            seen.add(nxt)
        return path

    def _chain(self, target: str, source: str) -> tuple[list[str], list[str]]:
        known = self.frames()
        for f in (target, source):
            if f not in known:
                raise FrameLookupError(f'frame {f!r} does not exist in the transform buffer')
        up_s, up_t = self._path_to_root(source), self._path_to_root(target)
        common = next((f for f in up_s if f in set(up_t)), None)
        if common is None:
            raise ConnectivityError(
                f'frames {target!r} and {source!r} are not connected (roots {up_t[-1]!r} and '
                f'{up_s[-1]!r})')
        return up_s[:up_s.index(common)], up_t[:up_t.index(common)]

    def _edge_at(self, child: str, stamp: float | None) -> Transform:
        edge = self._edges[child]
        if edge.static or stamp is None:
            return edge.values[-1]
        stamps = edge.stamps
        if stamp >= stamps[-1]:
            if stamp - stamps[-1] <= self.tolerance:
                return edge.values[-1]
            raise ExtrapolationError(
                f'lookup of {edge.parent!r} -> {child!r} at {stamp:.3f} s would extrapolate '
                f'{stamp - stamps[-1]:.3f} s into the future (latest {stamps[-1]:.3f} s)')
        if stamp <= stamps[0]:
            if stamps[0] - stamp <= self.tolerance or stamp == stamps[0]:
                return edge.values[0]
            raise ExtrapolationError(
                f'lookup of {edge.parent!r} -> {child!r} at {stamp:.3f} s would extrapolate '
                f'{stamps[0] - stamp:.3f} s into the past (oldest {stamps[0]:.3f} s)')
        i = bisect.bisect_right(stamps, stamp)
        t0, t1 = stamps[i - 1], stamps[i]
        return edge.values[i - 1].interpolate(edge.values[i], (stamp - t0) / (t1 - t0))

    def latest_common_time(self, target: str, source: str) -> float | None:
        """Return the newest time all dynamic edges between the frames share; None if static."""
        down, up = self._chain(target, source)
        latest = [self._edges[c].stamps[-1] for c in down + up if not self._edges[c].static]
        return min(latest) if latest else None

    def lookup(self, target: str, source: str, stamp: float | None = None) -> Transform:
        """Return target_from_source at stamp (s); None = the latest common time.

        The result maps points expressed in source into target (as tf2's lookupTransform).
        """
        target, source = _strip(target), _strip(source)
        down, up = self._chain(target, source)
        if stamp is None:
            stamp = self.latest_common_time(target, source)
        common_from_source = Transform.identity()
        for child in down:  # source up to the common ancestor
            common_from_source = self._edge_at(child, stamp) * common_from_source
        common_from_target = Transform.identity()
        for child in up:
            common_from_target = self._edge_at(child, stamp) * common_from_target
        return common_from_target.inverse() * common_from_source

    def can_transform(self, target: str, source: str, stamp: float | None = None) -> bool:
        """Return whether lookup(target, source, stamp) would succeed."""
        try:
            self.lookup(target, source, stamp)
        except (FrameLookupError, ConnectivityError, ExtrapolationError):
            return False
        return True
