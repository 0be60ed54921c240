"""Safety stops and inference latency as KPI series; alarm acknowledgements kept in the store."""

from __future__ import annotations

import sqlite3

import pytest
from fastapi.testclient import TestClient
from fleet_sim import Bus, SimKpai, make_service
from kpai_fleet.node_health import NodeHealth
from kpai_fleet.server.alarms import AlarmBook
from kpai_fleet.server.app import create_app
from kpai_fleet.server.kpis import fleet_kpis
from kpai_fleet.server.rows import SampleRow, decode_row, encode_row
from kpai_fleet.server.store import Store
from kpai_fleet.vda5050.state_builder import InferenceHealth, SafetyHealth

AUTH = {'Authorization': 'Bearer tok'}


def test_kpis_count_safety_stops_and_average_latency_per_bucket():
    now = 10_000.0
    stops = [{'robot_id': 'r1', 'ts': now - 3500}, {'robot_id': 'r1', 'ts': now - 10},
             {'robot_id': 'r2', 'ts': now - 20}, {'robot_id': 'r2', 'ts': now - 4000}]  # before
    lat = [{'robot_id': 'r1', 'ts': now - 100, 'value': 40.0},
           {'robot_id': 'r2', 'ts': now - 90, 'value': 60.0},
           {'robot_id': 'r1', 'ts': now - 3590, 'value': 30.0}]
    k = fleet_kpis([], [], ['r1', 'r2'], now=now, window_s=3600.0, safety_stops=stops,
                   latency=lat)
    assert k['safety_stops'] == 3 and k['safety_stops_per_hour'] == pytest.approx(3.0)
    assert k['safety_stops_by_robot'] == {'r1': 2, 'r2': 1}
    assert k['safety_stops_per_bucket'][0] == 1 and k['safety_stops_per_bucket'][-1] == 2
    assert k['latency_ms_per_bucket'][0] == 30.0 and k['latency_ms_per_bucket'][-1] == 50.0
    assert k['latency_ms_per_bucket'][5] is None
    assert k['latency_ms_p95'] == pytest.approx(58.0)
    empty = fleet_kpis([], [], [], now=now, window_s=86400.0)
    assert empty['safety_stops'] == 0 and empty['latency_ms_p95'] is None


def test_sample_rows_go_through_the_spool_form():
    row = SampleRow('r1', 5.0, 'safety_stop', 1.0)
    assert decode_row(encode_row(row)) == row


@pytest.fixture
def fleet(tmp_path):
    svc = make_service(tmp_path, api_token='tok', dashboard_password='op-pw')
    yield svc, Bus(svc), TestClient(create_app(svc), base_url='http://localhost')
    svc.store.close()


def test_a_stop_counts_once_when_it_begins_and_latency_is_sampled(fleet):
    svc, bus, c = fleet
    robot = SimKpai(bus, 'robot1', 1.0, 1.0)
    bus.run()

    def state(safety: int) -> None:
        snap = robot.core.snapshot
        snap.safety = SafetyHealth(state=safety, speed_limit=0.0, reason='person', stamp=1e12)
        snap.inference = InferenceHealth(backend='cpu', latency_p99_ms=42.5, stamp=1e12)
        robot.core.publish_state()
        bus.run()

    for s in (0, 2, 2, 2, 0, 2, 1):  # two stops begin (a held stop is one stop)
        state(s)
    k = c.get('/api/kpis', headers=AUTH).json()
    assert k['safety_stops'] == 2 and k['safety_stops_by_robot'] == {'robot1': 2}
    # the first state with perception info gives one point; the next ones wait 30 s
    assert [v for v in k['latency_ms_per_bucket'] if v is not None] == [38.5]
    assert len(svc.store.samples('inference_p99_ms', 0.0)) == 1


def test_acknowledged_alarms_stay_acknowledged_after_a_restart(tmp_path):
    kw = dict(api_token='tok', dashboard_password='op-pw')
    svc = make_service(tmp_path, **kw)
    bus = Bus(svc)
    fatal = NodeHealth(missing=('tracker',), critical=frozenset({'tracker'}))
    SimKpai(bus, 'robot1', 1.0, 1.0, nodes=fatal)
    SimKpai(bus, 'robot2', 3.0, 1.0, nodes=fatal)
    bus.run()
    c = TestClient(create_app(svc), base_url='http://localhost')
    alarms = c.get('/api/alarms', headers=AUTH).json()
    assert sorted(a['robot_id'] for a in alarms) == ['robot1', 'robot2']
    one = next(a for a in alarms if a['robot_id'] == 'robot1')
    assert c.post(f'/api/alarms/{one["id"]}/ack', headers=AUTH).status_code == 200
    svc.store.close()

    again = make_service(tmp_path, **kw)  # the same database; conditions still on
    try:
        c = TestClient(create_app(again), base_url='http://localhost')
        listed = c.get('/api/alarms', headers=AUTH).json()
        # robot1's acknowledged alarm does not come back; robot2's keeps its id
        assert [a['robot_id'] for a in listed] == ['robot2']
        other = next(a for a in alarms if a['robot_id'] == 'robot2')
        assert listed[0]['id'] == other['id'] and listed[0]['raised'] == other['raised']
        # a new condition gets a new id, never a reused one
        again.alarm_book.update({('robot3', 'connection_lost', ''): 'lost'})
        assert again.alarm_book.listed()[0]['id'] > max(a['id'] for a in alarms)
    finally:
        again.store.close()


def test_alarm_saves_are_retried_while_the_store_refuses():
    saved: list[dict] = []
    failing = [True]

    def persist(alarm: dict) -> None:
        if failing[0]:
            raise OSError('database away')
        saved.append(alarm)

    book = AlarmBook(persist=persist)
    book.update({('', 'store_unavailable', ''): 'store unavailable'}, now=1.0)
    assert book.save_errors == 1 and not saved
    failing[0] = False
    book.update({}, now=2.0)  # cleared: the raise and the clearing are both saved now
    assert [(a['id'], a['cleared']) for a in saved] == [(1, 2.0)]


def test_an_older_database_gets_the_new_tables(tmp_path):
    path = tmp_path / 'old.db'
    Store(f'sqlite:///{path}').close()
    with sqlite3.connect(path) as db:  # a database from before samples and alarms existed
        db.execute('DROP TABLE samples')
        db.execute('DROP TABLE alarms')
        db.execute("INSERT INTO tasks (task_id, status) VALUES ('t-old', 'completed')")
    store = Store(f'sqlite:///{path}')
    try:
        store.submit_sample(SampleRow('r1', 5.0, 'safety_stop', 1.0))
        store.flush()
        assert store.samples('safety_stop', 0.0) == [{'robot_id': 'r1', 'ts': 5.0, 'value': 1.0}]
        store.save_alarm({'id': 3, 'robot_id': 'r1', 'kind': 'fatal_error', 'detail': 'x',
                          'key_detail': 'x', 'raised': 1.0, 'cleared': None, 'acked': 2.0,
                          'acked_by': 'admin'})
        assert store.listed_alarms()[0]['acked_by'] == 'admin' and store.alarm_max_id() == 3
        assert store.tasks(task_id='t-old')[0]['status'] == 'completed'
        assert store.apply_retention(now=1e12) >= 1  # samples age out with the states
    finally:
        store.close()
