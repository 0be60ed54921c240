"""Hostile payloads: no message stops the server's ingest or the robot's agent (issue 15)."""

from __future__ import annotations

import json

import pytest
from kpai_fleet.agent_core import AgentConfig, AgentCore, StartMission
from kpai_fleet.errors import ValidationRejected
from kpai_fleet.faults import FaultLog
from kpai_fleet.server.ingest import FleetView, Ingest
from kpai_fleet.server.store import Store
from kpai_fleet.vda5050.guard import MAX_DEPTH, MAX_NUMBER_CHARS, check_json_bytes
from kpai_fleet.vda5050.models import Action, BlockingType, parse_message
from kpai_fleet.vda5050.order_mapping import action_to_step
from kpai_fleet.vda5050.order_tracker import OrderTracker
from kpai_fleet.vda5050.state_builder import HeaderSource, RobotSnapshot, build_state
from test_fleet_order_mapping import HDR, act, make_order

STATE_T = 'uagv/v2/KPAI/robot1/state'
ORDER_T = 'uagv/v2/KPAI/robot1/order'
LIMIT = 64 * 1024
DIGITS_400 = '9' * 400


def _state_dict(header_id: int) -> dict:
    st = build_state(HeaderSource('KPAI', 'robot1'), OrderTracker(),
                     RobotSnapshot(x=1.0, y=2.0, position_initialized=True), now=1.7e9)
    return dict(json.loads(st.to_json()), headerId=header_id)


def _swap(base: dict, path: tuple, raw_value: str) -> bytes:
    """Return base as JSON with the value at path replaced by raw JSON text raw_value."""
    doc = json.loads(json.dumps(base))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = '@@HOSTILE@@'
    return json.dumps(doc).replace('"@@HOSTILE@@"', raw_value).encode()


def hostile(base: dict, number_path: tuple) -> dict[str, bytes]:
    """The payloads of the hostile-input run, built around a valid message base."""
    return {
        'deep_arrays': b'[' * 1100 + b']' * 1100,
        'deep_objects': b'{"a":' * 1100 + b'1' + b'}' * 1100,
        'deep_inside_valid': _swap(base, number_path, '[' * 1100 + ']' * 1100),
        'unclosed_deep': b'{"a":' + b'[' * 100_000,
        'digits_400': _swap(base, number_path, DIGITS_400),
        'exp_1e400': _swap(base, number_path, '1e400'),
        'nan': _swap(base, number_path, 'NaN'),
        'wrong_type_string': _swap(base, number_path, '"fast"'),
        'wrong_type_object': _swap(base, number_path, '{"x": [1, 2]}'),
        'wrong_header_type': _swap(base, ('headerId',), '"x"'),
        'not_utf8': b'{"headerId": "\xff\xfe\xfa"}',
        'utf16': json.dumps(base).encode('utf-16'),
        'oversized': b'{"pad": "' + b'x' * (LIMIT + 10) + b'"}',
        'array': b'[1, 2, 3]',
        'number': b'42',
        'string': b'"state"',
        'null': b'null',
        'empty': b'',
        'truncated': json.dumps(base).encode()[:-7],
    }


STATE_HOSTILE = hostile(_state_dict(0), ('batteryState', 'batteryCharge'))
ORDER_HOSTILE = hostile(json.loads(make_order(
    [('A', 0, 0, True, []), ('B', 1, 0, True, [act('h-p', 'pick', duration=1.0)])],
    order_id='hostile').to_json()), ('nodes', 1, 'actions', 0, 'actionParameters', 0, 'value'))


# -- the guard itself ----------------------------------------------------------------------
def _nested(depth: int) -> bytes:
    return b'{"a":' + b'[' * (depth - 1) + b']' * (depth - 1) + b'}'


