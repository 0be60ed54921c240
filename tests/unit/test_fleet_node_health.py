"""The fleet agent's heartbeat: NodeWatch decisions and the errors they put in the state."""

from __future__ import annotations

import pytest
from kpai_fleet.node_health import NodeHealth, NodeWatch
from kpai_fleet.vda5050.order_tracker import OrderTracker
from kpai_fleet.vda5050.state_builder import HeaderSource, RobotSnapshot, build_state

WATCHED = ['npu_bridge', 'safety_monitor', 'tracker']


def test_grace_period_reports_nothing() -> None:
    w = NodeWatch(WATCHED, grace_s=10.0)
    assert w.observe([], {}, 0.0).missing == ()
    assert w.observe([], {}, 9.9).missing == ()
    assert w.observe([], {}, 10.0).missing == tuple(WATCHED)


def test_a_node_is_missing_after_two_checks_without_it() -> None:
    w = NodeWatch(WATCHED, grace_s=0.0)
    assert w.observe(WATCHED, {}, 0.0).missing == ()
    assert w.observe(['npu_bridge', 'tracker'], {}, 1.0).missing == ()  # one miss: a hiccup
    assert w.observe(['npu_bridge', 'tracker'], {}, 2.0).missing == ('safety_monitor',)
    assert w.observe(WATCHED, {}, 3.0).missing == ()  # back: no longer reported


def test_lifecycle_nodes_not_active_are_inactive() -> None:
    w = NodeWatch(WATCHED, lifecycle=['npu_bridge', 'not_watched'], grace_s=0.0)
    assert w.lifecycle == frozenset({'npu_bridge'})
    h = w.observe(WATCHED, {'npu_bridge': 'inactive'}, 0.0)
    assert h.inactive == (('npu_bridge', 'inactive'),)
    assert w.observe(WATCHED, {'npu_bridge': 'active'}, 1.0).inactive == ()
    assert w.observe(WATCHED, {}, 2.0).inactive == ()  # unknown state: not claimed


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match='grace_s'):
        NodeWatch(WATCHED, grace_s=-1.0)
    with pytest.raises(ValueError, match='misses'):
        NodeWatch(WATCHED, misses=0)


def test_state_reports_missing_and_inactive_nodes_with_levels() -> None:
    snap = RobotSnapshot(position_initialized=True)
    snap.nodes = NodeHealth(missing=('safety_monitor', 'tracker'),
                            inactive=(('npu_bridge', 'unconfigured'),),
                            critical=frozenset({'safety_monitor'}))
    st = build_state(HeaderSource('KPAI', 'robot1'), OrderTracker(), snap, now=0.0)
    errs = {(e.error_type, e.references()['nodeName']): e for e in st.errors}
    assert errs[('kpai.nodeMissing', 'safety_monitor')].error_level.value == 'FATAL'
    assert errs[('kpai.nodeMissing', 'tracker')].error_level.value == 'WARNING'
    inactive = errs[('kpai.nodeInactive', 'npu_bridge')]
    assert inactive.references()['lifecycleState'] == 'unconfigured'
    assert 'unconfigured, not active' in inactive.error_description


def test_nodes_not_seen_during_the_grace_period_are_starting() -> None:
    w = NodeWatch(WATCHED, grace_s=10.0)
    h = w.observe(['tracker'], {}, 0.0)
    assert h.missing == () and h.starting == ('npu_bridge', 'safety_monitor')
    st = build_state(HeaderSource('KPAI', 'robot1'), OrderTracker(),
                     RobotSnapshot(position_initialized=True, nodes=h), now=0.0)
    assert {(e.error_type, e.error_level.value) for e in st.errors} == {
        ('kpai.nodeStarting', 'WARNING')}
    assert w.observe(WATCHED, {}, 1.0).starting == ()


def test_a_starting_robot_gets_no_work() -> None:
    from kpai_fleet.server.dispatch import Place, select_robot

    robot = {'robot_id': 'robot1', 'connection': 'ONLINE', 'x': 0.0, 'y': 0.0, 'battery': 90.0,
             'idle': True,
             'order_id': '', 'errors': [{'type': 'kpai.nodeStarting', 'level': 'WARNING',
                                         'description': 'node mission_executor is not up yet'}]}
    with pytest.raises(Exception, match='starting: node mission_executor is not up yet'):
        select_robot([robot], Place('a', 1.0, 1.0))
