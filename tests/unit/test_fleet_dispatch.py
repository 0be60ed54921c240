"""Dispatch choice, order building, server config and auth helpers."""

from __future__ import annotations

import math

import pytest
from kpai_fleet.errors import ConfigError, DispatchError
from kpai_fleet.server.auth import SessionSigner, check_bearer
from kpai_fleet.server.config import load_config
from kpai_fleet.server.dispatch import (
    Place,
    TransportTask,
    build_order,
    choose_robot,
    resolve_place,
    select_robot,
)
from kpai_fleet.vda5050.actions import ParamSpec, declare_action
from kpai_fleet.vda5050.factsheet import ValueDataType
from kpai_fleet.vda5050.models import parse_message
from kpai_fleet.vda5050.order_mapping import KPAI_ACTIONS, StepType, nodes_to_steps


def robot(rid, x, y, **kw):
    base = {'robot_id': rid, 'x': x, 'y': y, 'idle': True, 'battery': 90.0, 'errors': [],
            'connection': 'ONLINE', 'serial_number': rid, 'manufacturer': 'KPAI'}
    base.update(kw)
    return base


def test_nearest_idle_robot_with_battery_is_chosen():
    target = Place('p', 10.0, 0.0)
    fleet = [robot('r1', 0, 0), robot('r2', 9, 0, battery=10.0), robot('r3', 8, 1),
             robot('r4', 10, 0, idle=False), robot('r5', 10, 0.5, connection='CONNECTIONBROKEN'),
             robot('r6', 10, 0.2, errors=[{'level': 'FATAL'}]), robot('r7', 9.5, 0)]
    assert choose_robot(fleet, target) == 'r7'
    assert choose_robot(fleet, target, exclude={'r7'}) == 'r3'
    assert choose_robot(fleet, target, min_battery=5.0) == 'r7'
    with pytest.raises(DispatchError, match='r2: battery 10% < 30%'):
        choose_robot([robot('r2', 0, 0, battery=10.0)], target)
    with pytest.raises(DispatchError, match='no robot available'):
        choose_robot([], target)


def test_built_order_is_valid_and_maps_to_a_transport_mission():
    task = TransportTask(Place('rack_1', 8, 4, station_type='rack'),
                         Place('outbound', 18, 2, math.pi / 2), 3.0, 1.0, load_type='EPAL')
    order = build_order(robot('robot2', 1, 1), task, 'task-1', header_id=7, now=1.7e9,
                        agv_actions=KPAI_ACTIONS)
    again = parse_message('order', order.to_json())
    assert again.serial_number == 'robot2' and again.header_id == 7
    pick = again.nodes[1].actions[0]
    assert {p.key: p.value for p in pick.action_parameters} == {
        'stationType': 'rack', 'stationName': 'rack_1', 'loadType': 'EPAL', 'duration': 3.0}
    assert pick.blocking_type.value == 'HARD'
    steps = nodes_to_steps(again.nodes)
    assert [s.type for s in steps] == [StepType.NAVIGATE, StepType.NAVIGATE, StepType.LOAD,
                                       StepType.NAVIGATE, StepType.UNLOAD]
    assert (steps[1].x, steps[1].y) == (8, 4) and steps[2].duration_s == 3.0
    assert steps[3].theta == pytest.approx(math.pi / 2) and steps[4].station_id == 'outbound'


def test_order_carries_only_what_the_vehicle_declares():
    task = TransportTask(Place('rack_1', 8, 4), Place('outbound', 18, 2), load_type='KLT')
    foreign = {'pick': declare_action('pick'), 'drop': declare_action('drop')}
    order = build_order(robot('agv', 0, 0), task, 't', header_id=0, now=1.7e9,
                        agv_actions=foreign)
    pick, drop = order.nodes[1].actions[0], order.nodes[2].actions[0]
    assert {p.key for p in pick.action_parameters} == {'stationType', 'stationName',
                                                      'loadType'}  # no duration, no stationId
    assert {p.key for p in drop.action_parameters} == {'stationType', 'stationName',
                                                      'loadType'}
    with pytest.raises(DispatchError, match='does not declare the action drop'):
        build_order(robot('agv', 0, 0), task, 't', header_id=0, now=1.7e9,
                    agv_actions={'pick': foreign['pick']})
    needs_lhd = declare_action('pick', extra=[ParamSpec('gripper', ValueDataType.STRING)])
    with pytest.raises(DispatchError, match='pick requires actionParameter gripper'):
        build_order(robot('agv', 0, 0), task, 't', header_id=0, now=1.7e9,
                    agv_actions={'pick': needs_lhd, 'drop': foreign['drop']})


def test_not_chosen_robots_come_with_their_reason():
    target = Place('p', 10.0, 0.0)
    fleet = [robot('r1', 0, 0), robot('r2', 9, 0), robot('r3', 9.5, 0, idle=False)]
    choice = select_robot(fleet, target, unable={'r2': 'does not declare the action pick'})
    assert choice.robot_id == 'r1'
    assert choice.not_chosen == {'r2': 'does not declare the action pick', 'r3': 'busy'}
    choice = select_robot(fleet, target)
    assert choice.robot_id == 'r2' and choice.not_chosen['r1'].startswith('farther away')


def test_resolve_place():
    stations = {'a': Place('a', 1, 2)}
    assert resolve_place('a', stations).y == 2
    assert resolve_place({'x': 3, 'y': 4}, stations).x == 3
    for bad in ('zzz', {'x': 'no'}, {'y': 1}, {'x': float('nan'), 'y': 0}):
        with pytest.raises(DispatchError):
            resolve_place(bad, stations)


def test_config_loading_and_validation(tmp_path, monkeypatch):
    f = tmp_path / 'c.yaml'
    f.write_text('fleet_server:\n  port: 9000\n  stations: {s1: {x: 1, y: 2}}\n')
    monkeypatch.setenv('KPAI_FLEET_TOKEN', 'secret')
    cfg = load_config(str(f), db_url='sqlite:///x.db')
    assert cfg.port == 9000 and cfg.api_token == 'secret' and cfg.stations['s1'].y == 2
    assert cfg.host == '127.0.0.1' and cfg.cors_origins == ()
    for over in ({'port': 0}, {'broker_url': 'http://x'}, {'db_url': 'mysql://x'},
                 {'cors_origins': ['*']}, {'bounds': [0, 0, -1, 1]}, {'nonsense': 1},
                 {'stations': {'s': {'x': 1}}}):
        with pytest.raises(ConfigError):
            load_config(None, **over)


def test_bearer_and_session_cookies():
    assert check_bearer('Bearer abc', 'abc') and not check_bearer('Bearer abd', 'abc')
    assert not check_bearer('Bearer ', '') and not check_bearer(None, 'abc')
    signer = SessionSigner('k', max_age_s=10)
    cookie = signer.issue('admin', now=100.0)
    assert signer.verify(cookie, now=105.0) == 'admin'
    assert signer.verify(cookie, now=111.0) is None
    assert signer.verify(cookie.replace('admin', 'root'), now=105.0) is None
    assert SessionSigner('other').verify(cookie, now=105.0) is None
    assert not SessionSigner.check_password('', '') and SessionSigner.check_password('p', 'p')
