"""The conformance kit without MQTT: verdicts, recording, judging states, plans, reports."""

from __future__ import annotations

import json

import pytest
from fleet_foreign_agv import ForeignAgv
from kpai_fleet.conformance.evaluate import (
    SentOrder,
    order_problems,
    pause_problems,
    progression_problem,
)
from kpai_fleet.conformance.plan import (
    PlanError,
    Point,
    build_action,
    default_points,
    load_route,
    order_message,
    unsupported_action_type,
)
from kpai_fleet.conformance.recorder import Recorder
from kpai_fleet.conformance.report import (
    ConformanceReport,
    render_markdown,
    report_basename,
    write_report,
)
from kpai_fleet.conformance.verdict import CHECKS, CheckResult, Status, Verdict, decide
from kpai_fleet.errors import ConfigError
from kpai_fleet.vda5050.models import ActionStatus, Factsheet, State, parse_message

A = ActionStatus


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def all_pass(**override: CheckResult) -> list[CheckResult]:
    out = [CheckResult(n, Status.PASS, 'ok') for n in CHECKS]
    return [override.get(r.name, r) for r in out]


# -- verdict -------------------------------------------------------------------------------

def test_verdict_pass_fail_incomplete():
    will = CheckResult('last_will', Status.SKIP, 'cannot force', skip_code='will_not_forced')
    assert decide(all_pass(last_will=will)) is Verdict.PASS
    assert will.skip_allowed
    bad_skip = CheckResult('order_update', Status.SKIP, 'no position', skip_code='plan')
    assert decide(all_pass(order_update=bad_skip)) is Verdict.INCOMPLETE
    wrong_code = CheckResult('last_will', Status.SKIP, 'x', skip_code='offline')
    assert decide(all_pass(last_will=wrong_code)) is Verdict.INCOMPLETE
    failed = CheckResult('header_ids', Status.FAIL, 'state: headerId 3 after 5')
    assert decide(all_pass(header_ids=failed, order_update=bad_skip)) is Verdict.FAIL
    assert decide(all_pass()[:-1]) is Verdict.INCOMPLETE  # a check that never ran


# -- recorder ------------------------------------------------------------------------------

def foreign(serial: str = 'agv1') -> tuple[ForeignAgv, list[tuple[str, bytes]]]:
    sent: list[tuple[str, bytes]] = []
    return ForeignAgv(serial, lambda t, p: sent.append((t, p))), sent


def feed(rec: Recorder, sent: list[tuple[str, bytes]], **kw) -> None:
    for topic, payload in sent:
        rec.add(topic.rsplit('/', 1)[1], payload, **kw)
    sent.clear()


def test_recorder_validates_and_tracks_header_ids():
    agv, sent = foreign()
    rec = Recorder('Acme', 'agv1')
    agv.connect()
    agv.send_state()
    agv.send('factsheet', agv.factsheet())
    feed(rec, sent)
    assert rec.validation_result().status is Status.PASS
    assert rec.header_result().status is Status.PASS
    agv.ids['state'] = 0  # a restart of the counter
    agv.send_state()
    broken = dict(json.loads(sent[-1][1]), headerId=99, connectionState='CONNECTIONBROKEN')
    feed(rec, sent)
    rec.add('connection', json.dumps(broken).encode())  # a will: outdated headerId allowed
    result = rec.header_result()
    assert result.status is Status.FAIL
    assert result.details['listed'] == ['state: headerId 0 after 1']


def test_recorder_lists_invalid_and_misaddressed_messages():
    agv, sent = foreign()
    rec = Recorder('Acme', 'other')
    agv.send_state()
    state = json.loads(sent[-1][1])
    feed(rec, sent)
    rec.add('state', json.dumps(dict(state, driving='false', serialNumber='other')).encode())
    rec.add('state', b'{not json')
    result = rec.validation_result()
    assert result.status is Status.FAIL
    assert result.details['violations'] == 3
    listed = result.details['listed']
    assert 'header names Acme/agv1, the topic Acme/other' in listed[0]
    assert 'driving: expected a boolean (true or false), got the string "false"' in listed[1]
    assert 'malformed JSON' in listed[2]


