"""Fleet ingest benchmark: simulated robots -> Mosquitto -> `kpai-fleet serve` -> SQL store.

Everything runs on loopback: a private Mosquitto, the fleet server as its own process
(`python -m kpai_fleet.cli serve`) and, for PostgreSQL, a throw-away cluster (initdb in a
temp dir). This process plays the robots with one MQTT connection (QoS 1) and
publishes complete VDA 5050 state messages (valid against the models; only headerId and
timestamp change between messages, as a template) through a minimal MQTT 3.1.1 QoS 1 encoder
on a socket (RawPublisher), so the load generator costs little CPU next to the server.

Phases, each bounded in message count and wall time:
1. throughput, per store (SQLite file, then PostgreSQL): --robots robots publish --states
   states as fast as the broker accepts them; states_per_s = states / (time from the first
   publish until the last row is committed, read from the server's metrics). lost = states
   sent - rows counted in the database afterwards (COUNT(*) on the states table).
2. latency, SQLite: 1,000 robots at 1 Hz each (one state every millisecond, spread evenly) for
   --latency-seconds; the API (/api/robots?fields=robot_id,header_id: committed summaries) is
   polled every --poll-ms and each state's latency
   is the first poll that shows its headerId (or a newer one) minus its publish time; p50/p99.

Run:  python bench/fleet_ingest.py [--states 30000] [--robots 50] [--latency-seconds 20]
Writes bench/results/fleet_ingest.json and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'bench' / 'results' / 'fleet_ingest.json'
sys.path.insert(0, str(ROOT / 'tests'))

from kpai_fleet.broker import LocalBroker, free_port  # noqa: E402
from kpai_fleet.pgserver import PostgresServer  # noqa: E402
from kpai_fleet.vda5050.models import format_timestamp  # noqa: E402
from kpai_fleet.vda5050.order_tracker import OrderTracker  # noqa: E402
from kpai_fleet.vda5050.state_builder import (  # noqa: E402
    HeaderSource,
    InferenceHealth,
    RobotSnapshot,
    SafetyHealth,
    build_state,
)
from kpai_testing import ManagedProcess, ros_env, wait_until  # noqa: E402


class Template:
    """A robot's state JSON split around headerId and timestamp for cheap re-use."""

    def __init__(self, serial: str, x: float) -> None:
        snap = RobotSnapshot(x=x, y=2.0, theta=0.5, vx=0.5, position_initialized=True,
                             battery_pct=77.0,
                             safety=SafetyHealth(state=0, speed_limit=1.0, stamp=time.time()),
                             inference=InferenceHealth(backend='onnxruntime', device='CPU',
                                                       fps=15.0, stamp=time.time()))
        raw = build_state(HeaderSource('KPAI', serial), OrderTracker(), snap,
                          now=0.0).to_json()
        ts = format_timestamp(0.0).encode()
        head, rest = raw.split(b',', 1)
        assert head == b'{"headerId":0'
        self.before_ts, self.after_ts = rest.split(ts, 1)
        self.topic = f'uagv/v2/KPAI/{serial}/state'

    def render(self, header_id: int, ts: bytes) -> bytes:
        return b'{"headerId":%d,%s%s%s' % (header_id, self.before_ts, ts, self.after_ts)


class RawPublisher:
    """A minimal MQTT 3.1.1 QoS 1 publisher on a plain socket: the load generator.

    paho costs about as much CPU per message as the server's whole ingest; this encoder costs a
    few microseconds, so the benchmark measures the server, not the robots. PUBACKs are counted
    by a reader thread (acked == sent proves the broker took every message).
    """

    def __init__(self, host: str, port: int, client_id: str, *, username: str = '',
                 password: str = '') -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        flags = 0x02 | (0xC0 if username else 0)  # clean session [+ user name and password]
        body = b'\x00\x04MQTT\x04' + bytes([flags]) + b'\x00\x3c' + _string(client_id)
        if username:
            body += _string(username) + _string(password)
        self.sock.sendall(b'\x10' + _varint(len(body)) + body)
        ack = self._read_exact(4)
        if ack[0] != 0x20 or ack[3] != 0:
            raise RuntimeError(f'CONNACK refused: {ack!r}')
        self.sent = 0
        self.acked = 0
        self._buf: list[bytes] = []
        self._reader = threading.Thread(target=self._read_acks, daemon=True)
        self._reader.start()

    def _read_exact(self, n: int) -> bytes:
        data = b''
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError('broker closed the connection')
            data += chunk
        return data

    def _read_acks(self) -> None:
        pending = b''
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                pending += chunk
                n = len(pending) // 4  # PUBACK = 0x40 0x02 <id:2>; nothing else arrives
                self.acked += n
                pending = pending[4 * n:]
        except OSError:
            return

    def publish(self, topic: str, payload: bytes) -> None:
        """Queue one QoS 1 PUBLISH; sent on flush() or every 200 messages."""
        self.sent += 1
        t = topic.encode()
        var = struct.pack('!H', len(t)) + t + struct.pack('!H', self.sent % 65535 + 1)
        self._buf.append(b'\x32' + _varint(len(var) + len(payload)) + var + payload)
        if len(self._buf) >= 200:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            self.sock.sendall(b''.join(self._buf))
            self._buf = []

    def wait_acked(self, timeout: float) -> bool:
        self.flush()
        deadline = time.monotonic() + timeout
        while self.acked < self.sent and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.acked >= self.sent

    def close(self) -> None:
        try:
            self.flush()
            self.sock.sendall(b'\xe0\x00')  # DISCONNECT
        except OSError:
            pass
        self.sock.close()


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack('!H', len(raw)) + raw


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


