"""Validate incoming VDA 5050 traffic and turn it into store rows, live summaries and metrics."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from kpai_fleet.errors import ValidationRejected
from kpai_fleet.faults import FaultLog, exception_kind
from kpai_fleet.server.rows import EventRow, SampleRow, StateRow
from kpai_fleet.server.store import Store
from kpai_fleet.vda5050.factsheet import Factsheet
from kpai_fleet.vda5050.models import (
    MAX_PAYLOAD_BYTES,
    ActionStatus,
    Connection,
    ErrorEntry,
    Order,
    State,
    Visualization,
    parse_message,
    parse_timestamp,
)
from kpai_fleet.vda5050.state_builder import FIELD_SETS
from kpai_fleet.vda5050.topics import AGV_TOPICS, MASTER_TOPICS, parse_topic

__all__ = ['INSTANT_ACTION_TYPES', 'REJECTION_ERRORS', 'FleetView', 'Ingest', 'OrderWatch',
           'factsheet_summary', 'failure_reason', 'order_action_ids', 'order_rejection',
           'order_status', 'summarize_state']


def _refs(refs: list[Any]) -> dict[str, str]:
    return {r.reference_key: r.reference_value for r in refs}


# VDA 5050 instant actions the stack's agent and server use; they never belong to an order
INSTANT_ACTION_TYPES = frozenset({'startPause', 'stopPause', 'cancelOrder', 'stateRequest',
                                  'factsheetRequest', 'logReport', 'initPosition'})


OPEN_STATUSES = ('dispatched', 'running')
# the reason of an order a vehicle lost (agent or mission executor restarted): not the task's
# fault, so the fleet server offers the task again
LOST_PREFIX = 'order lost'
LOST_MARKERS = (LOST_PREFIX, 'mission lost')
# errorTypes with which a vehicle refuses an order (VDA 5050 2.0, 6.6.4)
REJECTION_ERRORS = frozenset({'orderError', 'validationError', 'orderUpdateError'})

ErrorKey = tuple[str, str, tuple[tuple[str, str], ...]]
# the KPI series: one latency point per robot this often (a state comes every second)
LATENCY_SAMPLE_EVERY_S = 30.0


def _error_key(e: ErrorEntry) -> ErrorKey:
    return e.error_type, e.error_description or '', tuple(sorted(e.references().items()))


def _describe_error(e: ErrorEntry) -> str:
    refs = ', '.join(f'{k}={v}' for k, v in e.references().items())
    text = f'{e.error_type}: {e.error_description or "(no description)"}'
    return f'{text} [{refs}]' if refs else text


@dataclass
class OrderWatch:
    """An order the server sent and has not yet seen in the vehicle's state."""

    robot_id: str
    header_id: int
    sent: float
    baseline: frozenset[ErrorKey] = frozenset()  # the vehicle's errors before the order


def order_rejection(st: State, order_id: str, watch: OrderWatch) -> str:
    """Return the vehicle's reason when its state rejects order_id, else ''.

    A rejection is an orderError/validationError/orderUpdateError that was not there before
    the order and refers to it: errorReference orderId, or headerId of the order message.
    """
    for e in st.errors:
        if e.error_type not in REJECTION_ERRORS or _error_key(e) in watch.baseline:
            continue
        refs = e.references()
        if refs.get('orderId') == order_id or (
                'orderId' not in refs and refs.get('headerId') == str(watch.header_id)
                and refs.get('topic', 'order') == 'order'):
            return _describe_error(e)
    return ''


def failure_reason(st: State, order_action_ids: frozenset[str] | None = None) -> str:
    """Return why the state's order failed: the failed action's result or the fatal error."""
    for a in st.action_states:
        if a.action_status is ActionStatus.FAILED and (
                order_action_ids is None or a.action_id in order_action_ids):
            return f'action {a.action_id} ({a.action_type or "?"}) failed: ' + (
                a.result_description or 'no result description')
    for e in st.errors:
        if e.error_level.value == 'FATAL':
            return _describe_error(e)
    return ''


