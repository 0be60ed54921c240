"""REST API and login of the fleet server (FastAPI TestClient, no broker connection needed)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from kpai_fleet.server.app import create_app
from kpai_fleet.server.config import load_config
from kpai_fleet.server.service import FleetService
from kpai_fleet.vda5050.order_tracker import OrderTracker
from kpai_fleet.vda5050.state_builder import (
    HeaderSource,
    RobotSnapshot,
    build_factsheet,
    build_state,
)


def make(tmp_path, **over):
    cfg = load_config(None, broker_url='mqtt://127.0.0.1:9', db_url=f'sqlite:///{tmp_path}/f.db',
                      **over)
    svc = FleetService(cfg)  # not started: no broker connection
    return svc, TestClient(create_app(svc), base_url='http://localhost', follow_redirects=False)


def feed(svc, serial='robot1', n=3):
    h = HeaderSource('KPAI', serial)
    for i in range(n):
        st = build_state(h, OrderTracker(), RobotSnapshot(x=i, y=1, position_initialized=True),
                         now=1000.0 + i)
        svc.ingest.handle(f'uagv/v2/KPAI/{serial}/state', st.to_json(), received=2000.0 + i)
    svc.store.flush()


@pytest.fixture
def open_api(tmp_path):
    svc, client = make(tmp_path, public_read=True)
    yield svc, client
    svc.store.close()


def test_reads_are_closed_unless_configured_public(tmp_path):
    svc, c = make(tmp_path)
    try:
        assert c.get('/api/robots').status_code == 401
        assert c.get('/').headers['location'] == '/login'
        assert c.post('/login', content='user=admin&password=').status_code == 401
    finally:
        svc.store.close()
    with pytest.raises(Exception, match='public_read'):
        make(tmp_path, public_read='perhaps')


def test_reads_history_and_map(open_api, tmp_path):
    svc, c = open_api
    feed(svc)
    assert [r['robot_id'] for r in c.get('/api/robots').json()] == ['robot1']
    assert c.get('/api/robots', params={'fields': 'robot_id,header_id'}).json() == [
        {'robot_id': 'robot1', 'header_id': 2}]
    assert c.get('/api/robots/robot1/state').json()['headerId'] == 2
    assert c.get('/api/robots/nobody/state').status_code == 404
    hist = c.get('/api/robots/robot1/history', params={'since': 2001, 'until': 2002}).json()
    assert [h['header_id'] for h in hist] == [1]  # server receive time selects
    assert c.get('/api/robots/robot1/history', params={'limit': 0}).status_code == 422
    meta = c.get('/api/map').json()
    assert meta['has_image'] is False and len(meta['bounds']) == 4
    assert c.get('/api/map.pgm').status_code == 404
    assert c.get('/').status_code == 200 and 'KPAI fleet' in c.get('/').text
    assert c.get('/static/app.js').status_code == 200
    assert c.get('/static/../app.py').status_code == 404


def test_writes_need_a_configured_token(open_api):
    _, c = open_api
    assert c.post('/api/tasks', json={'pickup': 'a', 'dropoff': 'b'}).status_code == 403


def test_dashboard_login_and_tokens(tmp_path):
    svc, c = make(tmp_path, dashboard_password='pw', api_token='tok',
                  stations={'a': {'x': 0, 'y': 0}})
    try:
        assert c.get('/').headers['location'] == '/login'
        assert c.get('/api/robots').status_code == 401
        assert c.post('/login', content='user=admin&password=nope').status_code == 401
        r = c.post('/login', content='user=admin&password=pw')
        assert r.status_code == 303 and 'kpai_session' in r.cookies
        assert c.get('/api/robots').status_code == 200 and c.get('/').status_code == 200
        c.cookies.clear()
        auth = {'Authorization': 'Bearer tok'}
        assert c.get('/api/robots', headers=auth).status_code == 200
        assert c.post('/api/tasks', content=b'{bad', headers=auth).status_code == 400
        r = c.post('/api/tasks', json={'pickup': 'a', 'dropoff': 'zzz'}, headers=auth)
        assert r.status_code == 409 and 'unknown station' in r.text
        r = c.post('/api/tasks', json={'pickup': 'a', 'dropoff': 'a'}, headers=auth)
        assert r.status_code == 409 and 'no robot available' in r.text
        assert c.get('/api/metrics', headers=auth).json()['auth_failures'] == 2
    finally:
        svc.store.close()


def test_cors_closed_by_default_and_opt_in(tmp_path):
    svc, c = make(tmp_path)
    r = c.get('/api/robots', headers={'Origin': 'http://evil.example'})
    assert 'access-control-allow-origin' not in r.headers
    svc.store.close()
    svc, c = make(tmp_path, cors_origins=['http://ok.example'], public_read=True)
    r = c.get('/api/robots', headers={'Origin': 'http://ok.example'})
    assert r.headers['access-control-allow-origin'] == 'http://ok.example'
    svc.store.close()


def test_map_from_yaml_and_pgm(tmp_path):
    (tmp_path / 'm.pgm').write_bytes(b'P5\n4 2\n255\n' + bytes(range(8)))
    (tmp_path / 'm.yaml').write_text('image: m.pgm\nresolution: 0.5\norigin: [-1, -2, 0]\n')
    svc, c = make(tmp_path, map_yaml=str(tmp_path / 'm.yaml'), public_read=True)
    try:
        meta = c.get('/api/map').json()
        assert meta['has_image'] and meta['resolution'] == 0.5 and meta['origin'][:2] == [-1, -2]
        assert c.get('/api/map.pgm').content.startswith(b'P5')
    finally:
        svc.store.close()


def _status(svc, order_id):
    return next(o['status'] for o in svc.store.orders() if o['order_id'] == order_id)


def test_failed_order_is_cancelled_on_the_robot_and_stays_failed(tmp_path):
    from kpai_fleet.vda5050.models import ActionStatus, InstantActions, Order

    svc, _client = make(tmp_path)
    sent: list[tuple[str, bytes]] = []
    svc.link.publish = lambda topic, payload, **_kw: sent.append((topic, payload))
    h, tracker = HeaderSource('KPAI', 'robot1'), OrderTracker()
    snap = RobotSnapshot(x=0.0, y=1.0, battery_pct=80.0, position_initialized=True)
    svc.ingest.handle('uagv/v2/KPAI/robot1/factsheet', build_factsheet(h).to_json())

    def report(now):
        svc.ingest.handle('uagv/v2/KPAI/robot1/state',
                          build_state(h, tracker, snap, now=now).to_json())
        svc.store.flush()

    report(1000.0)
    out = svc.dispatch({'pickup': {'x': 2.0, 'y': 1.0}, 'dropoff': {'x': 4.0, 'y': 1.0},
                        'robot': 'robot1'})
    order = Order.model_validate_json(sent[-1][1])
    tracker.receive(order)
    report(1001.0)
    tracker.mission_failed('goal blocked')
    report(1002.0)
    svc.store.flush()
    assert _status(svc, out['order_id']) == 'failed'
    topic, payload = sent[-1]
    assert topic == 'uagv/v2/KPAI/robot1/instantActions'
    cancel = InstantActions.model_validate_json(payload).actions[0]
    assert cancel.action_type == 'cancelOrder'
    assert tracker.cancel()  # what the robot's agent does with it
    tracker.track_instant(cancel.action_id, 'cancelOrder', ActionStatus.FINISHED)
    report(1003.0)
    svc.store.flush()
    assert _status(svc, out['order_id']) == 'failed'   # not turned 'cancelled'
    robot = svc.view.robots['robot1']
    assert robot['idle'] and not robot['errors']                    # free for the next task
    svc.store.close()