def test_guard_limits_are_exact():
    check_json_bytes(_nested(MAX_DEPTH), max_bytes=LIMIT)
    with pytest.raises(ValidationRejected, match=f'deeper than {MAX_DEPTH}'):
        check_json_bytes(_nested(MAX_DEPTH + 1), max_bytes=LIMIT)
    ok = '1' * MAX_NUMBER_CHARS
    check_json_bytes(f'{{"a": {ok}, "b": -1.5e308, "c": 4.9e-324}}', max_bytes=LIMIT)
    with pytest.raises(ValidationRejected, match=f'{MAX_NUMBER_CHARS + 1} characters'):
        check_json_bytes(f'{{"a": {ok}1}}', max_bytes=LIMIT)
    with pytest.raises(ValidationRejected, match='out of the double range'):
        check_json_bytes('{"a": 1e100, "b": [2, -1.8e308]}', max_bytes=LIMIT)
    with pytest.raises(ValidationRejected, match='exceeds the 100 byte limit'):
        check_json_bytes(b'{"a": "' + b'x' * 100 + b'"}', max_bytes=100)


def test_guard_ignores_what_strings_hold():
    text = '[' * 200 + ' NaN Infinity 1e999 ' + '9' * 100 + ' \\" ]]]'
    check_json_bytes(json.dumps({'a': text, 'b': [text, {'c': text}]}), max_bytes=LIMIT)
    # closing brackets in a string do not hide real depth
    hidden = b'{"a": "' + b']' * 200 + b'", "b": ' + b'[' * 100 + b']' * 100 + b'}'
    with pytest.raises(ValidationRejected, match='deeper'):
        check_json_bytes(hidden, max_bytes=LIMIT)
    with pytest.raises(ValidationRejected, match='deeper'):  # escaped quotes take the slow path
        check_json_bytes(b'{"a": "\\"]]]]", "b": ' + b'[' * 100 + b'0' + b']' * 100 + b'}',
                         max_bytes=LIMIT)


@pytest.mark.parametrize('name', sorted(STATE_HOSTILE))
def test_parse_message_rejects_with_a_reason(name):
    with pytest.raises(ValidationRejected) as err:
        parse_message('state', STATE_HOSTILE[name], max_bytes=LIMIT)
    assert err.value.reason


def test_huge_numbers_in_order_parameters_are_out_of_range_not_a_crash():
    for value in (10 ** 400, -(10 ** 400), float('inf'), float('nan'), '1e400', [1], {'a': 1}):
        action = Action(action_type='wait', action_id='w', blocking_type=BlockingType.HARD,
                        action_parameters=[{'key': 'duration', 'value': value}])
        node = make_order([('A', 0, 0, True, [])]).nodes[0]
        with pytest.raises(ValidationRejected, match='duration'):
            action_to_step(action, node, 0.0, 0.0, 0.0)


# -- the fleet server's ingest -------------------------------------------------------------
@pytest.fixture
def ingest(tmp_path):
    store = Store(f'sqlite:///{tmp_path}/fleet.db', flush_ms=20, batch_rows=100)
    lines: list[str] = []
    ing = Ingest(store, FleetView(), max_bytes=LIMIT, faults=FaultLog(lines.append))
    yield ing, lines
    store.close()


@pytest.mark.parametrize('name', sorted(STATE_HOSTILE))
def test_ingest_survives_each_hostile_state(ingest, name):
    ing, _ = ingest
    assert ing.handle(STATE_T, STATE_HOSTILE[name]) is False
    assert ing.handle(STATE_T, json.dumps(_state_dict(7)).encode()) is True
    ing.store.flush()
    assert ing.store.count_states() == 1 and ing.view.snapshot()[0]['header_id'] == 7
    assert ing.counts['rejected'] == 1 and ing.counts['accepted'] == 1


def test_ingest_contains_unexpected_errors_and_logs_them_rate_limited(ingest):
    ing, lines = ingest
    real = ing.store.submit_state
    calls = {'n': 0}

    def broken(row):
        calls['n'] += 1
        if calls['n'] <= 3:
            raise RuntimeError('database driver bug')
        real(row)

    ing.store.submit_state = broken
    for i in range(4):
        ing.handle(STATE_T, json.dumps(_state_dict(i)).encode())
    ing.store.flush()
    assert ing.counts['failed'] == 3 and ing.counts['accepted'] == 1
    assert ing.store.count_states() == 1
    m = ing.metrics()
    assert m['faults']['error:RuntimeError'] == 3
    assert [line for line in lines if 'RuntimeError' in line] == [
        f"error:RuntimeError: {STATE_T}: RuntimeError('database driver bug')"]


