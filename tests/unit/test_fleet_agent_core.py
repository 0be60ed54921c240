"""Agent core: MQTT messages -> mission commands, progress -> published states."""

from __future__ import annotations

import json

import pytest
from kpai_fleet.agent_core import AgentConfig, AgentCore, CancelMission, SetPause, StartMission
from kpai_fleet.errors import ConfigError
from test_fleet_order_mapping import act, make_order

HDR = {'headerId': 1, 'timestamp': '2026-01-02T03:04:05.678Z', 'version': '2.0.0',
       'manufacturer': 'KPAI', 'serialNumber': 'robot1'}
ORDER_T = 'uagv/v2/KPAI/robot1/order'
IA_T = 'uagv/v2/KPAI/robot1/instantActions'


class Sink:
    def __init__(self):
        self.msgs = []

    def __call__(self, topic, payload, qos, retain):
        self.msgs.append((topic, json.loads(payload), qos, retain))

    def states(self):
        return [m for t, m, _, _ in self.msgs if t.endswith('/state')]


@pytest.fixture
def agent():
    sink = Sink()
    core = AgentCore(AgentConfig(serial_number='robot1'), sink)
    core.snapshot.position_initialized = True
    return core, sink


def instant(kind, aid):
    return json.dumps(dict(HDR, actions=[{'actionId': aid, 'actionType': kind,
                                          'blockingType': 'HARD'}])).encode()


def test_topics_will_and_connect(agent):
    core, sink = agent
    # the KPAI camera lease request (QoS 0) beside VDA 5050's order and instantActions
    assert core.subscriptions() == ((ORDER_T, 1), (IA_T, 1),
                                    (ORDER_T.replace('/order', '/kpaiCameraRequest'), 0))
    topic, payload, qos, retain = core.will()
    assert topic.endswith('/connection') and qos == 1 and retain
    assert json.loads(payload)['connectionState'] == 'CONNECTIONBROKEN'
    core.on_connected()
    kinds = [t.rsplit('/', 1)[1] for t, *_ in sink.msgs]
    assert kinds == ['connection', 'factsheet']
    assert sink.msgs[0][1]['connectionState'] == 'ONLINE'


def test_state_rate_and_on_change(agent):
    core, sink = agent
    core.tick(now=100.0)
    core.tick(now=100.5)
    assert len(sink.states()) == 1
    core.tick(now=101.01)
    assert len(sink.states()) == 2
    core.mark_changed()
    core.tick(now=101.05)  # too soon after the last one
    core.tick(now=101.12)
    assert len(sink.states()) == 3
    ids = [s['headerId'] for s in sink.states()]
    assert ids == [0, 1, 2]
    assert any(t.endswith('/visualization') for t, *_ in sink.msgs)


def test_order_round_trip_through_commands(agent):
    core, sink = agent
    order = make_order([('A', 0, 0, True, []), ('B', 2, 0, True, [act('p1', 'pick')])])
    core.on_message(ORDER_T, order.to_json())
    (cmd,) = core.take_commands()
    assert isinstance(cmd, StartMission) and [s.step_id for s in cmd.steps] == [
        'node:A:0', 'node:B:2', 'p1']
    core.on_feedback(cmd.mission_id, 2, 'p1')
    core.publish_state()
    st = sink.states()[-1]
    assert st['lastNodeId'] == 'B' and st['actionStates'][0]['actionStatus'] == 'RUNNING'
    core.on_result(cmd.mission_id, True, False, '')
    core.publish_state()
    st = sink.states()[-1]
    assert st['nodeStates'] == [] and st['actionStates'][0]['actionStatus'] == 'FINISHED'
    assert st['orderId'] == 'o1'


def test_invalid_and_misaddressed_messages_are_counted(agent):
    core, sink = agent
    core.on_message(ORDER_T, b'not json')
    other = json.loads(make_order([('A', 0, 0, True, [])]).to_json())
    other['serialNumber'] = 'robot2'
    core.on_message(ORDER_T, json.dumps(other).encode())
    assert core.counts['rejected'] == 2 and not core.take_commands()
    core.publish_state()
    assert [e['errorType'] for e in sink.states()[-1]['errors']] == ['validationError'] * 2


def test_cancel_pause_and_requests(agent):
    core, sink = agent
    core.on_message(IA_T, instant('cancelOrder', 'c0'))
    assert core.tracker.actions['c0'].action_status.value == 'FAILED'
    (err,) = core.tracker.errors
    assert (err.error_type, err.error_level.value) == ('noOrderToCancel', 'WARNING')
    assert err.references() == {'actionId': 'c0'}
    core.on_message(ORDER_T, make_order([('A', 0, 0, True, [act('w', 'wait', duration=9)])]
                                        ).to_json())
    (start,) = core.take_commands()
    core.on_message(IA_T, instant('cancelOrder', 'c1'))
    (cancel,) = core.take_commands()
    assert isinstance(cancel, CancelMission)
    core.on_result(start.mission_id, False, True, 'canceled')
    assert core.tracker.actions['c1'].action_status.value == 'FINISHED'
    assert core.tracker.actions['w'].action_status.value == 'FAILED' and not core.tracker.busy
    core.on_message(IA_T, instant('startPause', 'p1'))
    (pause,) = core.take_commands()
    assert isinstance(pause, SetPause) and pause.paused
    core.on_pause_result('p1', True, True, 'ok')
    assert core.tracker.paused
    n = len(sink.states())
    core.on_message(IA_T, instant('stateRequest', 's1'))
    assert len(sink.states()) == n + 1
    core.on_message(IA_T, instant('factsheetRequest', 'f1'))
    assert sink.msgs[-1][0].endswith('/factsheet')
    core.on_message(IA_T, instant('selfDestruct', 'x1'))
    assert core.tracker.actions['x1'].action_status.value == 'FAILED'


def test_order_update_replaces_goal_and_stale_results_are_ignored(agent):
    core, _ = agent
    core.on_message(ORDER_T, make_order([('A', 0, 0, True, []), ('B', 2, 0, True, []),
                                         ('C', 4, 0, False, [])]).to_json())
    (first,) = core.take_commands()
    core.on_feedback(first.mission_id, 1, 'node:B:2')
    upd = make_order([('B', 2, 0, True, []), ('C', 4, 0, True, [act('d', 'drop')])],
                     update=1, first_seq=2)
    core.on_message(ORDER_T, upd.to_json())
    (second,) = core.take_commands()
    assert [s.step_id for s in second.steps] == ['node:B:2', 'node:C:4', 'd']
    core.on_result(first.mission_id, False, True, 'replaced')  # stale: ignored
    assert not core.tracker.failed
    core.on_result(second.mission_id, True, False, '')
    assert core.tracker.last_node_id == 'C' and not core.tracker.busy


def test_config_validation():
    AgentConfig().validate()
    for bad in ({'serial_number': 'a/b'}, {'state_period_s': 2.0}, {'broker_url': 'x://y'},
                {'visualization_period_s': 0.0}):
        with pytest.raises(ConfigError):
            AgentConfig(**bad).validate()