BENCH_TOKEN = 'fleet-ingest-bench'  # the API token of the benchmark's own server


class Server:
    """The fleet server as a child process."""

    def __init__(self, broker_url: str, db_url: str, **env: str) -> None:
        self.port = free_port()
        self.base = f'http://127.0.0.1:{self.port}'
        self.proc = ManagedProcess(
            [sys.executable, '-m', 'kpai_fleet.cli', 'serve', '--db', db_url, '--broker',
             broker_url, '--port', str(self.port)],
            env=dict(ros_env(0), KPAI_FLEET_TOKEN=BENCH_TOKEN, **env), name='fleet_server')
        self.http = httpx.Client(timeout=10, headers={'Authorization': f'Bearer {BENCH_TOKEN}'})
        wait_until(self._up, timeout=30, what='fleet server')
        wait_until(lambda: self.metrics()['mqtt']['connected'], timeout=10, what='server MQTT')

    def _up(self) -> bool:
        if not self.proc.alive():
            raise RuntimeError('fleet server died:\n' + self.proc.output())
        try:
            return self.http.get(self.base + '/api/metrics').status_code == 200
        except httpx.HTTPError:
            return False

    def metrics(self) -> dict[str, Any]:
        return dict(self.http.get(self.base + '/api/metrics').json())

    def stop(self) -> None:
        self.http.close()
        self.proc.stop()


def cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds used so far by a process."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def count_rows(db_url: str) -> int:
    """COUNT(*) of the states table, straight from the database."""
    if db_url.startswith('sqlite'):
        with sqlite3.connect(db_url.removeprefix('sqlite:///')) as c:
            return int(c.execute('SELECT COUNT(*) FROM states').fetchone()[0])
    import psycopg
    with psycopg.connect(db_url) as c:
        return int(c.execute('SELECT COUNT(*) FROM states').fetchone()[0])


