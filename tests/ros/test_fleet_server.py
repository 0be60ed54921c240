"""Fleet server process with real Mosquitto and PostgreSQL: ingest, faults, dispatch round trip."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import httpx
import pytest
from kpai_fleet.broker import LocalBroker, free_port
from kpai_fleet.mqtt_link import MqttLink
from kpai_fleet.pgserver import PostgresServer
from kpai_fleet.vda5050.order_tracker import OrderTracker
from kpai_fleet.vda5050.state_builder import HeaderSource, RobotSnapshot, build_state
from kpai_testing import fleet_broker, mqtt_login, server_mqtt, wait_until

TOKEN = 'test-token'
READ_AUTH = {'Authorization': f'Bearer {TOKEN}'}  # reads: a session or the API token
CONFIG = """fleet_server:
  stations:
    rack_1: {x: 3.0, y: 0.0}
    outbound: {x: 3.0, y: 3.0, theta: 1.57}
"""


@pytest.fixture(scope='module')
def postgres():
    with PostgresServer() as pg:
        yield pg


@pytest.fixture
def broker():
    with fleet_broker(('robot1', 'robot2', 'robot3')) as b:
        yield b


@pytest.fixture
def open_broker():
    """Development mode: one client forges any robot's topics (what the ingest must reject)."""
    with LocalBroker(allow_anonymous=True) as b:
        yield b


class Server:
    """`kpai-fleet serve` as a child process."""

    def __init__(self, graph, broker, db_url: str, tmp_path) -> None:
        self.graph, self.db_url = graph, db_url
        # its own identity: user in the URL, password in the environment (never in argv)
        self.broker_url, self.env = (server_mqtt(broker) if broker.credentials is not None
                                     else (broker.url, {}))
        self.cfg = tmp_path / 'fleet.yaml'
        self.cfg.write_text(CONFIG)
        self.port = free_port()
        self.base = f'http://127.0.0.1:{self.port}'
        self.proc = None
        self.start()

    def start(self) -> None:
        self.proc = self.graph.start(
            [sys.executable, '-m', 'kpai_fleet.cli', 'serve', '--config', str(self.cfg),
             '--db', self.db_url, '--broker', self.broker_url, '--port', str(self.port)],
            name='fleet_server', KPAI_FLEET_TOKEN=TOKEN, **self.env)
        wait_until(self._up, timeout=20, what='fleet server API')
        wait_until(lambda: self.metrics()['mqtt']['connected'], timeout=10, what='server MQTT')

    def _up(self) -> bool:
        if not self.proc.alive():
            raise RuntimeError('fleet server died:\n' + self.proc.output())
        try:
            return httpx.get(self.base + '/api/metrics', timeout=1,
                             headers=READ_AUTH).status_code == 200
        except httpx.HTTPError:
            return False

    def get(self, path: str, **kw):
        r = httpx.get(self.base + path, timeout=5, headers=READ_AUTH, **kw)
        r.raise_for_status()
        return r.json()

    def metrics(self) -> dict:
        return self.get('/api/metrics')

    def stop(self) -> None:
        assert self.proc.stop() == 0, self.proc.output()


def state(headers: HeaderSource, x: float) -> bytes:
    return build_state(headers, OrderTracker(), RobotSnapshot(x=x, y=1.0,
                                                              position_initialized=True)
                       ).to_json()


def _load_sibling(name: str):
    spec = importlib.util.spec_from_file_location(f'_fleet_{name}',
                                                  Path(__file__).with_name(f'{name}.py'))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def history_len(srv: Server, robot: str) -> int:
    return len(srv.get(f'/api/robots/{robot}/history', params={'limit': 100000}))


