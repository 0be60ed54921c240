"""Mission state machine: step order, timers, dock phases, pause/resume, cancel, failures."""

from __future__ import annotations

import math

import pytest
from kpai_planning.errors import MissionError
from kpai_planning.mission import ErrorCode, Mission, MissionState, Step, StepType


def _steps() -> list[Step]:
    return [
        Step(StepType.NAVIGATE, 'a', x=2.0, y=0.0),
        Step(StepType.LOAD, 'b', duration_s=3.0),
        Step(StepType.DOCK, 'c', x=2.0, y=4.0, yaw=math.pi / 2),
        Step(StepType.CHARGE, 'd', battery_target=0.9, duration_s=100.0),
    ]


def test_runs_all_steps_in_order() -> None:
    m = Mission('m1', _steps(), now=0.0)
    req = m.motion_request()
    assert req is not None and (req.x, req.y, req.straight) == (2.0, 0.0, False)
    assert m.motion_request() is None  # asked once per phase
    m.update(1.0, distance_remaining=1.5)
    assert m.feedback()['distance_remaining'] == 1.5
    m.arrived(1.0)
    assert m.current.step_id == 'b'
    m.update(2.0)
    m.update(3.9)
    assert m.current.step_id == 'b'
    m.update(4.1)
    assert m.current.step_id == 'c'
    approach = m.motion_request()
    assert approach is not None and not approach.straight
    assert approach.x == pytest.approx(2.0) and approach.y == pytest.approx(4.0 - 0.6)
    m.arrived(5.0)
    dock = m.motion_request()
    assert dock is not None and dock.straight and (dock.x, dock.y) == (2.0, 4.0)
    m.arrived(5.5)
    assert m.current.type == StepType.CHARGE
    m.update(6.0, battery=0.5)
    assert m.state == MissionState.RUNNING
    m.update(7.0, battery=0.95)
    assert m.state == MissionState.SUCCEEDED and m.steps_completed == 4
    assert m.error_code == ErrorCode.SUCCEEDED


def test_pause_freezes_timers_and_resume_requests_motion_again() -> None:
    m = Mission('m', [Step(StepType.WAIT, 'w', duration_s=2.0),
                      Step(StepType.NAVIGATE, 'n', x=1.0, y=1.0)], now=0.0)
    m.update(1.0)
    assert m.pause() and not m.pause()
    m.update(50.0)
    assert m.current.step_id == 'w' and m.feedback()['paused'] is True
    assert m.resume() and not m.resume()
    m.update(50.5)
    assert m.current.step_id == 'w'
    m.update(51.1)
    assert m.current.step_id == 'n'
    assert m.motion_request() is not None
    m.pause()
    assert m.motion_request() is None
    m.resume()
    assert m.motion_request() is not None  # the interrupted navigation restarts


def test_cancel_and_failures() -> None:
    m = Mission('m', _steps(), now=0.0)
    m.cancel()
    assert m.state == MissionState.CANCELED and m.error_code == ErrorCode.CANCELED
    m.arrived(1.0)
    assert m.state == MissionState.CANCELED
    m = Mission('m', _steps(), now=0.0)
    m.fail(ErrorCode.PLANNING_FAILED, 'goal occupied')
    assert m.state == MissionState.FAILED and m.error_code == ErrorCode.PLANNING_FAILED
    assert 'step 0 (a): goal occupied' in m.message
    # a failure in the final docking approach is a docking failure
    m = Mission('m', [_steps()[2]], now=0.0)
    m.motion_request()
    m.arrived(1.0)
    m.fail(ErrorCode.NAVIGATION_FAILED, 'blocked')
    assert m.error_code == ErrorCode.DOCKING_FAILED


def test_charge_times_out_below_target() -> None:
    m = Mission('m', [Step(StepType.CHARGE, 'c', battery_target=0.9, duration_s=10.0)], 0.0)
    m.update(11.0, battery=0.4)
    assert m.state == MissionState.FAILED and 'below target' in m.message


def test_eta_counts_remaining_work() -> None:
    m = Mission('m', _steps(), now=0.0, nominal_speed=0.5)
    m.update(0.0, distance_remaining=2.0)
    # 2 m / 0.5 + load 3 s + 4 m / 0.5 + charge 100 s
    assert m.eta() == pytest.approx(4.0 + 3.0 + 8.0 + 100.0)


@pytest.mark.parametrize('steps, needle', [
    ([], 'no steps'),
    ([Step(StepType.NAVIGATE, x=math.nan)], 'not finite'),
    ([Step(StepType.WAIT, duration_s=-1.0)], 'duration_s'),
    ([Step(StepType.CHARGE)], 'CHARGE needs'),
    ([Step(StepType.CHARGE, battery_target=2.0)], 'battery_target'),
    ([Step(9)], 'unknown step type'),  # type: ignore[arg-type]
])
def test_invalid_missions(steps: list[Step], needle: str) -> None:
    with pytest.raises(MissionError) as info:
        Mission('bad', steps, now=0.0)
    assert needle in str(info.value)


def test_station_table_and_lookup() -> None:
    from kpai_planning.mission import resolve_station, station_table

    table = station_table(['dock1', 'dock2', ''], [11.0, -4.0, 0.0, 11.0, -1.0, 1.5])
    assert resolve_station('dock2', table) == (11.0, -1.0, 1.5)
    with pytest.raises(MissionError, match=r"unknown station 'dock9' \(known: dock1, dock2\)"):
        resolve_station('dock9', table)
    assert station_table([''], [0.0]) == {}
    with pytest.raises(MissionError, match='unknown station.*none configured'):
        resolve_station('dock1', {})
    for names, poses in ((['a'], [1.0, 2.0]), (['a'], [1.0, math.nan, 0.0]),
                         (['a', 'a'], [0.0] * 6)):
        with pytest.raises(MissionError):
            station_table(names, poses)
