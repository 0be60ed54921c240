"""VDA 5050 2.0 to the letter: field names, strict JSON types, factsheet, predefined actions."""

from __future__ import annotations

import copy
import json
import math

import pytest
from kpai_fleet.errors import ValidationRejected
from kpai_fleet.server.dispatch import Place, TransportTask, build_cancel, build_order
from kpai_fleet.vda5050.actions import PREDEFINED_ACTIONS, check_action, declare_action
from kpai_fleet.vda5050.factsheet import ActionScope, Factsheet
from kpai_fleet.vda5050.models import (
    ConnectionState,
    InstantActions,
    Order,
    State,
    parse_message,
)
from kpai_fleet.vda5050.order_mapping import KPAI_ACTIONS
from kpai_fleet.vda5050.order_tracker import OrderTracker
from kpai_fleet.vda5050.state_builder import (
    HeaderSource,
    InferenceHealth,
    RobotSnapshot,
    SafetyHealth,
    build_connection,
    build_factsheet,
    build_state,
    build_visualization,
)
from test_fleet_order_mapping import act, make_order

HDR = {'headerId': 1, 'timestamp': '2026-01-02T03:04:05.678Z', 'version': '2.0.0',
       'manufacturer': 'Acme', 'serialNumber': 'agv7'}


def state_dict(**over):
    d = dict(HDR, orderId='', orderUpdateId=0, lastNodeId='', lastNodeSequenceId=0,
             nodeStates=[], edgeStates=[], driving=False, actionStates=[],
             batteryState={'batteryCharge': 80.5, 'charging': False},
             operatingMode='AUTOMATIC', errors=[],
             safetyState={'eStop': 'NONE', 'fieldViolation': False})
    d.update(over)
    return d


def order_with_position(position: dict) -> dict:
    node = {'nodeId': 'A', 'sequenceId': 0, 'released': True, 'actions': [],
            'nodePosition': dict({'x': 1.0, 'y': 2.0, 'mapId': 'm'}, **position)}
    return dict(HDR, orderId='o1', orderUpdateId=0, nodes=[node], edges=[])


def kpai_factsheet() -> dict:
    return json.loads(build_factsheet(HeaderSource('KPAI', 'robot1'), now=1.7e9).to_json())


# -- field names ---------------------------------------------------------------------------

def test_allowed_deviation_xy_is_spelled_as_the_spec_spells_it():
    msg = parse_message('order', json.dumps(order_with_position(
        {'allowedDeviationXY': 0.25, 'allowedDeviationTheta': 0.1})))
    pos = msg.nodes[0].node_position
    assert pos.allowed_deviation_xy == 0.25 and pos.allowed_deviation_theta == 0.1
    out = json.loads(msg.to_json())['nodes'][0]['nodePosition']
    assert out['allowedDeviationXY'] == 0.25 and 'allowedDeviationXy' not in out
    # the old misspelling is an unknown field: ignored, not taken for the spec's field
    wrong = parse_message('order', json.dumps(order_with_position({'allowedDeviationXy': 0.3})))
    assert wrong.nodes[0].node_position.allowed_deviation_xy is None
    # and the agent keeps it in the nodeStates it reports
    tracker = OrderTracker()
    assert tracker.receive(msg).kind == 'start'
    st = build_state(HeaderSource('KPAI', 'robot1'), tracker, RobotSnapshot(), now=1.7e9)
    assert json.loads(st.to_json())['nodeStates'][0]['nodePosition']['allowedDeviationXY'] == (
        0.25)


# -- strict types --------------------------------------------------------------------------