def test_cadence_gap_and_late_events():
    clock = Clock()
    agv, sent = foreign()
    rec = Recorder('Acme', 'agv1', clock=clock)
    for t in (1.0, 20.0, 45.0):
        clock.t = t
        agv.send_state()
        feed(rec, sent)
    ok = rec.cadence_result(end=50.0)
    assert ok.status is Status.PASS and ok.details['max_gap_s'] == 25.0
    late = rec.cadence_result(end=80.0)
    assert late.status is Status.FAIL and '35.0 s without a state' in late.reason
    rec.note_event('order o1', 0.2)
    rec.note_event('startPause', None)
    result = rec.cadence_result(end=50.0)
    assert result.status is Status.FAIL and 'first: startPause (never)' in result.reason


# -- judging states ------------------------------------------------------------------------

def test_action_progression():
    assert progression_problem([A.WAITING, A.RUNNING, A.FINISHED]) == ''
    assert progression_problem([A.RUNNING, A.PAUSED, A.RUNNING, A.FINISHED]) == ''
    assert progression_problem([]) == 'never listed in actionStates'
    assert progression_problem([A.RUNNING, A.WAITING, A.FINISHED]) == (
        'went from RUNNING back to WAITING')
    assert progression_problem([A.FINISHED, A.FAILED]) == 'went from FINISHED back to FAILED'
    assert progression_problem([A.WAITING, A.FAILED]) == 'ended FAILED, expected FINISHED'


def run_order(agv: ForeignAgv, body: dict, sent, clock: Clock, steps: int) -> list:
    rec = Recorder('Acme', agv.serial, clock=clock)
    clock.t = 1.0
    agv.receive(agv.topic('order'), json.dumps(dict(agv.header('x'), **body)).encode())
    feed(rec, sent)
    for _ in range(steps):
        clock.t += 1.0
        agv.step()
        feed(rec, sent)
    return rec.states()


def test_order_judged_from_states():
    clock = Clock()
    agv, sent = foreign()
    nodes = [{'nodeId': f'n{i}', 'position': Point(i, 0), 'mapId': 'factory', 'released': True}
             for i in range(3)]
    nodes[1]['actions'] = [{'actionType': 'pick', 'actionId': 'p', 'blockingType': 'HARD',
                            'actionParameters': [{'key': 'stationType', 'value': 'floor'},
                                                 {'key': 'loadType', 'value': 'EPAL'}]}]
    body = order_message('o1', 0, nodes)
    sent_order = SentOrder('o1', 0, [('n0', 0, True), ('n1', 2, True), ('n2', 4, True)], ['p'])
    states = run_order(agv, body, sent, clock, 3)
    problems, details = order_problems(states, sent_order)
    assert problems == [] and details['last_nodes'] == ['n0:0', 'n1:2', 'n2:4']
    assert order_problems(states[:2], sent_order)[0] == [
        'ended at lastNode n0:0, expected n2:4',
        'released nodes still in nodeStates at the end: n1, n2',
        'released edges still in edgeStates at the end',
        'action p: ended WAITING, expected FINISHED (WAITING)']


def test_driving_onto_the_horizon_is_caught():
    clock = Clock()
    agv, sent = foreign()  # this double drives every node it gets, released or not
    nodes = [{'nodeId': f'n{i}', 'position': Point(i, 0), 'mapId': 'factory',
              'released': i < 2} for i in range(3)]
    states = run_order(agv, order_message('o2', 0, nodes), sent, clock, 3)
    sent_order = SentOrder('o2', 0, [('n0', 0, True), ('n1', 2, True), ('n2', 4, False)])
    problems, _ = order_problems(states, sent_order, horizon_before=100.0)
    assert 'drove onto horizon node n2 before it was released' in problems


def state_at(node: str, seq: int, *, paused: bool, driving: bool) -> State:
    agv, sent = foreign()
    agv.last_node = (node, seq)
    agv.send_state()
    d = dict(json.loads(sent[-1][1]), paused=paused, driving=driving)
    return parse_message('state', json.dumps(d))


def test_pause_problems():
    still = [(1.0, state_at('a', 0, paused=True, driving=False)),
             (2.0, state_at('a', 0, paused=True, driving=False))]
    assert pause_problems(still, paused_at=1.0, resumed_at=3.0) == []
    moving = [*still, (2.5, state_at('b', 2, paused=True, driving=True))]
    assert pause_problems(moving, paused_at=1.0, resumed_at=3.0) == [
        'reported driving=true while paused', 'passed nodes while paused: a -> b']


# -- plans ---------------------------------------------------------------------------------

def acme_factsheet() -> Factsheet:
    agv, sent = foreign()
    agv.send('factsheet', agv.factsheet())
    fs = parse_message('factsheet', sent[-1][1])
    assert isinstance(fs, Factsheet)
    return fs


