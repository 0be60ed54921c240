"""Docking on a tag: docked pose from the tag pose, measurements, decisions, mission refinement."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kpai_planning.docking import (
    TagFixes,
    decide_dock,
    dock_on_axis,
    parse_tag_id,
    pose_difference,
    tag_axis,
)
from kpai_planning.mission import Mission, MissionState, Step, StepType
from transforms3d.euler import euler2mat


def _tag_facing(yaw_towards_robot: float) -> np.ndarray:
    """Rotation of an upright tag whose outward normal points along yaw_towards_robot.

    Tag frame: x right, y down, z into the tag (AprilTag 3).
    """
    out = np.array([math.cos(yaw_towards_robot), math.sin(yaw_towards_robot), 0.0])
    z = -out
    y = np.array([0.0, 0.0, -1.0])
    x = np.cross(y, z)
    return np.column_stack([x, y, z])


@pytest.mark.parametrize('facing', [math.pi, 0.8 * math.pi, -0.9 * math.pi])
def test_docked_pose_stands_off_the_tag_and_faces_it(facing: float) -> None:
    tag = (2.0, 0.3, 0.6)
    axis = tag_axis(tag, _tag_facing(facing))
    assert axis[:2] == pytest.approx(tag[:2])
    x, y, yaw = dock_on_axis(axis, 0.75)
    assert math.hypot(x - tag[0], y - tag[1]) == pytest.approx(0.75)
    assert math.atan2(y - tag[1], x - tag[0]) == pytest.approx(facing)
    assert pose_difference((0, 0, yaw), (0, 0, facing + math.pi))[1] == pytest.approx(0, abs=1e-9)


def test_docked_pose_along_a_given_yaw_keeps_the_tag_centre() -> None:
    """With the station's yaw, a tag heading error does not move the robot sideways."""
    axis = (11.75, -4.0, math.radians(-3.0))   # a tag measured 3 degrees off
    x, y, yaw = dock_on_axis(axis, 0.75, 0.0)
    assert (x, y, yaw) == pytest.approx((11.0, -4.0, 0.0))
    x, y, _ = dock_on_axis(axis, 0.75)         # its own heading: 3.9 cm off the line
    assert y - -4.0 == pytest.approx(0.75 * math.sin(math.radians(3.0)))


def test_tilted_or_broken_tags_give_no_pose() -> None:
    flat = euler2mat(0.0, 0.0, 0.0)  # z up: a tag lying on the floor, seen from above
    assert tag_axis((1, 0, 0), flat) is None
    tilted = _tag_facing(math.pi) @ euler2mat(math.radians(40), 0, 0)  # 40 deg: still upright
    assert tag_axis((1, 0, 0), tilted) is not None
    assert tag_axis((1, math.nan, 0), _tag_facing(math.pi)) is None
    assert tag_axis((1, 0, 0), np.full((3, 3), math.inf)) is None


def test_parse_tag_ids() -> None:
    assert parse_tag_id('tag36h11:2', 'tag36h11') == 2
    assert parse_tag_id('tag25h9:2', 'tag36h11') is None
    assert parse_tag_id('person', 'tag36h11') is None
    assert parse_tag_id('tag36h11:x', 'tag36h11') is None


def test_fixes_average_fresh_sightings_only() -> None:
    f = TagFixes(keep=3)
    f.add(1, 0.0, (9.0, 9.0, 0.0))            # before the robot stood still: ignored
    f.add(1, 1.0, (1.0, 2.0, math.pi - 0.1))
    f.add(1, 1.2, (1.2, 2.2, -math.pi + 0.1))  # yaw wraps round pi
    x, y, yaw = f.latest(1, since=0.5)
    assert (x, y) == pytest.approx((1.1, 2.1))
    assert abs(math.atan2(math.sin(yaw - math.pi), math.cos(yaw - math.pi))) < 1e-9
    assert f.latest(2, since=0.0) is None and f.latest(1, since=5.0) is None
    for k in range(5):
        f.add(1, 2.0 + k, (0.0, 0.0, 0.0))
    assert f.latest(1, since=0.0) == (0.0, 0.0, 0.0)  # only the last `keep`


def test_fixes_wait_for_enough_sightings_and_ignore_an_outlier() -> None:
    f = TagFixes(keep=10)
    f.add(3, 1.0, (11.00, -4.00, 0.0))
    f.add(3, 1.1, (11.01, -3.99, 0.0))
    assert f.latest(3, since=0.5, min_count=3) is None      # two sightings: not yet
    f.add(3, 1.2, (11.60, -3.50, 0.0))                      # one bad detection
    x, y, _ = f.latest(3, since=0.5, min_count=3)
    assert (x, y) == pytest.approx((11.01, -3.99))           # the median ignores it
    assert f.latest(3, since=1.15, min_count=1) == pytest.approx((11.60, -3.50, 0.0))


def test_decisions() -> None:
    kw = dict(station='dock1', tag_id=0, nominal=(11.0, -4.0, 0.0), wait_s=3.0,
              max_correction=0.5, standoff=0.75)
    assert decide_dock(fix=None, waited_s=1.0, **kw).action == 'wait'
    # the tag axis (centre 0.75 m beyond the dock, heading 0.05 rad): the position from the tag,
    # the yaw the station's
    d = decide_dock(fix=(11.77, -3.9, 0.05), waited_s=1.0, **kw)
    assert d.action == 'tag' and d.pose == pytest.approx((11.02, -3.9, 0.0))
    assert '10.2 cm' in d.reason and 'configured yaw' in d.reason and '2.9 deg' in d.reason
    d = decide_dock(fix=(11.77, -3.9, 0.05), waited_s=1.0, tag_yaw=True, **kw)
    assert d.action == 'tag' and d.pose == pytest.approx(dock_on_axis((11.77, -3.9, 0.05), 0.75))
    assert 'tag yaw' in d.reason
    d = decide_dock(fix=(11.75, -3.0, 0.0), waited_s=1.0, **kw)
    assert d.action == 'fail' and 'wrong tag or station pose' in d.reason
    assert decide_dock(fix=(11.75, -4.0, 1.0), waited_s=1.0, **kw).action == 'fail'
    d = decide_dock(fix=None, waited_s=3.5, **kw)
    assert d.action == 'pose' and 'not seen' in d.reason
    assert decide_dock(fix=None, waited_s=3.5, require=True, **kw).action == 'fail'


def test_mission_docks_on_the_refined_pose() -> None:
    m = Mission('m', [Step(StepType.DOCK, 'd', 11.0, -4.0, 0.0, 'dock1')], now=0.0,
                dock_offset=0.6)
    assert not m.awaiting_dock and not m.refine_dock(1, 2, 3)  # still approaching
    first = m.motion_request()
    assert (first.x, first.y, first.straight) == (pytest.approx(10.4), -4.0, False)
    m.arrived(1.0)
    assert m.awaiting_dock
    assert not m.refine_dock(math.nan, 0, 0)
    assert m.refine_dock(11.05, -3.95, 0.02)
    final = m.motion_request()
    assert (final.x, final.y, final.yaw, final.straight) == (11.05, -3.95, 0.02, True)
    assert not m.awaiting_dock
    m.pause()
    m.resume()
    again = m.motion_request()  # an interrupted final leg keeps the measured target
    assert (again.x, again.y) == (11.05, -3.95)
    m.arrived(5.0)
    assert m.state == MissionState.SUCCEEDED
