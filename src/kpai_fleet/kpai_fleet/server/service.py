"""The running fleet server: MQTT subscription -> ingest -> store, plus dispatch of tasks."""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kpai_fleet.errors import ConfigError, DispatchError, FleetError, ValidationRejected
from kpai_fleet.faults import FaultLog
from kpai_fleet.mqtt_link import MqttLink
from kpai_fleet.server.alarms import AlarmBook, conditions
from kpai_fleet.server.config import ServerConfig
from kpai_fleet.server.dispatch import (
    Place,
    TransportTask,
    build_cancel,
    build_instant,
    build_order,
    check_capability,
    resolve_place,
    select_robot,
)
from kpai_fleet.server.ingest import (
    LOST_MARKERS,
    FleetView,
    Ingest,
    OrderWatch,
    factsheet_summary,
    order_action_ids,
    summarize_state,
)
from kpai_fleet.server.kpis import fleet_kpis
from kpai_fleet.server.live import CameraHub, TrackedObjects
from kpai_fleet.server.store import Store, open_store
from kpai_fleet.vda5050.factsheet import Factsheet
from kpai_fleet.vda5050.kpai_ext import (
    CAMERA,
    CAMERA_REQUEST,
    KPAI_AGV_TOPICS,
    CameraRequest,
    build_camera_request,
)
from kpai_fleet.vda5050.models import BlockingType, Connection, Message, State, parse_message
from kpai_fleet.vda5050.topics import parse_topic

__all__ = ['FleetService', 'load_map_meta']

ACTIVE = ('dispatched', 'running')
MAX_LOST_RETRIES = 3  # a task whose order a vehicle lost is offered again this often
LOST_RETRY_S = 120.0  # and for this long, until a vehicle is free to take it
FACTSHEET_REQUEST_EVERY_S = 30.0
PRIORITIES = range(0, 11)  # a task's priority: higher first when tasks wait for a vehicle
DEFAULT_PRIORITY = 5
FINISHED = ('completed', 'failed', 'cancelled')
# dashboard instant actions (VDA 5050 6.10): name in the API -> actionType
INSTANT_KINDS = {'pause': 'startPause', 'resume': 'stopPause', 'cancel': 'cancelOrder'}


@dataclass
class _Task:
    """An open transport task: what to do, which robot it must be, who refused it and why."""

    task: TransportTask
    robot: str = ''
    refused: dict[str, str] = field(default_factory=dict)
    lost: int = 0  # orders of it that a vehicle lost (a node restarted)
    attempts: int = 0  # orders made of it so far
    priority: int = DEFAULT_PRIORITY


def _lost(reason: str) -> bool:
    return any(marker in reason for marker in LOST_MARKERS)


def load_map_meta(path: str) -> dict[str, Any]:
    """Read a map_server YAML: image path, resolution, origin."""
    try:
        meta = yaml.safe_load(Path(path).read_text())
        image = Path(path).parent / str(meta['image'])
        return {'image': str(image), 'resolution': float(meta['resolution']),
                'origin': [float(v) for v in meta['origin'][:3]],
                'negate': int(meta.get('negate', 0))}
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as err:
        raise ConfigError(f'map {path}: {err}') from None


