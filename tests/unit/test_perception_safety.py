"""Unit tests: polygons, speed-dependent safety fields and the safety monitor states."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kpai_perception.errors import SafetyConfigError
from kpai_perception.safety import (
    FieldConfig,
    MonitorConfig,
    SafetyMonitor,
    SafetyState,
    compute_fields,
)
from kpai_perception.safety.fields import parse_footprint, stopping_distance
from kpai_perception.safety.polygon import convex_hull, distance_to_polygon, point_in_polygon

SQUARE = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)


def test_polygon_helpers() -> None:
    hull = convex_hull([[0, 0], [1, 0], [0.5, 0.5], [1, 1], [0, 1], [0.2, 0.1]])
    assert len(hull) == 4
    assert point_in_polygon(0.5, 0.5, SQUARE) and point_in_polygon(1.0, 0.5, SQUARE)
    assert not point_in_polygon(1.01, 0.5, SQUARE)
    assert distance_to_polygon(2.0, 0.5, SQUARE) == pytest.approx(1.0)
    assert distance_to_polygon(2.0, 2.0, SQUARE) == pytest.approx(math.sqrt(2))
    assert distance_to_polygon(0.5, 0.5, SQUARE) == 0.0


def _extent(poly: np.ndarray) -> tuple[float, float, float, float]:
    return poly[:, 0].min(), poly[:, 0].max(), poly[:, 1].min(), poly[:, 1].max()


def test_fields_follow_the_documented_formula() -> None:
    cfg = FieldConfig()  # footprint +-0.35 x +-0.25, clearance 0.3, warning 1.0
    still = compute_fields(0.0, cfg)
    np.testing.assert_allclose(_extent(still.protective), (-0.65, 0.65, -0.55, 0.55))
    np.testing.assert_allclose(_extent(still.warning), (-1.65, 1.65, -1.55, 1.55))
    v = 1.2
    stop = v * cfg.response_time + v * v / (2 * cfg.deceleration)
    assert stopping_distance(v, cfg) == pytest.approx(stop) == pytest.approx(1.08)
    moving = compute_fields(v, cfg)
    np.testing.assert_allclose(_extent(moving.protective), (-0.65, 0.65 + stop, -0.55, 0.55))
    np.testing.assert_allclose(_extent(moving.warning),
                               (-1.65, 1.65 + stop + v * cfg.warning_time, -1.55, 1.55))
    back = compute_fields(-v, cfg)  # reversing grows the fields backwards
    np.testing.assert_allclose(_extent(back.protective), (-0.65 - stop, 0.65, -0.55, 0.55))
    with pytest.raises(ValueError):
        compute_fields(math.nan, cfg)


def test_field_config_validation() -> None:
    assert parse_footprint([0.3, 0.2, 0.3, -0.2, -0.3, 0.0]) == ((0.3, 0.2), (0.3, -0.2),
                                                                  (-0.3, 0.0))
    with pytest.raises(SafetyConfigError):
        parse_footprint([1.0, 2.0, 3.0])
    with pytest.raises(SafetyConfigError):
        FieldConfig(footprint=((0, 0), (1, 1), (2, 2)))  # no area
    with pytest.raises(SafetyConfigError):
        FieldConfig(deceleration=0.0)
    with pytest.raises(SafetyConfigError):
        FieldConfig(response_time=math.inf)
    with pytest.raises(SafetyConfigError):
        MonitorConfig(warning_speed=2.0, max_speed=1.0)
    with pytest.raises(SafetyConfigError):
        MonitorConfig(input_timeout=0.0)


def _monitor(**kw: float) -> SafetyMonitor:
    return SafetyMonitor(MonitorConfig(**kw))


def test_states_and_speed_limits() -> None:
    m = _monitor(max_speed=1.5, warning_speed=0.3, hold_time=0.0)
    m.set_speed(0.0, 1.0)
    m.set_people(0.0, [])
    d = m.evaluate(0.0)
    assert (d.state, d.speed_limit, d.inputs_stale) == (SafetyState.CLEAR, 1.5, False)
    assert d.nearest_person_distance == math.inf
    # at 1 m/s the protective field reaches 0.35 + 0.3 + 0.3 + 0.5 = 1.45 m ahead
    m.set_people(0.1, [(1.4, 0.0), (5.0, 3.0)])
    d = m.evaluate(0.1)
    assert (d.state, d.speed_limit, d.people_in_protective) == (SafetyState.PROTECTIVE_STOP,
                                                               0.0, 1)
    assert d.nearest_person_distance == pytest.approx(1.05)
    m.set_people(0.2, [(2.5, 0.0)])  # warning reaches 1.45 + 1.0 + 1.0 = 3.45 m
    d = m.evaluate(0.2)
    assert (d.state, d.speed_limit, d.people_in_warning) == (SafetyState.WARNING, 0.3, 1)
    m.set_speed(0.3, 0.0)  # standing still the fields shrink: 2.5 m ahead is clear
    m.set_people(0.3, [(2.5, 0.0)])
    assert m.evaluate(0.3).state == SafetyState.CLEAR
    m.set_people(0.35, [(-0.5, 0.0)])  # behind, within 0.3 m of the footprint
    assert m.evaluate(0.35).state == SafetyState.PROTECTIVE_STOP


def test_fail_safe_on_stale_inputs() -> None:
    m = _monitor(input_timeout=0.5, fault_speed=0.2)
    d = m.evaluate(0.0)
    assert d.state == SafetyState.FAULT and d.inputs_stale and 'received yet' in d.reason
    assert d.speed_limit == 0.2
    m.set_speed(0.0, 0.5)
    m.set_people(0.0, [])
    assert m.evaluate(0.4).state == SafetyState.CLEAR
    d = m.evaluate(0.6)
    assert d.state == SafetyState.FAULT and 'tracked objects' in d.reason and d.inputs_stale
    m.set_people(0.7, [])
    d = m.evaluate(0.7)
    assert d.state == SafetyState.FAULT and 'odometry' in d.reason
    m.set_speed(0.8, 0.5)
    assert m.evaluate(0.8).state == SafetyState.CLEAR


def test_hold_time_hysteresis() -> None:
    m = _monitor(hold_time=0.5, input_timeout=10.0)
    m.set_speed(0.0, 0.0)
    m.set_people(0.0, [(0.5, 0.0)])
    assert m.evaluate(0.0).state == SafetyState.PROTECTIVE_STOP
    m.set_people(0.1, [(1.5, 0.0)])  # now only in the warning field
    d = m.evaluate(0.1)
    assert d.state == SafetyState.PROTECTIVE_STOP and 'holding' in d.reason
    assert m.evaluate(0.45).state == SafetyState.PROTECTIVE_STOP
    assert m.evaluate(0.51).state == SafetyState.WARNING
    m.set_people(0.6, [])
    assert m.evaluate(0.6).state == SafetyState.WARNING  # warning held too
    assert m.evaluate(1.2).state == SafetyState.CLEAR


def test_bad_inputs_rejected_and_counted() -> None:
    m = _monitor()
    assert not m.set_speed(0.0, math.nan)
    assert m.set_people(0.0, [(math.nan, 0.0), (math.inf, 1.0), (3.0, 0.0)]) == 2
    assert m.rejected_inputs == 3
    assert m.evaluate(0.0).state == SafetyState.FAULT  # still no valid odometry
    assert m.set_speed(0.1, 0.2)
    d = m.evaluate(0.1)  # valid odometry now, but two people are somewhere unknown
    assert d.state == SafetyState.FAULT and 'non-finite' in d.reason and not d.inputs_stale
    assert m.set_people(0.2, [(3.0, 0.0)]) == 0
    assert m.evaluate(0.2).state == SafetyState.CLEAR