def order_status(state: State, order_action_ids: frozenset[str] | None = None) -> str:
    """Derive the status of the state's order: running, completed, failed or cancelled.

    Only the order's own actions count (order_action_ids, when the server knows the order it
    sent; else every action but the instant-action types): a failed instant action (a pause
    the robot could not honour, say) does not fail the order.
    """
    types = {a.action_id: a for a in state.action_states}
    if any(a.action_type == 'cancelOrder' and a.action_status is ActionStatus.FINISHED
           for a in types.values()) and not state.node_states:
        return 'cancelled'
    if order_action_ids is not None:
        own = [a for a in types.values() if a.action_id in order_action_ids]
    else:
        own = [a for a in types.values() if a.action_type not in INSTANT_ACTION_TYPES]
    if any(a.action_status is ActionStatus.FAILED for a in own) or any(
            e.error_type == 'kpai.missionFailed' for e in state.errors):
        return 'failed'
    released = [n for n in state.node_states if n.released]
    busy = any(a.action_status not in (ActionStatus.FINISHED, ActionStatus.FAILED) for a in own)
    return 'running' if released or busy else 'completed'


def order_action_ids(order: Order) -> frozenset[str]:
    """Return the action ids of an order's nodes and edges."""
    ids = {a.action_id for n in order.nodes for a in n.actions}
    ids |= {a.action_id for e in order.edges for a in e.actions}
    return frozenset(ids)


def summarize_state(robot_id: str, st: State, received: float) -> dict[str, Any]:
    """Reduce a state to what the API list and the dashboard show."""
    pos = st.agv_position
    info = {i.info_type: dict(_refs(i.info_references), description=i.info_description or '')
            for i in (st.information or [])}
    released = [n for n in st.node_states if n.released]
    running = [a for a in st.action_states
               if a.action_status in (ActionStatus.RUNNING, ActionStatus.INITIALIZING)]
    return {
        'robot_id': robot_id, 'manufacturer': st.manufacturer, 'serial_number': st.serial_number,
        'timestamp': st.timestamp, 'received': received, 'header_id': st.header_id,
        'order_id': st.order_id, 'order_update_id': st.order_update_id,
        'last_node_id': st.last_node_id,
        'x': pos.x if pos else None, 'y': pos.y if pos else None,
        'theta': pos.theta if pos else None, 'map_id': pos.map_id if pos else '',
        'battery': st.battery_state.battery_charge, 'charging': st.battery_state.charging,
        'driving': st.driving, 'paused': bool(st.paused),
        'idle': not released and not running,
        'nodes_remaining': [n.node_id for n in released],
        # the planned path: the order's nodes still ahead that carry a position
        'path': [{'id': n.node_id, 'x': n.node_position.x, 'y': n.node_position.y,
                  'released': n.released}
                 for n in st.node_states if n.node_position is not None],
        'actions': [{'id': a.action_id, 'type': a.action_type, 'status': a.action_status.value}
                    for a in st.action_states],
        'errors': [{'type': e.error_type, 'level': e.error_level.value,
                    'description': e.error_description or ''} for e in st.errors],
        'perception': info.get('kpai.perception', {}), 'safety': info.get('kpai.safety', {}),
        'field_violation': st.safety_state.field_violation,
    }


def factsheet_summary(fs: Factsheet) -> dict[str, Any]:
    """Reduce a factsheet to what the API list shows: series, version, declared actions."""
    envelopes = fs.agv_geometry.envelopes2d or []
    fields = {e.set.removeprefix('kpai.'): [[p.x, p.y] for p in e.polygon_points[:64]]
              for e in envelopes if e.set in FIELD_SETS}
    return {'series_name': fs.type_specification.series_name, 'version': fs.version,
            'agv_class': fs.type_specification.agv_class,
            'actions': sorted(a.action_type for a in fs.protocol_features.agv_actions),
            'fields': fields}


