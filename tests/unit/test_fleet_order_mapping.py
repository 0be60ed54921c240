"""Order -> mission steps, order updates (stitching), cancel, progress -> states."""

from __future__ import annotations

import json
import math

import pytest
from kpai_fleet.errors import ValidationRejected
from kpai_fleet.vda5050.models import ActionStatus, Order, parse_message
from kpai_fleet.vda5050.order_mapping import StepType, nodes_to_steps
from kpai_fleet.vda5050.order_tracker import OrderTracker
from kpai_fleet.vda5050.state_builder import (
    HeaderSource,
    InferenceHealth,
    RobotSnapshot,
    SafetyHealth,
    build_state,
)

HDR = {'headerId': 1, 'timestamp': '2026-01-02T03:04:05.678Z', 'version': '2.0.0',
       'manufacturer': 'KPAI', 'serialNumber': 'robot1'}


def act(aid: str, kind: str, **params) -> dict:
    return {'actionId': aid, 'actionType': kind, 'blockingType': 'HARD',
            'actionParameters': [{'key': k, 'value': v} for k, v in params.items()]}


def make_order(spec, order_id='o1', update=0, first_seq=0) -> Order:
    """spec: list of (nodeId, x, y, released, actions)."""
    nodes, edges = [], []
    for i, (nid, x, y, rel, actions) in enumerate(spec):
        nodes.append({'nodeId': nid, 'sequenceId': first_seq + 2 * i, 'released': rel,
                      'nodePosition': {'x': x, 'y': y, 'mapId': 'm'}, 'actions': actions})
        if i:
            edges.append({'edgeId': f'{spec[i - 1][0]}-{nid}', 'sequenceId': first_seq + 2 * i - 1,
                          'released': rel, 'startNodeId': spec[i - 1][0], 'endNodeId': nid,
                          'actions': []})
    raw = dict(HDR, orderId=order_id, orderUpdateId=update, nodes=nodes, edges=edges)
    msg = parse_message('order', json.dumps(raw))
    assert isinstance(msg, Order)
    return msg


def test_nodes_map_to_navigate_and_action_steps():
    order = make_order([('A', 0, 0, True, []),
                        ('P', 4, 0, True, [act('p1', 'pick', duration=3)]),
                        ('D', 4, 4, True, [act('d1', 'drop'), act('c1', 'startCharging',
                                                                  batteryTarget=80)]),
                        ('H', 9, 9, False, [])])
    steps = nodes_to_steps(order.nodes)
    assert [s.type for s in steps] == [StepType.NAVIGATE, StepType.NAVIGATE, StepType.LOAD,
                                       StepType.NAVIGATE, StepType.UNLOAD, StepType.CHARGE]
    assert steps[1].x == 4 and steps[1].theta == 0.0
    assert math.isclose(steps[3].theta, math.pi / 2)
    assert steps[2].duration_s == 3.0 and steps[4].duration_s == 2.0
    assert steps[5].battery_target == pytest.approx(0.8)
    assert steps[2].step_id == 'p1' and steps[3].step_id == 'node:D:4'


def test_unsupported_or_bad_actions_are_rejected():
    order = make_order([('A', 0, 0, True, [act('x', 'liftForks')])])
    with pytest.raises(ValidationRejected, match='unsupported actionType'):
        nodes_to_steps(order.nodes)
    order = make_order([('A', 0, 0, True, [act('w', 'wait', duration='soon')])])
    with pytest.raises(ValidationRejected, match="'duration' must be NUMBER, got 'soon'"):
        nodes_to_steps(order.nodes)
    order = make_order([('A', 0, 0, True, [act('w', 'wait', duration=1e7)])])
    with pytest.raises(ValidationRejected, match='outside'):
        nodes_to_steps(order.nodes)
    tracker = OrderTracker()
    decision = tracker.receive(make_order([('A', 0, 0, True, [act('x', 'liftForks')])]))
    assert decision.kind == 'reject' and 'liftForks' in decision.reason
    assert tracker.errors and tracker.errors[0].error_type == 'orderError'


def test_progress_updates_node_edge_and_action_states():
    t = OrderTracker()
    order = make_order([('A', 0, 0, True, []), ('B', 2, 0, True, [act('p1', 'pick')]),
                        ('C', 4, 0, True, []), ('D', 6, 0, False, [])])
    d = t.receive(order)
    assert d.kind == 'start' and len(d.steps) == 4
    assert [n.node_id for n in t.node_states()] == ['A', 'B', 'C', 'D']
    assert t.action_states()[0].action_status is ActionStatus.WAITING
    t.step_started('node:A:0')
    t.step_started('node:B:2')  # A done
    assert t.last_node_id == 'A' and [e.edge_id for e in t.edge_states()][0] == 'A-B'
    t.step_started('p1')  # B reached, pick running
    assert (t.last_node_id, t.last_node_sequence_id) == ('B', 2)
    assert t.action_states()[0].action_status is ActionStatus.RUNNING
    assert [e.edge_id for e in t.edge_states()] == ['B-C', 'C-D']
    t.all_done()
    assert t.action_states()[0].action_status is ActionStatus.FINISHED
    assert [n.node_id for n in t.node_states()] == ['D'] and not t.busy
    assert t.last_node_id == 'C'


