"""Fleet fault benchmark: hostile payloads, a broker restart and a database outage.

Everything runs on loopback: a private Mosquitto that refuses anonymous clients (each simulated
robot logs in with its own identity and may write only its own topics), the fleet server as its
own process (`python -m kpai_fleet.cli serve`, its own identity) and a throw-away PostgreSQL.
Robots are minimal MQTT 3.1.1 QoS 1 publishers (fleet_ingest.RawPublisher), one per robot.
A state counts as accepted when the broker acknowledged it (PUBACK, in order per connection);
lost = accepted valid states whose (robot, headerId) is missing from the states table at the
end (COUNT straight from PostgreSQL). Target: 0.

Phases, each bounded in message count and wall time:
1. hostile mix: --states messages from --robots robots as fast as the broker takes them, 1 % of
   them hostile (deep nesting, a 400-digit number, broken JSON, wrong types, non-UTF-8,
   another robot's identity, an oversized payload); states_per_s = valid states / (first
   publish -> last valid row committed, from the server's metrics).
2. broker restart: a steady stream (--rate states/s), Mosquitto stopped for --broker-down-s
   and started again on the same port; recovery_s = broker back -> first state published
   after the restart committed by the server (robots reconnect at once).
3. database outage: the same stream, PostgreSQL stopped for --db-down-s (default 30 s);
   recovery_s = database back -> every state accepted so far committed.

Run:  python bench/fleet_faults.py [--states 20000] [--robots 10] [--db-down-s 30]
Writes bench/results/fleet_faults.json and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'bench' / 'results' / 'fleet_faults.json'
sys.path.insert(0, str(ROOT / 'tests'))
sys.path.insert(0, str(ROOT / 'bench'))

from fleet_ingest import RawPublisher, Server, Template  # noqa: E402
from kpai_fleet.broker import LocalBroker  # noqa: E402
from kpai_fleet.credentials import SERVER_USER, CredentialStore  # noqa: E402
from kpai_fleet.pgserver import PostgresServer  # noqa: E402
from kpai_fleet.vda5050.models import format_timestamp  # noqa: E402
from kpai_testing import wait_until  # noqa: E402


def hostile_payloads(templates: list[Template]) -> list[tuple[str, bytes]]:
    """Return (kind, payload) pairs a robot publishes on its own state topic."""
    ts = format_timestamp(time.time()).encode()
    other = templates[1 % len(templates)]
    return [('deep_nesting', b'[' * 1100 + b']' * 1100),
            ('huge_number', templates[0].render(10 ** 400, ts)),
            ('malformed_json', b'{"headerId": 1, '),
            ('wrong_type', b'{"headerId": "x"}'),
            ('not_utf8', b'\xff\xfe' * 64),
            ('identity_mismatch', other.render(1, ts)),
            ('oversized', b'{"pad": "' + b'x' * 300_000 + b'"}')]


class Robot:
    """One robot: its own MQTT identity, its state template and what the broker acknowledged."""

    def __init__(self, broker: LocalBroker, store: CredentialStore, serial: str,
                 x: float) -> None:
        self.broker, self.serial = broker, serial
        self.password = store.password(serial)
        self.tpl = Template(serial, x)
        self.next_id = 0
        self.valid_acked: set[int] = set()
        self.link: RawPublisher | None = None
        self._sent: list[int | None] = []  # headerIds in publish order; None = hostile

    def connect(self, *, timeout: float = 20.0) -> None:
        """(Re)connect with this robot's credentials, retrying while the broker is away."""
        self.settle()
        if self.link is not None:
            self.link.sock.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.link = RawPublisher(self.broker.host, self.broker.port,
                                         f'bench-{self.serial}', username=self.serial,
                                         password=self.password)
                self._sent = []
                return
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def settle(self) -> None:
        """Record the valid states the broker acknowledged (PUBACKs arrive in order)."""
        if self.link is not None:
            for hid in self._sent[:self.link.acked]:
                if hid is not None:
                    self.valid_acked.add(hid)

    def state(self, ts: bytes) -> None:
        assert self.link is not None
        self.link.publish(self.tpl.topic, self.tpl.render(self.next_id, ts))
        self._sent.append(self.next_id)
        self.next_id += 1

    def hostile(self, payload: bytes) -> None:
        assert self.link is not None
        self.link.publish(self.tpl.topic, payload)
        self._sent.append(None)

    def flush(self) -> bool:
        try:
            assert self.link is not None
            self.link.flush()
            return True
        except OSError:
            return False