@pytest.mark.parametrize('change, fragment', [
    ({'headerId': '7'}, 'headerId: expected an integer (a JSON number without fraction), got '
                        'the string "7"'),
    ({'driving': 'true'}, 'driving: expected a boolean (true or false), got the string "true"'),
    ({'batteryState': {'batteryCharge': '80', 'charging': False}},
     'batteryState.batteryCharge: expected a number (a JSON number), got the string "80"'),
    ({'orderUpdateId': 1.5}, 'orderUpdateId: expected an integer'),
    ({'orderId': 5}, 'orderId: expected a string, got the number 5'),
    ({'driving': 1}, 'driving: expected a boolean'),
    ({'lastNodeSequenceId': True}, 'lastNodeSequenceId: expected an integer (a JSON number '
                                   'without fraction), got the boolean true'),
    ({'headerId': -1}, 'headerId'),
    ({'headerId': 2**32}, 'headerId'),
    ({'batteryState': {'batteryCharge': 80, 'charging': False, 'batteryHealth': 97.5}},
     'batteryHealth: expected an integer'),
    ({'batteryState': {'batteryCharge': 80, 'charging': False, 'reach': '100'}},
     'reach: expected an integer'),
    ({'paused': 'false'}, 'paused: expected a boolean'),
    ({'errors': [{'errorType': 'x', 'errorLevel': 'warning'}]}, 'errors.0.errorLevel'),
    ({'operatingMode': None}, 'operatingMode'),
    ({'safetyState': {'eStop': 'NONE'}}, 'safetyState.fieldViolation: required field missing'),
])
def test_state_types_are_strict(change, fragment):
    with pytest.raises(ValidationRejected) as exc:
        parse_message('state', json.dumps(state_dict(**change)))
    assert fragment in exc.value.reason


def test_python_field_names_are_wrong_field_names():
    d = state_dict()
    d['battery_state'] = d.pop('batteryState')
    with pytest.raises(ValidationRejected) as exc:
        parse_message('state', json.dumps(d))
    assert 'batteryState: required field missing' in exc.value.reason
    node = {'node_id': 'A', 'sequence_id': 0, 'released': True, 'actions': []}
    with pytest.raises(ValidationRejected) as exc:
        parse_message('order', json.dumps(dict(HDR, orderId='o', orderUpdateId=0,
                                               nodes=[node], edges=[])))
    assert 'nodes.0.nodeId: required field missing' in exc.value.reason


def test_integral_floats_are_accepted_as_the_json_numbers_they_are():
    st = parse_message('state', json.dumps(state_dict(
        headerId=43.0, orderUpdateId=2.0, lastNodeSequenceId=4.0,
        batteryState={'batteryCharge': 80, 'charging': True, 'batteryHealth': 97.0,
                      'reach': 1200.0})))
    assert isinstance(st, State) and st.header_id == 43 and isinstance(st.header_id, int)
    assert st.battery_state.battery_health == 97 and st.battery_state.reach == 1200
    out = json.loads(st.to_json())
    assert out['headerId'] == 43 and out['lastNodeSequenceId'] == 4  # written as integers
    assert out['batteryState']['batteryCharge'] == 80


@pytest.mark.parametrize('mutate, fragment', [
    (lambda o: o['nodes'][0].update(sequenceId='0'), 'nodes.0.sequenceId: expected an integer'),
    (lambda o: o['nodes'][0].update(released='true'), 'nodes.0.released: expected a boolean'),
    (lambda o: o['nodes'][0].update(nodeId=7), 'nodes.0.nodeId: expected a string'),
    (lambda o: o['nodes'][0]['nodePosition'].update(x='1.0'), 'nodePosition.x: expected a num'),
    (lambda o: o['nodes'][0]['nodePosition'].update(allowedDeviationXY=-1), 'allowedDeviationXY'),
    (lambda o: o['nodes'][0]['nodePosition'].update(allowedDeviationTheta=4.0),
     'allowedDeviationTheta'),
    (lambda o: o['nodes'][0].pop('actions'), 'nodes.0.actions: required field missing'),
    (lambda o: o['nodes'][0]['actions'].append(
        {'actionType': 'pick', 'actionId': 'p', 'blockingType': 'HARD',
         'actionParameters': [{'key': 'loadType', 'value': None}]}), 'must not be null'),
    (lambda o: o['nodes'][0]['actions'].append(
        {'actionType': 'pick', 'actionId': 'p', 'blockingType': 'hard'}), 'blockingType'),
])
def test_order_types_are_strict(mutate, fragment):
    raw = order_with_position({})
    mutate(raw)
    with pytest.raises(ValidationRejected) as exc:
        parse_message('order', json.dumps(raw))
    assert fragment in exc.value.reason


def test_instant_actions_and_connection_types_are_strict():
    ia = dict(HDR, actions=[{'actionType': 'startPause', 'actionId': 'a', 'blockingType': 'NONE',
                             'actionParameters': []}])
    assert isinstance(parse_message('instantActions', json.dumps(ia)), InstantActions)
    with pytest.raises(ValidationRejected, match='actions: expected an array'):
        parse_message('instantActions', json.dumps(dict(HDR, actions={'a': 1})))
    with pytest.raises(ValidationRejected, match='connectionState'):
        parse_message('connection', json.dumps(dict(HDR, connectionState='online')))


