"""The kit's MQTT connection: subscribes to one vehicle's topics, sends orders and actions."""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt

from kpai_fleet.errors import BrokerError, ValidationRejected
from kpai_fleet.mqtt_link import parse_broker_url, redact_url
from kpai_fleet.vda5050.models import format_timestamp, parse_message

from .options import KitOptions
from .plan import Sender
from .recorder import Recorder

__all__ = ['KitLink', 'retained_message']

MASTER_KINDS = ('order', 'instantActions')


def _client(opts: KitOptions, suffix: str) -> mqtt.Client:
    url = parse_broker_url(opts.broker_url)
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                    client_id=f'kpai-conformance-{suffix}-{uuid.uuid4().hex[:8]}',
                    clean_session=True, protocol=mqtt.MQTTv311)
    user = opts.username or url.username
    if user:
        c.username_pw_set(user, opts.password or url.password)
    if url.tls or opts.ca_file:
        c.tls_set(ca_certs=opts.ca_file or None, cert_reqs=ssl.CERT_REQUIRED)
    return c


def _connect(c: mqtt.Client, opts: KitOptions, timeout: float) -> None:
    url = parse_broker_url(opts.broker_url)
    done = threading.Event()
    result: list[str] = []

    def on_connect(client: mqtt.Client, userdata: object, flags: object,
                   reason: mqtt.ReasonCode, properties: object) -> None:
        result.append('' if not reason.is_failure else str(reason))
        done.set()

    c.on_connect = on_connect
    try:
        c.connect(url.host, url.port, keepalive=15)
    except (OSError, ValueError) as err:
        raise BrokerError(f'broker {redact_url(opts.broker_url)}: {err}') from None
    c.loop_start()
    if not done.wait(timeout) or result[0]:
        c.loop_stop()
        why = result[0] if result else f'no answer within {timeout:g} s'
        raise BrokerError(f'broker {redact_url(opts.broker_url)} refused the kit: {why}')


class KitLink:
    """One MQTT client for the run; every vehicle message goes to the recorder."""

    def __init__(self, opts: KitOptions, recorder: Recorder) -> None:
        self.opts = opts
        self.recorder = recorder
        self.sender = Sender(opts.manufacturer, opts.serial)
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self._client = _client(opts, 'kit')
        self._client.on_message = self._on_message
        self._subscribed = threading.Event()
        self._client.on_subscribe = lambda *_: self._subscribed.set()

    def start(self, timeout: float = 10.0) -> None:
        """Connect and subscribe to the vehicle's topics; raise BrokerError when refused."""
        _connect(self._client, self.opts, timeout)
        self._client.subscribe(self.opts.topic('+'), qos=1)
        if not self._subscribed.wait(timeout):
            raise BrokerError('the broker did not confirm the subscription')

    def stop(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        kind = msg.topic.rsplit('/', 1)[-1]
        if kind in MASTER_KINDS:
            return  # what a master control (this kit or another) sends
        self.recorder.add(kind, bytes(msg.payload), retained=bool(msg.retain))

    def send(self, kind: str, body: dict[str, Any]) -> float:
        """Publish an order or instantActions message (QoS 1); return when it was sent."""
        payload = json.dumps(dict(self.sender.header(kind, format_timestamp(time.time())),
                                  **body)).encode()
        try:
            parse_message(kind, payload)  # the kit itself must speak the protocol
        except ValidationRejected as rej:
            raise AssertionError(f'the kit built an invalid {kind}: {rej.reason}') from None
        self.sent.append((kind, json.loads(payload)))
        t = self.recorder.clock()
        info = self._client.publish(self.opts.topic(kind), payload, qos=1)
        try:
            info.wait_for_publish(timeout=self.opts.timeout_s)
        except (RuntimeError, ValueError) as err:
            raise BrokerError(f'publishing {kind} failed: {err}') from None
        return t


def retained_message(opts: KitOptions, kind: str, timeout: float) -> bytes | None:
    """Subscribe afresh and return the retained message of the vehicle's topic kind, if any."""
    c = _client(opts, 'retained')
    got: list[bytes] = []
    done = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:
            got.append(bytes(msg.payload))
            done.set()

    c.on_message = on_message
    _connect(c, opts, timeout)
    try:
        c.subscribe(opts.topic(kind), qos=1)
        done.wait(timeout)
    finally:
        c.disconnect()
        c.loop_stop()
    return got[0] if got else None
