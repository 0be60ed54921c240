"""The running fleet server: MQTT subscription -> ingest -> store, plus dispatch of tasks."""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from kpai_fleet.errors import ConfigError, DispatchError
from kpai_fleet.faults import FaultLog
from kpai_fleet.mqtt_link import MqttLink
from kpai_fleet.server.config import ServerConfig
from kpai_fleet.server.dispatch import (
    TransportTask,
    build_cancel,
    build_order,
    choose_robot,
    resolve_place,
)
from kpai_fleet.server.ingest import FleetView, Ingest, order_action_ids, summarize_state
from kpai_fleet.server.store import Store, open_store
from kpai_fleet.vda5050.models import State

__all__ = ['FleetService', 'load_map_meta']

ACTIVE = ('dispatched', 'running')


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
                             on_order_status=self._order_status, faults=self.faults)
        self.map_meta = load_map_meta(cfg.map_yaml) if cfg.map_yaml else None
        self.auth_failures = 0
        self._dispatch_lock = threading.Lock()
        self._headers: defaultdict[str, itertools.count[int]] = defaultdict(itertools.count)
        self._instant_headers: defaultdict[str, itertools.count[int]] = defaultdict(
            itertools.count)
        self._restore()
        self.link = MqttLink(
            cfg.broker_url, cfg.client_id, username=cfg.mqtt_username,
            password=cfg.mqtt_password, ca_file=cfg.mqtt_ca_file,
            subscriptions=((f'{cfg.interface}/v2/+/+/#', 1),), on_message=self._on_message,
            faults=self.faults)

    def _restore(self) -> None:
        """Rebuild the live view and open orders from the database after a restart."""
        for r in self.store.robots():
            st = self.store.latest_state(r['robot_id'])
            summary: dict[str, Any] = {'robot_id': r['robot_id']}
            if st is not None:
                try:
                    summary = summarize_state(r['robot_id'], State.model_validate(st),
                                              r['last_seen'] or 0.0)
                except ValueError:
                    pass
            if r.get('connection'):
                summary['connection'] = r['connection']
            self.view.robots[r['robot_id']] = summary
        for o in self.store.orders(limit=10000):
            if o['status'] in ACTIVE:
                self.ingest.order_states[o['order_id']] = o['status']

    def start(self) -> None:
        """Connect to the broker (reconnecting in the background)."""
        self.link.start()

    def stop(self) -> None:
        """Disconnect and flush the store."""
        self.link.stop()
        self.store.close()

    def _on_message(self, topic: str, payload: bytes) -> None:
        self.ingest.handle(topic, payload)

    def _order_status(self, order_id: str, robot_id: str, status: str) -> None:
        # queued like the states (the MQTT thread never waits for, nor fails on, the database)
        self.store.submit_order(order_id, robot_id, status, time.time())
        if status == 'failed':
            self._cancel_failed(order_id, robot_id)

    def _cancel_failed(self, order_id: str, robot_id: str) -> None:
        """Send cancelOrder for a failed order (VDA 5050: master control clears it).

        The robot drops the order's remaining nodes and its error, and can take a new task;
        the order stays `failed` in the store.
        """
        robot = self.view.robots.get(robot_id) or {'robot_id': robot_id}
        msg = build_cancel(robot, order_id, header_id=next(self._instant_headers[robot_id]),
                           now=time.time())
        topic = f'{self.cfg.interface}/v2/{msg.manufacturer}/{msg.serial_number}/instantActions'
        self.link.publish(topic, msg.to_json(), qos=1)

    # -- dispatch --------------------------------------------------------------------------
    def dispatch(self, body: dict[str, Any]) -> dict[str, Any]:
        """Dispatch a transport task; return the order id and robot; DispatchError if not."""
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
        task = TransportTask(pickup, dropoff, load_s, unload_s)
        with self._dispatch_lock:
            robots = self.view.snapshot()
            busy = {o['robot_id'] for o in self.store.orders(limit=10000)
                    if self.ingest.order_states.get(o['order_id']) in ACTIVE}
            wanted = body.get('robot')
            if wanted:
                robots = [r for r in robots if r.get('robot_id') == wanted]
                if not robots:
                    raise DispatchError(f'unknown robot {wanted!r}')
            robot_id = choose_robot(robots, pickup, min_battery=self.cfg.min_battery,
                                    exclude=busy)
            robot = next(r for r in robots if r['robot_id'] == robot_id)
            order_id = f'task-{uuid.uuid4().hex[:10]}'
            order = build_order(robot, task, order_id, header_id=next(self._headers[robot_id]),
                                now=time.time(), map_id=self.cfg.map_id)
            task_json = json.dumps({'pickup': pickup.__dict__, 'dropoff': dropoff.__dict__})
            payload = order.to_json()
            self.store.upsert_order(order_id, robot_id, 'dispatched', task=task_json,
                                    payload=payload.decode())
            self.ingest.order_actions[order_id] = order_action_ids(order)
            self.ingest.order_states[order_id] = 'dispatched'
        topic = f'{self.cfg.interface}/v2/{order.manufacturer}/{order.serial_number}/order'
        self.link.publish(topic, payload, qos=1)
        return {'order_id': order_id, 'robot_id': robot_id, 'status': 'dispatched',
                'topic': topic}

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
                 auth_failures=self.auth_failures, health=self.health(),
                 mqtt=self.link.status())
        return m