# -- factsheet -----------------------------------------------------------------------------

def test_kpai_factsheet_carries_what_2_0_requires():
    fs = kpai_factsheet()
    limits = fs['protocolLimits']
    assert set(limits) == {'maxStringLens', 'maxArrayLens', 'timing'}
    assert limits['maxStringLens']['msgLen'] == 256 * 1024
    assert {'minOrderInterval', 'minStateInterval'} <= set(limits['timing'])
    assert set(fs['typeSpecification']) >= {'seriesName', 'agvKinematic', 'agvClass',
                                           'maxLoadMass', 'localizationTypes',
                                           'navigationTypes'}
    assert set(fs['physicalParameters']) == {'speedMin', 'speedMax', 'accelerationMax',
                                            'decelerationMax', 'heightMin', 'heightMax',
                                            'width', 'length'}
    for key in ('headerId', 'timestamp', 'version', 'manufacturer', 'serialNumber',
                'protocolFeatures', 'agvGeometry', 'loadSpecification'):
        assert key in fs
    actions = {a['actionType']: a for a in fs['protocolFeatures']['agvActions']}
    pick = {p['key']: p for p in actions['pick']['actionParameters']}
    assert {'stationType', 'loadType', 'loadId', 'height', 'depth', 'side', 'lhd',
            'stationName'} <= set(pick)
    assert pick['height']['valueDataType'] == 'FLOAT' and pick['loadType']['isOptional']
    assert actions['pick']['actionScopes'] == ['NODE']
    assert actions['cancelOrder']['actionScopes'] == ['INSTANT']
    assert isinstance(parse_message('factsheet', json.dumps(fs)), Factsheet)


@pytest.mark.parametrize('mutate, fragment', [
    (lambda f: f['protocolLimits'].pop('maxStringLens'),
     'protocolLimits.maxStringLens: required field missing'),
    (lambda f: f['protocolLimits'].pop('timing'), 'protocolLimits.timing'),
    (lambda f: f['protocolLimits']['timing'].pop('minOrderInterval'), 'minOrderInterval'),
    (lambda f: f['protocolLimits']['maxStringLens'].update(msgLen='1000'), 'msgLen'),
    (lambda f: f['protocolFeatures']['agvActions'][0].pop('actionScopes'), 'actionScopes'),
    (lambda f: f['protocolFeatures']['agvActions'][0]['actionParameters'][0].update(
        valueDataType='DOUBLE'), 'valueDataType'),
    (lambda f: f['protocolFeatures'].pop('optionalParameters'), 'optionalParameters'),
    (lambda f: f['typeSpecification'].update(agvKinematic='TANK'), 'agvKinematic'),
    (lambda f: f['typeSpecification'].pop('navigationTypes'), 'navigationTypes'),
    (lambda f: f.pop('agvGeometry'), 'agvGeometry'),
    (lambda f: f.pop('headerId'), 'a 2.0.0 factsheet requires headerId'),
    (lambda f: f['physicalParameters'].pop('heightMin'), 'requires physicalParameters.heightMin'),
])
def test_incomplete_factsheets_are_rejected(mutate, fragment):
    fs = kpai_factsheet()
    mutate(fs)
    with pytest.raises(ValidationRejected) as exc:
        parse_message('factsheet', json.dumps(fs))
    assert fragment in exc.value.reason


def test_2_1_messages_are_accepted_where_2_1_only_adds():
    fs = kpai_factsheet()
    fs.update(version='2.1.0', vehicleConfig={'versions': [{'key': 'fw', 'value': '1'}]})
    for key in ('headerId', 'timestamp'):
        del fs[key]
    del fs['physicalParameters']['heightMin']
    fs['protocolFeatures']['agvActions'][0]['blockingTypes'] = ['HARD', 'SOFT']
    msg = parse_message('factsheet', json.dumps(fs))
    assert msg.header_id is None and msg.protocol_features.agv_actions[0].blocking_types
    st = state_dict(version='2.1.0', maps=[{'mapId': 'm', 'mapVersion': '1',
                                            'mapStatus': 'ENABLED'}],
                    errors=[{'errorType': 'x', 'errorLevel': 'WARNING', 'errorHint': 'h'}])
    assert parse_message('state', json.dumps(st)).errors[0].error_type == 'x'
    with pytest.raises(ValidationRejected, match='VDA 5050 2.x.y'):
        parse_message('state', json.dumps(state_dict(version='3.0.0')))


