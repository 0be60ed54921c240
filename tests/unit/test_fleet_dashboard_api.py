"""The dashboard's API: roles and CSRF, task cancel and priority, robot actions, alarms, i18n."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fleet_sim import Bus, SimKpai, make_service
from kpai_fleet.node_health import NodeHealth
from kpai_fleet.server.alarms import AlarmBook, conditions
from kpai_fleet.server.app import create_app, pick_language

STATIC = Path(__file__).resolve().parents[2] / 'src' / 'kpai_fleet' / 'kpai_fleet' / 'server' / (
    'static')
AUTH = {'Authorization': 'Bearer tok'}


@pytest.fixture
def fleet(tmp_path):
    svc = make_service(tmp_path, dashboard_password='op-pw', viewer_password='view-pw',
                       api_token='tok')
    bus = Bus(svc)
    yield svc, bus, TestClient(create_app(svc), base_url='http://localhost',
                               follow_redirects=False)
    svc.store.close()


def login(client: TestClient, user: str, password: str) -> dict:
    client.cookies.clear()
    r = client.post('/login', content=f'user={user}&password={password}')
    assert r.status_code == 303, r.text
    return client.get('/api/session').json()


def drive(bus: Bus, robots: list[SimKpai], seconds: float, dt: float = 0.25) -> None:
    """Advance the simulated vehicles and deliver their states."""
    for _ in range(int(seconds / dt)):
        for r in robots:
            r.tick(dt)
            r.publish()
        bus.run()


def instant_types(svc, robot_id: str) -> list[str]:
    """Return the instant actions the robot's state reports (as the vehicle received them)."""
    return [a['type'] for a in svc.view.robots[robot_id]['actions']
            if a['type'] in ('cancelOrder', 'startPause', 'stopPause')]


def test_operator_writes_need_the_sessions_csrf_token(fleet):
    svc, bus, c = fleet
    SimKpai(bus, 'robot1', 0.0, 0.0)
    bus.run()
    task = {'pickup': 'rack_1', 'dropoff': 'outbound'}
    op = login(c, 'admin', 'op-pw')
    assert op['role'] == 'operator' and op['can_write'] and op['csrf']
    r = c.post('/api/tasks', json=task)
    assert r.status_code == 403 and 'CSRF' in r.text
    r = c.post('/api/tasks', json=task, headers={'X-CSRF-Token': op['csrf'][:-2] + 'xx'})
    assert r.status_code == 403
    r = c.post('/api/tasks', json=task, headers={'X-CSRF-Token': op['csrf']})
    assert r.status_code == 201 and r.json()['robot_id'] == 'robot1', r.text
    # a token from another session does not fit this one
    other = login(c, 'viewer', 'view-pw')
    assert other['csrf'] != op['csrf']
    login(c, 'admin', 'op-pw')
    r = c.post('/api/tasks', json=task, headers={'X-CSRF-Token': other['csrf']})
    assert r.status_code == 403 and 'CSRF' in r.text
    assert svc.store.tasks()[0]['status'] == 'dispatched'


def test_viewer_reads_but_cannot_write_and_programs_keep_the_token(fleet):
    svc, bus, c = fleet
    SimKpai(bus, 'robot1', 0.0, 0.0)
    bus.run()
    viewer = login(c, 'viewer', 'view-pw')
    assert viewer['role'] == 'viewer' and not viewer['can_write']
    assert c.get('/api/robots').status_code == 200 and c.get('/api/tasks').status_code == 200
    csrf = {'X-CSRF-Token': viewer['csrf']}
    r = c.post('/api/tasks', json={'pickup': 'rack_1', 'dropoff': 'outbound'}, headers=csrf)
    assert r.status_code == 403 and 'viewer' in r.text
    assert c.post('/api/robots/robot1/actions/pause', headers=csrf).status_code == 403
    assert c.post('/api/alarms/1/ack', headers=csrf).status_code == 403
    assert svc.store.tasks() == []
    c.cookies.clear()
    assert c.post('/api/tasks', json={'pickup': 'rack_1', 'dropoff': 'outbound'}
                  ).status_code == 401
    r = c.post('/api/tasks', json={'pickup': 'rack_1', 'dropoff': 'outbound'}, headers=AUTH)
    assert r.status_code == 201, r.text
    assert c.get('/api/session', headers=AUTH).json()['via'] == 'token'


