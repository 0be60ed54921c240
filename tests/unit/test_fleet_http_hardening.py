"""HTTP and secrets hardening of the fleet server and agent (issue 15, item 4)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from kpai_fleet.agent_core import PASSWORD_ENV, load_password
from kpai_fleet.errors import ConfigError
from kpai_fleet.mqtt_link import parse_broker_url, redact_url
from kpai_fleet.server.app import LOGIN_MAX_BYTES, create_app
from kpai_fleet.server.auth import SessionSigner, check_bearer
from kpai_fleet.server.config import load_config
from kpai_fleet.server.http_guard import host_of
from kpai_fleet.server.service import FleetService


@pytest.fixture
def server(tmp_path):
    cfg = load_config(None, broker_url='mqtt://fleet:s3cret@127.0.0.1:9',
                      db_url=f'sqlite:///{tmp_path}/f.db', api_token='tok',
                      dashboard_password='pw', stations={'a': {'x': 0, 'y': 0}})
    svc = FleetService(cfg)
    yield svc, TestClient(create_app(svc), base_url='http://localhost', follow_redirects=False)
    svc.store.close()


AUTH = {'Authorization': 'Bearer tok'}


@pytest.mark.parametrize('token', ['Bearer tøk', 'Bearer \u00e9\u00e9', 'Bearer tok\u00ff',
                                   'Basic dG9r', 'Bearer', 'bearer  ', 'Bearer ' + 'x' * 5000])
def test_any_bad_token_is_401_never_500(server, token):
    _, c = server
    header = {'Authorization': token.encode('utf-8')}  # raw bytes on the wire
    assert c.get('/api/robots', headers=header).status_code == 401
    assert c.post('/api/tasks', json={}, headers=header).status_code == 401


def test_bad_cookies_are_refused_quietly():
    signer = SessionSigner('k')
    assert signer.verify('admin|99999999999|s\u00efg') is None
    assert signer.verify('\u00e9|1|x') is None
    assert signer.verify(signer.issue('\u00e9l\u00e8ve')) == '\u00e9l\u00e8ve'
    assert not check_bearer('Bearer \u00fc', 'tok') and check_bearer('Bearer tok', 'tok')


def test_login_body_is_bounded(server):
    _, c = server
    big = b'user=admin&password=' + b'x' * (LOGIN_MAX_BYTES + 1)
    assert c.post('/login', content=big).status_code == 413

    def chunks():  # no Content-Length: bounded while reading
        for _ in range(100):
            yield b'x' * 1024

    assert c.post('/login', content=chunks()).status_code == 413
    assert c.post('/login', content=b'user=admin&password=pw').status_code == 303


def test_task_body_is_guarded_before_parsing(server):
    _, c = server
    r = c.post('/api/tasks', content=b'{"pickup": ' + b'[' * 5000 + b'}', headers=AUTH)
    assert r.status_code == 400 and 'deeper' in r.text
    r = c.post('/api/tasks', content=b'{"pickup": {"x": 1' + b'0' * 400 + b', "y": 0}, '
               b'"dropoff": "a"}', headers=AUTH)
    assert r.status_code == 400 and 'characters' in r.text
    assert c.post('/api/tasks', content=b'x' * 70_000, headers=AUTH).status_code == 413


def test_host_header_is_checked(server, tmp_path):
    svc, c = server
    assert c.get('/login').status_code == 200
    assert c.get('/login', headers={'Host': '127.0.0.1:8080'}).status_code == 200
    assert c.get('/login', headers={'Host': '[::1]:8080'}).status_code == 200
    r = c.get('/login', headers={'Host': 'evil.example'})
    assert r.status_code == 400 and 'Host' in r.text
    assert svc.faults.snapshot()['http:bad_host'] == 1
    cfg = load_config(None, broker_url='mqtt://127.0.0.1:9', db_url=f'sqlite:///{tmp_path}/g.db',
                      allowed_hosts=['fleet.factory.lan'])
    svc2 = FleetService(cfg)
    try:
        c2 = TestClient(create_app(svc2), base_url='http://fleet.factory.lan')
        assert c2.get('/login').status_code == 200
        assert c2.get('/login', headers={'Host': 'localhost'}).status_code == 400
    finally:
        svc2.store.close()
    assert host_of('LocalHost:80') == 'localhost' and host_of('[::1]') == '::1'


def test_security_headers_on_every_answer(server):
    _, c = server
    for r in (c.get('/login'), c.get('/api/robots'), c.get('/login', headers={'Host': 'x.y'}),
              c.get('/api/robots', headers=AUTH)):
        assert r.headers['x-content-type-options'] == 'nosniff'
        assert r.headers['x-frame-options'] == 'DENY'
        assert "frame-ancestors 'none'" in r.headers['content-security-policy']
        assert r.headers['referrer-policy'] == 'no-referrer'


def test_an_endpoint_error_is_a_counted_500(server):
    svc, c = server

    def broken():
        raise RecursionError('deep')

    svc.view.snapshot = broken
    r = c.get('/api/robots', headers=AUTH)
    assert r.status_code == 500 and r.headers['x-frame-options'] == 'DENY'
    assert svc.faults.snapshot()['http:error:RecursionError'] == 1
    assert c.get('/api/health', headers=AUTH).status_code == 200


def test_health_and_stream_name_the_store_state(server):
    svc, c = server
    h = c.get('/api/health', headers=AUTH).json()
    assert h['store'] == 'available' and h['store_available'] is True
    svc.store.unavailable_since = 1.0
    assert c.get('/api/health', headers=AUTH).json()['store'] == 'store unavailable'
    m = c.get('/api/metrics', headers=AUTH).json()
    assert m['store']['available'] is False and m['health']['store'] == 'store unavailable'


def test_broker_credentials_never_shown(server, capsys):
    svc, _ = server
    assert redact_url('mqtt://fleet:s3cret@host:1883') == 'mqtt://fleet:***@host:1883'
    assert redact_url('mqtts://host') == 'mqtts://host'
    with pytest.raises(ConfigError) as err:
        parse_broker_url('http://fleet:s3cret@host')
    assert 's3cret' not in str(err.value)
    with pytest.raises(ConfigError) as err:
        parse_broker_url('mqtt://fleet:s3cret@host:99999')
    assert 's3cret' not in str(err.value)
    assert 's3cret' not in repr(svc.cfg) and "'tok'" not in repr(svc.cfg)
    assert 's3cret' not in json.dumps(svc.metrics())


def test_agent_password_comes_from_a_file_or_the_environment(tmp_path):
    secret = tmp_path / 'mqtt.pw'
    secret.write_text('hunter2\n')
    assert load_password(str(secret), {}) == 'hunter2'
    assert load_password('', {PASSWORD_ENV: 'fromenv'}) == 'fromenv'
    assert load_password('', {}) == ''
    with pytest.raises(ConfigError) as err:
        load_password('hunter2', {})  # the password itself given as the parameter
    assert 'names a file' in str(err.value) and str(err.value).count('hunter2') == 1