# -- every message the stack emits ----------------------------------------------------------

# Required top-level fields per message (VDA 5050 2.0.0, sections 6.4-6.16).
REQUIRED = {
    'order': {'orderId', 'orderUpdateId', 'nodes', 'edges'},
    'instantActions': {'actions'},
    'state': {'orderId', 'orderUpdateId', 'lastNodeId', 'lastNodeSequenceId', 'nodeStates',
              'edgeStates', 'driving', 'actionStates', 'batteryState', 'operatingMode',
              'errors', 'safetyState'},
    'connection': {'connectionState'},
    'visualization': set(),
    'factsheet': {'typeSpecification', 'physicalParameters', 'protocolLimits',
                  'protocolFeatures', 'agvGeometry', 'loadSpecification'},
}
HEADER = {'headerId', 'timestamp', 'version', 'manufacturer', 'serialNumber'}


def emitted_messages():
    h = HeaderSource('KPAI', 'robot1')
    tracker = OrderTracker()
    tracker.receive(make_order([('A', 0, 0, True, []),
                                ('B', 2, 0, True, [act('p', 'pick', stationType='floor',
                                                       loadType='EPAL', height=0.1)]),
                                ('C', 4, 0, False, [])]))
    tracker.step_started('p')
    tracker.track_instant('i1', 'startPause', tracker.actions['p'].action_status)
    tracker.add_error('validationError', 'bad', topic='order')
    snap = RobotSnapshot(x=1.0, y=2.0, theta=4.0, vx=0.3, battery_pct=55.5, charging=True,
                         position_initialized=True,
                         safety=SafetyHealth(state=2, reason='person', stamp=1.7e9),
                         inference=InferenceHealth(backend='cpu', fallback_active=True,
                                                   stamp=1.0))
    robot = {'robot_id': 'robot1', 'x': 0.0, 'y': 0.0, 'serial_number': 'robot1',
             'manufacturer': 'KPAI'}
    task = TransportTask(Place('a', 1, 1), Place('b', 2, 2, math.pi))
    return [
        ('state', build_state(h, tracker, snap, now=1.7e9)),
        ('state', build_state(h, OrderTracker(), RobotSnapshot(x=math.nan), now=1.7e9)),
        ('connection', build_connection(h, ConnectionState.CONNECTIONBROKEN, now=1.7e9)),
        ('visualization', build_visualization(h, snap, now=1.7e9)),
        ('factsheet', build_factsheet(h, now=1.7e9)),
        ('order', build_order(robot, task, 'o1', header_id=3, now=1.7e9,
                              agv_actions=KPAI_ACTIONS)),
        ('instantActions', build_cancel(robot, 'o1', header_id=4, now=1.7e9)),
    ]


@pytest.mark.parametrize('kind, msg', emitted_messages(), ids=lambda v: v if isinstance(
    v, str) else '')
def test_every_emitted_message_validates_strictly(kind, msg):
    raw = msg.to_json()
    again = parse_message(kind, raw)
    assert json.loads(again.to_json()) == json.loads(raw)  # nothing lost or renamed
    keys = set(json.loads(raw))
    assert HEADER | REQUIRED[kind] <= keys, sorted(HEADER | REQUIRED[kind] - keys)


# -- predefined actions --------------------------------------------------------------------