def test_actions_built_from_what_the_factsheet_declares():
    fs = acme_factsheet()
    pick = build_action(fs, 'pick', 'p1', {'stationType': 'rack'})
    assert pick['actionParameters'] == [{'key': 'stationType', 'value': 'rack'},
                                        {'key': 'loadType', 'value': 'EPAL'}]  # from loadSets
    assert pick['blockingType'] == 'HARD'
    with pytest.raises(PlanError, match=r'pick requires actionParameter stationType \(STRING\)'):
        build_action(fs, 'pick', 'p2', {})
    with pytest.raises(PlanError, match='not the declared FLOAT'):
        build_action(fs, 'drop', 'd1', {'height': 'high'})
    with pytest.raises(PlanError, match='duration not declared'):
        build_action(fs, 'drop', 'd1', {'duration': 2})
    with pytest.raises(PlanError, match='startCharging is not declared'):
        build_action(fs, 'startCharging', 'c', {})
    assert unsupported_action_type(fs) not in {
        a.action_type for a in fs.protocol_features.agv_actions}


def test_orders_the_kit_builds_are_valid():
    nodes = [{'nodeId': f'n{i}', 'position': p, 'mapId': 'm', 'released': i < 2,
              'deviation': 0.5} for i, p in enumerate([Point(0, 0, 4.0), *default_points(
                  Point(0, 0, 0.0), 2.0)])]
    body = order_message('o', 3, nodes, first_sequence=4)
    msg = parse_message('order', json.dumps(dict(
        {'headerId': 1, 'timestamp': '2026-01-01T00:00:00.000Z', 'version': '2.0.0',
         'manufacturer': 'Acme', 'serialNumber': 'a'}, **body)))
    assert [n.sequence_id for n in msg.nodes] == [4, 6, 8]
    assert [e.released for e in msg.edges] == [True, False]
    assert msg.nodes[1].node_position.x == 2.0
    assert -3.15 < msg.nodes[0].node_position.theta < 0  # 4 rad wrapped into [-pi, pi]


def test_route_from_inline_json_and_yaml(tmp_path):
    spec = load_route('[{"x": 1, "y": 2}, {"x": 3, "y": 4, "theta": 0.5}]')
    assert spec.points == [Point(1.0, 2.0), Point(3.0, 4.0, 0.5)]
    f = tmp_path / 'route.yaml'
    f.write_text('mapId: hall3\nallowedDeviationXY: 0.3\nnodes:\n  - {x: 0, y: 0}\n'
                 '  - {x: 2, y: 0}\npick: {stationType: floor}\n')
    spec = load_route(str(f))
    assert (spec.map_id, spec.deviation_xy) == ('hall3', 0.3)
    assert spec.parameters['pick'] == {'stationType': 'floor'}
    for text, fragment in (('[{"x": 1, "y": 2}]', 'at least 2 positions'),
                           ('{"nodes": [{"x": 1}, {"x": 2, "y": 0}]}', 'nodes[0] needs x and y'),
                           ('[{"x": "1", "y": 2}, {"x": 3, "y": 4}]', 'nodes[0].x must be'),
                           ('{"nodez": []}', 'unknown keys nodez'),
                           (str(tmp_path / 'missing.yaml'), 'cannot read')):
        with pytest.raises(ConfigError, match=fragment.replace('[', r'\[').replace(']', r'\]')):
            load_route(text)


# -- reports -------------------------------------------------------------------------------

def test_report_files_and_markdown(tmp_path):
    assert report_basename('Acme Corp', 'a/1', 0.0) == 'conformance-Acme_Corp-a_1-19700101T000000Z'
    report = ConformanceReport('Acme', 'agv1', 'mqtt://127.0.0.1:1883', started=0.0)
    for r in all_pass(last_will=CheckResult('last_will', Status.SKIP, 'cannot force',
                                            skip_code='will_not_forced'),
                      pause=CheckResult('pause', Status.FAIL, 'passed nodes | while paused')):
        report.add(r)
    paths = write_report(report, tmp_path / 'out')
    data = json.loads(paths['json'].read_text())
    assert (data['verdict'], data['exit_code']) == ('fail', 1)
    assert [c['name'] for c in data['checks']] == list(CHECKS)
    md = paths['markdown'].read_text()
    assert md == render_markdown(report)
    assert '— FAIL' in md and '| pause | **FAIL** | passed nodes \\| while paused |' in md
    assert '| last_will | skip (accepted) | cannot force |' in md
