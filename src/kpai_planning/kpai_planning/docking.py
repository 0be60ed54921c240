"""Docking on a fiducial: the docked robot pose from an AprilTag seen by the robot's camera.

Tag frame convention (AprilTag 3, as kpai_perception publishes it): origin at the tag centre,
z pointing into the tag. The robot docks facing the tag, `standoff` metres in front of it.

The tag's position is the reliable part of a single-camera tag pose; its orientation is not: in
the simulated factory a 24 cm tag seen from 1.4 m scatters by about 2 degrees between frames
(and a standing robot sees the same frame again), which moves a docked pose 0.75 m in front of
the tag about 2.6 cm sideways. So by default the tag gives the docked position and the
station's configured yaw the direction; the tag's heading is only checked against it.
Pure module: no rclpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ['DockDecision', 'DockFix', 'TagFixes', 'decide_dock', 'dock_on_axis', 'parse_tag_id',
           'pose_difference', 'tag_axis']

Pose2 = tuple[float, float, float]


def tag_axis(translation: Sequence[float], rotation: np.ndarray) -> Pose2 | None:
    """Return the tag's axis (x, y, heading) in the frame its pose is given in, or None.

    x, y: the tag centre; heading: the yaw of a robot looking straight at the tag face.
    translation, rotation: the tag's pose in a frame with z up (the robot's base frame).
    None when the tag does not stand upright enough (its normal more than 45 degrees from
    the horizontal) to define a docking direction, or the pose is not finite.
    """
    r = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    t = np.asarray(translation, dtype=np.float64).reshape(3)
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(t))):
        return None
    out = -r[:, 2]  # the tag's outward normal, towards whoever looks at it
    horizontal = math.hypot(out[0], out[1])
    if horizontal < math.sqrt(0.5):
        return None
    return (float(t[0]), float(t[1]), math.atan2(-out[1], -out[0]))


def dock_on_axis(axis: Pose2, standoff: float, yaw: float | None = None) -> Pose2:
    """Return the docked pose `standoff` metres in front of the tag, facing it.

    yaw: the docking direction; None takes the tag's own heading (axis[2]).
    """
    heading = axis[2] if yaw is None else yaw
    return (axis[0] - standoff * math.cos(heading), axis[1] - standoff * math.sin(heading),
            heading)


def parse_tag_id(class_id: str, family: str) -> int | None:
    """Return N of a `family:N` class id (kpai_perception's fiducials), else None."""
    prefix, sep, number = class_id.partition(':')
    if not sep or prefix != family:
        return None
    try:
        return int(number)
    except ValueError:
        return None


def pose_difference(a: Pose2, b: Pose2) -> tuple[float, float]:
    """Return (distance, absolute yaw difference) between two poses."""
    dyaw = math.atan2(math.sin(a[2] - b[2]), math.cos(a[2] - b[2]))
    return math.hypot(a[0] - b[0], a[1] - b[1]), abs(dyaw)


@dataclass(frozen=True)
class DockFix:
    """A tag axis (map frame: tag centre x, y and the heading facing it) seen at a time."""

    time: float
    axis: Pose2


class TagFixes:
    """The latest tag-axis measurements per tag id; smoothed over a few sightings."""

    def __init__(self, *, keep: int = 5) -> None:
        self.keep = keep
        self._fixes: dict[int, list[DockFix]] = {}

    def add(self, tag_id: int, time: float, axis: Pose2) -> None:
        """Record a measurement of tag_id's axis at time (s)."""
        fixes = self._fixes.setdefault(tag_id, [])
        fixes.append(DockFix(time, axis))
        del fixes[:-self.keep]

    def clear(self) -> None:
        """Forget every measurement."""
        self._fixes.clear()

    def latest(self, tag_id: int, *, since: float, min_count: int = 1) -> Pose2 | None:
        """Return the tag axis from the measurements taken at or after since, or None.

        None also while fewer than min_count such measurements exist. x and y are medians
        (one bad detection does not move the dock), the heading the circular mean.
        """
        fresh = [f.axis for f in self._fixes.get(tag_id, []) if f.time >= since]
        if not fresh or len(fresh) < min_count:
            return None
        x = float(np.median([p[0] for p in fresh]))
        y = float(np.median([p[1] for p in fresh]))
        yaw = math.atan2(sum(math.sin(p[2]) for p in fresh), sum(math.cos(p[2]) for p in fresh))
        return (x, y, yaw)


@dataclass(frozen=True)
class DockDecision:
    """What to do at the pre-dock pose: 'pose', 'tag' (use `pose`), 'wait' or 'fail'."""

    action: str
    pose: Pose2 | None = None
    reason: str = ''


def decide_dock(*, station: str, tag_id: int, nominal: Pose2, fix: Pose2 | None,
                waited_s: float, wait_s: float, max_correction: float, standoff: float,
                max_yaw_correction: float = 0.5, tag_yaw: bool = False,
                require: bool = False) -> DockDecision:
    """Decide the final docking leg from the station's configured pose and a tag measurement.

    fix: the tag's axis (map frame, `tag_axis`), None while not seen. The docked pose stands
    `standoff` in front of the tag centre, along the configured station yaw, or along the
    tag's measured heading with tag_yaw. A tag whose heading or docked pose is further from
    the configured pose than the limits is the wrong tag (or the station pose is wrong).
    """
    if fix is not None:
        dyaw = pose_difference(fix, nominal)[1]
        docked = dock_on_axis(fix, standoff, None if tag_yaw else nominal[2])
        dist = pose_difference(docked, nominal)[0]
        if dist > max_correction or dyaw > max_yaw_correction:
            return DockDecision('fail', reason=(
                f'tag {tag_id} puts {station} {dist:.2f} m and {math.degrees(dyaw):.0f} deg from '
                f'its configured pose (limits {max_correction:.2f} m, '
                f'{math.degrees(max_yaw_correction):.0f} deg): wrong tag or station pose'))
        source = 'tag' if tag_yaw else 'configured'
        return DockDecision('tag', docked, (
            f'docking on tag {tag_id} of {station} at ({docked[0]:.3f}, {docked[1]:.3f}, '
            f'{math.degrees(docked[2]):.1f} deg, {source} yaw): {100 * dist:.1f} cm from the '
            f'configured pose, tag heading {math.degrees(dyaw):.1f} deg off it'))
    if waited_s < wait_s:
        return DockDecision('wait')
    if require:
        return DockDecision('fail', reason=f'tag {tag_id} of {station} not seen within '
                                           f'{wait_s:.1f} s at the pre-dock pose')
    return DockDecision('pose', reason=f'tag {tag_id} of {station} not seen within '
                                       f'{wait_s:.1f} s: docking on the configured pose')
