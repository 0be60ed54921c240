"""SpeedLimitGate: the safety speed limit fails closed (kpai_planning.speed_gate)."""

from __future__ import annotations

import math

import pytest
from kpai_planning.speed_gate import SpeedLimitGate


def test_zero_until_the_first_limit() -> None:
    gate = SpeedLimitGate(0.5)
    assert gate.limit(0.0) == 0.0 and 'no speed limit received' in gate.reason(0.0)
    assert gate.update(1.2, 1.0)
    assert gate.limit(1.2) == 1.2 and gate.reason(1.2) is None


def test_stale_limit_is_zero_and_fresh_one_resumes() -> None:
    gate = SpeedLimitGate(0.5)
    gate.update(1.0, 10.0)
    assert gate.limit(10.5) == 1.0
    assert gate.limit(10.51) == 0.0 and 'stale' in gate.reason(10.51)
    gate.update(0.8, 11.0)
    assert gate.limit(11.1) == 0.8


@pytest.mark.parametrize('bad', [math.nan, math.inf, -math.inf, -0.1])
def test_invalid_limits_count_as_none(bad: float) -> None:
    gate = SpeedLimitGate(0.5)
    gate.update(1.0, 0.0)
    assert not gate.update(bad, 0.1)
    assert gate.limit(0.1) == 0.0 and 'invalid speed limit' in gate.reason(0.1)
    assert gate.rejected == 1
    assert gate.update(0.5, 0.2) and gate.limit(0.2) == 0.5


def test_source_must_be_the_expected_node_alone() -> None:
    gate = SpeedLimitGate(0.5, source='/robot1/safety_monitor')
    gate.update(1.0, 0.0)
    assert gate.limit(0.1) == 1.0  # publishers not known yet: the freshness rules alone
    gate.set_publishers([])
    assert gate.limit(0.1) == 0.0 and 'nobody publishes' in gate.reason(0.1)
    gate.set_publishers(['/robot1/teleop'])
    assert gate.limit(0.1) == 0.0 and 'not published by /robot1/safety_monitor' in \
        gate.reason(0.1)
    gate.set_publishers(['/robot1/safety_monitor', '/robot1/teleop'])
    assert gate.limit(0.1) == 0.0 and 'also published by /robot1/teleop' in gate.reason(0.1)
    gate.set_publishers(['/robot1/safety_monitor'])
    assert gate.limit(0.1) == 1.0


def test_any_publisher_when_no_source_is_named() -> None:
    gate = SpeedLimitGate(0.5)
    gate.update(1.0, 0.0)
    gate.set_publishers(['/x/y'])
    assert gate.limit(0.1) == 1.0


@pytest.mark.parametrize('timeout', [0.0, -1.0, math.nan, math.inf])
def test_bad_timeout_is_rejected(timeout: float) -> None:
    with pytest.raises(ValueError, match='timeout'):
        SpeedLimitGate(timeout)


def test_odometry_that_stopped_arriving_stops_the_robot() -> None:
    from kpai_planning.ros_io import pose_age_reason

    assert pose_age_reason(10.0, 9.8, 0.5) is None
    reason = pose_age_reason(10.0, 9.2, 0.5)
    assert reason is not None and 'no odometry for 0.80 s' in reason
    assert 'max_pose_age 0.50' in reason
    assert pose_age_reason(10.0, None, 0.5) is None  # none yet: no pose to steer on anyway
    assert pose_age_reason(10.0, 1.0, 0.0) is None  # 0 turns the check off


def test_max_pose_age_must_be_a_finite_non_negative_number() -> None:
    import math

    import pytest
    from kpai_planning.errors import PlanningError
    from kpai_planning.params import declare_max_pose_age

    class Param:
        def __init__(self, value: float) -> None:
            self.value = value

    class FakeNode:
        def __init__(self, value: float) -> None:
            self._value = value

        def declare_parameter(self, name: str, default: object, descriptor: object) -> Param:
            del name, default, descriptor
            return Param(self._value)

    assert declare_max_pose_age(FakeNode(0.5)) == 0.5
    for bad in (-0.1, math.nan, math.inf):
        with pytest.raises(PlanningError, match='max_pose_age'):
            declare_max_pose_age(FakeNode(bad))
