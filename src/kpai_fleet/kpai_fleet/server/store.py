"""One SQL layer for the fleet server: SQLite (WAL) or PostgreSQL by URL, batched writes."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kpai_fleet.errors import StoreError
from kpai_fleet.server.rows import (
    Batch,
    ConnectionRow,
    EventRow,
    OrderUpdate,
    SampleRow,
    StateRow,
    decode_row,
    encode_row,
    singles,
)
from kpai_fleet.server.spool import Spool

__all__ = ['EventRow', 'StateRow', 'Store', 'default_spool_path', 'open_store']


def default_spool_path(url: str) -> str:
    """Return where the store spools rows while its database is away ('' for :memory:)."""
    if url.startswith(('postgresql://', 'postgres://')):
        import hashlib
        import os

        # one spool per database: rows must never be replayed into another one
        digest = hashlib.sha256(url.encode()).hexdigest()[:12]
        base = Path(os.environ.get('XDG_STATE_HOME', Path.home() / '.local' / 'state'))
        return str(base / 'kpai' / f'fleet-spool-{digest}.jsonl')
    path = url.removeprefix('sqlite:///').removeprefix('sqlite://')
    return '' if path == ':memory:' else path + '.spool'


_DDL_COMMON = [
    'CREATE TABLE IF NOT EXISTS robots (robot_id TEXT PRIMARY KEY, manufacturer TEXT, '
    'serial_number TEXT, first_seen DOUBLE PRECISION, last_seen DOUBLE PRECISION, '
    "connection TEXT DEFAULT '', header_id BIGINT, order_id TEXT, x DOUBLE PRECISION, "
    'y DOUBLE PRECISION, theta DOUBLE PRECISION, battery DOUBLE PRECISION, driving INTEGER, '
    'n_errors INTEGER, state_json TEXT)',
    'CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, robot_id TEXT, '
    'created DOUBLE PRECISION, updated DOUBLE PRECISION, status TEXT, task TEXT, '
    'payload TEXT)',
    'CREATE TABLE IF NOT EXISTS tasks (task_id TEXT PRIMARY KEY, created DOUBLE PRECISION, '
    "updated DOUBLE PRECISION, status TEXT, reason TEXT DEFAULT '', order_id TEXT, "
    'body TEXT)',
    'CREATE TABLE IF NOT EXISTS factsheets (robot_id TEXT PRIMARY KEY, '
    'received DOUBLE PRECISION, payload TEXT)',
    # alarms as the dashboard lists them: an acknowledgement survives a restart
    'CREATE TABLE IF NOT EXISTS alarms (id BIGINT PRIMARY KEY, robot_id TEXT, kind TEXT, '
    "detail TEXT, key_detail TEXT DEFAULT '', raised DOUBLE PRECISION, "
    "cleared DOUBLE PRECISION, acked DOUBLE PRECISION, acked_by TEXT DEFAULT '')",
    'CREATE INDEX IF NOT EXISTS states_robot_ts ON states (robot_id, ts)',
    'CREATE INDEX IF NOT EXISTS states_ts ON states (ts)',
    'CREATE INDEX IF NOT EXISTS states_robot_received ON states (robot_id, received)',
    'CREATE INDEX IF NOT EXISTS states_received ON states (received)',
    'CREATE INDEX IF NOT EXISTS events_ts ON events (ts)',
    'CREATE INDEX IF NOT EXISTS samples_kind_ts ON samples (kind, ts)',
]
_COLS_STATES = ('robot_id TEXT NOT NULL, ts DOUBLE PRECISION, received DOUBLE PRECISION, '
                'header_id BIGINT, order_id TEXT, x DOUBLE PRECISION, y DOUBLE PRECISION, '
                'theta DOUBLE PRECISION, battery DOUBLE PRECISION, driving INTEGER, '
                'payload TEXT')
_COLS_EVENTS = 'robot_id TEXT, ts DOUBLE PRECISION, kind TEXT, level TEXT, detail TEXT'
_COLS_SAMPLES = 'robot_id TEXT, ts DOUBLE PRECISION, kind TEXT, value DOUBLE PRECISION'

_INSERT_STATE = ('INSERT INTO states (robot_id, ts, received, header_id, order_id, x, y, theta, '
                 'battery, driving, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
_INSERT_EVENT = 'INSERT INTO events (robot_id, ts, kind, level, detail) VALUES (?, ?, ?, ?, ?)'
_INSERT_SAMPLE = 'INSERT INTO samples (robot_id, ts, kind, value) VALUES (?, ?, ?, ?)'
_UPSERT_ROBOT = (
    'INSERT INTO robots (robot_id, manufacturer, serial_number, first_seen, last_seen, '
    'header_id, order_id, x, y, theta, battery, driving, n_errors, state_json) '
    'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (robot_id) DO UPDATE SET '
    'last_seen = excluded.last_seen, header_id = excluded.header_id, '
    'order_id = excluded.order_id, x = excluded.x, y = excluded.y, theta = excluded.theta, '
    'battery = excluded.battery, driving = excluded.driving, n_errors = excluded.n_errors, '
    'state_json = excluded.state_json')
_UPSERT_CONNECTION = (
    'INSERT INTO robots (robot_id, manufacturer, serial_number, first_seen, last_seen, '
    'connection) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (robot_id) DO UPDATE SET '
    'connection = excluded.connection, last_seen = excluded.last_seen')
# columns added after the first release: (table, column, type), added to older databases
_ADDED_COLUMNS = (('orders', 'task_id', "TEXT DEFAULT ''"),
                  ('orders', 'reason', "TEXT DEFAULT ''"))
_UPSERT_ORDER = (
    'INSERT INTO orders (order_id, robot_id, created, updated, status, task, payload, task_id, '
    'reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id) DO UPDATE SET '
    'updated = excluded.updated, status = excluded.status, reason = CASE WHEN '
    "excluded.reason <> '' THEN excluded.reason ELSE orders.reason END")
_UPSERT_TASK = (
    'INSERT INTO tasks (task_id, created, updated, status, reason, order_id, body) '
    'VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_id) DO UPDATE SET '
    'updated = excluded.updated, status = excluded.status, reason = excluded.reason, '
    "order_id = CASE WHEN excluded.order_id <> '' THEN excluded.order_id ELSE tasks.order_id "
    'END')
_UPSERT_FACTSHEET = (
    'INSERT INTO factsheets (robot_id, received, payload) VALUES (?, ?, ?) '
    'ON CONFLICT (robot_id) DO UPDATE SET received = excluded.received, '
    'payload = excluded.payload')
_UPSERT_ALARM = (
    'INSERT INTO alarms (id, robot_id, kind, detail, key_detail, raised, cleared, acked, '
    'acked_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET '
    'detail = excluded.detail, cleared = excluded.cleared, acked = excluded.acked, '
    'acked_by = excluded.acked_by')
ALARM_KEYS = ('id', 'robot_id', 'kind', 'detail', 'key_detail', 'raised', 'cleared', 'acked',
              'acked_by')
_ORDER_KEYS = ('order_id', 'robot_id', 'created', 'updated', 'status', 'task', 'task_id',
               'reason')
_TASK_KEYS = ('task_id', 'created', 'updated', 'status', 'reason', 'order_id', 'body')

_STOP = object()


class Store:
    """Batched writer thread + read methods over SQLite or PostgreSQL with the same SQL.

    Writes never block on the database and are never dropped for its absence: rows wait in a
    bounded memory queue, beyond it in a bounded on-disk spool (replayed in order once the
    database is back, also after a restart); only when both are full does submit_* block, so
    that the caller (the MQTT thread) stops acknowledging messages instead of losing them.
    """

    def __init__(self, url: str, *, flush_ms: float = 50.0, batch_rows: int = 2000,
                 retention_s: float = 7 * 86400.0, retention_every_s: float = 60.0,
                 retention_retry_s: float = 10.0, max_queue: int = 20000,
                 spool_path: str | None = None,
                 spool_max_bytes: int = 256 * 1024 * 1024) -> None:
        self.url = url
        self.dialect = 'postgres' if url.startswith(('postgresql://', 'postgres://')) else (
            'sqlite')
        self.flush_s = flush_ms / 1000.0
        self.batch_rows = batch_rows
        self.retention_s = retention_s
        self.retention_every_s = retention_every_s
        self.retention_retry_s = retention_retry_s
        self.max_queue = max(1, max_queue)
        self.rows_written = 0
        self.flushes = 0
        self.write_errors = 0      # rows refused by the database (bad data), each dropped alone
        self.write_retries = 0     # batches retried because the database was unreachable
        self.reconnects = 0
        self.retention_errors = 0
        self.listener_errors = 0
        self.writer_errors = 0     # unexpected errors in the writer loop (it goes on)
        self.blocked_submits = 0   # submits that waited for room (memory and spool full)
        self.last_error = ''
        self.unavailable_since: float | None = None
        self.close_grace_s = 10.0  # on close, how long to retry a database that is away
        self._give_up_at: float | None = None
        self._closing = False
        self._queue: deque[Any] = deque()
        self._room = threading.Condition(threading.Lock())
        self._spooling = False     # rows go to the spool (newer than all in the memory queue)
        self._deferred: list[threading.Event] = []  # flushes waiting for the spool to drain
        self._wake = threading.Event()
        self._listeners: list[Callable[[list[StateRow]], None]] = []
        self._read_lock = threading.Lock()
        self._write_lock = threading.Lock()
        path = default_spool_path(url) if spool_path is None else spool_path
        self._spool = Spool(path, max_bytes=spool_max_bytes) if path else None
        if self._spool:
            self._spooling = True  # rows left by the last run: replayed before new ones
        self._write_conn = self._connect()
        self._read_conn = self._connect()
        self._create_schema()
        self._thread = threading.Thread(target=self._writer, name='store-writer', daemon=True)
        self._thread.start()

    # -- connections -----------------------------------------------------------------------
    def _connect(self) -> Any:
        if self.dialect == 'postgres':
            try:
                import psycopg
            except ImportError as err:
                raise StoreError('PostgreSQL needs the psycopg package') from err
            try:
                return psycopg.connect(self.url, autocommit=False, connect_timeout=5)
            except psycopg.Error as err:
                raise StoreError(f'cannot connect to PostgreSQL: {err}') from err
        path = self.url.removeprefix('sqlite:///').removeprefix('sqlite://')
        if path != ':memory:':
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, check_same_thread=False, timeout=30.0)
            conn.execute('PRAGMA journal_mode=WAL')
            conn.execute('PRAGMA synchronous=NORMAL')
        except sqlite3.Error as err:
            raise StoreError(f'cannot open SQLite database {path}: {err}') from err
        return conn

    def _sql(self, text: str) -> str:
        return text.replace('?', '%s') if self.dialect == 'postgres' else text

    def _create_schema(self) -> None:
        serial = 'BIGSERIAL PRIMARY KEY' if self.dialect == 'postgres' else (
            'INTEGER PRIMARY KEY AUTOINCREMENT')
        ddl = [f'CREATE TABLE IF NOT EXISTS states (id {serial}, {_COLS_STATES})',
               f'CREATE TABLE IF NOT EXISTS events (id {serial}, {_COLS_EVENTS})',
               # tables added after the first release come into older databases this way too
               f'CREATE TABLE IF NOT EXISTS samples (id {serial}, {_COLS_SAMPLES})',
               *_DDL_COMMON]
        cur = self._write_conn.cursor()
        for stmt in ddl:
            cur.execute(stmt)
        for table, column, kind in _ADDED_COLUMNS:
            if self.dialect == 'postgres':
                cur.execute(f'ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}')
                continue
            have = {row[1] for row in cur.execute(f'PRAGMA table_info({table})').fetchall()}
            if column not in have:
                cur.execute(f'ALTER TABLE {table} ADD COLUMN {column} {kind}')
        self._write_conn.commit()

    @property
    def queue_size(self) -> int:
        return len(self._queue)

    @property
    def spooled_bytes(self) -> int:
        """Bytes of rows waiting in the on-disk spool."""
        return self._spool.pending_bytes if self._spool is not None else 0

    @property
    def available(self) -> bool:
        """False while the database refuses connections or writes (rows wait meanwhile)."""
        return self.unavailable_since is None

    def status(self) -> dict[str, Any]:
        """Return the writer's counters and health for /api/metrics."""
        return {'available': self.available, 'unavailable_since': self.unavailable_since,
                'rows_written': self.rows_written, 'flushes': self.flushes,
                'write_errors': self.write_errors, 'write_retries': self.write_retries,
                'reconnects': self.reconnects, 'retention_errors': self.retention_errors,
                'listener_errors': self.listener_errors, 'writer_errors': self.writer_errors,
                'blocked_submits': self.blocked_submits, 'last_error': self.last_error,
                'queue': self.queue_size, 'queue_limit': self.max_queue,
                'spooled_bytes': self.spooled_bytes,
                'writer_alive': self._thread.is_alive()}

    # -- writing ---------------------------------------------------------------------------
    def add_listener(self, fn: Callable[[list[StateRow]], None]) -> None:
        """Call fn(rows) in the writer thread after each committed batch of states."""
        self._listeners.append(fn)

    def submit_state(self, row: StateRow) -> None:
        """Queue a state row for the next batch."""
        self._put(row)
        if len(self._queue) >= self.batch_rows:
            self._wake.set()

    def submit_event(self, row: EventRow) -> None:
        """Queue an event row for the next batch."""
        self._put(row)

    def submit_connection(self, robot_id: str, manufacturer: str, serial: str, ts: float,
                          state: str) -> None:
        """Queue a connection-state change of a robot."""
        self._put(ConnectionRow(robot_id, manufacturer, serial, ts, state))

    def submit_order(self, order_id: str, robot_id: str, status: str, ts: float, *,
                     reason: str = '') -> None:
        """Queue an order status change (written with the next batch, retried like states)."""
        self._put(OrderUpdate(order_id, robot_id, status, ts, reason))

    def submit_sample(self, row: SampleRow) -> None:
        """Queue a KPI sample (safety stop, inference latency) for the next batch."""
        self._put(row)

    def _put(self, row: Any) -> None:
        with self._room:
            if self._spool is not None and (self._spooling or len(self._queue) >= self.max_queue):
                # keep the order: once rows spill to disk, newer ones follow them there
                while not self._closing:
                    if self._spool.append(encode_row(row)):
                        self._spooling = True
                        return
                    self.blocked_submits += 1
                    self._room.wait(1.0)  # the spool is full: wait until it is drained
            while len(self._queue) >= self.max_queue and not self._closing:
                self.blocked_submits += 1
                self._wake.set()
                self._room.wait(1.0)
            self._queue.append(row)

    def flush(self, timeout: float = 10.0) -> None:
        """Block until everything queued so far (spool included) is committed."""
        done = threading.Event()
        self._queue.append(done)
        self._wake.set()
        if not done.wait(timeout):
            raise StoreError(f'store flush did not finish within {timeout} s')

    def close(self) -> None:
        """Flush, stop the writer thread and close the connections (the spool stays)."""
        self._closing = True
        with self._room:
            self._room.notify_all()
        if self._thread.is_alive():
            self._queue.append(_STOP)
            self._wake.set()
            self._thread.join(timeout=30)
        for conn in (self._write_conn, self._read_conn):
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection must not raise
                pass
        if self._spool is not None:
            self._spool.close()

    def _writer(self) -> None:
        next_retention = time.monotonic() + self.retention_every_s
        while True:
            try:
                if self._write_round():
                    for w in self._deferred:  # closing: the spool stays for the next start
                        w.set()
                    return
                if time.monotonic() >= next_retention:
                    next_retention = time.monotonic() + self.retention_every_s
                    try:
                        self.apply_retention()
                    except Exception as err:  # noqa: BLE001 - retried, never ends the writer
                        self.retention_errors += 1
                        self.last_error = f'retention: {type(err).__name__}: {err}'
                        next_retention = time.monotonic() + self.retention_retry_s
            except Exception as err:  # noqa: BLE001 - the writer thread must outlive any error
                self.writer_errors += 1
                self.last_error = f'writer: {type(err).__name__}: {err}'
                time.sleep(0.5)

    def _write_round(self) -> bool:
        """Wait for rows (flush_ms or a full batch), write what is queued; True on stop."""
        # a row waits at most about flush_ms before its commit
        if len(self._queue) < self.batch_rows and not self._spooling:
            self._wake.wait(self.flush_s)
        self._wake.clear()
        stop = False
        while self._queue and not stop:
            batch = Batch()
            waiters: list[threading.Event] = []
            with self._room:
                while self._queue and len(batch) < self.batch_rows:
                    item = self._queue.popleft()
                    if item is _STOP:
                        stop = True
                        break
                    if isinstance(item, threading.Event):
                        waiters.append(item)
                        break
                    batch.add(item)
                self._room.notify_all()
            if len(batch):
                self._write(batch)
            if self._spooling and not stop:
                self._deferred.extend(waiters)  # they also wait for the older spooled rows
            else:
                for w in waiters:
                    w.set()
        if not stop and self._spooling and not self._queue:
            self._replay_spool()
        return stop

    def _replay_spool(self) -> None:
        """Write the next chunk of spooled rows; end spooling once the spool is empty."""
        assert self._spool is not None
        with self._room:
            records, offset = self._spool.read(self.batch_rows)
        batch = Batch()
        for rec in records:
            try:
                batch.add(decode_row(rec))
            except ValueError as err:
                self.write_errors += 1
                self.last_error = f'spool: {err}'
        if len(batch):
            self._write(batch)
        with self._room:
            self._spool.consume(offset)
            if not self._spool:
                self._spooling = False
                waiters, self._deferred = self._deferred, []
                for w in waiters:
                    w.set()
            self._room.notify_all()
        self._wake.set()  # more to replay, or queued rows waiting behind the spool

    def _write(self, batch: Batch) -> None:
        """Commit a batch; keep retrying while the database is unreachable.

        A batch the database refuses for its data is written row by row, so that one bad row
        costs only itself (counted in write_errors) and never the valid rows beside it. When
        the store closes while the database is still away, the batch goes to the spool.
        """
        delay = 0.05
        while True:
            with self._write_lock:
                err = self._write_locked(batch)
            if err is None:
                self.unavailable_since = None
                self._committed(batch)
                return
            self.last_error = f'{type(err).__name__}: {err}'
            if not self._unreachable(err):
                break
            if self.unavailable_since is None:
                self.unavailable_since = time.time()
            self.write_retries += 1
            if self._closing:  # shutting down: a bounded last try, then spool or count
                if self._give_up_at is None:
                    self._give_up_at = time.monotonic() + self.close_grace_s
                if time.monotonic() > self._give_up_at:
                    self._spill(batch)
                    return
            time.sleep(delay)
            delay = min(2 * delay, 2.0)
            self._reconnect_writer()
        if len(batch) == 1:
            self.write_errors += 1
            return
        for single in singles(batch):
            self._write(single)

    def _spill(self, batch: Batch) -> None:
        """Keep a batch the database could not take before shutdown in the spool."""
        rows = [*batch.states, *batch.events, *batch.connections, *batch.orders,
                *batch.samples]
        with self._room:
            for r in rows:
                if self._spool is None or not self._spool.append(encode_row(r)):
                    self.write_errors += 1
        if self._spool is not None:
            self._spool.sync()

    def _committed(self, batch: Batch) -> None:
        self.rows_written += len(batch.states)
        self.flushes += 1
        for fn in self._listeners:
            try:
                fn(batch.states)
            except Exception as err:  # noqa: BLE001 - a listener must not stop the writer
                self.listener_errors += 1
                self.last_error = f'listener: {type(err).__name__}: {err}'

    def _unreachable(self, err: Exception) -> bool:
        """Return True when err means the database is away (retry), not that data is bad."""
        if isinstance(err, sqlite3.OperationalError):  # locked, I/O error, disk full
            return any(w in str(err) for w in ('locked', 'busy', 'I/O', 'full', 'unable to open'))
        if self.dialect == 'postgres':
            import psycopg

            return isinstance(err, (psycopg.OperationalError, psycopg.InterfaceError)) or bool(
                getattr(self._write_conn, 'closed', False))
        return False

    def _reconnect_writer(self) -> None:
        if self.dialect != 'postgres' or not getattr(self._write_conn, 'closed', True):
            return
        try:
            conn = self._connect()
        except StoreError as err:
            self.last_error = str(err)
            return
        with self._write_lock:
            self._write_conn = conn
        self.reconnects += 1

    def _write_locked(self, batch: Batch) -> Exception | None:
        try:
            # inside the try: a closed psycopg connection already refuses a cursor, and an
            # error escaping here would drop the batch in hand and skip the reconnect
            cur = self._write_conn.cursor()
            if batch.states:
                cur.executemany(self._sql(_INSERT_STATE), [
                    (r.robot_id, r.ts, r.received, r.header_id, r.order_id, r.x, r.y, r.theta,
                     r.battery, int(r.driving), r.payload) for r in batch.states])
                latest: dict[str, StateRow] = {}
                for r in batch.states:  # the last received (server time), not the robot's
                    latest[r.robot_id] = r
                cur.executemany(self._sql(_UPSERT_ROBOT), [
                    (r.robot_id, r.manufacturer, r.serial_number, r.received, r.received,
                     r.header_id, r.order_id, r.x, r.y, r.theta, r.battery, int(r.driving),
                     r.n_errors, r.payload) for r in latest.values()])
            if batch.events:
                cur.executemany(self._sql(_INSERT_EVENT), [
                    (e.robot_id, e.ts, e.kind, e.level, e.detail) for e in batch.events])
            if batch.connections:
                cur.executemany(self._sql(_UPSERT_CONNECTION), [
                    (c.robot_id, c.manufacturer, c.serial_number, c.ts, c.ts, c.state)
                    for c in batch.connections])
            if batch.samples:
                cur.executemany(self._sql(_INSERT_SAMPLE), [
                    (m.robot_id, m.ts, m.kind, m.value) for m in batch.samples])
            if batch.orders:
                cur.executemany(self._sql(_UPSERT_ORDER), [
                    (o.order_id, o.robot_id, o.ts, o.ts, o.status, '', '', '', o.reason)
                    for o in batch.orders])
            self._write_conn.commit()
        except Exception as err:  # noqa: BLE001 - the caller retries or isolates bad rows
            try:
                self._write_conn.rollback()
            except Exception:  # noqa: BLE001
                pass
            return err
        return None

    def apply_retention(self, now: float | None = None) -> int:
        """Delete states and events received before the retention window; return rows deleted.

        Server receive time decides, never the robot's clock: a robot whose clock says 1970
        keeps its fresh history.
        """
        cutoff = (time.time() if now is None else now) - self.retention_s
        with self._write_lock:
            cur = self._write_conn.cursor()
            try:
                cur.execute(self._sql('DELETE FROM states WHERE received < ?'), (cutoff,))
                n = cur.rowcount or 0
                cur.execute(self._sql('DELETE FROM events WHERE ts < ?'), (cutoff,))
                n += cur.rowcount or 0
                cur.execute(self._sql('DELETE FROM samples WHERE ts < ?'), (cutoff,))
                n += cur.rowcount or 0
                self._write_conn.commit()
            except Exception:
                try:
                    self._write_conn.rollback()
                except Exception:  # noqa: BLE001
                    pass
                raise
        return n

    def upsert_order(self, order_id: str, robot_id: str, status: str, *, task: str = '',
                     payload: str = '', task_id: str = '', reason: str = '',
                     now: float | None = None) -> None:
        """Insert an order or update its status (and reason, when given); synchronous."""
        ts = time.time() if now is None else now
        self._execute(_UPSERT_ORDER, (order_id, robot_id, ts, ts, status, task, payload,
                                      task_id, reason), commit=True)

    def upsert_task(self, task_id: str, status: str, *, reason: str = '', order_id: str = '',
                    body: str = '', now: float | None = None) -> None:
        """Insert a task or update its status, reason and current order; synchronous."""
        ts = time.time() if now is None else now
        self._execute(_UPSERT_TASK, (task_id, ts, ts, status, reason, order_id, body),
                      commit=True)

    def upsert_factsheet(self, robot_id: str, payload: str, now: float | None = None) -> None:
        """Store the latest factsheet of a robot; synchronous."""
        ts = time.time() if now is None else now
        self._execute(_UPSERT_FACTSHEET, (robot_id, ts, payload), commit=True)

    def save_alarm(self, alarm: dict[str, Any]) -> None:
        """Insert or update an alarm (its clearing and acknowledgement); synchronous."""
        self._execute(_UPSERT_ALARM, tuple(alarm.get(k) for k in ALARM_KEYS), commit=True)

    def listed_alarms(self, keep: int = 1000) -> list[dict[str, Any]]:
        """Return the newest `keep` alarms still listed (not acknowledged) or still active,
        oldest first."""
        rows = self._execute(f'SELECT {", ".join(ALARM_KEYS)} FROM alarms WHERE acked IS NULL '
                             'OR cleared IS NULL ORDER BY id DESC LIMIT ?', (keep,))
        return [dict(zip(ALARM_KEYS, r, strict=True)) for r in reversed(rows)]

    def alarm_max_id(self) -> int:
        """Return the highest stored alarm id (0 when none): new alarms count on from it."""
        return int(self._execute('SELECT COALESCE(MAX(id), 0) FROM alarms')[0][0])

    # -- reading ---------------------------------------------------------------------------
    def _execute(self, sql: str, params: Sequence[Any] = (), *, commit: bool = False
                 ) -> list[tuple[Any, ...]]:
        with self._read_lock:
            cur = self._read_conn.cursor()
            try:
                cur.execute(self._sql(sql), tuple(params))
                rows = cur.fetchall() if cur.description is not None else []
                if commit or self.dialect == 'postgres':
                    self._read_conn.commit()
            except Exception as err:
                try:
                    self._read_conn.rollback()
                except Exception:  # noqa: BLE001
                    pass
                if self.dialect == 'postgres' and getattr(self._read_conn, 'closed', False):
                    try:  # the server went away: the next query uses a new connection
                        self._read_conn = self._connect()
                        self.reconnects += 1
                    except StoreError:
                        pass
                raise StoreError(f'query failed: {err}') from err
            return list(rows)

    def robots(self) -> list[dict[str, Any]]:
        """Return every known robot with its latest summary."""
        rows = self._execute('SELECT robot_id, manufacturer, serial_number, first_seen, '
                             'last_seen, connection, header_id, order_id, x, y, theta, battery, '
                             'driving, n_errors FROM robots ORDER BY robot_id')
        keys = ('robot_id', 'manufacturer', 'serial_number', 'first_seen', 'last_seen',
                'connection', 'header_id', 'order_id', 'x', 'y', 'theta', 'battery', 'driving',
                'n_errors')
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def latest_state(self, robot_id: str) -> dict[str, Any] | None:
        """Return the latest stored state message of a robot."""
        rows = self._execute('SELECT state_json FROM robots WHERE robot_id = ?', (robot_id,))
        if not rows or not rows[0][0]:
            return None
        return dict(json.loads(rows[0][0]))

    def history(self, robot_id: str, since: float, until: float, limit: int = 1000
                ) -> list[dict[str, Any]]:
        """Return states of a robot received (server time) in [since, until), oldest first."""
        rows = self._execute('SELECT ts, received, header_id, order_id, x, y, theta, battery, '
                             'driving FROM states WHERE robot_id = ? AND received >= ? AND '
                             'received < ? ORDER BY received, id LIMIT ?',
                             (robot_id, since, until, limit))
        keys = ('ts', 'received', 'header_id', 'order_id', 'x', 'y', 'theta', 'battery',
                'driving')
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def events(self, *, kinds: Sequence[str] = (), since: float = 0.0, limit: int = 200
               ) -> list[dict[str, Any]]:
        """Return the newest events (optionally of some kinds), newest first."""
        sql = 'SELECT robot_id, ts, kind, level, detail FROM events WHERE ts >= ?'
        params: list[Any] = [since]
        if kinds:
            sql += ' AND kind IN (' + ', '.join('?' * len(kinds)) + ')'
            params += list(kinds)
        rows = self._execute(sql + ' ORDER BY ts DESC LIMIT ?', (*params, limit))
        keys = ('robot_id', 'ts', 'kind', 'level', 'detail')
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def orders(self, limit: int = 200, *, task_id: str | None = None) -> list[dict[str, Any]]:
        """Return the newest orders (of one task), newest first."""
        sql = f'SELECT {", ".join(_ORDER_KEYS)} FROM orders'
        params: tuple[Any, ...] = (limit,)
        if task_id is not None:
            sql += ' WHERE task_id = ?'
            params = (task_id, limit)
        rows = self._execute(sql + ' ORDER BY created DESC LIMIT ?', params)
        return [dict(zip(_ORDER_KEYS, r, strict=True)) for r in rows]

    def tasks(self, limit: int = 200, *, task_id: str | None = None) -> list[dict[str, Any]]:
        """Return the newest tasks (or the one task_id), newest first, with the robot of
        their current order (`robot_id`, '' before any)."""
        cols = ', '.join(f't.{k}' for k in _TASK_KEYS)
        sql = (f"SELECT {cols}, COALESCE(o.robot_id, '') FROM tasks t "
               'LEFT JOIN orders o ON o.order_id = t.order_id')
        params: tuple[Any, ...] = (limit,)
        if task_id is not None:
            sql += ' WHERE t.task_id = ?'
            params = (task_id, limit)
        rows = self._execute(sql + ' ORDER BY t.created DESC LIMIT ?', params)
        return [dict(zip((*_TASK_KEYS, 'robot_id'), r, strict=True)) for r in rows]

    def task_times(self, since: float) -> list[dict[str, Any]]:
        """Return id, created, updated and status of the tasks updated since `since`."""
        rows = self._execute('SELECT task_id, created, updated, status FROM tasks '
                             'WHERE updated >= ?', (since,))
        return [dict(zip(('task_id', 'created', 'updated', 'status'), r, strict=True))
                for r in rows]

    def order_times(self, since: float) -> list[dict[str, Any]]:
        """Return robot, created, updated and status of the orders that may overlap since..now
        (updated since then, or still open)."""
        rows = self._execute("SELECT robot_id, created, updated, status FROM orders WHERE "
                             "updated >= ? OR status IN ('dispatched', 'running')", (since,))
        return [dict(zip(('robot_id', 'created', 'updated', 'status'), r, strict=True))
                for r in rows]

    def samples(self, kind: str, since: float) -> list[dict[str, Any]]:
        """Return robot, time and value of the KPI samples of kind since `since`, oldest first."""
        rows = self._execute('SELECT robot_id, ts, value FROM samples WHERE kind = ? AND '
                             'ts >= ? ORDER BY ts', (kind, since))
        return [dict(zip(('robot_id', 'ts', 'value'), r, strict=True)) for r in rows]

    def factsheets(self) -> dict[str, str]:
        """Return the stored factsheet payload of every robot."""
        return {r[0]: r[1] for r in self._execute('SELECT robot_id, payload FROM factsheets')}

    def factsheet(self, robot_id: str) -> str | None:
        """Return the stored factsheet payload of one robot."""
        rows = self._execute('SELECT payload FROM factsheets WHERE robot_id = ?', (robot_id,))
        return str(rows[0][0]) if rows else None

    def count_states(self, robot_id: str | None = None) -> int:
        """Return the number of stored states (of one robot, or all)."""
        if robot_id is None:
            return int(self._execute('SELECT COUNT(*) FROM states')[0][0])
        return int(self._execute('SELECT COUNT(*) FROM states WHERE robot_id = ?',
                                 (robot_id,))[0][0])


def open_store(url: str, **kwargs: Any) -> Store:
    """Open the store named by url: a SQLite path/URL or a postgresql:// URL."""
    return Store(url, **kwargs)