def rows(srv: Server) -> int:
    return int(srv.metrics()['store']['rows_written'])


def hostile_mix(srv: Server, robots: list[Robot], states: int, limit_s: float) -> dict[str, Any]:
    """Phase 1: as fast as possible, every 100th message hostile."""
    kinds = hostile_payloads([r.tpl for r in robots])
    m0, base = srv.metrics(), rows(srv)
    t0 = time.monotonic()
    valid = hostile = 0
    ts = format_timestamp(time.time()).encode()
    for n in range(states):
        if n % 500 == 0:
            ts = format_timestamp(time.time()).encode()
        robot = robots[n % len(robots)]
        if n % 100 == 99:
            robot.hostile(kinds[hostile % len(kinds)][1])
            hostile += 1
        else:
            robot.state(ts)
            valid += 1
    for r in robots:
        r.flush()
    deadline = t0 + limit_s
    while rows(srv) - base < valid and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    done = rows(srv) - base
    for r in robots:
        assert r.link is not None
        r.link.wait_acked(10)
        r.settle()
    m = srv.metrics()
    return {'messages': states, 'valid': valid, 'hostile': hostile,
            'hostile_kinds': [k for k, _ in kinds], 'rows_committed': done,
            'elapsed_s': round(elapsed, 3), 'states_per_s': round(done / elapsed, 1),
            'rejected': m['counts'].get('rejected', 0) - m0['counts'].get('rejected', 0),
            'rejected_by_reason': m.get('rejected_by_reason', {}),
            'mqtt_handler_errors': m['mqtt']['handler_errors'],
            'mqtt_loop_restarts': m['mqtt']['loop_restarts'],
            'server_connected_after': m['mqtt']['connected']}


def stream(robots: list[Robot], rate: float, seconds: float, *, until: Any = None) -> int:
    """Publish rate states/s round-robin for seconds (or until until() is true); return count."""
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < seconds and not (until is not None and until()):
        due = int((time.monotonic() - t0) * rate)
        ts = format_timestamp(time.time()).encode()
        while n < due:
            robots[n % len(robots)].state(ts)
            n += 1
        for r in robots:
            r.flush()
        time.sleep(0.01)
    return n


def broker_restart(srv: Server, broker: LocalBroker, robots: list[Robot], rate: float,
                   down_s: float) -> dict[str, Any]:
    """Phase 2: stop Mosquitto mid-stream, start it again, time until ingest resumes."""
    stream(robots, rate, 3.0)
    connects0 = srv.metrics()['mqtt']['connects']
    for r in robots:
        r.settle()
    broker.stop()
    time.sleep(down_s)
    broker.start()
    t_up = time.monotonic()
    for r in robots:
        r.connect()
    t_robots = time.monotonic() - t_up
    before = rows(srv)

    def resumed() -> bool:
        return rows(srv) > before and srv.metrics()['mqtt']['connects'] > connects0
    stream(robots, rate, 60.0, until=resumed)
    recovery = time.monotonic() - t_up
    connected = wait_until(lambda: srv.metrics()['mqtt']['connected'], timeout=30,
                           what='server reconnected')
    stream(robots, rate, 3.0)
    return {'broker_down_s': down_s, 'recovery_s': round(recovery, 3),
            'robots_reconnected_s': round(t_robots, 3), 'server_reconnected': bool(connected),
            'server_connects': srv.metrics()['mqtt']['connects'] - connects0}


def db_outage(srv: Server, pg: PostgresServer, robots: list[Robot], rate: float,
              down_s: float) -> dict[str, Any]:
    """Phase 3: stop PostgreSQL mid-stream for down_s, start it, time until caught up."""
    sent = stream(robots, rate, 3.0)
    pg.stop()
    t_down = time.monotonic()
    seen_unavailable = False
    live_during: set[int] = set()
    while time.monotonic() - t_down < down_s:
        sent += stream(robots, rate, 1.0)
        health = srv.http.get(srv.base + '/api/health').json()
        seen_unavailable |= health.get('store_available') is False
        live = srv.http.get(srv.base + '/api/robots', params={'fields': 'robot_id,header_id'})
        live_during.update(int(r.get('header_id') or 0) for r in live.json()
                           if r['robot_id'] == robots[0].serial)
    pg.start()
    t_up = time.monotonic()
    for r in robots:
        assert r.link is not None
        r.link.wait_acked(10)
        r.settle()
    target = rows_target(robots)
    try:
        wait_until(lambda: rows(srv) >= target, timeout=120, interval=0.1,
                   what='the store catching up')
        recovery: float | None = time.monotonic() - t_up
    except TimeoutError:
        recovery = None  # reported as such; the final count says what is missing
        print('store did not catch up:', target, srv.metrics()['store'], flush=True)
    return {'db_down_s': down_s,
            'recovery_s': round(recovery, 3) if recovery is not None else None,
            'states_during_outage': sent, 'store_unavailable_reported': seen_unavailable,
            'live_view_updated_during_outage': len(live_during) > 1,
            'accepted_total_so_far': sum(len(r.valid_acked) for r in robots)}


