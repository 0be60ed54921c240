"""A paho-mqtt v2 client with persistent session, reconnect backoff and an outgoing buffer."""

from __future__ import annotations

import ssl
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt

from kpai_fleet.errors import ConfigError
from kpai_fleet.faults import FaultLog, exception_kind

__all__ = ['BrokerUrl', 'MqttLink', 'parse_broker_url', 'redact_url']


def redact_url(url: str) -> str:
    """Return url with its password (if any) replaced by ***, for logs and error messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit('@', 1)
        user = netloc[0].split(':', 1)[0]
        return parts._replace(netloc=f'{user}:***@{netloc[1]}').geturl()
    except ValueError:
        return '<unparsable URL>'


@dataclass(frozen=True)
class BrokerUrl:
    """Where and how to reach the broker."""

    host: str
    port: int
    tls: bool = False
    username: str = ''
    password: str = ''


def parse_broker_url(url: str) -> BrokerUrl:
    """Parse mqtt://[user:pass@]host[:port] or mqtts://...; raise ConfigError if malformed."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as err:
        raise ConfigError(f'broker URL {shown!r}: {err}') from None
    if parts.scheme not in ('mqtt', 'mqtts', 'tcp', 'ssl'):
        raise ConfigError(f'broker URL {shown!r}: scheme must be mqtt:// or mqtts://')
    if not parts.hostname:
        raise ConfigError(f'broker URL {shown!r} has no host')
    tls = parts.scheme in ('mqtts', 'ssl')
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as err:
        raise ConfigError(f'broker URL {shown!r}: {err}') from None
    return BrokerUrl(parts.hostname, port, tls, unquote(parts.username or ''),
                     unquote(parts.password or ''))


MessageHandler = Callable[[str, bytes], None]


