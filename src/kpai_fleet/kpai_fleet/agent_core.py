"""Robot-side VDA 5050 agent logic without ROS: MQTT in/out, orders -> mission commands."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kpai_fleet.errors import ConfigError, ValidationRejected
from kpai_fleet.faults import FaultLog, exception_kind
from kpai_fleet.live_share import CameraLease, ObjectsThrottle
from kpai_fleet.mqtt_link import parse_broker_url
from kpai_fleet.vda5050.actions import ActionRejected, check_action
from kpai_fleet.vda5050.factsheet import ActionScope
from kpai_fleet.vda5050.guard import check_json_bytes
from kpai_fleet.vda5050.kpai_ext import (
    CAMERA,
    CAMERA_REQUEST,
    OBJECTS,
    TrackedObject,
    build_objects,
    parse_camera_request,
)
from kpai_fleet.vda5050.models import (
    MAX_PAYLOAD_BYTES,
    Action,
    ActionStatus,
    ConnectionState,
    InstantActions,
    Order,
    parse_message,
)
from kpai_fleet.vda5050.order_mapping import INSTANT_ACTIONS, KPAI_ACTIONS, MissionStep
from kpai_fleet.vda5050.order_tracker import OrderTracker
from kpai_fleet.vda5050.state_builder import (
    HeaderSource,
    RobotSnapshot,
    build_connection,
    build_factsheet,
    build_state,
    build_visualization,
    field_envelopes,
)
from kpai_fleet.vda5050.topics import TopicAddress

__all__ = ['PASSWORD_ENV', 'AgentConfig', 'AgentCore', 'CancelMission', 'Command', 'SetPause',
           'StartMission', 'load_password']

PASSWORD_ENV = 'KPAI_MQTT_PASSWORD'


def load_password(path: str, environ: Mapping[str, str], *, wait_s: float = 0.0) -> str:
    """Return the MQTT password from the file at path, else from $KPAI_MQTT_PASSWORD, else ''.

    A missing file is waited for up to wait_s (a broker started by the same launch file
    provisions it meanwhile). Raise ConfigError (naming the path, never the content) when the
    file cannot be read.
    """
    if path:
        deadline = time.monotonic() + wait_s
        while not Path(path).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        try:
            text = Path(path).read_text(encoding='utf-8')
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f'mqtt_password: cannot read the password file {path!r} '
                              f'({type(err).__name__}); the parameter names a file holding '
                              'the password, not the password itself') from None
        return text.rstrip('\r\n')
    return environ.get(PASSWORD_ENV, '')


@dataclass(frozen=True)
class AgentConfig:
    """Parameters of the fleet agent (validated)."""

    broker_url: str = field(default='mqtt://127.0.0.1:1883', repr=False)  # may hold a password
    mqtt_username: str = ''
    mqtt_password: str = field(default='', repr=False)
    mqtt_ca_file: str = ''
    manufacturer: str = 'KPAI'
    serial_number: str = 'robot1'
    interface_name: str = 'uagv'
    map_id: str = 'factory'
    state_period_s: float = 1.0
    min_state_interval_s: float = 0.1
    visualization_period_s: float = 0.2
    objects_period_s: float = 1.0
    # the safety monitor's standstill fields (its protective/warning_clearance), for the map
    protective_clearance: float = 0.3
    warning_clearance: float = 1.0
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    buffer_limit: int = 10000

    def validate(self) -> AgentConfig:
        """Return self, or raise ConfigError naming the bad value."""
        parse_broker_url(self.broker_url)
        for name in ('manufacturer', 'serial_number', 'interface_name'):
            v = getattr(self, name)
            if not v or any(c in v for c in '/+# '):
                raise ConfigError(f'{name}={v!r} must be non-empty without / + # or spaces')
        if not 0 < self.state_period_s <= 1.0:
            raise ConfigError('state_period_s must be in (0, 1] (VDA 5050: state >= 1 Hz)')
        if not 0 < self.visualization_period_s <= self.state_period_s:
            raise ConfigError('visualization_period_s must be in (0, state_period_s]')
        if not 0 <= self.min_state_interval_s < self.state_period_s:
            raise ConfigError('min_state_interval_s must be in [0, state_period_s)')
        if not (0 <= self.protective_clearance <= 10 and 0 <= self.warning_clearance <= 10):
            raise ConfigError('protective_clearance and warning_clearance must be in [0, 10] m')
        if not 0.2 <= self.objects_period_s <= 10.0:
            raise ConfigError('objects_period_s must be in [0.2, 10]')
        if self.max_payload_bytes < 1024 or self.buffer_limit < 1:
            raise ConfigError('max_payload_bytes >= 1024 and buffer_limit >= 1 required')
        return self


@dataclass(frozen=True)
class StartMission:
    """Send an ExecuteMission goal with these steps (replacing any running goal)."""

    mission_id: str
    steps: tuple[MissionStep, ...]


@dataclass(frozen=True)
class CancelMission:
    """Cancel the running ExecuteMission goal."""

    reason: str = ''


@dataclass(frozen=True)
class SetPause:
    """Call the mission executor's set_paused service."""

    paused: bool
    action_id: str