class FleetService:
    """Owns the store, the MQTT link, the live view and the dispatcher."""

    def __init__(self, cfg: ServerConfig) -> None:
        self.cfg = cfg
        self.started = time.time()
        self.faults = FaultLog(logging.getLogger('kpai_fleet.server').warning,
                               interval_s=cfg.fault_log_interval_s)
        self.store: Store = open_store(cfg.db_url, flush_ms=cfg.flush_ms,
                                       batch_rows=cfg.batch_rows,
                                       retention_s=cfg.retention_days * 86400.0,
                                       max_queue=cfg.store_queue_rows,
                                       spool_path=cfg.spool_path or None,
                                       spool_max_bytes=cfg.spool_max_mb * 1024 * 1024)
        self.view = FleetView()
        self.ingest = Ingest(self.store, self.view, max_bytes=cfg.max_payload_bytes,
                             allowed_robots=frozenset(cfg.allowed_robots) or None,
                             on_order_status=self._order_status,
                             on_connection=self._connection,
                             on_stale_order=self._cancel_order,
                             order_timeout_s=cfg.order_timeout_s, faults=self.faults)
        self.map_meta = load_map_meta(cfg.map_yaml) if cfg.map_yaml else None
        self.auth_failures = 0
        self.timer_errors = 0
        # the ingest lock: a rejection handled by ingest re-dispatches under it, and a
        # dispatch registers its order with ingest; one lock keeps one lock order
        self._dispatch_lock = self.ingest.lock
        self._headers: defaultdict[str, itertools.count[int]] = defaultdict(itertools.count)
        self._instant_headers: defaultdict[str, itertools.count[int]] = defaultdict(
            itertools.count)
        self._tasks: dict[str, _Task] = {}          # open tasks
        self._order_task: dict[str, str] = {}       # order id -> task id
        self._factsheet_asked: dict[str, float] = {}
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._waiting: dict[str, tuple[float, str]] = {}  # task id -> (give up at, reason)
        self.alarm_book = AlarmBook(persist=self._save_alarm)
        self.camera = CameraHub(self._send_camera_request)
        self.tracked = TrackedObjects(max_age_s=cfg.objects_max_age_s)
        self._restore()
        self.link = MqttLink(
            cfg.broker_url, cfg.client_id, username=cfg.mqtt_username,
            password=cfg.mqtt_password, ca_file=cfg.mqtt_ca_file,
            subscriptions=((f'{cfg.interface}/v2/+/+/#', 1),), on_message=self._on_message,
            faults=self.faults)

    def _save_alarm(self, alarm: dict[str, Any]) -> None:
        if not self.store.available:  # no wait on a database that is away: retried later
            raise FleetError('store unavailable')
        self.store.save_alarm(alarm)

    def _restore(self) -> None:
        """Rebuild the live view, factsheets, open orders and tasks after a restart."""
        self.alarm_book.restore(self.store.listed_alarms(self.alarm_book.keep),
                                self.store.alarm_max_id())
        for r in self.store.robots():
            st = self.store.latest_state(r['robot_id'])
            summary: dict[str, Any] = {'robot_id': r['robot_id']}
            if st is not None:
                try:  # through JSON: the models are strict about Python-side types
                    model = State.model_validate_json(json.dumps(st))
                    summary = summarize_state(r['robot_id'], model, r['last_seen'] or 0.0)
                except ValueError:
                    pass
            if r.get('connection'):
                summary['connection'] = r['connection']
            self.view.robots[r['robot_id']] = summary
        for robot_id, payload in self.store.factsheets().items():
            try:
                fs = parse_message('factsheet', payload)
            except ValidationRejected:
                continue
            if isinstance(fs, Factsheet):
                self.ingest.factsheets[robot_id] = fs
                self.view.robots.setdefault(robot_id, {'robot_id': robot_id})['factsheet'] = (
                    factsheet_summary(fs))
        now = time.time()
        for o in self.store.orders(limit=10000):
            if o['status'] in ACTIVE:
                self.ingest.order_states[o['order_id']] = o['status']
            if o['status'] == 'dispatched':  # unknown header id: only orderId refs match
                self.ingest.watches[o['order_id']] = OrderWatch(o['robot_id'], -1, now)
            if o.get('task_id'):
                self._order_task[o['order_id']] = o['task_id']
        for t in self.store.tasks(limit=10000):
            if t['status'] in ACTIVE:
                try:
                    self._tasks[t['task_id']] = _task_from_json(t['body'])
                except (ValueError, KeyError, TypeError):
                    continue

    def start(self) -> None:
        """Connect to the broker (reconnecting in the background) and watch order timeouts."""
        self.link.start()
        self._timer = threading.Thread(target=self._tick, name='order-timeouts', daemon=True)
        self._timer.start()

    def stop(self) -> None:
        """Disconnect and flush the store."""
        self._stop.set()
        if self._timer is not None:
            self._timer.join(timeout=5)
        self.link.stop()
        self.store.close()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.ingest.check_timeouts()
                self.retry_waiting()
            except FleetError:  # the store is away: try again on the next tick
                self.timer_errors += 1

    def _wait(self, task_id: str, reason: str) -> None:
        self.store.upsert_task(task_id, 'waiting', reason=reason)
        self._waiting[task_id] = (time.time() + LOST_RETRY_S, reason)
        self.retry_waiting()

    def retry_waiting(self, now: float | None = None) -> None:
        """Offer the tasks whose order a vehicle lost again; fail those waiting too long."""
        now = time.time() if now is None else now
        with self._dispatch_lock:
            # the highest priority first, then the oldest (the earliest to give up)
            order = sorted(self._waiting.items(), key=lambda kv: (
                -self._tasks[kv[0]].priority if kv[0] in self._tasks else 0, kv[1][0]))
            for task_id, (give_up, reason) in order:
                try:
                    self._offer(task_id)
                except DispatchError as err:
                    if now < give_up:
                        continue
                    self._tasks.pop(task_id, None)
                    self.store.upsert_task(task_id, 'failed', reason=f'{reason}; {err}')
                self._waiting.pop(task_id, None)

    def _on_message(self, topic: str, payload: bytes) -> bool:
        """Handle one MQTT message; return False if it was rejected or failed."""
        if topic.rsplit('/', 1)[-1] in KPAI_AGV_TOPICS:
            return self._live_message(topic, payload)
        return self.ingest.handle(topic, payload)

    def _live_message(self, topic: str, payload: bytes) -> bool:
        """Take a thumbnail or tracked objects (KPAI topics); never raises."""
        counts = self.ingest.counts
        robot_id = '?'
        try:
            addr = parse_topic(topic)
            robot_id = addr.robot_id
            if self.ingest.allowed is not None and robot_id not in self.ingest.allowed:
                raise ValidationRejected(f'unknown robot {robot_id!r}')
            if addr.kind == CAMERA:
                self.camera.accept(robot_id, payload)
            else:
                self.tracked.accept(robot_id, payload)
            counts[addr.kind] += 1
            return True
        except ValidationRejected as rej:
            counts['rejected_live'] += 1
            self.faults.record('rejected:live', f'{robot_id}: {rej.reason}')
        except Exception as err:  # noqa: BLE001 - no message may stop the handler
            counts['failed'] += 1
            self.faults.record(type(err).__name__, f'{topic[:200]}: live topic failed')
        return False

    def _send_camera_request(self, robot_id: str, req: CameraRequest) -> None:
        robot = self.view.robots.get(robot_id) or {}
        mfr, serial = robot.get('manufacturer'), robot.get('serial_number')
        if not mfr or not serial:
            return
        topic = f'{self.cfg.interface}/v2/{mfr}/{serial}/{CAMERA_REQUEST}'
        self.link.publish(topic, build_camera_request(req), qos=0, buffer=False)

    def camera_image(self, robot_id: str) -> tuple[bool, Any]:
        """Renew robot_id's camera lease; return (robot has a camera, newest thumbnail or None).

        Only KPAI vehicles get the (KPAI) camera request: other makers' vehicles do not know it.
        """
        robot = self.view.robots.get(robot_id)
        if robot is None or robot.get('manufacturer') != 'KPAI':
            return False, None
        self.camera.want(robot_id)
        return True, self.camera.latest(robot_id)

    def _publish_instant(self, robot_id: str, msg: Message, payload: bytes) -> None:
        topic = f'{self.cfg.interface}/v2/{msg.manufacturer}/{msg.serial_number}/instantActions'
        self.link.publish(topic, payload, qos=1)

    # -- vehicles --------------------------------------------------------------------------
    def _connection(self, robot_id: str, msg: Connection) -> None:
        if msg.connection_state.value == 'ONLINE' and robot_id not in self.ingest.factsheets:
            self._request_factsheet({'robot_id': robot_id, 'manufacturer': msg.manufacturer,
                                     'serial_number': msg.serial_number})

    def _request_factsheet(self, robot: dict[str, Any]) -> None:
        """Send factsheetRequest (VDA 5050 2.0, 6.16) unless one went out recently."""
        robot_id = str(robot['robot_id'])
        now = time.time()
        if now - self._factsheet_asked.get(robot_id, -1e9) < FACTSHEET_REQUEST_EVERY_S:
            return
        self._factsheet_asked[robot_id] = now
        msg = build_instant(robot, 'factsheetRequest', f'factsheet-{uuid.uuid4().hex[:10]}',
                            header_id=next(self._instant_headers[robot_id]), now=now)
        self._publish_instant(robot_id, msg, msg.to_json())

    # -- order lifecycle -------------------------------------------------------------------
    def _order_status(self, order_id: str, robot_id: str, status: str) -> None:
        reason = self.ingest.order_reasons.get(order_id, '')
        # queued like the states (the MQTT thread never waits for, nor fails on, the database)
        self.store.submit_order(order_id, robot_id, status, time.time(), reason=reason)
        if status == 'failed':
            self._cancel_order(order_id, robot_id)
        task_id = self._order_task.get(order_id)
        task = self._tasks.get(task_id or '')
        if task_id is None or task is None:
            return
        if status == 'rejected':
            # to another vehicle, now or (while none is free) when one is
            task.refused[robot_id] = reason
            self._wait(task_id, f'{robot_id} rejected the order ({reason})')
        elif status == 'failed' and _lost(reason) and task.lost < MAX_LOST_RETRIES:
            # the vehicle lost the order (a node restarted): offer the task again, also to it,
            # now or (while no vehicle is free, e.g. it still clears the failed order) later
            task.lost += 1
            self._wait(task_id, reason)
        elif status in ACTIVE:
            self.store.upsert_task(task_id, status)
        else:
            self._tasks.pop(task_id, None)
            self.store.upsert_task(task_id, status, reason=reason)

    def _cancel_order(self, order_id: str, robot_id: str) -> None:
        """Send cancelOrder for an order (VDA 5050: master control clears it).

        Used for a failed order (the robot drops its remaining nodes and error and can take a
        new task; the order stays `failed`) and for a rejected order that turned up late.
        """
        robot = self.view.robots.get(robot_id) or {'robot_id': robot_id}
        msg = build_cancel(robot, order_id, header_id=next(self._instant_headers[robot_id]),
                           now=time.time())
        self._publish_instant(robot_id, msg, msg.to_json())

    # -- dispatch --------------------------------------------------------------------------
    def dispatch(self, body: dict[str, Any]) -> dict[str, Any]:
        """Dispatch a transport task; return task, order and robot; DispatchError if none fits."""
        task = self._parse_task(body)
        task_id = f'task-{uuid.uuid4().hex[:10]}'
        with self._dispatch_lock:
            self.store.upsert_task(task_id, 'pending', body=_task_to_json(task))
            self._tasks[task_id] = task
            try:
                return self._offer(task_id)
            except DispatchError as err:
                self._tasks.pop(task_id, None)
                self.store.upsert_task(task_id, 'failed', reason=str(err))
                raise

    def _parse_task(self, body: Any) -> _Task:
        if not isinstance(body, dict) or 'pickup' not in body or 'dropoff' not in body:
            raise DispatchError('a task needs pickup and dropoff (station name or {x, y})')
        pickup = resolve_place(body['pickup'], self.cfg.stations)
        dropoff = resolve_place(body['dropoff'], self.cfg.stations)
        try:
            load_s = float(body.get('load_s', 2.0))
            unload_s = float(body.get('unload_s', 2.0))
        except (TypeError, ValueError):
            raise DispatchError('load_s and unload_s must be numbers') from None
        if not (0 <= load_s <= 3600 and 0 <= unload_s <= 3600):
            raise DispatchError('load_s and unload_s must be within [0, 3600]')
        load_type = body.get('load_type', self.cfg.load_type)
        if not isinstance(load_type, str) or not load_type:
            raise DispatchError('load_type must be a non-empty string')
        robot = body.get('robot') or ''
        if not isinstance(robot, str):
            raise DispatchError('robot must be a robot id')
        priority = body.get('priority', DEFAULT_PRIORITY)
        if isinstance(priority, bool) or not isinstance(priority, int) or (
                priority not in PRIORITIES):
            raise DispatchError(f'priority must be an integer within [{PRIORITIES[0]}, '
                                f'{PRIORITIES[-1]}]')
        return _Task(TransportTask(pickup, dropoff, load_s, unload_s, load_type), robot,
                     priority=priority)

    def _offer(self, task_id: str) -> dict[str, Any]:
        """Send task task_id to the best robot that can do it; DispatchError when none can."""
        t = self._tasks[task_id]
        with self._dispatch_lock:
            robots = self.view.snapshot()
            busy = {o['robot_id'] for o in self.store.orders(limit=10000)
                    if self.ingest.order_states.get(o['order_id']) in ACTIVE}
            if t.robot:
                robots = [r for r in robots if r.get('robot_id') == t.robot]
                if not robots:
                    raise DispatchError(f'unknown robot {t.robot!r}')
            unable: dict[str, str] = {}
            for r in robots:
                rid = r['robot_id']
                fs = self.ingest.factsheets.get(rid)
                if rid in t.refused:
                    unable[rid] = f'rejected this task: {t.refused[rid]}'
                elif why := check_capability(fs, t.task):
                    unable[rid] = why
                if fs is None and r.get('connection') != 'CONNECTIONBROKEN' and r.get(
                        'manufacturer'):
                    self._request_factsheet(r)
            choice = select_robot(robots, t.task.pickup, min_battery=self.cfg.min_battery,
                                  exclude=busy, unable=unable)
            robot_id = choice.robot_id
            robot = next(r for r in robots if r['robot_id'] == robot_id)
            factsheet = self.ingest.factsheets[robot_id]
            declared = {a.action_type: a for a in factsheet.protocol_features.agv_actions}
            t.attempts += 1
            order_id = f'{task_id}-{t.attempts}'
            order = build_order(robot, t.task, order_id,
                                header_id=next(self._headers[robot_id]), now=time.time(),
                                agv_actions=declared, map_id=self.cfg.map_id)
            payload = order.to_json()
            self.store.upsert_order(order_id, robot_id, 'dispatched', task=_task_to_json(t),
                                    payload=payload.decode(), task_id=task_id)
            self.store.upsert_task(task_id, 'dispatched', order_id=order_id)
            self._order_task[order_id] = task_id
            self.ingest.watch_order(order, robot_id, order_action_ids(order), time.time())
        topic = f'{self.cfg.interface}/v2/{order.manufacturer}/{order.serial_number}/order'
        self.link.publish(topic, payload, qos=1)
        return {'task_id': task_id, 'order_id': order_id, 'robot_id': robot_id,
                'status': 'dispatched', 'topic': topic, 'not_chosen': choice.not_chosen}

    def cancel_task(self, task_id: str, user: str) -> dict[str, Any] | None:
        """Cancel a task: cancelOrder to its vehicle if an order is out; None if unknown.

        DispatchError when the task has already finished. The task is `cancelled` at once;
        its order's own status follows from the vehicle's states (VDA 5050: `cancelled` once
        the vehicle has dropped it).
        """
        with self._dispatch_lock:
            rows = self.store.tasks(limit=1, task_id=task_id)
            if not rows:
                return None
            row = rows[0]
            if row['status'] in FINISHED:
                raise DispatchError(f'task {task_id} is already {row["status"]}')
            self._waiting.pop(task_id, None)
            self._tasks.pop(task_id, None)
            order_id = row['order_id'] or ''
            robot_id = ''
            if order_id and self.ingest.order_states.get(order_id) in ACTIVE:
                robot_id = next((o['robot_id'] for o in self.store.orders(
                    limit=1000, task_id=task_id) if o['order_id'] == order_id), '')
            reason = f'cancelled by {user}'
            self.store.upsert_task(task_id, 'cancelled', reason=reason, order_id=order_id)
        if robot_id:
            self._cancel_order(order_id, robot_id)
        return {'task_id': task_id, 'status': 'cancelled', 'reason': reason,
                'order_id': order_id, 'cancel_sent_to': robot_id}

    def instant_action(self, robot_id: str, kind: str, user: str) -> dict[str, Any] | None:
        """Send pause, resume or cancel (of its order) to a robot; None if it is unknown.

        Cancelling the order of a task cancels the task. DispatchError for an unknown kind or
        a robot without an order to cancel.
        """
        if kind not in INSTANT_KINDS:
            raise DispatchError(f'unknown action {kind!r} (known: {", ".join(INSTANT_KINDS)})')
        robot = self.view.robots.get(robot_id)
        if robot is None:
            return None
        robot = dict(robot)
        action_type = INSTANT_KINDS[kind]
        if action_type == 'cancelOrder':
            order_id = robot.get('order_id') or ''
            if not order_id or (robot.get('idle') and not robot.get('nodes_remaining')):
                raise DispatchError(f'{robot_id} has no order to cancel')
            task_id = self._order_task.get(order_id)
            if task_id and task_id in self._tasks:
                out = self.cancel_task(task_id, user) or {}
                return {'robot_id': robot_id, 'action': action_type, 'order_id': order_id,
                        'task_id': task_id, 'task_status': out.get('status')}
            self._cancel_order(order_id, robot_id)
            return {'robot_id': robot_id, 'action': action_type, 'order_id': order_id}
        action_id = f'{kind}-{uuid.uuid4().hex[:10]}'
        msg = build_instant(robot, action_type, action_id,
                            header_id=next(self._instant_headers[robot_id]), now=time.time(),
                            blocking_type=BlockingType.HARD)
        self._publish_instant(robot_id, msg, msg.to_json())
        return {'robot_id': robot_id, 'action': action_type, 'action_id': action_id}

    def alarms(self) -> list[dict[str, Any]]:
        """Update the alarms from the live view and the store; return those still listed."""
        self.alarm_book.update(conditions(self.view.snapshot(), self.store.available))
        return self.alarm_book.listed()

    def kpis(self, window_s: float, now: float | None = None) -> dict[str, Any]:
        """Return the fleet KPIs of the last window_s seconds (see kpis.fleet_kpis)."""
        now = time.time() if now is None else now
        since = now - window_s
        return fleet_kpis(self.store.task_times(since), self.store.order_times(since),
                          list(self.view.robots), now=now, window_s=window_s,
                          safety_stops=self.store.samples('safety_stop', since),
                          latency=self.store.samples('inference_p99_ms', since))

    def task(self, task_id: str) -> dict[str, Any] | None:
        """Return a task with its orders (each dispatch attempt, with its status and reason)."""
        rows = self.store.tasks(limit=1, task_id=task_id)
        if not rows:
            return None
        out = dict(rows[0])
        out['body'] = json.loads(out['body'] or '{}')
        out['orders'] = self.store.orders(limit=1000, task_id=task_id)
        return out

    def health(self) -> dict[str, Any]:
        """Return what the dashboard shows about the server itself (store, MQTT)."""
        return {'store': 'available' if self.store.available else 'store unavailable',
                'store_available': self.store.available,
                'store_unavailable_since': self.store.unavailable_since,
                'mqtt_connected': self.link.is_connected()}

    def metrics(self) -> dict[str, Any]:
        """Return server metrics (ingest counters, store, MQTT link, auth failures)."""
        m = self.ingest.metrics()
        m.update(uptime_s=time.time() - self.started, robots=len(self.view.robots),
                 auth_failures=self.auth_failures, timer_errors=self.timer_errors,
                 health=self.health(), camera=self.camera.status(),
                 mqtt=self.link.status())
        return m


def _task_to_json(t: _Task) -> str:
    return json.dumps({'pickup': asdict(t.task.pickup), 'dropoff': asdict(t.task.dropoff),
                       'load_s': t.task.load_s, 'unload_s': t.task.unload_s,
                       'load_type': t.task.load_type, 'robot': t.robot,
                       'priority': t.priority})


def _task_from_json(text: str) -> _Task:
    d = json.loads(text)
    return _Task(TransportTask(Place(**d['pickup']), Place(**d['dropoff']), float(d['load_s']),
                               float(d['unload_s']), str(d['load_type'])), str(d['robot']),
                 priority=int(d.get('priority', DEFAULT_PRIORITY)))