def _category(reason: str) -> str:
    for key, name in (('exceeds', 'oversized'), ('malformed JSON', 'malformed_json'),
                      ('schema violation', 'schema'), ('unknown robot', 'unknown_robot'),
                      ('topic', 'bad_topic'), ('published on', 'identity_mismatch')):
        if key in reason:
            return name
    return 'other'


class FleetView:
    """Latest summary per robot, kept in memory (it goes on while the database is away).

    The newest state per robot by server receive time wins (a robot clock is not trusted);
    summaries are made when read, so that taking a state costs the ingest thread little.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._robots: dict[str, dict[str, Any]] = {}
        self._pending: dict[str, StateRow] = {}  # newest state per robot not summarised yet
        self.version = 0
        self._cond = threading.Condition(self._lock)

    def update(self, rows: list[StateRow]) -> None:
        """Take the newest state per robot of rows (rows without their model are skipped)."""
        with self._cond:
            changed = False
            for r in rows:
                if r.model is None:
                    continue
                cur = self._pending.get(r.robot_id)
                last = cur.received if cur is not None else self._robots.get(
                    r.robot_id, {}).get('received', -math.inf)
                if r.received >= last:
                    self._pending[r.robot_id] = r
                    changed = True
            if changed:
                self.version += 1
                self._cond.notify_all()

    def _summarise(self) -> None:
        for rid, r in self._pending.items():
            old = self._robots.get(rid, {})
            extras = {k: old[k] for k in ('connection', 'live', 'factsheet') if k in old}
            self._robots[rid] = dict(summarize_state(rid, r.model, r.received), **extras)
        self._pending.clear()

    @property
    def robots(self) -> dict[str, dict[str, Any]]:
        """The summaries by robot id (the live dict: callers read it, _restore fills it)."""
        with self._lock:
            self._summarise()
            return self._robots

    def patch(self, robot_id: str, **fields: Any) -> None:
        """Set extra fields of one robot (connection state, visualization pose)."""
        with self._cond:
            self._robots.setdefault(robot_id, {'robot_id': robot_id}).update(fields)
            self.version += 1
            self._cond.notify_all()

    def snapshot(self) -> list[dict[str, Any]]:
        """Return a copy of all robot summaries."""
        with self._lock:
            self._summarise()
            return [{k: v for k, v in r.items() if not k.startswith('_')}
                    for _, r in sorted(self._robots.items())]

    def wait_change(self, version: int, timeout: float) -> int:
        """Block until the version moves past version (or timeout); return the current one."""
        with self._cond:
            self._cond.wait_for(lambda: self.version != version, timeout=timeout)
            return self.version


class Ingest:
    """Turns (topic, payload) into validated store writes; every rejection is counted."""

    def __init__(self, store: Store, view: FleetView, *, max_bytes: int = MAX_PAYLOAD_BYTES,
                 allowed_robots: frozenset[str] | None = None,
                 on_order_status: Callable[[str, str, str], None] | None = None,
                 on_connection: Callable[[str, Connection], None] | None = None,
                 on_stale_order: Callable[[str, str], None] | None = None,
                 order_timeout_s: float = 10.0,
                 reject_events_per_s: float = 20.0, faults: FaultLog | None = None) -> None:
        self.store = store
        self.view = view
        self.max_bytes = max_bytes
        self.allowed = allowed_robots
        self.on_order_status = on_order_status
        self.on_connection = on_connection
        self.on_stale_order = on_stale_order
        self.order_timeout_s = order_timeout_s
        self.faults = faults if faults is not None else FaultLog()
        self.counts: Counter[str] = Counter()
        self.rejects: Counter[str] = Counter()
        self.order_states: dict[str, str] = {}
        self.order_reasons: dict[str, str] = {}
        self.order_actions: dict[str, frozenset[str]] = {}  # ids of the orders the server sent
        self.watches: dict[str, OrderWatch] = {}  # sent orders not yet seen in a state
        self.factsheets: dict[str, Factsheet] = {}
        self._last_errors: dict[str, frozenset[ErrorKey]] = {}
        self._shown_order: dict[str, str] = {}  # the order each robot's state last showed
        self._stale_cancelled: set[str] = set()
        self._violating: dict[str, bool] = {}     # protective field violated in the last state
        self._latency_sampled: dict[str, float] = {}
        self._errors_seen: dict[str, frozenset[tuple[str, str]]] = {}
        self._recent: dict[str, deque[tuple[int, str]]] = {}
        self._reject_budget = reject_events_per_s
        self._reject_window = (0.0, 0)
        # re-entrant: a rejection re-dispatches from within a handler; the dispatcher holds
        # the same lock (one lock order for ingest and dispatch)
        self._lock = threading.RLock()

    @property
    def lock(self) -> threading.RLock:
        """The lock held while a message is applied; dispatch decisions hold it too."""
        return self._lock

    def handle(self, topic: str, payload: bytes, received: float | None = None) -> bool:
        """Validate and store one message; return False if it was rejected or failed.

        Never raises: a rejection is counted by reason, any other error by its type (both
        reported through `faults`), and the next message is handled as usual.
        """
        now = time.time() if received is None else received
        self.counts['received'] += 1
        robot_id = ''
        try:
            addr = parse_topic(topic)
            robot_id = addr.robot_id
            if addr.kind in MASTER_TOPICS:
                self.counts['ignored_master'] += 1
                return True
            if addr.kind not in AGV_TOPICS:
                raise ValidationRejected(f'unknown topic kind {addr.kind!r}')
            if self.allowed is not None and robot_id not in self.allowed:
                raise ValidationRejected(f'unknown robot {robot_id!r}')
            msg = parse_message(addr.kind, payload, max_bytes=self.max_bytes)
            if (msg.manufacturer, msg.serial_number) != (addr.manufacturer, addr.serial):
                raise ValidationRejected(
                    f'payload is from {msg.manufacturer}/{msg.serial_number} but was published '
                    f'on {topic}')
            with self._lock:
                self._accept(robot_id, msg, payload, now)
        except ValidationRejected as rej:
            self._contain(self._reject, robot_id, rej.reason, now)
            return False
        except Exception as err:  # noqa: BLE001 - no message may stop the handler
            self.counts['failed'] += 1
            self.faults.record(exception_kind(err), f'{topic[:200]}: {_text(err)}')
            return False
        self.counts['accepted'] += 1
        return True

    def _contain(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as err:  # noqa: BLE001 - counting a rejection must not raise either
            self.faults.record(exception_kind(err), f'while rejecting: {_text(err)}')

    def _accept(self, robot_id: str, msg: Any, payload: bytes, now: float) -> None:
        if isinstance(msg, State):
            self.counts['state'] += 1
            self._state(robot_id, msg, payload, now)
        elif isinstance(msg, Connection):
            self.counts['connection'] += 1
            state = msg.connection_state.value
            self.store.submit_connection(robot_id, msg.manufacturer, msg.serial_number, now,
                                         state)
            level = 'INFO' if state == 'ONLINE' else 'WARNING'
            self.store.submit_event(EventRow(robot_id, now, 'connection', level, state))
            self.view.patch(robot_id, connection=state)
            if self.on_connection is not None:
                self.on_connection(robot_id, msg)
        elif isinstance(msg, Visualization):
            self.counts['visualization'] += 1
            if msg.agv_position is not None:
                p = msg.agv_position
                self.view.patch(robot_id, live={'x': p.x, 'y': p.y, 'theta': p.theta,
                                                'received': now})
        elif isinstance(msg, Factsheet):
            self.counts['factsheet'] += 1
            self.factsheets[robot_id] = msg
            self.store.upsert_factsheet(robot_id, payload.decode(), now)
            self.store.submit_event(EventRow(robot_id, now, 'factsheet', 'INFO',
                                             f'{msg.type_specification.series_name} '
                                             f'(VDA 5050 {msg.version})'))
            self.view.patch(robot_id, factsheet=factsheet_summary(msg))

    def _state(self, robot_id: str, st: State, payload: bytes, now: float) -> None:
        # QoS 1 is at-least-once: a redelivery after a reconnect must not become a second row
        key = (st.header_id, st.timestamp)
        recent = self._recent.setdefault(robot_id, deque(maxlen=256))
        if key in recent:
            self.counts['duplicates'] += 1
            return
        recent.append(key)
        try:
            ts = parse_timestamp(st.timestamp).timestamp()
        except (ValueError, OverflowError):
            raise ValidationRejected(f'schema violation in state: timestamp: invalid date '
                                     f'{st.timestamp!r}') from None
        pos = st.agv_position
        row = StateRow(
            robot_id=robot_id, ts=ts, received=now, header_id=st.header_id,
            order_id=st.order_id, x=pos.x if pos else None, y=pos.y if pos else None,
            theta=pos.theta if pos else None, battery=st.battery_state.battery_charge,
            driving=st.driving, payload=payload.decode(), manufacturer=st.manufacturer,
            serial_number=st.serial_number, n_errors=len(st.errors))
        # the live view from memory first: it goes on while the database is away
        self.view.update([replace(row, model=st)])
        self.store.submit_state(row)
        errs = frozenset((e.error_type, e.error_description or '') for e in st.errors)
        if errs != self._errors_seen.get(robot_id, frozenset()):
            for kind, text in sorted(errs - self._errors_seen.get(robot_id, frozenset())):
                level = next(e.error_level.value for e in st.errors if e.error_type == kind)
                self.store.submit_event(EventRow(robot_id, now, 'error', level,
                                                 f'{kind}: {text}'))
            self._errors_seen[robot_id] = errs
        self._sample_kpis(robot_id, st, now)
        self._watch_orders(robot_id, st, now, now)
        self._last_errors[robot_id] = frozenset(_error_key(e) for e in st.errors)
        shown = self._shown_order.get(robot_id)
        if (shown and st.order_id != shown
                and self.order_states.get(shown) in OPEN_STATUSES and shown not in self.watches):
            # the vehicle showed the order, and now shows another or none while it is open:
            # its agent restarted and lost it (VDA 5050 keeps a finished order in the state)
            self._set_status(shown, robot_id, 'failed', f'{LOST_PREFIX}: {robot_id} no longer '
                             f'reports order {shown} (its agent restarted?)', now)
        self._shown_order[robot_id] = st.order_id
        if st.order_id and self.order_states.get(st.order_id) in OPEN_STATUSES:
            # a finished order keeps its status: the cancelOrder that clears a failed order
            # from the robot does not turn it into 'cancelled'
            ids = self.order_actions.get(st.order_id)
            status = order_status(st, ids)
            if status != self.order_states[st.order_id]:
                reason = failure_reason(st, ids) if status == 'failed' else ''
                self._set_status(st.order_id, robot_id, status, reason, now)
        elif (self.order_states.get(st.order_id) == 'rejected' and st.order_id not in
              self._stale_cancelled and any(n.released for n in st.node_states)):
            # an order given up on (no answer in time) turned up after all: it must not run
            self._stale_cancelled.add(st.order_id)
            if self.on_stale_order is not None:
                self.on_stale_order(st.order_id, robot_id)

    def _sample_kpis(self, robot_id: str, st: State, now: float) -> None:
        """Record a safety stop when one begins, and the inference latency now and then."""
        violating = bool(st.safety_state.field_violation)
        if violating and not self._violating.get(robot_id, False):
            self.store.submit_sample(SampleRow(robot_id, now, 'safety_stop', 1.0))
        self._violating[robot_id] = violating
        if now - self._latency_sampled.get(robot_id, -math.inf) < LATENCY_SAMPLE_EVERY_S:
            return
        for i in st.information or ():
            if i.info_type != 'kpai.perception':
                continue
            refs = _refs(i.info_references)
            try:
                latency = float(refs.get('latencyP99Ms', 'nan'))
            except ValueError:
                return
            if math.isfinite(latency) and 0 < latency < 1e6 and refs.get('stale') != 'True':
                self._latency_sampled[robot_id] = now
                self.store.submit_sample(SampleRow(robot_id, now, 'inference_p99_ms', latency))
            return

    # -- order lifecycle -------------------------------------------------------------------
    def watch_order(self, order: Order, robot_id: str, action_ids: frozenset[str],
                    sent: float) -> None:
        """Follow a sent order: 'dispatched' until the vehicle's state shows or refuses it."""
        with self._lock:
            self.order_actions[order.order_id] = action_ids
            self.order_states[order.order_id] = 'dispatched'
            self.watches[order.order_id] = OrderWatch(
                robot_id, order.header_id, sent, self._last_errors.get(robot_id, frozenset()))

    def check_timeouts(self, now: float | None = None) -> None:
        """Reject dispatched orders whose vehicle has not shown them within the timeout."""
        now = time.time() if now is None else now
        with self._lock:
            for order_id, w in list(self.watches.items()):
                if now - w.sent > self.order_timeout_s:
                    self._set_status(order_id, w.robot_id, 'rejected', self._timeout_reason(
                        order_id, w.robot_id), now)

    def _timeout_reason(self, order_id: str, robot_id: str) -> str:
        return (f'order {order_id} did not appear in the state of {robot_id} within '
                f'{self.order_timeout_s:g} s')

    def _watch_orders(self, robot_id: str, st: State, ts: float, now: float) -> None:
        for order_id, w in list(self.watches.items()):
            if w.robot_id != robot_id:
                continue
            if st.order_id == order_id:
                del self.watches[order_id]  # taken: its status follows from the states
                continue
            reason = order_rejection(st, order_id, w)
            if not reason and now - w.sent > self.order_timeout_s:
                reason = self._timeout_reason(order_id, robot_id)
                hints = [_describe_error(e) for e in st.errors
                         if e.error_type in REJECTION_ERRORS and _error_key(e) not in w.baseline]
                if hints:
                    reason += '; vehicle errors: ' + '; '.join(hints)
            if reason:
                self._set_status(order_id, robot_id, 'rejected', reason, ts)

    def _set_status(self, order_id: str, robot_id: str, status: str, reason: str,
                    ts: float) -> None:
        self.order_states[order_id] = status
        self.watches.pop(order_id, None)
        if reason:
            self.order_reasons[order_id] = reason
        level = 'WARNING' if status in ('rejected', 'failed') else 'INFO'
        detail = f'{order_id}: {status}' + (f' ({reason})' if reason else '')
        self.store.submit_event(EventRow(robot_id, ts, 'order', level, detail[:500]))
        if self.on_order_status is not None:
            try:
                self.on_order_status(order_id, robot_id, status)
            except Exception as err:  # noqa: BLE001 - the state itself is accepted
                self.faults.record(f'order_status:{type(err).__name__}',
                                   f'{order_id} -> {status}: {_text(err)}')

    def _reject(self, robot_id: str, reason: str, now: float) -> None:
        self.counts['rejected'] += 1
        category = _category(reason)
        self.rejects[category] += 1
        self.faults.record(f'rejected:{category}', f'{robot_id or "?"}: {reason}')
        start, n = self._reject_window
        if now - start >= 1.0:
            start, n = now, 0
        if n < self._reject_budget:  # store a bounded sample; the counters stay exact
            self.store.submit_event(EventRow(robot_id or '?', now, 'rejected', 'WARNING',
                                             reason[:500]))
            n += 1
        self._reject_window = (start, n)

    def metrics(self) -> dict[str, Any]:
        """Return the counters for /api/metrics."""
        return {'counts': dict(self.counts), 'rejected_by_reason': dict(self.rejects),
                'faults': self.faults.snapshot(), 'store': self.store.status()}


def _text(err: BaseException) -> str:
    """Return repr(err), or its type name when even that fails."""
    try:
        return repr(err)[:300]
    except Exception:  # noqa: BLE001
        return type(err).__name__