def test_fault_log_reports_once_per_kind_per_interval():
    clock = [100.0]
    lines: list[str] = []
    log = FaultLog(lines.append, interval_s=10.0, clock=lambda: clock[0])
    for _ in range(5):
        log.record('a', 'first')
    log.record('b', 'other')
    clock[0] = 111.0
    log.record('a', 'later')
    assert lines == ['a: first', 'b: other', 'a: later (+4 more of this kind suppressed)']
    assert log.snapshot() == {'a': 6, 'b': 1}


# -- the robot's agent core ----------------------------------------------------------------
class _Sink:
    def __init__(self) -> None:
        self.msgs: list[tuple[str, bytes]] = []

    def __call__(self, topic, payload, qos, retain):
        self.msgs.append((topic, payload))


@pytest.mark.parametrize('name', sorted(ORDER_HOSTILE))
def test_agent_survives_each_hostile_order(name):
    core = AgentCore(AgentConfig(serial_number='robot1', max_payload_bytes=LIMIT), _Sink())
    core.snapshot.position_initialized = True
    core.on_message(ORDER_T, ORDER_HOSTILE[name])
    assert not core.take_commands()
    # refused as a message, or (a parameter of a wrong type) as an order
    assert core.counts['rejected'] + core.counts['order_reject'] == 1
    assert core.counts.get('failed', 0) == 0
    core.on_message(ORDER_T, make_order([('A', 0, 0, True, []),
                                         ('B', 1, 0, True, [act('p', 'pick')])]).to_json())
    (cmd,) = core.take_commands()
    assert isinstance(cmd, StartMission) and cmd.steps[-1].step_id == 'p'


def test_agent_order_with_a_400_digit_duration_is_refused_not_a_crash():
    """The guard lets a 40-digit number through; order_mapping must refuse it by range."""
    core = AgentCore(AgentConfig(serial_number='robot1'), _Sink())
    core.snapshot.position_initialized = True
    raw = json.loads(make_order([('A', 0, 0, True, []),
                                 ('B', 1, 0, True, [act('p', 'pick', duration=1.0)])]).to_json())
    raw['nodes'][1]['actions'][0]['actionParameters'][0]['value'] = 10 ** 39
    core.on_message(ORDER_T, json.dumps(raw).encode())
    assert not core.take_commands()
    core.publish_state()
    assert core.counts['order_reject'] == 1 and core.counts.get('failed', 0) == 0


def test_agent_contains_unexpected_errors():
    lines: list[str] = []
    sink = _Sink()
    core = AgentCore(AgentConfig(serial_number='robot1'), sink, faults=FaultLog(lines.append))
    core.snapshot.position_initialized = True
    receive = core.tracker.receive
    core.tracker.receive = lambda *a, **k: (_ for _ in ()).throw(RecursionError('deep'))
    order = make_order([('A', 0, 0, True, []), ('B', 1, 0, True, [act('p', 'pick')])])
    core.on_message(ORDER_T, order.to_json())
    assert core.counts['failed'] == 1 and lines and 'RecursionError' in lines[0]
    core.publish_state()
    state = json.loads(sink.msgs[-1][1])
    assert [e['errorType'] for e in state['errors']] == ['kpai.messageFailed']
    core.tracker.receive = receive
    core.on_message(ORDER_T, make_order([('A', 0, 0, True, [])], order_id='o2').to_json())
    assert isinstance(core.take_commands()[0], StartMission)


def test_instant_actions_hostile_then_valid():
    core = AgentCore(AgentConfig(serial_number='robot1'), _Sink())
    topic = 'uagv/v2/KPAI/robot1/instantActions'
    core.on_message(topic, b'{"actions":' + b'[' * 5000)
    core.on_message(topic, json.dumps(dict(HDR, actions=[
        {'actionId': 'i1', 'actionType': 'startPause', 'blockingType': 'HARD'}])).encode())
    assert core.counts['rejected'] == 1 and len(core.take_commands()) == 1
