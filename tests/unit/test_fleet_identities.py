"""Per-robot MQTT identities over a real Mosquitto: authentication, ACL, provisioning, TLS."""

from __future__ import annotations

import argparse
import os
import stat
import subprocess
import time

import pytest
from kpai_fleet.broker import LocalBroker
from kpai_fleet.credentials import (
    SERVER_USER,
    CredentialStore,
    hash_password,
    verify_password,
)
from kpai_fleet.errors import ConfigError
from kpai_fleet.mqtt_link import MqttLink
from kpai_testing import fleet_broker, mqtt_login, wait_until

from kpai_fleet import cli

BASE = 'uagv/v2/KPAI'
SILENCE_S = 10.0  # bound of every wait below; the conditions end them much sooner


class Client:
    """An MqttLink that records what it receives."""

    def __init__(self, broker, client_id: str, *, subscribe: tuple[str, ...] = (),
                 url: str = '', **link_kwargs: str) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.link = MqttLink(url or broker.url, client_id, min_backoff_s=1, max_backoff_s=1,
                             subscriptions=tuple((t, 1) for t in subscribe),
                             on_message=lambda t, p: self.got.append((t, p)), **link_kwargs)
        self.link.start()

    def connected(self, timeout: float = SILENCE_S) -> bool:
        return self.link.wait_connected(timeout)

    def received(self, topic: str, payload: bytes) -> bool:
        return (topic, payload) in list(self.got)

    def send(self, topic: str, payload: bytes) -> None:
        info = self.link.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=SILENCE_S)
        assert info.is_published()

    def close(self) -> None:
        self.link.stop()


@pytest.fixture
def broker():
    with fleet_broker(('robot1', 'robot2')) as b:
        yield b


@pytest.fixture
def clients():
    made: list[Client] = []
    yield made
    for c in made:
        c.close()


def _client(clients, broker, client_id, user='', **kw) -> Client:
    login = mqtt_login(broker, user) if user is not None else {}
    c = Client(broker, client_id, **login, **kw)
    clients.append(c)
    return c


def test_an_anonymous_client_is_refused(broker, clients):
    anon = _client(clients, broker, 'anon', user=None, subscribe=('#',))
    assert not anon.connected(timeout=2)
    assert 'Not authorized' in anon.link.last_error
    bad = _client(clients, broker, 'bad', user=None, subscribe=('#',))
    bad.link.client.username_pw_set('robot1', 'not-the-password')
    assert not bad.connected(timeout=2)


def test_a_local_broker_refuses_anonymous_clients_unless_asked(clients):
    with LocalBroker() as strict:
        assert not _client(clients, strict, 'anon-strict', user=None).connected(timeout=2)
        assert _client(clients, strict, 'server', user=SERVER_USER).connected()
    with LocalBroker(allow_anonymous=True) as dev:
        assert _client(clients, dev, 'anon-dev', user=None).connected()


def test_robot1_cannot_forge_robot2_state_and_the_server_reads_all(broker, clients):
    server = _client(clients, broker, 'server', subscribe=('uagv/v2/#',))
    robot1 = _client(clients, broker, 'robot1', 'robot1')
    robot2 = _client(clients, broker, 'robot2', 'robot2')
    assert server.connected() and robot1.connected() and robot2.connected()
    robot1.send(f'{BASE}/robot2/state', b'forged by robot1')
    robot1.send(f'{BASE}/robot2/connection', b'forged by robot1')
    robot1.send(f'{BASE}/robot1/order', b'an order robot1 wrote itself')
    robot1.send(f'{BASE}/robot1/state', b'robot1 own state')  # after the forgeries
    robot2.send(f'{BASE}/robot2/state', b'robot2 own state')
    wait_until(lambda: server.received(f'{BASE}/robot1/state', b'robot1 own state')
               and server.received(f'{BASE}/robot2/state', b'robot2 own state'),
               timeout=SILENCE_S, what='both robots own states at the server')
    assert [p for _t, p in server.got if b'robot1 own state' != p != b'robot2 own state'] == []


def test_robot1_cannot_read_robot2_orders(broker, clients):
    server = _client(clients, broker, 'server')
    robot1 = _client(clients, broker, 'robot1', 'robot1',
                     subscribe=(f'{BASE}/robot2/order', 'uagv/v2/#', f'{BASE}/robot1/order'))
    robot2 = _client(clients, broker, 'robot2', 'robot2', subscribe=(f'{BASE}/robot2/order',))
    assert server.connected() and robot1.connected() and robot2.connected()
    time.sleep(0.2)  # the SUBSCRIBEs are sent right after CONNACK
    server.send(f'{BASE}/robot2/order', b'order for robot2')
    server.send(f'{BASE}/robot2/instantActions', b'actions for robot2')
    server.send(f'{BASE}/robot1/order', b'order for robot1')  # after those, same connection
    wait_until(lambda: robot2.received(f'{BASE}/robot2/order', b'order for robot2'),
               timeout=SILENCE_S, what='robot2 receiving its order')
    wait_until(lambda: robot1.received(f'{BASE}/robot1/order', b'order for robot1'),
               timeout=SILENCE_S, what='robot1 receiving its own order')
    assert {p for _t, p in robot1.got} == {b'order for robot1'}