_ROWS_BASE = {'value': 0}


def rows_target(robots: list[Robot]) -> int:
    """Rows the server must have written once every accepted valid state is committed."""
    return _ROWS_BASE['value'] + sum(len(r.valid_acked) for r in robots)


def lost_states(pg_url: str, robots: list[Robot]) -> tuple[int, int]:
    """Return (accepted valid states missing from the database, rows in the database)."""
    import psycopg
    with psycopg.connect(pg_url) as c:
        stored = set(c.execute('SELECT robot_id, header_id FROM states').fetchall())
    missing = sum(1 for r in robots for hid in r.valid_acked if (r.serial, hid) not in stored)
    return missing, len(stored)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--states', type=int, default=20000)
    ap.add_argument('--robots', type=int, default=10)
    ap.add_argument('--rate', type=float, default=200.0, help='states/s of phases 2 and 3')
    ap.add_argument('--broker-down-s', type=float, default=5.0)
    ap.add_argument('--db-down-s', type=float, default=30.0)
    ap.add_argument('--limit-s', type=float, default=120.0)
    ap.add_argument('--out', default=str(RESULTS), help='where to write the JSON results')
    args = ap.parse_args()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix='kpai-faults-') as tmp, PostgresServer() as pg:
        store = CredentialStore(Path(tmp) / 'mqtt')
        store.add_server()
        serials = [f'robot{i + 1}' for i in range(args.robots)]
        for s in serials:
            store.add_vehicle('KPAI', s)
        broker = LocalBroker(credentials=store, workdir=Path(tmp) / 'broker').start()
        srv = None
        robots: list[Robot] = []
        try:
            srv = Server(f'mqtt://{SERVER_USER}@{broker.host}:{broker.port}', pg.url,
                         KPAI_FLEET_MQTT_PASSWORD=store.password(SERVER_USER))
            robots = [Robot(broker, store, s, float(i)) for i, s in enumerate(serials)]
            for r in robots:
                r.connect()
            _ROWS_BASE['value'] = rows(srv)
            out['hostile_mix'] = hostile_mix(srv, robots, args.states, args.limit_s)
            print('hostile mix:', out['hostile_mix'], flush=True)
            out['broker_restart'] = broker_restart(srv, broker, robots, args.rate,
                                                   args.broker_down_s)
            print('broker restart:', out['broker_restart'], flush=True)
            out['db_outage'] = db_outage(srv, pg, robots, args.rate, args.db_down_s)
            print('database outage:', out['db_outage'], flush=True)
            for r in robots:
                assert r.link is not None
                r.link.wait_acked(10)
                r.settle()
            target = rows_target(robots)
            try:
                wait_until(lambda: rows(srv) >= target, timeout=60, what='final commit')
            except TimeoutError as err:
                print(f'{err}: {rows(srv)} of {target}; counting what is stored', flush=True)
        finally:
            for r in robots:
                if r.link is not None:
                    r.link.close()
            if srv is not None:
                srv.stop()
            broker.close()
        lost, stored = lost_states(pg.url, robots)
    accepted = sum(len(r.valid_acked) for r in robots)
    result = {'hostile_states_per_s': out['hostile_mix']['states_per_s'],
              'broker_restart_recovery_s': out['broker_restart']['recovery_s'],
              'db_outage_recovery_s': out['db_outage']['recovery_s'],
              'accepted_states': accepted, 'rows_stored': stored, 'lost': lost,
              'targets': {'lost': 0}, 'details': out,
              'params': vars(args), 'store': 'postgresql (private, loopback)',
              'auth': 'per-robot MQTT identities with ACL'}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + '\n')
    print(json.dumps({k: v for k, v in result.items() if k != 'details'}, indent=2))
    return 0 if lost == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
