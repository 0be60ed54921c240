"""Hostile MQTT traffic over a real Mosquitto: the server and the agent keep processing."""

from __future__ import annotations

import json
import threading

import pytest
from kpai_fleet.agent_core import AgentConfig, AgentCore, StartMission
from kpai_fleet.mqtt_link import MqttLink
from kpai_fleet.server.config import load_config
from kpai_fleet.server.service import FleetService
from kpai_testing import fleet_broker, mqtt_login, wait_until
from test_fleet_hostile import LIMIT, ORDER_HOSTILE, STATE_HOSTILE, STATE_T, _state_dict
from test_fleet_order_mapping import act, make_order


@pytest.fixture
def broker():
    with fleet_broker(('robot1',)) as b:
        yield b


def _link(broker, client_id: str, user: str = '') -> MqttLink:
    link = MqttLink(broker.url, client_id, **mqtt_login(broker, user))
    link.start()
    assert link.wait_connected(10), link.last_error
    return link


@pytest.fixture
def robot1(broker):
    """robot1's own identity: may publish its state, nothing else."""
    link = _link(broker, 'test-hostile-robot1', 'robot1')
    yield link
    link.stop()


@pytest.fixture
def publisher(broker):
    """A second client with the fleet server's identity: writes orders."""
    link = _link(broker, 'test-hostile-publisher')
    yield link
    link.stop()


def test_server_stores_a_valid_state_after_every_hostile_one(broker, robot1, tmp_path):
    publisher = robot1
    cfg = load_config(None, broker_url=broker.url, db_url=f'sqlite:///{tmp_path}/fleet.db',
                      max_payload_bytes=LIMIT, client_id='test-fleet-server',
                      **{f'mqtt_{k}': v for k, v in mqtt_login(broker).items()})
    svc = FleetService(cfg)
    svc.start()
    try:
        wait_until(svc.link.is_connected, timeout=10, what='server connected')
        for _name, payload in sorted(STATE_HOSTILE.items()):
            publisher.publish(STATE_T, payload, qos=1)
        publisher.publish(STATE_T, json.dumps(_state_dict(42)).encode(), qos=1)
        wait_until(lambda: svc.ingest.counts['accepted'] >= 1, timeout=10,
                   what='the valid state after the hostile ones')
        svc.store.flush()
        assert svc.store.latest_state('robot1')['headerId'] == 42
        assert svc.ingest.counts['rejected'] == len(STATE_HOSTILE)
        m = svc.metrics()
        assert m['mqtt']['connected'] and m['mqtt']['loop_restarts'] == 0
        assert m['mqtt']['handler_errors'] == 0
    finally:
        svc.stop()


def test_agent_starts_a_valid_order_after_every_hostile_one(broker, publisher):
    sent: list[tuple[str, bytes]] = []
    core = AgentCore(AgentConfig(serial_number='robot1', max_payload_bytes=LIMIT),
                     lambda topic, payload, qos, retain: sent.append((topic, payload)))
    core.snapshot.position_initialized = True
    link = MqttLink(broker.url, 'test-hostile-agent', subscriptions=core.subscriptions(),
                    on_message=core.on_message, **mqtt_login(broker, 'robot1'))
    link.start()
    try:
        wait_until(link.is_connected, timeout=10, what='agent connected')
        topic = core.topic('order')
        for _name, payload in sorted(ORDER_HOSTILE.items()):
            publisher.publish(topic, payload, qos=1)
        valid = make_order([('A', 0, 0, True, []), ('B', 1, 0, True, [act('p', 'pick')])],
                           order_id='after-hostile')
        publisher.publish(topic, valid.to_json(), qos=1)
        commands: list = []
        wait_until(lambda: commands.extend(core.take_commands()) or commands, timeout=10,
                   what='the valid order after the hostile ones')
        assert isinstance(commands[0], StartMission)
        assert commands[0].mission_id.startswith('after-hostile')
        assert core.counts['rejected'] + core.counts['order_reject'] == len(ORDER_HOSTILE)
        assert link.is_connected() and link.loop_restarts == 0
    finally:
        link.stop()


@pytest.mark.filterwarnings('ignore::pytest.PytestUnhandledThreadExceptionWarning')
def test_a_dead_network_loop_is_restarted_and_the_message_redelivered(broker, publisher):
    got: list[bytes] = []
    topic = 'uagv/v2/KPAI/robot1/instantActions'  # one the server writes and robot1 reads
    link = MqttLink(broker.url, 'test-loop-restart', subscriptions=((topic, 1),),
                    on_message=lambda topic, payload: got.append(payload), watchdog_s=0.2,
                    **mqtt_login(broker, 'robot1'))
    link.start()
    try:
        wait_until(link.is_connected, timeout=10, what='connected')
        wrapped = link.client.on_message
        killed = threading.Event()

        def kill_once(client, userdata, msg):
            if not killed.is_set():  # what an uncaught error did to paho's thread before
                killed.set()
                raise RuntimeError('handler escaped')
            wrapped(client, userdata, msg)

        link.client.on_message = kill_once
        publisher.publish(topic, b'first', qos=1)
        wait_until(killed.is_set, timeout=10, what='loop killed')
        wait_until(lambda: link.loop_restarts >= 1, timeout=10, what='loop restarted')
        wait_until(link.is_connected, timeout=10, what='reconnected')
        publisher.publish(topic, b'second', qos=1)
        wait_until(lambda: b'second' in got, timeout=10, what='message after restart')
        assert b'first' in got  # unacknowledged when the loop died: redelivered (QoS 1)
        assert link.faults.snapshot()['mqtt:loop_died'] >= 1
    finally:
        link.stop()