def test_credentials_cli_round_trip_and_a_removed_vehicle_is_refused(tmp_path, capsys,
                                                                        clients):
    secrets = str(tmp_path / 'mqtt')
    assert cli.main(['credentials', 'add', '--server', '--secrets', secrets]) == 0
    assert cli.main(['credentials', 'add', 'amr7', '--manufacturer', 'ACME',
                     '--secrets', secrets]) == 0
    store = CredentialStore(secrets)
    with LocalBroker(credentials=store) as broker:
        assert cli.main(['credentials', 'add', 'robot2', '--secrets', secrets]) == 0
        out = capsys.readouterr().out
        assert 'reloaded' in out and f'pid {broker.proc.pid}' in out
        assert cli.main(['credentials', 'list', '--secrets', secrets]) == 0
        listed = capsys.readouterr().out
        assert [line.split('\t')[:3] for line in listed.splitlines()] == [
            ['amr7', 'vehicle', 'ACME/amr7'],
            [SERVER_USER, 'server', 'reads all states, writes orders and instantActions'],
            ['robot2', 'vehicle', 'KPAI/robot2']]
        for ident in store.identities():
            path = store.password_file(ident.user)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert store.password(ident.user) not in out + listed
        assert stat.S_IMODE(store.passwd_path.stat().st_mode) == 0o600
        # the foreign vehicle writes its own topics only: ACME/amr7, not KPAI/amr7
        server = _client(clients, broker, 'server', subscribe=('uagv/v2/#',))
        amr7 = _client(clients, broker, 'amr7', 'amr7')
        assert server.connected() and amr7.connected()
        amr7.send(f'{BASE}/amr7/state', b'wrong manufacturer')
        amr7.send('uagv/v2/ACME/amr7/state', b'own topic')
        wait_until(lambda: server.received('uagv/v2/ACME/amr7/state', b'own topic'),
                   timeout=SILENCE_S, what="the foreign vehicle's state")
        assert [p for _t, p in server.got] == [b'own topic']
        robot2 = _client(clients, broker, 'robot2-before', 'robot2')
        assert robot2.connected()
        robot2.close()
        login = mqtt_login(broker, 'robot2')
        assert cli.main(['credentials', 'remove', 'robot2', '--secrets', secrets]) == 0
        assert not store.password_file('robot2').exists()

        def refused() -> bool:
            c = Client(broker, f'robot2-after-{time.monotonic()}', **login)
            ok = c.connected(timeout=1)
            c.close()
            return not ok

        wait_until(refused, timeout=SILENCE_S, what='robot2 refused after the reload')
        assert cli.main(['credentials', 'remove', 'robot2', '--secrets', secrets]) == 2
    assert 'no identity' in capsys.readouterr().err


def test_our_hashes_and_mosquitto_passwd_hashes_agree(tmp_path):
    hashed = hash_password('s3cret')
    assert verify_password('s3cret', hashed) and not verify_password('s3creT', hashed)
    tool = '/usr/bin/mosquitto_passwd'
    if not os.access(tool, os.X_OK):
        pytest.skip('mosquitto_passwd not installed')
    subprocess.run([tool, '-c', '-b', str(tmp_path / 'pw'), 'u', 's3cret'], check=True)
    theirs = (tmp_path / 'pw').read_text().strip().split(':', 1)[1]
    assert verify_password('s3cret', theirs) and not verify_password('other', theirs)


def test_names_that_would_widen_a_topic_are_refused(tmp_path):
    store = CredentialStore(tmp_path / 'mqtt')
    for bad in ('robot/1', 'robot+', '#', '', 'a b', 'x' * 65):
        with pytest.raises(ConfigError):
            store.add_vehicle('KPAI', bad)
        with pytest.raises(ConfigError):
            store.add_vehicle(bad, 'robot1')
    with pytest.raises(ConfigError, match='--user'):
        store.add_vehicle('KPAI', 'agv:7')
    assert store.add_vehicle('KPAI', 'agv:7', user='agv7').serial_number == 'agv:7'
    with pytest.raises(ConfigError, match='already provisioned'):
        store.add_vehicle('KPAI', 'agv:7', user='other')
    with pytest.raises(ConfigError, match='already exists'):
        store.add_vehicle('ACME', 'agv7')


def test_adding_again_keeps_the_password_and_rotate_changes_it(tmp_path):
    store = CredentialStore(tmp_path / 'mqtt')
    store.add_vehicle('KPAI', 'robot1')
    first = store.password('robot1')
    store.add_vehicle('KPAI', 'robot1')
    assert store.password('robot1') == first and len(first) >= 24
    store.add_vehicle('KPAI', 'robot1', rotate=True)
    assert store.password('robot1') != first


def test_tls_listener_with_the_demo_ca(clients):
    with fleet_broker(('robot1',), tls_port=0) as broker:
        assert broker.tls_url.startswith('mqtts://127.0.0.1:')
        good = _client(clients, broker, 'tls-good', 'robot1', url=broker.tls_url,
                       ca_file=str(broker.tls.ca_file))
        assert good.connected()
        no_ca = _client(clients, broker, 'tls-system-ca', 'robot1', url=broker.tls_url)
        assert not no_ca.connected(timeout=2)  # the demo CA is not a system CA


def test_serve_reads_the_password_from_a_file_never_from_argv(tmp_path, monkeypatch):
    store = CredentialStore(tmp_path / 'mqtt')
    store.add_server()
    args = argparse.Namespace(broker_user=None, broker_password_file=None, broker_ca=None,
                              secrets=str(store.root))
    assert cli._broker_credentials(args) == {'mqtt_username': SERVER_USER,
                                             'mqtt_password': store.password(SERVER_USER)}
    monkeypatch.setattr(cli, '_SECRET_WAIT_S', 0.2)
    args = argparse.Namespace(broker_user='x', broker_password_file=str(tmp_path / 'none'),
                              broker_ca=None, secrets=None)
    with pytest.raises(ConfigError, match='cannot read the MQTT password file'):
        cli._broker_credentials(args)