class MqttLink:
    """One MQTT connection; publishes are buffered (bounded) while the broker is away.

    A failing message handler is contained (counted in `faults` by exception type), and a
    watchdog restarts paho's network thread should it end anyway: `is_connected()` is true
    only while that thread runs.
    """

    def __init__(self, url: str, client_id: str, *, username: str = '', password: str = '',
                 ca_file: str = '', subscriptions: tuple[tuple[str, int], ...] = (),
                 on_message: MessageHandler | None = None,
                 will: tuple[str, bytes, int, bool] | None = None,
                 on_connect: Callable[[], None] | None = None,
                 buffer_limit: int = 10000, clean_session: bool = False,
                 min_backoff_s: float = 0.5, max_backoff_s: float = 10.0,
                 max_inflight: int = 1000, faults: FaultLog | None = None,
                 watchdog_s: float = 1.0) -> None:
        self.url = parse_broker_url(url)
        self.faults = faults if faults is not None else FaultLog()
        self.watchdog_s = watchdog_s
        self.loop_restarts = 0
        self.handler_errors = 0
        self._stopping = threading.Event()
        self._restart_lock = threading.Lock()
        self._watchdog: threading.Thread | None = None
        self.subscriptions = subscriptions
        self._on_message = on_message
        self._on_connect_cb = on_connect
        self._buffer: deque[tuple[str, bytes, int, bool]] = deque(maxlen=buffer_limit)
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.connects = 0
        self.dropped = 0
        self.refusals = 0
        self.last_error = ''
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                        clean_session=clean_session, protocol=mqtt.MQTTv311)
        user = username or self.url.username
        if user:
            c.username_pw_set(user, password or self.url.password)
        if self.url.tls or ca_file:
            c.tls_set(ca_certs=ca_file or None, cert_reqs=ssl.CERT_REQUIRED)
        if will is not None:
            topic, payload, qos, retain = will
            c.will_set(topic, payload, qos=qos, retain=retain)
        c.reconnect_delay_set(min_delay=max(1, int(min_backoff_s)),
                              max_delay=max(1, int(max_backoff_s)))
        c.max_inflight_messages_set(max_inflight)
        c.max_queued_messages_set(0)
        c.on_connect = self._handle_connect
        c.on_disconnect = self._handle_disconnect
        c.on_message = self._handle_message
        self.client = c

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Connect asynchronously; the network thread keeps reconnecting with backoff."""
        self.client.connect_async(self.url.host, self.url.port, keepalive=10)
        self.client.loop_start()
        self._stopping.clear()
        self._watchdog = threading.Thread(target=self._watch, name='mqtt-watchdog',
                                          daemon=True)
        self._watchdog.start()

    def loop_alive(self) -> bool:
        """Return True while paho's network thread runs."""
        thread = getattr(self.client, '_thread', None)  # paho sets it to None when it ends
        return thread is not None and thread.is_alive()

    def is_connected(self) -> bool:
        """Return True when connected and the network thread is there to process messages."""
        return self.connected.is_set() and self.loop_alive()

    def status(self) -> dict[str, object]:
        """Return the link's health and counters for metrics."""
        return {'connected': self.is_connected(), 'loop_alive': self.loop_alive(),
                'connects': self.connects, 'last_error': self.last_error,
                'buffered': self.buffered, 'refusals': self.refusals, 'dropped': self.dropped,
                'loop_restarts': self.loop_restarts, 'handler_errors': self.handler_errors}

    def _watch(self) -> None:
        """Restart the network thread whenever it has ended while the link should run."""
        while not self._stopping.wait(self.watchdog_s):
            with self._restart_lock:
                if self.loop_alive() or self._stopping.is_set():
                    continue
                self._restart()

    def _restart(self) -> None:
        self.connected.clear()
        self.last_error = 'network loop ended; restarting it'
        self.faults.record('mqtt:loop_died', f'{self.url.host}:{self.url.port}')
        try:
            self.client.connect_async(self.url.host, self.url.port, keepalive=10)
            self.client.loop_start()
            self.loop_restarts += 1
        except Exception as err:  # noqa: BLE001 - try again on the next round
            self.faults.record(f'mqtt:restart_{type(err).__name__}', str(err))

    def stop(self, *, final: tuple[str, bytes] | None = None, timeout: float = 2.0) -> None:
        """Publish an optional final message (e.g. connection OFFLINE), then disconnect."""
        with self._restart_lock:
            self._stopping.set()
        if final is not None and self.connected.is_set():
            info = self.client.publish(final[0], final[1], qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=timeout)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.join(timeout=self.watchdog_s + 1.0)

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected (True) or timeout (False)."""
        return self.connected.wait(timeout)

    # -- publishing ------------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                buffer: bool = True) -> bool:
        """Publish now when connected; otherwise buffer it (or drop when buffer=False)."""
        with self._lock:
            if self.connected.is_set() and not self._buffer:
                rc = self.client.publish(topic, payload, qos=qos, retain=retain).rc
                if rc == mqtt.MQTT_ERR_SUCCESS:
                    return True
            if not buffer:
                self.dropped += 1
                return False
            if len(self._buffer) == self._buffer.maxlen:
                self.dropped += 1
            self._buffer.append((topic, payload, qos, retain))
            return False

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def _flush(self) -> None:
        with self._lock:
            while self._buffer and self.connected.is_set():
                topic, payload, qos, retain = self._buffer[0]
                if self.client.publish(topic, payload, qos=qos, retain=retain).rc != (
                        mqtt.MQTT_ERR_SUCCESS):
                    break
                self._buffer.popleft()

    # -- paho callbacks (network thread) ---------------------------------------------------
    def _handle_connect(self, client: mqtt.Client, userdata: object, flags: object,
                        reason: mqtt.ReasonCode, properties: object) -> None:
        if reason.is_failure:
            self.refusals += 1
            self.last_error = f'connect refused: {reason}'
            return
        self.connects += 1
        self.last_error = ''
        for topic, qos in self.subscriptions:
            client.subscribe(topic, qos=qos)
        self.connected.set()
        if self._on_connect_cb is not None:
            try:
                self._on_connect_cb()
            except Exception as err:  # noqa: BLE001 - must not end the network thread
                self.handler_errors += 1
                self.faults.record(f'mqtt:on_connect_{type(err).__name__}', repr(err)[:300])
        self._flush()

    def _handle_disconnect(self, client: mqtt.Client, userdata: object, flags: object,
                           reason: mqtt.ReasonCode, properties: object) -> None:
        if self.connected.is_set():  # keep a refusal reason (CONNACK failure) visible
            self.last_error = f'disconnected: {reason}'
        self.connected.clear()

    def _handle_message(self, client: mqtt.Client, userdata: object,
                        msg: mqtt.MQTTMessage) -> None:
        if self._on_message is None:
            return
        try:
            self._on_message(msg.topic, bytes(msg.payload))
        except Exception as err:  # noqa: BLE001 - no message may end the network thread
            self.handler_errors += 1
            try:
                topic = msg.topic
            except UnicodeDecodeError:  # a topic that is not UTF-8
                topic = repr(bytes(msg._topic))
            self.faults.record(f'mqtt_handler:{exception_kind(err)}', f'{topic[:200]}')
