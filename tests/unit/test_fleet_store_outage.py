"""Database outages: nothing accepted is lost, the writer and the live view go on (issue 15)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

from kpai_fleet.errors import StoreError
from kpai_fleet.server.ingest import FleetView, Ingest
from kpai_fleet.server.rows import EventRow, StateRow
from kpai_fleet.server.spool import Spool
from kpai_fleet.server.store import Store
from kpai_fleet.vda5050.order_tracker import OrderTracker
from kpai_fleet.vda5050.state_builder import HeaderSource, RobotSnapshot, build_state
from kpai_testing import wait_until


class Outage:
    """Wraps a sqlite3 connection: commits fail with an I/O error while `down` is set."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.down = threading.Event()
        self.refused = 0

    def cursor(self):
        return self.conn.cursor()

    def commit(self) -> None:
        if self.down.is_set():
            self.refused += 1
            raise sqlite3.OperationalError('disk I/O error')
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        self.conn.close()


def row(i: int, robot: str = 'r1') -> StateRow:
    return StateRow(robot, 1000.0 + i, 2000.0 + i, i, 'o', float(i), 0.0, 0.0, 80.0, False,
                    json.dumps({'headerId': i}))


def open_store(tmp_path, **kw) -> tuple[Store, Outage]:
    s = Store(f'sqlite:///{tmp_path}/fleet.db', flush_ms=10, batch_rows=20, **kw)
    outage = Outage(s._write_conn)
    s._write_conn = outage
    return s, outage


def header_ids(store: Store, robot: str = 'r1') -> list[int]:
    return [h['header_id'] for h in store.history(robot, 0, 1e18, limit=100000)]


def test_rows_spill_to_the_spool_and_come_back_in_order(tmp_path):
    store, outage = open_store(tmp_path, max_queue=30)
    try:
        outage.down.set()
        for i in range(200):  # far more than the memory queue holds
            store.submit_state(row(i))
        wait_until(lambda: not store.available, timeout=5, what='outage noticed')
        assert store.queue_size <= 30 and store.spooled_bytes > 0
        assert store.status()['writer_alive']
        outage.down.clear()
        store.flush(timeout=20)
        assert header_ids(store) == list(range(200))
        assert store.available and store.spooled_bytes == 0 and store.write_errors == 0
        robot = store.robots()[0]
        assert robot['header_id'] == 199  # the latest state, not an older spooled one
    finally:
        store.close()


def test_without_a_spool_a_full_queue_blocks_instead_of_dropping(tmp_path):
    store, outage = open_store(tmp_path, max_queue=10, spool_path='')
    try:
        outage.down.set()
        done = threading.Event()

        def produce() -> None:
            for i in range(40):
                store.submit_state(row(i))
            done.set()

        threading.Thread(target=produce, daemon=True).start()
        wait_until(lambda: store.blocked_submits > 0, timeout=5, what='backpressure')
        assert not done.is_set()
        outage.down.clear()
        assert done.wait(20)
        store.flush(timeout=20)
        assert header_ids(store) == list(range(40))
    finally:
        store.close()


def test_the_spool_survives_a_restart_during_the_outage(tmp_path):
    store, outage = open_store(tmp_path, max_queue=5)
    outage.down.set()
    for i in range(50):
        store.submit_state(row(i))
    store.submit_event(EventRow('r1', 3000.0, 'error', 'WARNING', 'kept'))
    store.submit_order('o1', 'r1', 'running', 3001.0)
    store.close_grace_s = 0.5
    store.close()  # the database is still away: what is left goes to the spool
    again = Store(f'sqlite:///{tmp_path}/fleet.db', flush_ms=10, batch_rows=20)
    try:
        again.flush(timeout=20)
        assert header_ids(again) == list(range(50))
        assert again.events(kinds=('error',))[0]['detail'] == 'kept'
        assert again.orders()[0]['status'] == 'running'
    finally:
        again.close()


def test_a_retention_error_does_not_end_the_writer(tmp_path):
    store = Store(f'sqlite:///{tmp_path}/fleet.db', flush_ms=10, retention_every_s=0.0,
                  retention_retry_s=0.0)
    calls = {'n': 0}

    def failing(now=None):
        calls['n'] += 1
        raise sqlite3.OperationalError('database is locked')

    store.apply_retention = failing
    try:
        wait_until(lambda: store.retention_errors >= 3, timeout=5, what='retention retried')
        store.submit_state(row(1))
        store.flush()
        assert store.count_states() == 1 and store.status()['writer_alive']
        assert 'retention' in store.last_error
    finally:
        store.close()


def test_a_failing_listener_does_not_end_the_writer(tmp_path):
    store = Store(f'sqlite:///{tmp_path}/fleet.db', flush_ms=10)
    store.add_listener(lambda rows: 1 / 0)
    try:
        store.submit_state(row(1))
        store.flush()
        store.submit_state(row(2))
        store.flush()
        assert store.count_states() == 2 and store.listener_errors == 2
    finally:
        store.close()


def test_spool_keeps_records_and_drops_a_torn_tail(tmp_path):
    path = tmp_path / 'spool.jsonl'
    sp = Spool(path, max_bytes=200)
    assert sp.append({'a': 1}) and sp.append({'b': 2})
    assert not sp.append({'pad': 'x' * 300})  # full: refused, not truncated
    sp.close()
    with open(path, 'ab') as f:
        f.write(b'{"torn":')
    sp = Spool(path, max_bytes=200)
    records, offset = sp.read(10)
    assert records == [{'a': 1}, {'b': 2}]
    sp.consume(offset)
    assert not sp and path.stat().st_size == 0
    sp.close()