def test_predefined_action_catalogue_follows_the_spec_table():
    pick = {p.key: p for p in PREDEFINED_ACTIONS['pick'].parameters}
    drop = {p.key: p for p in PREDEFINED_ACTIONS['drop'].parameters}
    assert not pick['stationType'].optional and not pick['loadType'].optional
    assert all(pick[k].optional for k in ('lhd', 'stationName', 'loadId', 'height', 'depth',
                                          'side'))
    assert all(p.optional for p in drop.values()) and set(drop) == set(pick)
    assert pick['height'].data_type.value == 'FLOAT'
    init = PREDEFINED_ACTIONS['initPosition']
    assert [p.key for p in init.parameters] == ['x', 'y', 'theta', 'mapId', 'lastNodeId']
    assert [s.value for s in PREDEFINED_ACTIONS['cancelOrder'].scopes] == ['INSTANT']
    assert [s.value for s in PREDEFINED_ACTIONS['waitForTrigger'].scopes] == ['NODE']
    assert {'startPause', 'stopPause', 'startCharging', 'stopCharging', 'initPosition',
            'stateRequest', 'logReport', 'pick', 'drop', 'detectObject', 'finePositioning',
            'waitForTrigger', 'cancelOrder', 'factsheetRequest'} == set(PREDEFINED_ACTIONS)


def action(kind='pick', **params):
    from kpai_fleet.vda5050.models import Action

    return Action.model_validate_json(json.dumps(act('a1', kind, **params)))


@pytest.mark.parametrize('params, fragment', [
    ({'stationType': 'floor'}, 'missing actionParameter loadType'),
    ({'stationType': 'floor', 'loadType': 'EPAL', 'duration': 2}, "invalid actionParameter "
                                                                   "'duration'"),
    ({'stationType': 'floor', 'loadType': 'EPAL', 'height': '0.2'}, "'height' must be FLOAT"),
    ({'stationType': 3, 'loadType': 'EPAL'}, "'stationType' must be STRING"),
])
def test_check_action_enforces_declared_parameters(params, fragment):
    declared = declare_action('pick')
    with pytest.raises(ValidationRejected) as exc:
        check_action(action(**params), declared, ActionScope.NODE)
    assert fragment in exc.value.reason
    check_action(action(stationType='floor', loadType='EPAL', height=0.2, loadId='L1'),
                 declared, ActionScope.NODE)
    with pytest.raises(ValidationRejected, match='not usable as INSTANT'):
        check_action(action(stationType='floor', loadType='EPAL'), declared,
                     ActionScope.INSTANT)


def test_kpai_agent_accepts_predefined_parameters_and_rejects_unknown_ones():
    tracker = OrderTracker()
    full = {'stationType': 'floor', 'loadType': 'EPAL', 'stationName': 'rack_1',
            'loadId': 'L7', 'height': 0.0, 'depth': 0.5, 'side': 'left', 'lhd': 'top'}
    order = make_order([('A', 0, 0, True, []), ('B', 2, 0, True, [act('p', 'pick', **full)]),
                        ('C', 4, 0, True, [act('d', 'drop', stationType='floor')])])
    decision = tracker.receive(order)
    assert decision.kind == 'start', decision.reason
    assert decision.steps[2].station_id == 'rack_1'
    assert tracker.receive(make_order([('A', 0, 0, True, [act('p', 'pick', duration=1)])],
                                      order_id='o2')).kind == 'reject'  # busy, not the action
    tracker = OrderTracker()
    bad = make_order([('A', 0, 0, True, []),
                      ('B', 2, 0, False, [act('x', 'pick', speed=1.0)])])  # in the horizon
    decision = tracker.receive(bad)
    assert decision.kind == 'reject' and "invalid actionParameter 'speed'" in decision.reason
    err = tracker.errors[-1]
    assert err.error_type == 'orderError'
    assert err.references() == {'headerId': '1', 'topic': 'order', 'orderId': 'o1',
                                'orderUpdateId': '0', 'actionId': 'x',
                                'actionParameter': 'speed'}


def test_kpai_agent_rejects_trajectories_it_cannot_follow():
    raw = json.loads(make_order([('A', 0, 0, True, []), ('B', 2, 0, True, [])]).to_json())
    raw['edges'][0]['trajectory'] = {'degree': 1, 'knotVector': [0, 0, 1, 1],
                                     'controlPoints': [{'x': 0, 'y': 0}, {'x': 2, 'y': 0}]}
    order = parse_message('order', json.dumps(raw))
    assert isinstance(order, Order)
    decision = OrderTracker().receive(order)
    assert decision.kind == 'reject' and 'trajectories' in decision.reason
    bad = copy.deepcopy(raw)
    bad['edges'][0]['trajectory']['knotVector'] = [0, 2]
    with pytest.raises(ValidationRejected, match='knotVector'):
        parse_message('order', json.dumps(bad))