def test_no_viewer_login_unless_a_password_is_configured(tmp_path):
    svc = make_service(tmp_path, dashboard_password='op-pw')
    c = TestClient(create_app(svc), base_url='http://localhost', follow_redirects=False)
    try:
        assert c.post('/login', content='user=viewer&password=').status_code == 401
        assert c.get('/api/session').status_code == 401
    finally:
        svc.store.close()
    with pytest.raises(Exception, match='must differ'):
        make_service(tmp_path, viewer_user='admin')


def test_cancel_a_running_task_sends_cancel_order_and_the_order_ends_cancelled(fleet):
    svc, bus, c = fleet
    robot = SimKpai(bus, 'robot1', 0.0, 0.0, speed=1.0)
    bus.run()
    out = c.post('/api/tasks', json={'pickup': 'rack_1', 'dropoff': 'outbound'},
                 headers=AUTH).json()
    bus.run()
    drive(bus, [robot], 1.0)
    assert svc.store.tasks()[0]['status'] == 'running'
    path = svc.view.robots['robot1']['path']
    assert [(p['x'], p['y']) for p in path][-2:] == [(8.0, 4.0), (18.0, 2.0)]
    r = c.post(f'/api/tasks/{out["task_id"]}/cancel', headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()['cancel_sent_to'] == 'robot1'
    bus.run()
    drive(bus, [robot], 0.5)
    task = c.get(f'/api/tasks/{out["task_id"]}', headers=AUTH).json()
    assert task['status'] == 'cancelled' and task['reason'] == 'cancelled by api-token'
    assert [o['status'] for o in task['orders']] == ['cancelled']
    assert svc.view.robots['robot1']['idle']
    assert instant_types(svc, 'robot1') == ['cancelOrder']
    assert c.post(f'/api/tasks/{out["task_id"]}/cancel', headers=AUTH).status_code == 409
    assert c.post('/api/tasks/task-nope/cancel', headers=AUTH).status_code == 404


def test_rejected_tasks_wait_and_are_offered_again_by_priority(fleet):
    svc, bus, c = fleet
    from fleet_foreign_agv import ForeignAgv

    busy = SimKpai(bus, 'robot1', 17.0, 2.0, speed=20.0, handling_s=0.5)
    bus.run()
    agv = ForeignAgv('agv7', bus.vehicle_publish, x=7.0, y=4.0, station_types=('floor',))
    bus.vehicles['uagv/v2/Acme/agv7/'] = agv.receive
    agv.connect()
    bus.run()
    first = c.post('/api/tasks', json={'pickup': 'outbound', 'dropoff': 'dock_a',
                                       'robot': 'robot1'}, headers=AUTH).json()
    bus.run()
    low = c.post('/api/tasks', json={'pickup': 'rack_1', 'dropoff': 'outbound', 'priority': 2},
                 headers=AUTH).json()
    bus.run()
    high = c.post('/api/tasks', json={'pickup': 'rack_2', 'dropoff': 'outbound', 'priority': 8},
                  headers=AUTH).json()
    bus.run()
    assert low['robot_id'] == high['robot_id'] == 'Acme:agv7'
    listed = {t['task_id']: t for t in c.get('/api/tasks', headers=AUTH).json()}
    for t in (low, high):
        assert listed[t['task_id']]['status'] == 'waiting'
        assert 'rejected the order' in listed[t['task_id']]['reason']
        attempt = svc.task(t['task_id'])['orders'][0]
        assert attempt['status'] == 'rejected' and 'stationType' in attempt['reason']
    drive(bus, [busy], 4.0)   # robot1 finishes its task; the waiting ones are offered again
    assert svc.task(first['task_id'])['status'] == 'completed'
    svc.retry_waiting()
    bus.run()
    now = {t['task_id']: t for t in c.get('/api/tasks', headers=AUTH).json()}
    assert now[high['task_id']]['robot_id'] == 'robot1'   # the higher priority first
    assert now[low['task_id']]['status'] == 'waiting'
    r = c.post(f'/api/tasks/{low["task_id"]}/cancel', headers=AUTH)
    assert r.status_code == 200 and r.json()['cancel_sent_to'] == ''  # no order out
    svc.retry_waiting()
    assert svc.task(low['task_id'])['status'] == 'cancelled'
    bad = c.post('/api/tasks', json={'pickup': 'rack_1', 'dropoff': 'outbound',
                                     'priority': 11}, headers=AUTH)
    assert bad.status_code == 409 and 'priority' in bad.text


def test_pause_resume_and_cancel_order_from_the_robot_panel(fleet):
    svc, bus, c = fleet
    robot = SimKpai(bus, 'robot1', 0.0, 0.0, speed=1.0)
    bus.run()
    assert c.post('/api/robots/robot1/actions/cancel', headers=AUTH).status_code == 409
    out = c.post('/api/tasks', json={'pickup': 'rack_1', 'dropoff': 'outbound'},
                 headers=AUTH).json()
    bus.run()
    drive(bus, [robot], 0.5)
    r = c.post('/api/robots/robot1/actions/pause', headers=AUTH)
    assert r.status_code == 200 and r.json()['action'] == 'startPause'
    bus.run()
    drive(bus, [robot], 0.5)
    assert svc.view.robots['robot1']['paused'] and robot.paused
    x = robot.core.snapshot.x
    drive(bus, [robot], 0.5)
    assert robot.core.snapshot.x == x   # it stands still
    assert c.post('/api/robots/robot1/actions/resume', headers=AUTH).status_code == 200
    bus.run()
    drive(bus, [robot], 0.5)
    assert not svc.view.robots['robot1']['paused'] and robot.core.snapshot.x > x
    r = c.post('/api/robots/robot1/actions/cancel', headers=AUTH)
    assert r.status_code == 200 and r.json()['task_id'] == out['task_id']
    bus.run()
    drive(bus, [robot], 0.5)
    assert svc.task(out['task_id'])['status'] == 'cancelled'
    assert svc.view.robots['robot1']['idle']
    assert c.post('/api/robots/robot1/actions/jump', headers=AUTH).status_code == 404
    assert c.post('/api/robots/nobody/actions/pause', headers=AUTH).status_code == 404
    assert instant_types(svc, 'robot1') == ['startPause', 'stopPause', 'cancelOrder']


def test_alarm_book_lists_until_acknowledged():
    book = AlarmBook()
    fatal = {'robot_id': 'r1', 'errors': [{'type': 'kpai.nodeMissing', 'level': 'FATAL',
                                           'description': 'node perception is not running'}]}
    book.update(conditions([fatal], True), now=1.0)
    (a,) = book.listed()
    assert (a['kind'], a['robot_id'], a['active']) == ('fatal_error', 'r1', True)
    assert 'kpai.nodeMissing' in a['detail']
    book.update(conditions([{'robot_id': 'r1', 'errors': []}], True), now=2.0)
    (a,) = book.listed()   # cleared, still listed
    assert not a['active'] and a['cleared'] == 2.0
    assert book.acknowledge(a['id'], 'op') and not book.acknowledge(a['id'], 'op')
    assert book.listed() == []
    # acknowledged while active: not raised again until it clears and comes back
    book.update(conditions([fatal], False), now=3.0)
    ids = {x['kind']: x['id'] for x in book.listed()}
    assert set(ids) == {'fatal_error', 'store_unavailable'}
    book.acknowledge(ids['fatal_error'], 'op')
    book.update(conditions([fatal], False), now=4.0)
    assert [x['kind'] for x in book.listed()] == ['store_unavailable']
    book.update(conditions([], True), now=5.0)
    book.update(conditions([fatal], True), now=6.0)
    assert sorted(x['kind'] for x in book.listed()) == ['fatal_error', 'store_unavailable']
    lost = {'robot_id': 'r2', 'connection': 'CONNECTIONBROKEN',
            'perception': {'stale': 'True'}, 'safety': {'stale': 'False', 'inputsStale': 'True'}}
    assert {k[1] for k in conditions([lost], True)} == {
        'connection_lost', 'perception_stale', 'safety_stale'}


def test_alarms_api_raises_fatal_node_errors_and_operator_acknowledges(fleet):
    _, bus, c = fleet
    SimKpai(bus, 'robot1', 0.0, 0.0, nodes=NodeHealth(
        missing=('kpai_perception',), critical=frozenset({'kpai_perception'})))
    bus.run()
    alarms = c.get('/api/alarms', headers=AUTH).json()
    assert [(a['kind'], a['robot_id']) for a in alarms] == [('fatal_error', 'robot1')]
    assert 'kpai.nodeMissing' in alarms[0]['detail']
    assert c.post(f'/api/alarms/{alarms[0]["id"]}/ack', headers=AUTH).json()['acked_by'] == (
        'api-token')
    assert c.get('/api/alarms', headers=AUTH).json() == []
    assert c.post(f'/api/alarms/{alarms[0]["id"]}/ack', headers=AUTH).status_code == 404


def test_language_from_accept_language_and_the_login_page(fleet):
    _, _, c = fleet
    assert pick_language('ko-KR,ko;q=0.9,en-US;q=0.8') == 'ko'
    assert pick_language('de-DE,en;q=0.5,ko;q=0.7') == 'ko'
    assert pick_language('fr, de') == 'en' and pick_language(None) == 'en'
    assert pick_language('ko;q=0, en;q=0.1') == 'en'
    page = c.get('/login', headers={'Accept-Language': 'ko-KR'}).text
    assert '비밀번호' in page and 'lang="ko"' in page
    assert 'Password' in c.get('/login').text
    bad = c.post('/login', content='user=admin&password=x', headers={'Accept-Language': 'ko'})
    assert bad.status_code == 401 and '틀렸습니다' in bad.text
    login(c, 'admin', 'op-pw')
    assert c.get('/api/session', headers={'Accept-Language': 'ko'}).json()['lang'] == 'ko'
    assert c.get('/static/i18n/ko.json').json()['tasks.title'] == '작업'
    assert c.get('/static/i18n/xx.json').status_code == 404


def test_every_message_key_the_page_uses_is_in_both_catalogues():
    en = json.loads((STATIC / 'i18n' / 'en.json').read_text())
    ko = json.loads((STATIC / 'i18n' / 'ko.json').read_text())
    plural = re.compile(r'\.(zero|one|two|few|many)$')  # forms some languages lack
    assert {k for k in en if not plural.search(k)} == {k for k in ko if not plural.search(k)}
    assert all(v.strip() for v in [*en.values(), *ko.values()])
    html = (STATIC / 'index.html').read_text()
    js = (STATIC / 'app.js').read_text()
    used = set(re.findall(r'data-i18n(?:-title|-alt)?="([^"]+)"', html))
    used |= set(re.findall(r"\bt\('([a-zA-Z.]+)'", js))
    used |= {k + '.other' for k in re.findall(r"\btn\('([a-zA-Z.]+)'", js)}
    missing = sorted(k for k in used if k not in en and not k.endswith('.'))
    assert 'robot.errors.other' in used and 'robot.errors.other' in ko
    assert len(used) > 60 and not missing, missing
    # the keys built at run time from a status, level or kind
    for prefix, values in {
            'task.status.': ('pending', 'dispatched', 'running', 'waiting', 'completed',
                             'failed', 'cancelled', 'rejected'),
            'level.': ('FATAL', 'WARNING', 'INFO'),
            'alarm.': ('connection_lost', 'fatal_error', 'perception_stale', 'safety_stale',
                       'store_unavailable'),
            'robot.state.': ('idle', 'driving', 'working', 'paused', 'CONNECTIONBROKEN',
                             'OFFLINE'),
            'role.': ('operator', 'viewer')}.items():
        assert all(prefix + v in en for v in values), prefix


def test_kpis_count_completed_tasks_times_and_busy_time():
    from kpai_fleet.server.kpis import fleet_kpis, percentile

    assert percentile([], 95) is None and percentile([5.0], 95) == 5.0
    assert percentile([float(i) for i in range(1, 101)], 95) == pytest.approx(95.05)
    now = 10_000.0
    tasks = [{'created': now - 3000, 'updated': now - 2900, 'status': 'completed'},   # 100 s
             {'created': now - 600, 'updated': now - 300, 'status': 'completed'},     # 300 s
             {'created': now - 200, 'updated': now - 190, 'status': 'failed'},
             {'created': now - 100, 'updated': now - 50, 'status': 'cancelled'},
             {'created': now - 90, 'updated': now - 80, 'status': 'running'},
             {'created': now - 9000, 'updated': now - 8000, 'status': 'completed'}]  # before
    orders = [{'robot_id': 'r1', 'created': now - 4000, 'updated': now - 2900,
               'status': 'completed'},                      # 700 s inside the hour
              {'robot_id': 'r1', 'created': now - 600, 'updated': now - 300,
               'status': 'completed'},                      # 300 s
              {'robot_id': 'r2', 'created': now - 900, 'updated': now - 899,
               'status': 'rejected'},                       # refused: not busy
              {'robot_id': 'r2', 'created': now - 360, 'updated': now - 360,
               'status': 'running'}]                        # open: busy until now
    k = fleet_kpis(tasks, orders, ['r1', 'r2', 'r3'], now=now, window_s=3600.0)
    assert k['tasks_completed'] == 2 and k['tasks_per_hour'] == pytest.approx(2.0)
    assert (k['tasks_failed'], k['tasks_cancelled']) == (1, 1)
    assert k['task_time_mean_s'] == pytest.approx(200.0)
    assert k['task_time_p95_s'] == pytest.approx(290.0)
    assert k['utilisation'] == pytest.approx({'r1': 1000 / 3600, 'r2': 360 / 3600, 'r3': 0.0})
    assert sum(k['completed_per_bucket']) == 2 and k['completed_per_bucket'][-1] == 1
    empty = fleet_kpis([], [], [], now=now, window_s=86400.0)
    assert empty['task_time_mean_s'] is None and empty['tasks_per_hour'] == 0.0


def test_kpis_api_on_the_simulated_fleet(fleet):
    svc, bus, c = fleet
    robot = SimKpai(bus, 'robot1', 6.0, 2.0, speed=20.0, handling_s=0.2)
    bus.run()
    out = c.post('/api/tasks', json={'pickup': 'rack_1', 'dropoff': 'outbound'},
                 headers=AUTH).json()
    bus.run()
    drive(bus, [robot], 2.0)
    assert svc.task(out['task_id'])['status'] == 'completed'
    k = c.get('/api/kpis', headers=AUTH).json()
    assert k['tasks_completed'] == 1 and k['tasks_per_hour'] == pytest.approx(1.0)
    assert 0 < k['task_time_mean_s'] < 5 and k['utilisation']['robot1'] > 0
    assert c.get('/api/kpis', params={'window_s': 10}, headers=AUTH).status_code == 422
    assert c.get('/api/kpis').status_code == 401