def test_order_update_stitches_at_last_base_node():
    t = OrderTracker()
    t.receive(make_order([('A', 0, 0, True, []), ('B', 2, 0, True, []),
                          ('C', 4, 0, False, [])]))
    # wrong stitching node
    bad = make_order([('A', 0, 0, True, []), ('C', 4, 0, True, [])], update=1)
    assert t.receive(bad).kind == 'reject'
    upd = make_order([('B', 2, 0, True, []), ('C', 4, 0, True, [act('d1', 'drop')]),
                      ('E', 8, 0, False, [])], update=1, first_seq=2)
    d = t.receive(upd)
    assert d.kind == 'append', d.reason
    assert [s.step_id for s in d.steps] == ['node:C:4', 'd1']
    assert [(n.node_id, n.released) for n in t.node_states()] == [
        ('A', True), ('B', True), ('C', True), ('E', False)]
    assert t.order_update_id == 1
    assert t.receive(upd).kind == 'ignore'
    old = make_order([('B', 2, 0, True, [])], update=0, first_seq=2)
    r = t.receive(old)
    assert r.kind == 'reject' and 'orderUpdateError' in r.reason


def test_new_order_while_busy_is_rejected_and_cancel_clears():
    t = OrderTracker()
    t.receive(make_order([('A', 0, 0, True, [act('w1', 'wait', duration=5)])]))
    assert t.receive(make_order([('Z', 0, 0, True, [])], order_id='o2')).kind == 'reject'
    assert t.cancel()
    assert not t.node_states() and t.action_states()[0].action_status is ActionStatus.FAILED
    assert not t.cancel()
    assert t.receive(make_order([('Z', 0, 0, True, [])], order_id='o2')).kind == 'start'
    assert t.order_id == 'o2' and not t.errors


def test_rejected_orders_keep_the_error_list_bounded():
    from kpai_fleet.vda5050.order_tracker import MAX_ERRORS

    t = OrderTracker()
    t.receive(make_order([('A', 0, 0, True, [act('w1', 'wait', duration=5)])]))
    for k in range(3 * MAX_ERRORS):
        assert t.receive(make_order([('Z', 0, 0, True, [])], order_id=f'x{k}')).kind == 'reject'
    assert len(t.errors) == MAX_ERRORS
    assert t.errors[-1].references()['orderId'] == f'x{3 * MAX_ERRORS - 1}'


def test_failure_marks_action_failed_and_allows_new_order():
    t = OrderTracker()
    t.receive(make_order([('A', 0, 0, True, []), ('B', 1, 0, True, [act('p', 'pick')])]))
    t.step_started('p')
    t.mission_failed('gripper jammed')
    assert t.actions['p'].action_status is ActionStatus.FAILED
    assert t.errors[-1].error_level.value == 'FATAL'
    assert t.receive(make_order([('Z', 0, 0, True, [])], order_id='o9')).kind == 'start'


def test_cancelling_a_failed_order_frees_the_robot():
    t = OrderTracker()
    t.receive(make_order([('A', 0, 0, True, []), ('B', 1, 0, True, [act('p', 'pick')])]))
    t.mission_failed('goal blocked')
    t.add_error('kpai.other', 'not about the order')
    assert t.busy and any(e.error_type == 'kpai.missionFailed' for e in t.errors)
    assert t.cancel()
    assert not t.busy and not t.failed
    assert [e.error_type for e in t.errors] == ['kpai.other']  # the order's error went with it


def test_state_builder_reports_health_extensions():
    snap = RobotSnapshot(x=1.0, y=2.0, theta=0.5, vx=0.4, battery_pct=55.0,
                         position_initialized=True,
                         safety=SafetyHealth(state=2, speed_limit=0.0, reason='person', stamp=99),
                         inference=InferenceHealth(backend='onnxruntime', device='CPU', fps=12,
                                                   fallback_active=True, stamp=90))
    st = build_state(HeaderSource('KPAI', 'robot1'), OrderTracker(), snap, now=100.0)
    assert st.driving and st.safety_state.field_violation
    kinds = {e.error_type for e in st.errors}
    assert {'kpai.safetyStop', 'kpai.npuFallback', 'kpai.perceptionStale'} <= kinds
    info = {i.info_type: {r.reference_key: r.reference_value for r in i.info_references}
            for i in st.information}
    assert info['kpai.safety']['state'] == 'PROTECTIVE_STOP'
    assert info['kpai.perception']['backend'] == 'onnxruntime'
    assert st.battery_state.battery_charge == 55.0
    assert st.timestamp == '1970-01-01T00:01:40.000Z'
