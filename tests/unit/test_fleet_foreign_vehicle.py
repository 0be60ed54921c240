"""Mixed fleet in-process: the server dispatches to another maker's vehicle and to a KPAI agent.

No broker: the server's publish and the vehicles' publish go through a queue drained by
Bus.run(), into the server's ingest and the vehicles' receive.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import deque

import pytest
from fastapi.testclient import TestClient
from fleet_foreign_agv import ForeignAgv
from kpai_fleet.agent_core import AgentConfig, AgentCore, StartMission
from kpai_fleet.server.app import create_app
from kpai_fleet.server.config import load_config
from kpai_fleet.server.service import FleetService
from kpai_fleet.server.store import Store

AUTH = {'Authorization': 'Bearer tok'}
STATIONS = {'rack_1': {'x': 8.0, 'y': 4.0, 'station_type': 'rack'},
            'outbound': {'x': 18.0, 'y': 2.0, 'station_type': 'floor'}}


class Bus:
    """Carries messages between the server and the vehicles, one at a time, in order."""

    def __init__(self, svc: FleetService) -> None:
        self.svc = svc
        self.queue: deque[tuple[str, str, bytes]] = deque()
        self.vehicles: dict[str, object] = {}
        svc.link.publish = self.server_publish  # type: ignore[method-assign]

    def server_publish(self, topic: str, payload: bytes, **_kw) -> bool:
        self.queue.append(('vehicle', topic, payload))
        return True

    def vehicle_publish(self, topic: str, payload: bytes, *_qos_retain) -> None:
        self.queue.append(('server', topic, payload))

    def run(self, received: float | None = None) -> None:
        while self.queue:
            dest, topic, payload = self.queue.popleft()
            if dest == 'server':
                assert self.svc.ingest.handle(topic, payload, received), (
                    self.svc.store.events(kinds=('rejected',))[:1])
            else:
                for prefix, receive in self.vehicles.items():
                    if topic.startswith(prefix):
                        receive(topic, payload)
        self.svc.store.flush()


@pytest.fixture
def fleet(tmp_path):
    cfg = load_config(None, broker_url='mqtt://127.0.0.1:9', db_url=f'sqlite:///{tmp_path}/f.db',
                      api_token='tok', public_read=True, stations=STATIONS)
    svc = FleetService(cfg)  # not started: no broker, no timer thread
    bus = Bus(svc)
    yield svc, bus, TestClient(create_app(svc), base_url='http://localhost')
    svc.store.close()


def add_foreign(bus: Bus, serial: str, **kw) -> ForeignAgv:
    agv = ForeignAgv(serial, bus.vehicle_publish, **kw)
    bus.vehicles[f'uagv/v2/Acme/{serial}/'] = agv.receive
    agv.connect()
    bus.run()
    return agv


def add_kpai(bus: Bus, serial: str, x: float, y: float) -> AgentCore:
    core = AgentCore(AgentConfig(serial_number=serial), bus.vehicle_publish)
    core.snapshot.x, core.snapshot.y, core.snapshot.position_initialized = x, y, True
    bus.vehicles[f'uagv/v2/KPAI/{serial}/'] = core.on_message
    core.on_connected()
    core.publish_state()
    bus.run()
    return core


def run_kpai(bus: Bus, core: AgentCore) -> None:
    """Execute what the agent was told (as the mission executor would), report states."""
    for cmd in core.take_commands():
        assert isinstance(cmd, StartMission)
        core.on_result(cmd.mission_id, True, False, '')
    core.publish_state()
    bus.run()


def orders_of(agv: ForeignAgv) -> list[dict]:
    return [m for kind, m in agv.received if kind == 'order']


def test_foreign_vehicle_gets_its_factsheet_requested_and_completes_a_task(fleet):
    svc, bus, client = fleet
    agv = add_foreign(bus, 'agv7', x=1.0, y=1.0)
    asked = [m['actions'][0] for kind, m in agv.received if kind == 'instantActions']
    assert [a['actionType'] for a in asked] == ['factsheetRequest']
    fs = client.get('/api/robots/Acme:agv7/factsheet')
    assert fs.status_code == 200 and fs.json()['typeSpecification']['seriesName'] == 'Acme Lift 2'
    robot = client.get('/api/robots').json()[0]
    assert robot['factsheet']['actions'][:3] == ['cancelOrder', 'drop', 'factsheetRequest']

    r = client.post('/api/tasks', json={'pickup': 'rack_1', 'dropoff': 'outbound'}, headers=AUTH)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer['robot_id'] == 'Acme:agv7' and answer['task_id']
    bus.run()
    (order,) = orders_of(agv)
    pick = order['nodes'][1]['actions'][0]
    assert {p['key']: p['value'] for p in pick['actionParameters']} == {
        'stationType': 'rack', 'stationName': 'rack_1', 'loadType': 'EPAL'}
    assert not agv.errors and agv.order_id == answer['order_id']
    status = {o['order_id']: o['status'] for o in client.get('/api/orders').json()}
    assert status[answer['order_id']] == 'running'
    while agv.step():
        bus.run()
    task = client.get(f'/api/tasks/{answer["task_id"]}').json()
    assert task['status'] == 'completed'
    assert [(o['order_id'], o['status']) for o in task['orders']] == [
        (answer['order_id'], 'completed')]


def test_the_foreign_double_refuses_what_the_server_used_to_send(fleet):
    _, bus, _ = fleet
    agv = add_foreign(bus, 'agv7')
    old_style = {'headerId': 5, 'orderId': 'old', 'orderUpdateId': 0, 'edges': [], 'nodes': [
        {'nodeId': 'P', 'sequenceId': 0, 'released': True, 'actions': [
            {'actionId': 'p', 'actionType': 'pick', 'blockingType': 'HARD',
             'actionParameters': [{'key': 'duration', 'value': 2.0},
                                  {'key': 'stationId', 'value': 'rack_1'}]}]}]}
    agv.receive('uagv/v2/Acme/agv7/order', json.dumps(old_style).encode())
    (err,) = agv.errors
    assert err['errorType'] == 'orderError' and 'invalid actionParameter' in (
        err['errorDescription'])
    assert {r['referenceKey']: r['referenceValue'] for r in err['errorReferences']}[
        'actionParameter'] == 'duration'


def test_rejected_order_is_recorded_and_the_task_goes_to_another_vehicle(fleet):
    svc, bus, client = fleet
    agv = add_foreign(bus, 'agv7', x=7.0, y=4.0, station_types=('floor',))  # nearest
    kpai = add_kpai(bus, 'robot1', 0.0, 0.0)
    r = client.post('/api/tasks', json={'pickup': 'rack_1', 'dropoff': 'outbound', 'load_s': 1},
                    headers=AUTH)
    assert r.status_code == 201 and r.json()['robot_id'] == 'Acme:agv7'
    assert r.json()['not_chosen']['robot1'].startswith('farther away')
    bus.run()
    assert agv.errors and agv.errors[0]['errorType'] == 'orderError'
    task = client.get(f'/api/tasks/{r.json()["task_id"]}').json()
    first, second = sorted(task['orders'], key=lambda o: o['order_id'])
    assert (first['robot_id'], first['status']) == ('Acme:agv7', 'rejected')
    assert first['reason'].startswith('orderError: stationType rack is not served')
    assert 'actionParameter=stationType' in first['reason']
    assert (second['robot_id'], second['status']) == ('robot1', 'dispatched')
    assert task['status'] == 'dispatched' and task['order_id'] == second['order_id']
    kpai_order = json.loads(svc.store._execute(
        'SELECT payload FROM orders WHERE order_id = ?', (second['order_id'],))[0][0])
    pick = kpai_order['nodes'][1]['actions'][0]
    assert {p['key'] for p in pick['actionParameters']} == {
        'stationType', 'stationName', 'loadType', 'duration'}  # the KPAI agent declares them
    run_kpai(bus, kpai)
    task = client.get(f'/api/tasks/{r.json()["task_id"]}').json()
    assert task['status'] == 'completed'
    assert {o['order_id']: o['status'] for o in task['orders']}[second['order_id']] == (
        'completed')
    # the vehicle that refused is free again: a task it can do goes to it
    r2 = client.post('/api/tasks', json={'pickup': 'outbound', 'dropoff': 'outbound',
                                         'robot': 'Acme:agv7'}, headers=AUTH)
    assert r2.status_code == 201, r2.text


def test_rejection_without_another_vehicle_fails_the_task_with_the_reason(fleet):
    svc, bus, client = fleet
    add_foreign(bus, 'agv7', station_types=('floor',))
    r = client.post('/api/tasks', json={'pickup': 'rack_1', 'dropoff': 'outbound'}, headers=AUTH)
    assert r.status_code == 201
    bus.run()
    task = client.get(f'/api/tasks/{r.json()["task_id"]}').json()
    # it waits for another vehicle (LOST_RETRY_S), then fails with the reason
    assert task['status'] == 'waiting' and 'Acme:agv7 rejected the order' in task['reason']
    svc.retry_waiting(now=time.time() + 1000.0)
    task = client.get(f'/api/tasks/{r.json()["task_id"]}').json()
    assert task['status'] == 'failed'
    assert 'Acme:agv7 rejected the order (orderError: stationType rack' in task['reason']
    assert [o['status'] for o in task['orders']] == ['rejected']


def test_an_order_that_never_shows_up_is_rejected_after_the_timeout(fleet):
    svc, bus, client = fleet
    agv = add_foreign(bus, 'agv7', answers_orders=False)
    r = client.post('/api/tasks', json={'pickup': 'rack_1', 'dropoff': 'outbound'}, headers=AUTH)
    bus.run()
    assert orders_of(agv) and {o['status'] for o in client.get('/api/orders').json()} == {
        'dispatched'}
    agv.send_state()
    bus.run(received=time.time() + 1)  # within the timeout: still waiting
    assert client.get('/api/orders').json()[0]['status'] == 'dispatched'
    agv.send_state()
    bus.run(received=time.time() + 11)
    (order,) = client.get('/api/orders').json()
    assert order['status'] == 'rejected'
    assert order['reason'] == (f'order {order["order_id"]} did not appear in the state of '
                               'Acme:agv7 within 10 s')
    svc.retry_waiting(now=time.time() + 1000.0)  # no other vehicle came: the task fails
    task = client.get(f'/api/tasks/{r.json()["task_id"]}').json()
    assert task['status'] == 'failed' and 'did not appear' in task['reason']
    # the order turns up after all: the server cancels it on the vehicle
    agv._order(orders_of(agv)[0])
    agv.send_state()
    bus.run()
    cancels = [m['actions'][0] for k, m in agv.received if k == 'instantActions'
               and m['actions'][0]['actionType'] == 'cancelOrder']
    assert cancels and not agv.nodes
    assert client.get('/api/orders').json()[0]['status'] == 'rejected'


def test_a_silent_vehicle_times_out_from_the_timer(fleet):
    svc, bus, client = fleet
    add_foreign(bus, 'agv7', answers_orders=False)
    client.post('/api/tasks', json={'pickup': 'rack_1', 'dropoff': 'outbound'}, headers=AUTH)
    bus.run()
    svc.ingest.check_timeouts(now=time.time() + 5)
    assert client.get('/api/orders').json()[0]['status'] == 'dispatched'
    svc.ingest.check_timeouts(now=time.time() + 30)
    svc.store.flush()
    assert client.get('/api/orders').json()[0]['status'] == 'rejected'


def test_vehicles_that_cannot_do_the_task_are_not_chosen_and_say_why(fleet):
    svc, bus, client = fleet
    add_foreign(bus, 'nodrop', x=8.0, y=4.0, declare_drop=False)
    add_foreign(bus, 'klt', x=8.0, y=4.5, load_types=('KLT',))
    add_kpai(bus, 'robot1', 0.0, 0.0)
    r = client.post('/api/tasks', json={'pickup': 'rack_1', 'dropoff': 'outbound'}, headers=AUTH)
    assert r.status_code == 201 and r.json()['robot_id'] == 'robot1'
    assert r.json()['not_chosen'] == {
        'Acme:nodrop': 'does not declare the action drop on nodes',
        'Acme:klt': 'cannot carry loadType EPAL (loadSets: KLT)'}
    bus.run()
    r = client.post('/api/tasks', json={'pickup': 'rack_1', 'dropoff': 'outbound',
                                        'load_type': 'KLT', 'robot': 'Acme:nodrop'},
                    headers=AUTH)
    assert r.status_code == 409
    assert 'Acme:nodrop: does not declare the action drop on nodes' in r.json()['detail']
    failed = [t for t in client.get('/api/tasks').json() if t['status'] == 'failed']
    assert failed and 'does not declare the action drop' in failed[0]['reason']


def test_a_vehicle_without_factsheet_is_asked_and_not_chosen(fleet):
    svc, bus, client = fleet
    agv = ForeignAgv('mute', bus.vehicle_publish)
    agv.send_state()  # a state, but no connection message and no factsheet yet
    bus.run()
    r = client.post('/api/tasks', json={'pickup': 'rack_1', 'dropoff': 'outbound'}, headers=AUTH)
    assert r.status_code == 409 and 'no factsheet received yet' in r.json()['detail']
    requests = [(t, json.loads(p)) for d, t, p in bus.queue]
    assert [(t, m['actions'][0]['actionType']) for t, m in requests] == [
        ('uagv/v2/Acme/mute/instantActions', 'factsheetRequest')]


def test_store_adds_the_new_order_columns_to_an_old_database(tmp_path):
    path = tmp_path / 'old.db'
    conn = sqlite3.connect(path)
    conn.execute('CREATE TABLE orders (order_id TEXT PRIMARY KEY, robot_id TEXT, created '
                 'DOUBLE PRECISION, updated DOUBLE PRECISION, status TEXT, task TEXT, '
                 'payload TEXT)')
    conn.execute("INSERT INTO orders VALUES ('o1', 'r1', 1, 1, 'completed', '{}', '{}')")
    conn.commit()
    conn.close()
    store = Store(f'sqlite:///{path}')
    try:
        store.upsert_order('o2', 'r1', 'rejected', task_id='t1', reason='orderError: no')
        rows = {o['order_id']: o for o in store.orders()}
        assert rows['o1']['status'] == 'completed' and rows['o2']['reason'] == 'orderError: no'
        assert store.orders(task_id='t1')[0]['order_id'] == 'o2'
    finally:
        store.close()


def test_an_order_lost_by_a_restarted_agent_is_offered_again(fleet):
    """The agent restarts (respawn): its state shows no order; the task goes out again."""
    svc, bus, client = fleet
    first_life = add_kpai(bus, 'robot1', 0.0, 0.0)
    r = client.post('/api/tasks', json={'pickup': 'rack_1', 'dropoff': 'outbound'},
                    headers=AUTH)
    assert r.status_code == 201
    bus.run()
    assert [type(c).__name__ for c in first_life.take_commands()] == ['StartMission']
    first_life.publish_state()  # the vehicle shows the order: running
    bus.run()
    task_id = r.json()['task_id']
    assert client.get(f'/api/tasks/{task_id}').json()['status'] == 'running'
    del bus.vehicles['uagv/v2/KPAI/robot1/']
    second_life = add_kpai(bus, 'robot1', 0.0, 0.0)  # a fresh agent: no order in its state
    task = client.get(f'/api/tasks/{task_id}').json()
    lost, again = sorted(task['orders'], key=lambda o: o['order_id'])
    assert lost['status'] == 'failed' and lost['reason'].startswith(
        'order lost: robot1 no longer reports order')
    assert (again['robot_id'], again['status']) == ('robot1', 'dispatched')
    assert again['order_id'] != lost['order_id']
    run_kpai(bus, second_life)
    assert client.get(f'/api/tasks/{task_id}').json()['status'] == 'completed'


def _lose_the_mission(bus: Bus, client: TestClient) -> tuple[AgentCore, str]:
    """Give robot1 a task, then lose its mission as a restarted executor does."""
    core = add_kpai(bus, 'robot1', 0.0, 0.0)
    r = client.post('/api/tasks', json={'pickup': 'rack_1', 'dropoff': 'outbound'},
                    headers=AUTH)
    bus.run()
    (cmd,) = core.take_commands()
    core.publish_state()
    bus.run()
    # what the node does when the executor instance that had the goal is gone
    core.on_result(cmd.mission_id, False, False, 'mission lost: the mission executor restarted')
    core.publish_state()
    return core, r.json()['task_id']


def test_a_mission_lost_with_its_executor_fails_the_order_and_is_offered_again(fleet):
    svc, bus, client = fleet
    core, task_id = _lose_the_mission(bus, client)
    bus.run()  # the server cancels the failed order; the vehicle is busy until it is cleared
    task = client.get(f'/api/tasks/{task_id}').json()
    assert task['status'] == 'waiting' and 'mission lost' in task['reason']
    core.publish_state()
    bus.run()
    svc.retry_waiting()  # the server's 1 s timer
    bus.run()
    task = client.get(f'/api/tasks/{task_id}').json()
    lost = min(task['orders'], key=lambda o: o['order_id'])
    assert lost['status'] == 'failed' and 'mission lost' in lost['reason']
    assert task['status'] == 'dispatched' and task['order_id'] != lost['order_id']
    run_kpai(bus, core)
    assert client.get(f'/api/tasks/{task_id}').json()['status'] == 'completed'


def test_a_lost_task_without_a_free_vehicle_fails_after_waiting(fleet):
    svc, bus, client = fleet
    _core, task_id = _lose_the_mission(bus, client)
    del bus.vehicles['uagv/v2/KPAI/robot1/']  # and the vehicle never clears it
    bus.run()
    svc.retry_waiting(now=time.time() + 10.0)
    assert client.get(f'/api/tasks/{task_id}').json()['status'] == 'waiting'
    svc.retry_waiting(now=time.time() + 1000.0)
    task = client.get(f'/api/tasks/{task_id}').json()
    assert task['status'] == 'failed' and 'no robot available' in task['reason']


def test_an_ordinary_failure_is_not_offered_again(fleet):
    svc, bus, client = fleet
    core = add_kpai(bus, 'robot1', 0.0, 0.0)
    r = client.post('/api/tasks', json={'pickup': 'rack_1', 'dropoff': 'outbound'},
                    headers=AUTH)
    bus.run()
    (cmd,) = core.take_commands()
    core.on_result(cmd.mission_id, False, False, 'no path to rack_1')
    core.publish_state()
    bus.run()
    task = client.get(f'/api/tasks/{r.json()["task_id"]}').json()
    assert task['status'] == 'failed' and len(task['orders']) == 1