Command = StartMission | CancelMission | SetPause
Publish = Callable[[str, bytes, int, bool], object]


@dataclass
class _Goal:
    mission_id: str
    steps: tuple[MissionStep, ...]
    replaced: bool = False
    cancel_action: str = ''


def _header_refs(payload: bytes, max_bytes: int) -> dict[str, str]:
    """Return headerId/orderId of a rejected message when they can be read (error references).

    Best practice 7.1: a rejection names what it refers to, so that the master control can
    match it to the order it sent.
    """
    try:
        check_json_bytes(payload, max_bytes=max_bytes)  # bounded before json can recurse
        raw = json.loads(payload)
    except (ValidationRejected, ValueError, RecursionError):
        return {}
    if not isinstance(raw, dict):
        return {}
    refs = {}
    if isinstance(raw.get('headerId'), int) and not isinstance(raw.get('headerId'), bool):
        refs['headerId'] = str(raw['headerId'])
    if isinstance(raw.get('orderId'), str):
        refs['orderId'] = raw['orderId'][:200]
    return refs


class AgentCore:
    """Thread-safe: MQTT callbacks, ROS callbacks and timers all call in under one lock."""

    def __init__(self, cfg: AgentConfig, publish: Publish, *,
                 faults: FaultLog | None = None) -> None:
        self.cfg = cfg
        self.faults = faults if faults is not None else FaultLog()
        self.addr = TopicAddress(cfg.interface_name, 'v2', cfg.manufacturer, cfg.serial_number)
        self.headers = HeaderSource(cfg.manufacturer, cfg.serial_number)
        self.tracker = OrderTracker()
        self.snapshot = RobotSnapshot(map_id=cfg.map_id)
        self.counts: Counter[str] = Counter()
        self.last_reject = ''
        self._publish = publish
        self._lock = threading.RLock()
        self._commands: deque[Command] = deque()
        self._goal: _Goal | None = None
        self._ids = itertools.count(1)
        self._dirty = True
        self._last_state = 0.0
        self._last_vis = 0.0
        self.camera = CameraLease()
        self.objects = ObjectsThrottle(cfg.objects_period_s)

    # -- topics ----------------------------------------------------------------------------
    def topic(self, kind: str) -> str:
        """Return this robot's topic of kind."""
        return self.addr.topic(kind)

    def subscriptions(self) -> tuple[tuple[str, int], ...]:
        """Topics the agent subscribes to (QoS 1)."""
        return ((self.topic('order'), 1), (self.topic('instantActions'), 1),
                (self.topic(CAMERA_REQUEST), 0))

    def will(self) -> tuple[str, bytes, int, bool]:
        """The MQTT last will: connection CONNECTIONBROKEN, retained."""
        msg = build_connection(self.headers, ConnectionState.CONNECTIONBROKEN)
        return self.topic('connection'), msg.to_json(), 1, True

    def connection_message(self, state: ConnectionState) -> bytes:
        """Return a connection message payload."""
        with self._lock:
            return build_connection(self.headers, state).to_json()

    # -- outgoing --------------------------------------------------------------------------
    def on_connected(self) -> None:
        """Announce ONLINE and the factsheet, then a fresh state (called on every connect)."""
        with self._lock:
            self._publish(self.topic('connection'),
                          build_connection(self.headers, ConnectionState.ONLINE).to_json(), 1,
                          True)
            self._publish(self.topic('factsheet'), self._factsheet(), 1, True)
            self._dirty = True

    def _factsheet(self) -> bytes:
        cfg = self.cfg
        return build_factsheet(self.headers, msg_len=cfg.max_payload_bytes,
                               min_state_interval_s=cfg.min_state_interval_s,
                               state_interval_s=cfg.state_period_s,
                               visualization_interval_s=cfg.visualization_period_s,
                               envelopes=field_envelopes(cfg.protective_clearance,
                                                         cfg.warning_clearance)).to_json()

    def mark_changed(self) -> None:
        """Something reported in the state changed: publish soon."""
        self._dirty = True

    def tick(self, now: float | None = None) -> None:
        """Publish state when due (period or change) and visualization at its rate."""
        now = time.monotonic() if now is None else now
        with self._lock:
            since = now - self._last_state
            if since >= self.cfg.state_period_s or (
                    self._dirty and since >= self.cfg.min_state_interval_s):
                self.publish_state(now)
            if now - self._last_vis >= self.cfg.visualization_period_s:
                self._last_vis = now
                vis = build_visualization(self.headers, self.snapshot)
                self._publish(self.topic('visualization'), vis.to_json(), 0, False)

    def publish_state(self, now: float | None = None) -> None:
        """Publish the state message now."""
        with self._lock:
            self._last_state = time.monotonic() if now is None else now
            self._dirty = False
            st = build_state(self.headers, self.tracker, self.snapshot)
            self._publish(self.topic('state'), st.to_json(), 1, False)
            self.counts['state_sent'] += 1

    # -- incoming --------------------------------------------------------------------------
    def on_message(self, topic: str, payload: bytes) -> None:
        """Handle an MQTT message (order or instantActions); never raises.

        An invalid message is counted and reported as a validationError in the next state; an
        unexpected failure is counted by exception type and reported as kpai.messageFailed.
        """
        kind = topic.rsplit('/', 1)[-1]
        if kind == CAMERA_REQUEST:
            self._camera_request(payload)
            return
        with self._lock:
            self.counts['received'] += 1
            try:
                self._handle(kind, topic, payload)
            except Exception as err:  # noqa: BLE001 - no message may stop the agent
                self.counts['failed'] += 1
                name = exception_kind(err)
                self.faults.record(name, f'{topic[:200]}: {type(err).__name__}')
                self.tracker.add_error('kpai.messageFailed',
                                       f'{kind} could not be handled ({name})', topic=kind[:64])
                self._dirty = True

    def _camera_request(self, payload: bytes, now: float | None = None) -> None:
        """Renew the camera lease (a KPAI topic: a bad request is counted, not a VDA error)."""
        with self._lock:
            try:
                req = parse_camera_request(payload)
            except ValidationRejected as rej:
                self.counts['camera_request_rejected'] += 1
                self.faults.record('rejected', f'{CAMERA_REQUEST}: {rej.reason}')
                return
            self.counts['camera_request'] += 1
            self.camera.renew(req, time.monotonic() if now is None else now)

    def publish_camera(self, jpeg: bytes, now: float | None = None) -> None:
        """Publish one thumbnail (QoS 0: a lost one is replaced a second later)."""
        with self._lock:
            self.camera.mark_sent(time.monotonic() if now is None else now)
            self._publish(self.topic(CAMERA), jpeg, 0, False)

    def publish_objects_if_due(self, now: float | None = None) -> bool:
        """Publish the tracked objects when their period has elapsed; return True if sent."""
        now = time.monotonic() if now is None else now
        with self._lock:
            objs = self.objects.take(now)
            if objs is None:
                return False
            stamp = str(self.headers.header(OBJECTS)['timestamp'])
            self._publish(self.topic(OBJECTS), build_objects(
                objs, map_id=self.cfg.map_id, timestamp=stamp), 0, False)
            return True

    def update_objects(self, objects: list[TrackedObject], now: float | None = None) -> None:
        """Newest tracked objects in the map frame."""
        with self._lock:
            self.objects.update(objects, time.monotonic() if now is None else now)

    def _handle(self, kind: str, topic: str, payload: bytes) -> None:
        try:
            if kind not in ('order', 'instantActions'):
                raise ValidationRejected(f'unexpected topic {topic}')
            msg = parse_message(kind, payload, max_bytes=self.cfg.max_payload_bytes)
            if (msg.manufacturer, msg.serial_number) != (self.cfg.manufacturer,
                                                         self.cfg.serial_number):
                raise ValidationRejected(
                    f'message addressed to {msg.manufacturer}/{msg.serial_number}')
        except ValidationRejected as rej:
            self.counts['rejected'] += 1
            self.last_reject = rej.reason
            self.faults.record('rejected', rej.reason)
            self.tracker.add_error('validationError', rej.reason, topic=kind,
                                   **_header_refs(payload, self.cfg.max_payload_bytes))
            self._dirty = True
            return
        if isinstance(msg, Order):
            self._order(msg)
        elif isinstance(msg, InstantActions):
            for action in msg.actions:
                self._instant(action)
        self._dirty = True

    def _order(self, order: Order) -> None:
        pos = (self.snapshot.x, self.snapshot.y) if self.snapshot.position_initialized else None
        decision = self.tracker.receive(order, position=pos)
        self.counts[f'order_{decision.kind}'] += 1
        if decision.kind == 'reject':
            self.last_reject = decision.reason
        elif decision.kind == 'start' or (decision.kind == 'append' and decision.steps):
            self._start_goal()

    def _start_goal(self) -> None:
        if self._goal is not None:
            self._goal.replaced = True
        steps = tuple(self.tracker.pending_steps)
        if not steps:
            return
        goal = _Goal(f'{self.tracker.order_id}#{next(self._ids)}', steps)
        self._goal = goal
        self._commands.append(StartMission(goal.mission_id, steps))

    def _instant(self, action: Action) -> None:
        kind = action.action_type
        aid = action.action_id
        if kind not in INSTANT_ACTIONS:
            self.tracker.track_instant(aid, kind, ActionStatus.FAILED,
                                       f'unsupported instant action {kind}')
            return
        try:
            check_action(action, KPAI_ACTIONS.get(kind), ActionScope.INSTANT)
        except ActionRejected as rej:
            self.tracker.track_instant(aid, kind, ActionStatus.FAILED, rej.reason)
            self.tracker.add_error('validationError', rej.reason, topic='instantActions',
                                   **rej.references())
            return
        if kind == 'cancelOrder':
            if not self.tracker.busy:
                self.tracker.track_instant(aid, kind, ActionStatus.FAILED, 'no order to cancel')
                # 6.6.3.2: a warning with the instant action's actionId as errorReference
                self.tracker.add_error('noOrderToCancel', 'cancelOrder without an active order',
                                       actionId=aid)
            elif self._goal is not None:
                self._goal.cancel_action = aid
                self.tracker.track_instant(aid, kind, ActionStatus.RUNNING)
                self._commands.append(CancelMission('cancelOrder'))
            else:
                self.tracker.cancel()
                self.tracker.track_instant(aid, kind, ActionStatus.FINISHED)
        elif kind in ('startPause', 'stopPause'):
            self.tracker.track_instant(aid, kind, ActionStatus.RUNNING)
            self._commands.append(SetPause(kind == 'startPause', aid))
        elif kind == 'stateRequest':
            self.tracker.track_instant(aid, kind, ActionStatus.FINISHED)
            self.publish_state()
        elif kind == 'factsheetRequest':
            self.tracker.track_instant(aid, kind, ActionStatus.FINISHED)
            self._publish(self.topic('factsheet'), self._factsheet(), 1, True)

    # -- commands for the ROS side ---------------------------------------------------------
    def take_commands(self) -> list[Command]:
        """Return and clear the commands the ROS node must execute."""
        with self._lock:
            out = list(self._commands)
            self._commands.clear()
            return out

    def on_feedback(self, mission_id: str, step_index: int, step_id: str) -> None:
        """Mission executor feedback: step step_index (id step_id) is running."""
        with self._lock:
            goal = self._goal
            if goal is None or goal.mission_id != mission_id or goal.replaced:
                return
            if not any(s.step_id == step_id for s in goal.steps):
                if not 0 <= step_index < len(goal.steps):
                    return
                step_id = goal.steps[step_index].step_id
            before = (self.tracker.last_node_id, len(self.tracker.pending_steps))
            self.tracker.step_started(step_id)
            if before != (self.tracker.last_node_id, len(self.tracker.pending_steps)):
                self._dirty = True

    def on_result(self, mission_id: str, success: bool, canceled: bool, message: str) -> None:
        """The ExecuteMission goal mission_id finished."""
        with self._lock:
            goal = self._goal
            if goal is None or goal.mission_id != mission_id:
                return
            self._goal = None if not goal.replaced else self._goal
            if goal.replaced:
                return
            if success:
                self.tracker.step_done(goal.steps[-1].step_id)
            elif canceled and goal.cancel_action:
                self.tracker.cancel()
                self.tracker.track_instant(goal.cancel_action, 'cancelOrder',
                                           ActionStatus.FINISHED)
            else:
                self.tracker.mission_failed(message or 'mission failed')
            self._dirty = True

    def on_goal_rejected(self, mission_id: str, reason: str) -> None:
        """The mission executor refused (or was unreachable for) goal mission_id."""
        self.on_result(mission_id, False, False, f'mission executor rejected the goal: {reason}')

    def on_pause_result(self, action_id: str, paused: bool, ok: bool, message: str) -> None:
        """The set_paused service answered."""
        with self._lock:
            kind = 'startPause' if paused else 'stopPause'
            if ok:
                self.tracker.paused = paused
            self.tracker.track_instant(action_id, kind,
                                       ActionStatus.FINISHED if ok else ActionStatus.FAILED,
                                       message)
            self._dirty = True

    @property
    def mission_id(self) -> str:
        goal = self._goal
        return goal.mission_id if goal is not None else ''