# -- the server side: ingest keeps the live view and the order states ------------------------
_clock = iter(range(10**6))


def state_bytes(x: float, stamp: float | None = None) -> bytes:
    return build_state(HeaderSource('KPAI', 'robot1'), OrderTracker(),
                       RobotSnapshot(x=x, y=1.0, position_initialized=True),
                       now=stamp if stamp is not None else 1.7e9 + next(_clock)).to_json()


def test_every_accepted_state_is_stored_after_an_outage_and_the_view_goes_on(tmp_path):
    store, outage = open_store(tmp_path, max_queue=25)
    view = FleetView()
    ing = Ingest(store, view)
    try:
        accepted = 0
        for i in range(60):
            if i == 10:
                outage.down.set()
            accepted += ing.handle('uagv/v2/KPAI/robot1/state', state_bytes(float(i)))
            if i == 30:
                wait_until(lambda: not store.available, timeout=5, what='outage noticed')
                assert view.snapshot()[0]['x'] == 30.0  # live from memory meanwhile
                assert ing.metrics()['store']['available'] is False
        outage.down.clear()
        store.flush(timeout=20)
        assert accepted == 60 and store.count_states('robot1') == 60
        assert [h['x'] for h in store.history('robot1', 0, 1e18)] == [float(i) for i in range(60)]
    finally:
        store.close()


def test_a_store_error_on_an_order_status_change_stays_off_the_mqtt_thread(tmp_path):
    store = Store(f'sqlite:///{tmp_path}/fleet.db', flush_ms=10)

    def status_callback(order_id, robot_id, status):
        raise StoreError('query failed: server closed the connection unexpectedly')

    ing = Ingest(store, FleetView(), on_order_status=status_callback)
    tr = OrderTracker()
    import test_fleet_order_mapping as om

    tr.receive(om.make_order([('A', 0, 0, True, []), ('B', 1, 0, True, [om.act('p', 'pick')])]))
    ing.order_states['o1'] = 'dispatched'
    try:
        st = build_state(HeaderSource('KPAI', 'robot1'), tr, RobotSnapshot()).to_json()
        assert ing.handle('uagv/v2/KPAI/robot1/state', st) is True
        assert ing.order_states['o1'] == 'running'
        assert ing.faults.snapshot() == {'order_status:StoreError': 1}
        store.flush()
        assert store.count_states() == 1
    finally:
        store.close()


def test_server_time_orders_the_live_view_not_robot_clocks(tmp_path):
    store = Store(f'sqlite:///{tmp_path}/fleet.db', flush_ms=10)
    view = FleetView()
    ing = Ingest(store, view)
    try:
        far_future = 253402300799.0  # 9999-12-31T23:59:59Z
        ing.handle('uagv/v2/KPAI/robot1/state', state_bytes(1.0, far_future), received=100.0)
        ing.handle('uagv/v2/KPAI/robot1/state', state_bytes(2.0, 1.7e9), received=101.0)
        ing.handle('uagv/v2/KPAI/robot1/state', state_bytes(3.0, 0.0), received=102.0)
        assert view.snapshot()[0]['x'] == 3.0
        store.flush()
        assert store.robots()[0]['x'] == 3.0 and store.latest_state('robot1')['agvPosition'][
            'x'] == 3.0
    finally:
        store.close()


def test_order_updates_wait_in_the_queue_like_states(tmp_path):
    store, outage = open_store(tmp_path)
    try:
        outage.down.set()
        store.submit_order('o9', 'r1', 'completed', time.time())
        wait_until(lambda: not store.available, timeout=5, what='outage noticed')
        outage.down.clear()
        store.flush(timeout=20)
        assert store.orders()[0]['status'] == 'completed'
    finally:
        store.close()


def test_flush_waits_for_spooled_rows(tmp_path):
    store, outage = open_store(tmp_path, max_queue=2)
    try:
        outage.down.set()
        for i in range(10):
            store.submit_state(row(i))
        wait_until(lambda: store.spooled_bytes > 0, timeout=5, what='spooling')
        threading.Timer(0.3, outage.down.clear).start()
        store.flush(timeout=20)
        assert store.count_states() == 10
    finally:
        store.close()


def test_each_database_has_its_own_spool():
    from kpai_fleet.server.store import default_spool_path

    a = default_spool_path('postgresql://kpai@host:5432/fleet')
    b = default_spool_path('postgresql://kpai@host:5432/other')
    assert a != b and a.endswith('.jsonl')
    assert default_spool_path('sqlite:////var/kpai/fleet.db') == '/var/kpai/fleet.db.spool'
    assert default_spool_path('sqlite://:memory:') == ''


class ClosedConnection(Outage):
    """psycopg after the server went away: even cursor() raises while `down` is set."""

    def cursor(self):
        if self.down.is_set():
            self.refused += 1
            raise sqlite3.OperationalError('disk I/O error (the connection is closed)')
        return self.conn.cursor()


def test_a_connection_that_refuses_even_a_cursor_loses_no_row(tmp_path):
    s = Store(f'sqlite:///{tmp_path}/fleet.db', flush_ms=10, batch_rows=20)
    outage = ClosedConnection(s._write_conn)
    s._write_conn = outage
    try:
        outage.down.set()
        for i in range(50):
            s.submit_state(row(i))
        wait_until(lambda: outage.refused >= 3, timeout=10, what='refused writes')
        assert not s.available
        outage.down.clear()
        s.flush(timeout=20)
        assert header_ids(s) == list(range(50))
        assert s.status()['writer_errors'] == 0
    finally:
        s.close()
