"""Everything a vehicle sends during a conformance run, validated strictly as it arrives."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kpai_fleet.errors import ValidationRejected
from kpai_fleet.vda5050.models import Message, State, parse_message
from kpai_fleet.vda5050.topics import AGV_TOPICS

from .verdict import CheckResult, Status

__all__ = ['STATE_MAX_GAP_S', 'Received', 'Recorder']

STATE_MAX_GAP_S = 30.0  # VDA 5050 2.0, 6.10: a state on events, at the latest every 30 s
MAX_LISTED = 20  # violations listed by name in a report (all are counted)

T = TypeVar('T')


@dataclass
class Received:
    """One message from the vehicle: when, whether retained, its JSON and its strict model."""

    kind: str
    t: float
    retained: bool
    raw: Any
    model: Message | None
    error: str = ''


@dataclass
class _Event:
    what: str
    latency_s: float | None


@dataclass
class Recorder:
    """Thread-safe log of one vehicle's messages; `add` is called from the MQTT thread."""

    manufacturer: str
    serial: str
    clock: Callable[[], float] = time.monotonic
    messages: list[Received] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    header_problems: list[str] = field(default_factory=list)
    events: list[_Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.started = self.clock()
        self._cond = threading.Condition()
        self._last_ids: dict[str, int] = {}

    # -- input -------------------------------------------------------------------------------
    def add(self, kind: str, payload: bytes, *, retained: bool = False) -> Received:
        """Record and validate one message of topic kind (state, connection, ...)."""
        now = self.clock()
        try:
            raw: Any = json.loads(payload)
        except (ValueError, RecursionError):
            raw = None
        model: Message | None = None
        error = ''
        if kind not in AGV_TOPICS:
            error = f'{kind}: not a topic a VDA 5050 2.0 vehicle publishes'
        else:
            try:
                model = parse_message(kind, payload)
            except ValidationRejected as rej:
                error = rej.reason
            else:
                if (model.manufacturer, model.serial_number) != (self.manufacturer, self.serial):
                    error = (f'{kind}: header names {model.manufacturer}/'
                             f'{model.serial_number}, the topic {self.manufacturer}/'
                             f'{self.serial}')
                    model = None
        msg = Received(kind, now, retained, raw, model, error)
        with self._cond:
            self.messages.append(msg)
            self.counts[kind] += 1
            if error:
                self.counts['invalid'] += 1
                self.violations.append(error if error.startswith(kind) else f'{kind}: {error}')
            self._check_header_id(msg)
            self._cond.notify_all()
        return msg

    def _check_header_id(self, msg: Received) -> None:
        raw = msg.raw
        if not isinstance(raw, dict):
            return
        hid = raw.get('headerId')
        if not isinstance(hid, int) or isinstance(hid, bool):
            return  # reported by the validation (or absent in a 2.1 factsheet)
        if msg.kind == 'connection' and raw.get('connectionState') == 'CONNECTIONBROKEN':
            return  # the last will is set at connect time: its headerId is outdated (6.14)
        last = self._last_ids.get(msg.kind)
        if last is not None and hid <= last:
            self.header_problems.append(f'{msg.kind}: headerId {hid} after {last}')
        self._last_ids[msg.kind] = hid

    def note_event(self, what: str, latency_s: float | None) -> None:
        """Record how long the vehicle took to reflect an event in its state (None: never)."""
        with self._cond:
            self.events.append(_Event(what, latency_s))

    # -- queries -----------------------------------------------------------------------------
    def of(self, kind: str, since: float = -1.0) -> list[Received]:
        """Return the messages of kind received at or after since."""
        with self._cond:
            return [m for m in self.messages if m.kind == kind and m.t >= since]

    def states(self, since: float = -1.0) -> list[tuple[float, State]]:
        """Return the valid states received at or after since, with their receive times."""
        return [(m.t, m.model) for m in self.of('state', since) if isinstance(m.model, State)]

    def latest_state(self) -> State | None:
        """Return the latest valid state."""
        states = self.states()
        return states[-1][1] if states else None

    def wait_for(self, probe: Callable[[], T | None], timeout: float) -> T | None:
        """Return probe()'s first truthy result, re-evaluated on each message, or None."""
        deadline = self.clock() + timeout
        with self._cond:
            while True:
                found = probe()
                if found:
                    return found
                left = deadline - self.clock()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.5))

    # -- checks over the whole run -----------------------------------------------------------
    def validation_result(self) -> CheckResult:
        """Pass when every message of the vehicle validated against the strict models."""
        with self._cond:
            total = len(self.messages)
            bad = list(self.violations)
            per_topic = {k: v for k, v in self.counts.items() if k != 'invalid'}
        details = {'messages': total, 'per_topic': per_topic, 'violations': len(bad),
                   'listed': _distinct(bad)[:MAX_LISTED]}
        if total == 0:
            return CheckResult('message_validation', Status.SKIP, 'no message received',
                               details, 'offline')
        if bad:
            return CheckResult('message_validation', Status.FAIL,
                               f'{len(bad)} of {total} messages invalid; first: {bad[0]}',
                               details)
        return CheckResult('message_validation', Status.PASS,
                           f'all {total} messages valid ({_counts(per_topic)})', details)

    def header_result(self) -> CheckResult:
        """Pass when headerIds increased strictly on every topic."""
        with self._cond:
            problems = list(self.header_problems)
            topics = sorted(self._last_ids)
        details = {'topics': topics, 'problems': len(problems),
                   'listed': problems[:MAX_LISTED]}
        if not topics:
            return CheckResult('header_ids', Status.SKIP, 'no message with a headerId',
                               details, 'offline')
        if problems:
            return CheckResult('header_ids', Status.FAIL,
                               f'{len(problems)} out of order; first: {problems[0]}', details)
        return CheckResult('header_ids', Status.PASS,
                           f'strictly increasing on {", ".join(topics)}', details)

    def cadence_result(self, *, end: float | None = None, max_gap_s: float = STATE_MAX_GAP_S,
                       event_timeout_s: float = 5.0) -> CheckResult:
        """Pass when no gap between states exceeded max_gap_s and every event was reported."""
        end = self.clock() if end is None else end
        stamps = [m.t for m in self.of('state') if not m.retained]  # valid or not
        with self._cond:
            events = list(self.events)
        if not stamps:
            return CheckResult('state_cadence', Status.SKIP, 'no state received', {},
                               'offline')
        live = [t for t in stamps if t >= self.started]
        points = [self.started, *live, end]
        gaps = [b - a for a, b in zip(points, points[1:], strict=False)]
        worst = max(gaps)
        late = [e for e in events if e.latency_s is None or e.latency_s > event_timeout_s]
        lat = [e.latency_s for e in events if e.latency_s is not None]
        details = {'states': len(live), 'observed_s': round(end - self.started, 3),
                   'max_gap_s': round(worst, 3), 'limit_s': max_gap_s,
                   'mean_period_s': round((live[-1] - live[0]) / (len(live) - 1), 3)
                   if len(live) > 1 else None,
                   'events': len(events), 'event_timeout_s': event_timeout_s,
                   'max_event_latency_s': round(max(lat), 3) if lat else None,
                   'late_events': [e.what for e in late][:MAX_LISTED]}
        if worst > max_gap_s:
            return CheckResult('state_cadence', Status.FAIL,
                               f'{worst:.1f} s without a state (limit {max_gap_s:g} s)', details)
        if late:
            first = late[0]
            took = 'never' if first.latency_s is None else f'after {first.latency_s:.1f} s'
            return CheckResult('state_cadence', Status.FAIL,
                               f'{len(late)} event(s) not reported within {event_timeout_s:g} '
                               f's; first: {first.what} ({took})', details)
        return CheckResult('state_cadence', Status.PASS,
                           f'{len(live)} states, longest gap {worst:.2f} s; {len(events)} events '
                           f'reported within {details["max_event_latency_s"]} s', details)


def _distinct(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _counts(per_topic: dict[str, int]) -> str:
    return ', '.join(f'{n} {k}' for k, n in sorted(per_topic.items()))
