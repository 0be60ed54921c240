"""`kpai-fleet conformance` over a real Mosquitto: a conformant vehicle passes, each broken
vehicle fails the check its fault breaks, with the reason."""

from __future__ import annotations

import json
import re

import pytest
from fleet_conformance_vehicles import SimVehicle
from kpai_fleet.broker import LocalBroker
from kpai_fleet.cli import main
from kpai_fleet.conformance.options import KitOptions
from kpai_fleet.conformance.run import run_conformance
from kpai_fleet.conformance.verdict import Status, Verdict

FAST = {'timeout_s': 3.0, 'connect_timeout_s': 5.0, 'retained_wait_s': 0.5,
        'event_timeout_s': 2.0, 'pause_hold_s': 0.4, 'long_route_nodes': 6}


@pytest.fixture(scope='module')
def broker():
    # the kit's verdicts, not the broker's logins (tests/unit/test_fleet_identities.py):
    # the development flag lets every simulated vehicle in under its own serial
    with LocalBroker(allow_anonymous=True) as b:
        yield b


def kit(broker, serial, **over):
    opts = KitOptions(broker_url=broker.url, manufacturer='Sim', serial=serial,
                      **dict(FAST, **over))
    lines: list[str] = []
    report = run_conformance(opts, say=lines.append)
    return report, lines


def by_name(report):
    return {r.name: r for r in report.results}


def test_conformant_vehicle_passes(broker):
    with SimVehicle(broker.url, 'good1'):
        report, lines = kit(broker, 'good1')
    checks = by_name(report)
    assert {n: r.status for n, r in checks.items() if r.status is not Status.PASS} == {
        'last_will': Status.SKIP}, [(r.name, r.reason) for r in report.results]
    assert checks['last_will'].skip_allowed
    assert report.verdict is Verdict.PASS and report.exit_code == 0
    assert checks['message_validation'].details['violations'] == 0
    assert checks['message_validation'].details['per_topic']['state'] >= 10
    assert any(line.startswith('[order_pick_drop]') for line in lines)


def test_last_will_checked_when_the_connection_is_broken(broker):
    with SimVehicle(broker.url, 'will1') as vehicle:
        def say(line: str) -> None:
            if line.startswith('[will]'):
                vehicle.break_connection()
        opts = KitOptions(broker_url=broker.url, manufacturer='Sim', serial='will1',
                          **dict(FAST, await_will_s=20.0))
        report = run_conformance(opts, say=say)
    will = by_name(report)['last_will']
    assert will.status is Status.PASS, will.reason
    assert report.verdict is Verdict.PASS


def test_vehicle_without_last_will_fails_the_will_check(broker):
    with SimVehicle(broker.url, 'nowill') as vehicle:
        vehicle.link.stop()  # graceful: OFFLINE and a DISCONNECT, so no will is sent
        vehicle.link = type(vehicle.link)(broker.url, 'sim-nowill-again',
                                          subscriptions=vehicle.core.subscriptions(),
                                          on_message=vehicle._receive,
                                          on_connect=vehicle.core.on_connected)
        vehicle.link.start()
        assert vehicle.link.wait_connected(10)

        def say(line: str) -> None:
            if line.startswith('[will]'):
                vehicle.break_connection()
        opts = KitOptions(broker_url=broker.url, manufacturer='Sim', serial='nowill',
                          **dict(FAST, await_will_s=3.0))
        report = run_conformance(opts, say=say)
    will = by_name(report)['last_will']
    assert will.status is Status.FAIL
    assert 'no CONNECTIONBROKEN' in will.reason


@pytest.mark.parametrize(('fault', 'check', 'reason'), [
    ('field_name', 'message_validation', r'state: schema violation.*batteryState: required'),
    ('field_type', 'message_validation', r'driving: expected a boolean.*string "false"'),
    ('header_ids', 'header_ids', r'state: headerId 7 after 7'),
    ('no_factsheet', 'factsheet', r'no factsheet: none retained and none sent'),
    ('executes_unsupported', 'unsupported_instant_action',
     r'kpaiConformanceUndeclared \(not in the factsheet\) reported FINISHED'),
    ('ignores_pause', 'pause', r'passed nodes while paused|driving=true while paused'),
])
def test_broken_vehicle_fails_with_its_reason(broker, fault, check, reason):
    serial = f'bad-{fault}'.replace('_', '-')
    with SimVehicle(broker.url, serial, fault=fault):
        report, _ = kit(broker, serial)
    result = by_name(report)[check]
    assert result.status is Status.FAIL, (result.reason, report.results)
    assert re.search(reason, result.reason), result.reason
    assert report.verdict is Verdict.FAIL and report.exit_code == 1


def test_offline_vehicle_is_incomplete_not_failed(broker, tmp_path, capsys):
    code = main(['conformance', '--broker', broker.url, '--manufacturer', 'Sim', '--serial',
                 'nobody', '--connect-timeout', '1', '--report', str(tmp_path)])
    assert code == 3
    out = capsys.readouterr().out
    assert 'conformance INCOMPLETE (exit code 3)' in out
    [json_path] = tmp_path.glob('conformance-Sim-nobody-*.json')
    data = json.loads(json_path.read_text())
    assert data['verdict'] == 'incomplete'
    conn = next(c for c in data['checks'] if c['name'] == 'connection')
    assert conn['status'] == 'skip' and 'no state from the vehicle' in conn['reason']
    assert (tmp_path / json_path.name.replace('.json', '.md')).exists()


def test_cli_writes_a_passing_report(broker, tmp_path):
    with SimVehicle(broker.url, 'cli1'):
        code = main(['conformance', '--broker', broker.url, '--manufacturer', 'Sim',
                     '--serial', 'cli1', '--timeout', '3', '--connect-timeout', '5',
                     '--pause-hold', '0.4', '--event-timeout', '2', '--report', str(tmp_path),
                     '--nodes', '{"nodes": [{"x": 1, "y": 0}, {"x": 1, "y": 1}]}'])
    [md] = tmp_path.glob('conformance-Sim-cli1-*.md')
    text = md.read_text()
    assert code == 0, text
    assert '— PASS' in text and '| last_will | skip (accepted) |' in text
