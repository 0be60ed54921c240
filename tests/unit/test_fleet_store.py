"""SQL store on SQLite: batched writes, queries, retention, restart; ingest validation."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from kpai_fleet.server.ingest import FleetView, Ingest, order_status
from kpai_fleet.server.store import EventRow, StateRow, Store
from kpai_fleet.vda5050.models import State
from kpai_fleet.vda5050.order_tracker import OrderTracker
from kpai_fleet.vda5050.state_builder import HeaderSource, RobotSnapshot, build_state


def row(i: int, robot: str = 'r1', ts: float | None = None,
        received: float | None = None) -> StateRow:
    return StateRow(robot, ts if ts is not None else 1000.0 + i,
                    received if received is not None else 5000.0 + i, i, 'o', float(i),
                    0.0, 0.0, 80.0, False, json.dumps({'headerId': i}))


@pytest.fixture
def store(tmp_path):
    s = Store(f'sqlite:///{tmp_path}/fleet.db', flush_ms=30, batch_rows=100)
    yield s
    s.close()


def test_batched_writes_flush_by_rows_and_time(store):
    batches = []
    store.add_listener(lambda rows: batches.append(len(rows)))
    for i in range(250):
        store.submit_state(row(i))
    store.flush()
    assert store.count_states() == 250
    assert max(batches) <= 100 and sum(batches) == 250 and len(batches) >= 3
    # a single row is written after flush_ms without an explicit flush
    store.submit_state(row(999))
    deadline = time.monotonic() + 2
    while store.count_states() < 251 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.count_states() == 251


def test_queries_latest_history_events(store):
    for i in range(10):
        store.submit_state(row(i))
    store.submit_state(row(0, robot='r2'))
    store.submit_event(EventRow('r1', 1005.0, 'error', 'WARNING', 'kpai.safetyStop: person'))
    store.submit_connection('r1', 'KPAI', 'r1', 1006.0, 'ONLINE')
    store.flush()
    robots = {r['robot_id']: r for r in store.robots()}
    assert robots['r1']['header_id'] == 9 and robots['r1']['connection'] == 'ONLINE'
    assert store.latest_state('r1') == {'headerId': 9}
    assert store.latest_state('nobody') is None
    hist = store.history('r1', 5003.0, 5006.0)  # by server receive time
    assert [h['header_id'] for h in hist] == [3, 4, 5]
    assert [h['ts'] for h in hist] == [1003.0, 1004.0, 1005.0]  # the robot's stamp, kept
    assert store.events(kinds=('error',))[0]['detail'].startswith('kpai.safetyStop')
    store.upsert_order('o1', 'r1', 'dispatched', task='{}')
    store.upsert_order('o1', 'r1', 'completed')
    assert store.orders()[0]['status'] == 'completed'


def test_retention_deletes_old_rows_only(store):
    now = time.time()
    store.submit_state(row(1, received=now - 10 * 86400))
    store.submit_state(row(2, received=now - 60))
    store.submit_event(EventRow('r1', now - 9 * 86400, 'error', 'WARNING', 'old'))
    store.flush()
    assert store.apply_retention(now) == 2
    assert store.count_states() == 1 and not store.events()


def test_retention_goes_by_server_time_not_robot_clocks(store):
    now = time.time()
    store.submit_state(row(1, robot='clock1970', ts=0.0, received=now - 5))
    store.submit_state(row(2, robot='clock9999', ts=253402300799.0, received=now - 8 * 86400))
    store.flush()
    assert store.apply_retention(now) == 1
    assert store.count_states('clock1970') == 1 and store.count_states('clock9999') == 0


def test_history_survives_restart(tmp_path):
    url = f'sqlite:///{tmp_path}/fleet.db'
    s = Store(url)
    for i in range(20):
        s.submit_state(row(i))
    s.close()
    s2 = Store(url)
    try:
        assert s2.count_states('r1') == 20
        assert len(s2.history('r1', 0, 1e12)) == 20
    finally:
        s2.close()


_clock = iter(range(10**6))


def state_bytes(serial='robot1', **snap) -> bytes:
    st = build_state(HeaderSource('KPAI', serial), OrderTracker(),
                     RobotSnapshot(position_initialized=True, **snap),
                     now=1.7e9 + next(_clock))
    return st.to_json()


def test_ingest_rejects_bad_traffic_and_keeps_valid(store):
    view = FleetView()
    store.add_listener(view.update)
    ing = Ingest(store, view, max_bytes=4096, allowed_robots=frozenset({'robot1', 'robot2'}))
    t = 'uagv/v2/KPAI/robot1/state'
    assert ing.handle(t, state_bytes(x=1.0))
    assert not ing.handle(t, b'{"headerId": ')
    assert not ing.handle(t, b'{"headerId": 1}')
    assert not ing.handle(t, b'{' + b' ' * 5000 + b'}')
    assert not ing.handle('uagv/v2/KPAI/robot9/state', state_bytes('robot9'))
    assert not ing.handle('uagv/v2/KPAI/robot2/state', state_bytes('robot1'))
    assert not ing.handle('bad/topic', b'{}')
    again = state_bytes(x=2.0)
    assert ing.handle(t, again)
    assert ing.handle(t, again)  # a QoS 1 redelivery: accepted, not stored twice
    store.flush()
    assert store.count_states() == 2
    m = ing.metrics()
    assert m['counts']['rejected'] == 6 and m['counts']['accepted'] == 3
    assert m['counts']['duplicates'] == 1
    assert m['rejected_by_reason'] == {'malformed_json': 1, 'schema': 1, 'oversized': 1,
                                       'unknown_robot': 1, 'identity_mismatch': 1,
                                       'bad_topic': 1}
    assert [r['x'] for r in view.snapshot()] == [2.0]
    assert len(store.events(kinds=('rejected',))) == 6



def test_ingest_tracks_order_status(store):
    import test_fleet_order_mapping as om

    view = FleetView()
    seen = []
    ing = Ingest(store, view, on_order_status=lambda o, r, s: seen.append(s))
    tr = OrderTracker()
    headers = HeaderSource('KPAI', 'robot1')
    tr.receive(om.make_order([('A', 0, 0, True, []), ('B', 1, 0, True, [om.act('p', 'pick')])]))
    ing.order_states['o1'] = 'dispatched'

    def send():
        st = build_state(headers, tr, RobotSnapshot())
        ing.handle('uagv/v2/KPAI/robot1/state', st.to_json())

    send()
    tr.step_started('p')
    send()
    tr.all_done()
    send()
    assert seen == ['running', 'completed']
    st = State.model_validate_json(build_state(headers, tr, RobotSnapshot()).to_json())
    assert order_status(st) == 'completed'


def test_a_failed_instant_action_does_not_fail_the_order():
    import test_fleet_order_mapping as om
    from kpai_fleet.server.ingest import order_action_ids
    from kpai_fleet.vda5050.models import ActionStatus, Order

    tr = OrderTracker()
    order = om.make_order([('A', 0, 0, True, []), ('B', 1, 0, True, [om.act('p', 'pick')])])
    tr.receive(order)
    tr.step_started('p')
    tr.track_instant('i1', 'startPause', ActionStatus.FAILED, 'cannot pause while docking')
    tr.track_instant('i2', 'customReset', ActionStatus.FAILED, 'unsupported')
    st = State.model_validate_json(
        build_state(HeaderSource('KPAI', 'robot1'), tr, RobotSnapshot()).to_json())
    ids = order_action_ids(Order.model_validate_json(order.to_json()))
    assert ids == frozenset({'p'})
    assert order_status(st, ids) == 'running'  # the server knows its order: not i2
    assert order_status(st) == 'failed'  # unknown order: only instant types are left out
    tr.track_instant('i2', 'customReset', ActionStatus.FINISHED)
    st = State.model_validate_json(
        build_state(HeaderSource('KPAI', 'robot1'), tr, RobotSnapshot()).to_json())
    assert order_status(st) == 'running'
    tr.all_done()
    st = State.model_validate_json(
        build_state(HeaderSource('KPAI', 'robot1'), tr, RobotSnapshot()).to_json())
    assert order_status(st, ids) == 'completed'


def test_a_bad_row_costs_only_itself(store):
    bad = StateRow('r1', 2000.0, time.time(), 7, 'o', 0.0, 0.0, 0.0, 80.0, False,
                   object())  # type: ignore[arg-type]  # a payload no database can bind
    for i in range(5):
        store.submit_state(row(i))
    store.submit_state(bad)
    for i in range(5, 10):
        store.submit_state(row(i))
    store.submit_event(EventRow('r1', 1005.0, 'error', 'WARNING', 'x'))
    store.flush()
    assert store.count_states() == 10 and store.write_errors == 1
    assert store.rows_written == 10 and len(store.events(kinds=('error',))) == 1
    assert 'bind' in store.last_error or 'type' in store.last_error.lower()


class _FlakyConnection:
    """Wraps a sqlite3 connection; its commits fail while the 'database' is away."""

    def __init__(self, conn, failures: int) -> None:
        self.conn, self.failures = conn, failures

    def cursor(self):
        return self.conn.cursor()

    def commit(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise sqlite3.OperationalError('disk I/O error')
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        self.conn.close()


def test_rows_wait_while_the_database_is_away(store):
    store._write_conn = _FlakyConnection(store._write_conn, failures=4)
    for i in range(30):
        store.submit_state(row(i))
    store.flush(timeout=20)
    assert store.count_states() == 30 and store.write_retries == 4 and store.write_errors == 0
