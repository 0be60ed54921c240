"""A whole conformance run: connection, factsheet, the scenarios, then the run-wide checks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kpai_fleet.errors import BrokerError, ValidationRejected
from kpai_fleet.mqtt_link import redact_url
from kpai_fleet.vda5050.models import Connection, ConnectionState, Factsheet, parse_message

from .link import KitLink, retained_message
from .options import KitOptions
from .plan import declares
from .recorder import Recorder
from .report import ConformanceReport
from .scenarios import Scenarios
from .verdict import CHECKS, CheckResult, Status

__all__ = ['connection_check', 'factsheet_check', 'run_conformance']

Say = Callable[[str], None]
SCENARIOS = ('order_pick_drop', 'order_update', 'pause', 'cancel_order', 'cancel_without_order',
             'unsupported_instant_action', 'unsupported_order_action')


def connection_check(rec: Recorder, has_state: bool, retained_payload: bytes | None = None
                     ) -> CheckResult:
    """Judge the retained connection message against whether the vehicle sends states.

    retained_payload is what a fresh subscription found retained, for when the vehicle came
    online after the kit subscribed (then the kit itself saw the message live).
    """
    msgs = rec.of('connection')
    retained: list[tuple[Connection | None, str]] = [
        (m.model if isinstance(m.model, Connection) else None, m.error)
        for m in msgs if m.retained]
    if retained_payload is not None:
        try:
            model = parse_message('connection', retained_payload)
            retained.append((model if isinstance(model, Connection) else None, ''))
        except ValidationRejected as rej:
            retained.append((None, rej.reason))
    name = 'connection'
    if not has_state:
        last_model = retained[-1][0] if retained else None
        if last_model is not None and last_model.connection_state is not (
                ConnectionState.ONLINE):
            return CheckResult(name, Status.SKIP, f'vehicle is {last_model.connection_state.value}'
                               ' (retained connection message) and sends no state', {},
                               'offline')
        return CheckResult(name, Status.SKIP, 'no state from the vehicle: offline, or another '
                           'manufacturer/serial/interface name', {}, 'offline')
    if not retained:
        live = f' ({len(msgs)} without it)' if msgs else ''
        return CheckResult(name, Status.FAIL, 'no retained connection message: 6.14 asks for '
                           f'the retained flag{live}')
    model, error = retained[-1]
    if model is None:
        return CheckResult(name, Status.FAIL, f'retained connection message invalid: {error}')
    if model.connection_state is not ConnectionState.ONLINE:
        return CheckResult(name, Status.FAIL, f'retained connectionState '
                           f'{model.connection_state.value} while the vehicle sends states')
    return CheckResult(name, Status.PASS, 'retained ONLINE, valid',
                       {'headerId': model.header_id})


def factsheet_check(rec: Recorder, requested_at: float, action_id: str
                    ) -> tuple[CheckResult, Factsheet | None]:
    """Judge the factsheet sent after factsheetRequest, else the retained one."""
    name = 'factsheet'
    fresh = [m for m in rec.of('factsheet', requested_at) if not m.retained]
    retained = [m for m in rec.of('factsheet') if m.retained]
    if fresh:
        m = fresh[-1]
        if isinstance(m.model, Factsheet):
            fs = m.model
            return CheckResult(name, Status.PASS, f'sent on factsheetRequest, valid ({fs.version},'
                               f' {len(fs.protocol_features.agv_actions)} actions declared)'), fs
        return CheckResult(name, Status.FAIL, f'factsheet invalid: {m.error}'), None
    if retained and isinstance(retained[-1].model, Factsheet):
        fs = retained[-1].model
        if declares(fs, 'factsheetRequest'):
            return CheckResult(name, Status.FAIL, 'declares factsheetRequest but sent no '
                               'factsheet when asked'), fs
        return CheckResult(name, Status.PASS, 'retained factsheet valid (factsheetRequest, a '
                           '2.1 action, not declared nor answered)'), fs
    if retained:
        return CheckResult(name, Status.FAIL, f'retained factsheet invalid: '
                           f'{retained[-1].error}'), None
    return CheckResult(name, Status.FAIL, 'no factsheet: none retained and none sent on '
                       f'factsheetRequest (actionId {action_id})'), None


def _last_will(opts: KitOptions, rec: Recorder, say: Say) -> CheckResult:
    name = 'last_will'
    if opts.await_will_s <= 0:
        return CheckResult(name, Status.SKIP, 'the last will cannot be forced remotely: break '
                           'the vehicle connection during a run with --await-will to check it',
                           {}, 'will_not_forced')
    say(f'[will] break the connection of the vehicle now (unplug its network, kill its MQTT '
        f'client); waiting {opts.await_will_s:g} s for CONNECTIONBROKEN')
    t0 = rec.clock()
    broken = rec.wait_for(lambda: next(
        (m for m in rec.of('connection', t0) if isinstance(m.model, Connection)
         and m.model.connection_state is ConnectionState.CONNECTIONBROKEN), None),
        opts.await_will_s)
    if broken is None:
        return CheckResult(name, Status.FAIL, f'no CONNECTIONBROKEN within '
                           f'{opts.await_will_s:g} s (no last will, or the connection held)')
    payload = retained_message(opts, 'connection', max(1.0, opts.retained_wait_s))
    try:
        kept = parse_message('connection', payload) if payload is not None else None
    except ValidationRejected as rej:
        return CheckResult(name, Status.FAIL, f'retained last will invalid: {rej.reason}')
    if not (isinstance(kept, Connection)
            and kept.connection_state is ConnectionState.CONNECTIONBROKEN):
        return CheckResult(name, Status.FAIL, 'CONNECTIONBROKEN was sent but not retained')
    return CheckResult(name, Status.PASS, 'CONNECTIONBROKEN published by the broker, retained')


def _skip_rest(report: ConformanceReport, reason: str, code: str) -> None:
    for name in CHECKS:
        if report.result(name) is None:
            report.add(CheckResult(name, Status.SKIP, reason, {}, code))


def _options(opts: KitOptions) -> dict[str, Any]:
    keep = ('timeout_s', 'connect_timeout_s', 'retained_wait_s', 'event_timeout_s',
            'max_state_gap_s', 'pause_hold_s', 'step_m', 'long_route_nodes', 'await_will_s')
    out: dict[str, Any] = {k: getattr(opts, k) for k in keep}
    out['route_nodes'] = [p.__dict__ for p in opts.route.points]
    out['map_id'] = opts.route.map_id
    return out


def run_conformance(opts: KitOptions, say: Say = lambda _m: None,
                    recorder: Recorder | None = None) -> ConformanceReport:
    """Run every check against the vehicle opts names; never raises for vehicle behaviour."""
    opts = opts.validate()
    if not opts.run_id:
        opts = _with_run_id(opts)
    report = ConformanceReport(opts.manufacturer, opts.serial, redact_url(opts.broker_url),
                               opts.interface, opts.major, options=_options(opts))
    rec = recorder or Recorder(opts.manufacturer, opts.serial)
    t_start = time.monotonic()
    link = KitLink(opts, rec)
    say(f'[connect] {redact_url(opts.broker_url)}, topics {opts.topic("#")}')
    try:
        link.start(timeout=min(10.0, opts.connect_timeout_s))
    except BrokerError as err:
        _skip_rest(report, f'broker unreachable: {err}', 'broker')
        report.duration_s = time.monotonic() - t_start
        return report
    try:
        _run(opts, link, rec, report, say)
    finally:
        link.stop()
        report.duration_s = time.monotonic() - t_start
    return report


def _with_run_id(opts: KitOptions) -> KitOptions:
    from dataclasses import replace

    return replace(opts, run_id=f'{int(time.time()) % 100000:05d}')


def _show(say: Say, r: CheckResult) -> None:
    say(f'  {r.status.value.upper():<4} {r.name}: {r.reason}')


def _run(opts: KitOptions, link: KitLink, rec: Recorder, report: ConformanceReport,
         say: Say) -> None:
    rec.wait_for(lambda: rec.of('connection'), opts.retained_wait_s)
    say(f'[connection] waiting up to {opts.connect_timeout_s:g} s for a state')
    has_state = rec.wait_for(lambda: rec.of('state'), opts.connect_timeout_s) is not None
    fresh = None
    if has_state and not any(m.retained for m in rec.of('connection')):
        fresh = retained_message(opts, 'connection', max(0.5, opts.retained_wait_s))
    _show(say, report.add(connection_check(rec, has_state, fresh)))
    if not has_state:
        _skip_rest(report, 'vehicle offline: no state received', 'offline')
        return
    if rec.wait_for(rec.latest_state, opts.retained_wait_s) is None:
        _skip_rest(report, 'no valid state: the kit cannot follow the vehicle', 'invalid_state')
        for r in _run_wide(opts, rec):
            _show(say, report.add(r))
        return
    kit = Scenarios(opts, link, rec, say)
    say('[factsheet] factsheetRequest')
    aid, t = kit.instant('factsheetRequest')
    rec.wait_for(lambda: [m for m in rec.of('factsheet', t) if not m.retained],
                 opts.timeout_s)
    result, kit.factsheet = factsheet_check(rec, t, aid)
    _show(say, report.add(result))
    if kit.factsheet is not None:
        fs = kit.factsheet
        report.vehicle = {'version': fs.version, 'series': fs.type_specification.series_name,
                          'actions': len(fs.protocol_features.agv_actions)}
        for name in SCENARIOS:
            say(f'[{name}]')
            try:
                _show(say, report.add(getattr(kit, name)()))
            finally:
                kit.cleanup()
    else:
        for name in SCENARIOS:
            report.add(CheckResult(name, Status.SKIP, 'no valid factsheet: the kit uses only '
                                   'what the vehicle declares', {}, 'no_factsheet'))
    _show(say, report.add(_last_will(opts, rec, say)))
    for r in _run_wide(opts, rec):
        _show(say, report.add(r))


def _run_wide(opts: KitOptions, rec: Recorder) -> list[CheckResult]:
    """Return the checks over everything the vehicle sent during the run."""
    return [rec.cadence_result(end=rec.clock(), max_gap_s=opts.max_state_gap_s,
                               event_timeout_s=opts.event_timeout_s),
            rec.header_result(), rec.validation_result()]