def throughput(broker: LocalBroker, db_url: str, robots: int, states: int,
               limit_s: float) -> dict[str, Any]:
    """Publish `states` states from `robots` robots as fast as possible; rate and loss."""
    srv = Server(broker.url, db_url)
    link = RawPublisher(broker.host, broker.port, f'bench-robots-{time.time_ns()}')
    try:
        templates = [Template(f'robot{i + 1}', float(i)) for i in range(robots)]
        base = srv.metrics()['store']['rows_written']
        pids = {'server': srv.proc.pid, 'mosquitto': broker.proc.pid if broker.proc else 0,
                'bench': os.getpid()}
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items() if p}
        load0 = os.getloadavg()[0]
        t0 = time.monotonic()
        ts = format_timestamp(time.time()).encode()
        for n in range(states):
            if n % 500 == 0:
                ts = format_timestamp(time.time()).encode()
            tpl = templates[n % robots]
            link.publish(tpl.topic, tpl.render(n // robots, ts))
        link.flush()
        t_sent = time.monotonic() - t0
        deadline = t0 + limit_s

        def stored() -> int:
            return int(srv.metrics()['store']['rows_written']) - base
        while stored() < states and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        done = stored()
        cpu = {k: round(cpu_seconds(p) - cpu0[k], 2) for k, p in pids.items() if p}
        link.wait_acked(10)
        acked = link.acked
        m = srv.metrics()
    finally:
        link.close()
        srv.stop()
    rows = count_rows(db_url)
    extra = {'cpu_s': cpu, 'server_cpu_us_per_state': round(cpu['server'] / states * 1e6, 1),
             'server_capacity_states_per_cpu_s': round(states / max(cpu['server'], 1e-9)),
             'loadavg_1min_before': round(load0, 2)}
    return {'states_sent': states, 'puback_received': acked, 'rows_stored': rows,
            'lost': states - rows,
            'publish_s': round(t_sent, 3), 'elapsed_s': round(elapsed, 3),
            'states_per_s': round(done / elapsed, 1), 'rejected': m['counts'].get('rejected', 0),
            'write_errors': m['store']['write_errors'], **extra}


def latency(broker: LocalBroker, db_url: str, robots: int, seconds: float,
            poll_ms: float) -> dict[str, Any]:
    """1 Hz per robot; latency from publish to first visibility through /api/robots."""
    srv = Server(broker.url, db_url)
    link = RawPublisher(broker.host, broker.port, f'bench-fleet-{time.time_ns()}')
    try:
        templates = [Template(f'robot{i + 1}', float(i % 40)) for i in range(robots)]
        published: dict[tuple[str, int], float] = {}
        seen: dict[str, int] = {}
        latencies: list[float] = []
        period = 1.0 / robots
        t0 = time.monotonic()
        next_poll = t0
        n = 0
        total = int(seconds * robots)
        while n < total or (len(latencies) < total and time.monotonic() - t0 < seconds + 10):
            now = time.monotonic()
            while n < total and t0 + n * period <= now:
                tpl = templates[n % robots]
                hid = n // robots
                link.publish(tpl.topic, tpl.render(hid, format_timestamp(time.time()).encode()))
                published[(tpl.topic.split('/')[3], hid)] = time.monotonic()
                n += 1
            link.flush()
            if now >= next_poll:
                next_poll = now + poll_ms / 1000.0
                for r in srv.http.get(srv.base + '/api/robots',
                                      params={'fields': 'robot_id,header_id'}).json():
                    rid, hid = r['robot_id'], r.get('header_id')
                    if hid is None:
                        continue
                    t_seen = time.monotonic()
                    for h in range(seen.get(rid, -1) + 1, hid + 1):
                        t_pub = published.pop((rid, h), None)
                        if t_pub is not None:
                            latencies.append(t_seen - t_pub)
                    seen[rid] = max(seen.get(rid, -1), hid)
            time.sleep(0.0005)
        m = srv.metrics()
    finally:
        link.close()
        srv.stop()
    latencies.sort()
    load = round(os.getloadavg()[0], 2)

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 4)
    return {'robots': robots, 'rate_hz_per_robot': 1.0, 'seconds': seconds,
            'states_sent': total, 'states_seen': len(latencies), 'poll_ms': poll_ms,
            'p50_s': pct(0.50), 'p99_s': pct(0.99), 'max_s': round(latencies[-1], 4),
            'rows_stored': m['store']['rows_written'], 'loadavg_1min_after': load}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--states', type=int, default=30000)
    ap.add_argument('--robots', type=int, default=50)
    ap.add_argument('--latency-robots', type=int, default=1000)
    ap.add_argument('--latency-seconds', type=float, default=20.0)
    ap.add_argument('--poll-ms', type=float, default=100.0)
    ap.add_argument('--limit-s', type=float, default=120.0)
    ap.add_argument('--skip-postgres', action='store_true')
    args = ap.parse_args()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix='kpai-bench-') as tmp, \
            LocalBroker(allow_anonymous=True) as broker:  # one connection plays all robots
        sqlite_url = f'sqlite:///{tmp}/fleet.db'
        out['sqlite'] = throughput(broker, sqlite_url, args.robots, args.states, args.limit_s)
        print('sqlite:', out['sqlite'], flush=True)
        if not args.skip_postgres:
            with PostgresServer() as pg:
                out['postgres'] = throughput(broker, pg.url, args.robots, args.states,
                                             args.limit_s)
            print('postgres:', out['postgres'], flush=True)
        out['latency'] = latency(broker, f'sqlite:///{tmp}/latency.db', args.latency_robots,
                                 args.latency_seconds, args.poll_ms)
        print('latency:', out['latency'], flush=True)
    result = {
        'sqlite_states_per_s': out['sqlite']['states_per_s'],
        'postgres_states_per_s': out.get('postgres', {}).get('states_per_s'),
        'lost': out['sqlite']['lost'] + out.get('postgres', {}).get('lost', 0),
        'p99_visible_latency_s_1000_robots': out['latency']['p99_s'],
        'targets': {'states_per_s': 5000, 'lost': 0, 'p99_visible_latency_s': 1.0},
        'details': out,
        'machine': {'cores': os.cpu_count(), 'note': 'cores shared with other workloads; '
                    'see loadavg_1min_* in details'},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + '\n')
    print(json.dumps({k: v for k, v in result.items() if k != 'details'}, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
