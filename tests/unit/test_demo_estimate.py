"""The demo's up-front estimate of the CPU it needs and the real-time factor."""

from __future__ import annotations

import pytest
from kpai_bringup.demo import DEMO_CAMERA_RATE, DEMO_CLOCK_RATE, DEMO_ODOM_RATE
from kpai_bringup.demo_estimate import DEFAULT_RATES, LIGHT_RATES, choose_rates, estimate


def test_the_demo_defaults_are_the_measured_design_rates() -> None:
    assert (DEMO_CAMERA_RATE, DEMO_ODOM_RATE, DEMO_CLOCK_RATE) == DEFAULT_RATES == (10, 20, 25)


def test_more_robots_need_more_cores_and_slow_down_on_two() -> None:
    figures = [estimate(n, 2, DEFAULT_RATES, 'processes') for n in (1, 2, 3, 4)]
    needs = [f.cores_needed for f in figures]
    assert needs == sorted(needs) and needs[0] > 0
    rtfs = [f.real_time_factor for f in figures]
    assert rtfs[0] == 1.0 and rtfs[1] == 1.0
    assert rtfs[3] == pytest.approx(0.75, abs=0.01)  # the 4-robot measurement it is built on
    text = figures[3].message(4, 2)
    assert 'slower than the wall clock' in text
    # the light rates are offered, with their own (measured) figures: real time again
    assert 'at the light rates (CAMERA_RATE=5 ODOM_RATE=10 CLOCK_RATE=10) about 1.00' in text
    light = estimate(4, 2, LIGHT_RATES, 'processes')
    assert light.real_time_factor == 1.0 and '(real time)' in light.message(4, 2)
    slow = estimate(4, 1, LIGHT_RATES, 'processes')
    assert slow.real_time_factor is not None and slow.real_time_factor < 0.9
    assert 'slower than the wall clock' in slow.message(4, 1)
    assert 'at the light rates' not in slow.message(4, 1)
    assert '(real time)' in figures[0].message(1, 2)


def test_one_process_per_robot_needs_less() -> None:
    for robots in (1, 2, 3, 4):
        one = estimate(robots, 2, DEFAULT_RATES, 'one_process')
        apart = estimate(robots, 2, DEFAULT_RATES, 'processes')
        assert one.cores_needed < apart.cores_needed
    # the 4-robot one_process run it is built on held real time (demand 1.83 cores)
    assert estimate(4, 2, DEFAULT_RATES).real_time_factor == 1.0
    assert estimate(4, 2, DEFAULT_RATES).layout == 'one_process'  # the demo's default
    with pytest.raises(ValueError):
        estimate(2, 2, DEFAULT_RATES, 'container')


def test_more_cores_give_real_time_and_other_rates_are_not_guessed() -> None:
    assert estimate(4, 4, DEFAULT_RATES, 'processes').real_time_factor == 1.0
    other = estimate(2, 2, (10.0, 20.0, 10.0))
    assert other.real_time_factor is None and other.cores_needed > 0
    assert 'no real-time factor is estimated' in other.message(2, 2)
    with pytest.raises(ValueError):
        estimate(0, 2, DEFAULT_RATES)


def test_the_demo_runs_the_design_rates_only_where_the_machine_holds_them() -> None:
    # one process per robot (the demo's default): 2 cores hold 4 robots at the design rates
    assert all(choose_rates(n, 2)[0] == DEFAULT_RATES for n in (1, 2, 3, 4))
    rates, why = choose_rates(3, 1)
    assert rates == LIGHT_RATES and '0.65' in why
    # one process per node: 4 robots on 2 cores about 0.75 at the design rates
    assert choose_rates(3, 2, 'processes')[0] == DEFAULT_RATES
    rates, why = choose_rates(4, 2, 'processes')
    assert rates == LIGHT_RATES and '0.75' in why
    assert choose_rates(4, 4, 'processes')[0] == DEFAULT_RATES
    assert choose_rates(2, 1, 'processes')[0] == LIGHT_RATES