@pytest.mark.parametrize('store', ['sqlite', 'postgres'])
def test_ingest_bad_traffic_and_server_restart(graph, open_broker, tmp_path, request, store):
    broker = open_broker
    db = (f'sqlite:///{tmp_path}/fleet.db' if store == 'sqlite'
          else request.getfixturevalue('postgres').url)
    if store == 'postgres':  # module-scoped database: start from empty tables
        import psycopg
        with psycopg.connect(db, autocommit=True) as c:
            c.execute('DROP TABLE IF EXISTS states, events, robots, orders, samples, alarms')
    srv = Server(graph, broker, db, tmp_path)
    pub = MqttLink(broker.url, 'test-robots')
    pub.start()
    assert pub.wait_connected(10)
    h1, h2 = HeaderSource('KPAI', 'robot1'), HeaderSource('KPAI', 'robot2')
    bad = [('uagv/v2/KPAI/robot1/state', b'{"headerId": 1, '),
           ('uagv/v2/KPAI/robot1/state', b'{"headerId": "x"}'),
           ('uagv/v2/KPAI/robot1/state', b'{"pad": "' + b'x' * 300_000 + b'"}'),
           ('uagv/v2/KPAI/robot2/state', state(HeaderSource('KPAI', 'robot1'), 0.0)),
           ('uagv/v2/KPAI/robot1/bogus', b'{}')]
    for i in range(40):
        pub.publish('uagv/v2/KPAI/robot1/state', state(h1, i * 0.1))
        pub.publish('uagv/v2/KPAI/robot2/state', state(h2, -i * 0.1))
        if i % 8 == 0:
            topic, payload = bad[i // 8]
            pub.publish(topic, payload)
    wait_until(lambda: history_len(srv, 'robot1') == 40 and history_len(srv, 'robot2') == 40,
               timeout=15, what='80 stored states')
    m = srv.metrics()
    assert m['counts']['rejected'] == 5 and m['counts']['state'] == 80
    assert set(m['rejected_by_reason']) == {'malformed_json', 'schema', 'oversized',
                                            'identity_mismatch', 'bad_topic'}
    assert len([e for e in srv.get('/api/errors') if e['kind'] == 'rejected']) == 5
    robots = {r['robot_id']: r for r in srv.get('/api/robots')}
    assert robots['robot1']['x'] == pytest.approx(3.9) and robots['robot1']['idle']
    assert srv.get('/api/robots/robot2/state')['headerId'] == 39
    # writes need the token
    assert httpx.post(srv.base + '/api/tasks', json={}).status_code == 401
    assert httpx.post(srv.base + '/api/tasks', json={},
                      headers={'Authorization': 'Bearer wrong'}).status_code == 401
    assert srv.metrics()['auth_failures'] == 2

    srv.stop()  # server restart: history intact, ingest continues
    for _ in range(5):
        pub.publish('uagv/v2/KPAI/robot1/state', state(h1, 5.0))
    srv.start()
    assert history_len(srv, 'robot1') >= 40 and history_len(srv, 'robot2') == 40
    assert {r['robot_id'] for r in srv.get('/api/robots')} == {'robot1', 'robot2'}
    for _ in range(5):
        pub.publish('uagv/v2/KPAI/robot1/state', state(h1, 6.0))
    # the 5 states sent while the server was down reach it too (persistent session, QoS 1)
    wait_until(lambda: history_len(srv, 'robot1') == 50, timeout=10, what='50 states')
    pub.stop()


def test_broker_restart_server_loses_nothing(graph, broker, tmp_path):
    srv = Server(graph, broker, f'sqlite:///{tmp_path}/fleet.db', tmp_path)
    pub = MqttLink(broker.url, 'test-robot3', **mqtt_login(broker, 'robot3'))
    pub.start()
    assert pub.wait_connected(10)
    h = HeaderSource('KPAI', 'robot3')
    for i in range(10):
        pub.publish('uagv/v2/KPAI/robot3/state', state(h, i))
    wait_until(lambda: history_len(srv, 'robot3') == 10, timeout=10, what='10 states')
    broker.stop()
    wait_until(lambda: not pub.connected.is_set(), timeout=5, what='publisher disconnect')
    for i in range(10):  # buffered by the publisher while the broker is down
        pub.publish('uagv/v2/KPAI/robot3/state', state(h, 10 + i))
    assert pub.buffered == 10
    broker.start()
    wait_until(lambda: history_len(srv, 'robot3') == 20, timeout=30,
               what='all 20 states after the broker restart')
    ids = [s['header_id'] for s in srv.get('/api/robots/robot3/history')]
    assert ids == list(range(20))  # every state once: QoS 1 redeliveries are deduplicated
    assert srv.metrics()['mqtt']['connects'] >= 2
    pub.stop()


def test_task_round_trip_through_agent_and_executor(graph, broker, tmp_path):
    helpers = _load_sibling('test_fleet_agent')  # importlib import mode: load by path
    MissionServer, start_agent = helpers.MissionServer, helpers.start_agent

    server = MissionServer(graph.domain_id, step_s=0.2)
    try:
        srv = Server(graph, broker, f'sqlite:///{tmp_path}/fleet.db', tmp_path)
        start_agent(graph, broker)
        wait_until(lambda: any(r['robot_id'] == 'robot1' and r.get('x') is not None
                               for r in srv.get('/api/robots')), timeout=20,
                   what='robot1 in the API')
        auth = {'Authorization': f'Bearer {TOKEN}'}
        r = httpx.post(srv.base + '/api/tasks', headers=auth, timeout=5, json={
            'pickup': 'rack_1', 'dropoff': {'x': 1.0, 'y': 2.0}, 'load_s': 0.2,
            'unload_s': 0.2})
        assert r.status_code == 201, r.text
        order_id = r.json()['order_id']
        assert r.json()['robot_id'] == 'robot1'
        # robot1 is busy now: a second task finds no robot
        r2 = httpx.post(srv.base + '/api/tasks', headers=auth, timeout=5,
                        json={'pickup': 'rack_1', 'dropoff': 'outbound'})
        assert r2.status_code == 409 and 'no robot available' in r2.text
        wait_until(lambda: server.goals, timeout=10, what='goal at the executor')
        assert [s.type for s in server.goals[0].steps] == [0, 0, 3, 0, 4]

        def status():
            return {o['order_id']: o['status'] for o in srv.get('/api/orders')}.get(order_id)
        wait_until(lambda: status() == 'running', timeout=10, what='order running')
        wait_until(lambda: status() == 'completed', timeout=20, what='order completed')
        # the order status is derived on ingest; the stored state follows with the next batch
        def finished_state() -> dict | None:
            state = srv.get('/api/robots/robot1/state')
            done = {a['actionStatus'] for a in state['actionStates']} == {'FINISHED'}
            return state if done else None

        st = wait_until(finished_state, timeout=5, what='a stored state with all actions done')
        assert st['orderId'] == order_id and st['nodeStates'] == []
        assert st['lastNodeId'] == 'pose_1.00_2.00'
        assert {a['actionStatus'] for a in st['actionStates']} == {'FINISHED'}
        hist = srv.get('/api/robots/robot1/history', params={'limit': 100000})
        assert any(h['order_id'] == order_id for h in hist)
        events = [e['detail'] for e in srv.get('/api/events') if e['kind'] == 'order']
        assert f'{order_id}: completed' in events
        # idle again: the next task is accepted
        r3 = httpx.post(srv.base + '/api/tasks', headers=auth, timeout=5,
                        json={'pickup': 'outbound', 'dropoff': 'rack_1'})
        assert r3.status_code == 201
    finally:
        server.close()


def test_postgres_keeps_kpi_samples_and_alarm_acknowledgements(postgres):
    import psycopg
    from kpai_fleet.server.alarms import AlarmBook
    from kpai_fleet.server.rows import SampleRow
    from kpai_fleet.server.store import Store

    with psycopg.connect(postgres.url, autocommit=True) as c:  # as a database before them
        c.execute('DROP TABLE IF EXISTS samples, alarms')
    store = Store(postgres.url, spool_path='')
    try:
        store.submit_sample(SampleRow('r1', 5.0, 'safety_stop', 1.0))
        store.flush()
        assert store.samples('safety_stop', 0.0) == [{'robot_id': 'r1', 'ts': 5.0, 'value': 1.0}]
        book = AlarmBook(persist=store.save_alarm)
        book.update({('r1', 'fatal_error', 'x'): 'x', ('r2', 'connection_lost', ''): 'lost'})
        first = book.listed()[-1]['id']
        assert book.acknowledge(first, 'admin')
    finally:
        store.close()
    store = Store(postgres.url, spool_path='')  # a restart
    try:
        again = AlarmBook()
        again.restore(store.listed_alarms(), store.alarm_max_id())
        again.update({('r1', 'fatal_error', 'x'): 'x', ('r2', 'connection_lost', ''): 'lost'})
        assert [a['robot_id'] for a in again.listed()] == ['r2']
        assert store.apply_retention(now=1e12) >= 1
    finally:
        store.close()


def test_broker_password_file_rejects_wrong_credentials():
    with LocalBroker(users={'robot1': 's3cret'}, allow_anonymous=False) as b:
        good = MqttLink(f'mqtt://robot1:s3cret@127.0.0.1:{b.port}', 'cred-good')
        bad = MqttLink(b.url, 'cred-bad', username='robot1', password='wrong')
        anon = MqttLink(b.url, 'cred-anon')
        for link in (good, bad, anon):
            link.start()
        try:
            assert good.wait_connected(10)
            wait_until(lambda: 'refused' in bad.last_error and 'refused' in anon.last_error,
                       timeout=10, what='refused connections')
            assert not bad.connected.is_set() and not anon.connected.is_set()
        finally:
            for link in (good, bad, anon):
                link.stop()
