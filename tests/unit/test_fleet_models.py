"""VDA 5050 models: valid messages round-trip, bad ones are rejected with a reason."""

from __future__ import annotations

import json

import pytest
from kpai_fleet.errors import ValidationRejected
from kpai_fleet.vda5050.models import (
    Order,
    State,
    format_timestamp,
    parse_message,
    parse_timestamp,
)
from kpai_fleet.vda5050.order_tracker import OrderTracker
from kpai_fleet.vda5050.state_builder import HeaderSource, RobotSnapshot, build_state
from kpai_fleet.vda5050.topics import parse_topic

HDR = {'headerId': 1, 'timestamp': '2026-01-02T03:04:05.678Z', 'version': '2.0.0',
       'manufacturer': 'KPAI', 'serialNumber': 'robot1'}


def node(nid: str, seq: int, x: float, y: float, released: bool = True, actions=()):
    return {'nodeId': nid, 'sequenceId': seq, 'released': released,
            'nodePosition': {'x': x, 'y': y, 'mapId': 'factory'}, 'actions': list(actions)}


def edge(eid: str, seq: int, a: str, b: str, released: bool = True):
    return {'edgeId': eid, 'sequenceId': seq, 'released': released, 'startNodeId': a,
            'endNodeId': b, 'actions': []}


def order_dict(**over):
    d = dict(HDR, orderId='o1', orderUpdateId=0,
             nodes=[node('A', 0, 0, 0), node('B', 2, 3, 0), node('C', 4, 3, 4)],
             edges=[edge('e1', 1, 'A', 'B'), edge('e2', 3, 'B', 'C')])
    d.update(over)
    return d


def test_valid_order_parses_and_round_trips():
    raw = json.dumps(order_dict()).encode()
    msg = parse_message('order', raw)
    assert isinstance(msg, Order)
    assert [n.node_id for n in msg.base_nodes()] == ['A', 'B', 'C']
    again = json.loads(msg.to_json())
    assert again['nodes'][1]['nodePosition']['mapId'] == 'factory'
    assert again['serialNumber'] == 'robot1'


@pytest.mark.parametrize('payload, fragment', [
    (b'{"headerId": 1,', 'malformed JSON'),
    (b'[1, 2]', 'schema violation'),
    (json.dumps(order_dict(timestamp='yesterday')).encode(), 'timestamp'),
    (json.dumps(order_dict(timestamp='2026-01-02T03:04:05')).encode(), 'time zone'),
    (json.dumps(order_dict(version='1.1.0')).encode(), 'VDA 5050 2.x.y'),
    (json.dumps(order_dict(serialNumber='a/b')).encode(), 'serialNumber'),
    (json.dumps(order_dict(headerId=-1)).encode(), 'headerId'),
    (json.dumps(order_dict(nodes=[])).encode(), 'nodes'),
    (json.dumps(order_dict(edges=[edge('e1', 1, 'A', 'B')])).encode(), 'edges'),
    (json.dumps(order_dict(nodes=[node('A', 0, 0, 0), node('B', 3, 3, 0), node('C', 4, 3, 4)])
                ).encode(), 'expected 2'),
    (json.dumps(order_dict(edges=[edge('e1', 1, 'A', 'C'), edge('e2', 3, 'B', 'C')])
                ).encode(), 'must join'),
    (json.dumps(order_dict(nodes=[node('A', 0, 0, 0), node('B', 2, 3, 0, released=False),
                                  node('C', 4, 3, 4)],
                           edges=[edge('e1', 1, 'A', 'B', False), edge('e2', 3, 'B', 'C', False)])
                ).encode(), 'released after a horizon'),
])
def test_bad_orders_are_rejected_with_reason(payload, fragment):
    with pytest.raises(ValidationRejected) as exc:
        parse_message('order', payload)
    assert fragment in exc.value.reason


def test_action_needs_blocking_type_and_unique_ids():
    act = {'actionType': 'pick', 'actionId': 'a1', 'blockingType': 'HARD'}
    ok = order_dict(nodes=[node('A', 0, 0, 0), node('B', 2, 3, 0, actions=[act]),
                           node('C', 4, 3, 4)])
    parse_message('order', json.dumps(ok))
    bad = dict(act, blockingType='SOMETIMES')
    with pytest.raises(ValidationRejected, match='blocking_type|blockingType'):
        parse_message('order', json.dumps(order_dict(
            nodes=[node('A', 0, 0, 0), node('B', 2, 3, 0, actions=[bad]), node('C', 4, 3, 4)])))
    with pytest.raises(ValidationRejected, match='unique'):
        parse_message('order', json.dumps(order_dict(
            nodes=[node('A', 0, 0, 0, actions=[act]), node('B', 2, 3, 0, actions=[act]),
                   node('C', 4, 3, 4)])))


def test_oversized_payload_and_unknown_topic():
    big = json.dumps(order_dict(zoneSetId='x' * 5000)).encode()
    with pytest.raises(ValidationRejected, match='exceeds'):
        parse_message('order', big, max_bytes=4096)
    with pytest.raises(ValidationRejected, match='unknown topic'):
        parse_message('bogus', b'{}')


def test_instant_actions_and_connection():
    ia = dict(HDR, actions=[{'actionType': 'cancelOrder', 'actionId': 'c1',
                             'blockingType': 'HARD'}])
    assert parse_message('instantActions', json.dumps(ia)).actions[0].action_type == 'cancelOrder'
    conn = dict(HDR, connectionState='CONNECTIONBROKEN')
    assert parse_message('connection', json.dumps(conn)).connection_state.value == (
        'CONNECTIONBROKEN')
    with pytest.raises(ValidationRejected):
        parse_message('connection', json.dumps(dict(HDR, connectionState='MAYBE')))


def test_built_state_validates_against_the_model():
    headers = HeaderSource('KPAI', 'robot1')
    st = build_state(headers, OrderTracker(), RobotSnapshot(x=1, y=2, theta=7.0,
                                                             position_initialized=True))
    again = parse_message('state', st.to_json())
    assert isinstance(again, State)
    assert abs(again.agv_position.theta - (7.0 - 6.283185307179586)) < 1e-9
    assert build_state(headers, OrderTracker(), RobotSnapshot()).header_id == 1
    with pytest.raises(ValidationRejected, match='battery'):
        bad = json.loads(st.to_json())
        bad['batteryState']['batteryCharge'] = 150
        parse_message('state', json.dumps(bad))


def test_timestamps_and_topics():
    ts = format_timestamp(1700000000.5)
    assert ts == '2023-11-14T22:13:20.500Z'
    assert parse_timestamp(ts).timestamp() == 1700000000.5
    addr = parse_topic('uagv/v2/KPAI/robot1/state')
    assert (addr.manufacturer, addr.serial, addr.kind, addr.robot_id) == (
        'KPAI', 'robot1', 'state', 'robot1')
    assert addr.topic('order') == 'uagv/v2/KPAI/robot1/order'
    for bad in ('uagv/v2/KPAI/state', 'uagv/2/KPAI/r/state', 'a//b/c/d'):
        with pytest.raises(ValidationRejected):
            parse_topic(bad)
