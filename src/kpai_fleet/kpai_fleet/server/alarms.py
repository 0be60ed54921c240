"""Alarms the operator must see: raised by a condition, listed until acknowledged.

Conditions come from the live robot summaries and the store health: a broken connection, a
FATAL error, stale perception or safety status, the store unavailable. An alarm stays listed
(active or cleared) until someone acknowledges it; a condition that is still active after the
acknowledgement raises no new alarm until it has cleared and come back.

With a `persist` callback every change (raised, cleared, acknowledged) is saved, and
`restore` takes the saved alarms back after a restart: an acknowledged alarm whose condition
is still on stays acknowledged. A save that fails (the store is away) is retried on the next
change or update.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ['Alarm', 'AlarmBook', 'conditions']

Key = tuple[str, str, str]  # (robot id or '', kind, detail key)


@dataclass
class Alarm:
    """One alarm: what, where, since when, whether it is still active, who acknowledged it."""

    id: int
    kind: str          # connection_lost, fatal_error, perception_stale, safety_stale,
    robot_id: str      # store_unavailable
    detail: str
    raised: float
    cleared: float | None = None
    acked: float | None = None
    acked_by: str = ''
    key_detail: str = ''  # the third part of its condition key (a fatal error's text)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form of the API (with `active`)."""
        out = asdict(self)
        del out['key_detail']
        return dict(out, active=self.cleared is None)

    @property
    def key(self) -> Key:
        return (self.robot_id, self.kind, self.key_detail)


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == 'true'


def conditions(robots: Iterable[Mapping[str, Any]], store_available: bool
               ) -> dict[Key, str]:
    """Return the alarm conditions present now, by key, with a human-readable detail."""
    out: dict[Key, str] = {}
    if not store_available:
        out[('', 'store_unavailable', '')] = 'store unavailable: states are queued'
    for r in robots:
        rid = str(r.get('robot_id', ''))
        if r.get('connection') == 'CONNECTIONBROKEN':
            out[(rid, 'connection_lost', '')] = 'connection lost (CONNECTIONBROKEN)'
        for e in r.get('errors') or ():
            if e.get('level') == 'FATAL':
                text = f'{e.get("type", "?")}: {e.get("description") or ""}'.rstrip(': ')
                out[(rid, 'fatal_error', text)] = text
        perception = r.get('perception') or {}
        if _true(perception.get('stale')):
            out[(rid, 'perception_stale', '')] = 'no inference statistics recently'
        safety = r.get('safety') or {}
        if _true(safety.get('stale')) or _true(safety.get('inputsStale')):
            out[(rid, 'safety_stale', '')] = 'safety status or its inputs are stale'
    return out


class AlarmBook:
    """The alarms raised so far, kept in memory (they outlive a store outage)."""

    def __init__(self, keep: int = 1000,
                 persist: Callable[[dict[str, Any]], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._open: dict[Key, Alarm] = {}    # the newest alarm of each key whose condition is on
        self._alarms: dict[int, Alarm] = {}  # every alarm still listed or recently acked
        self.keep = keep
        self.persist = persist
        self._unsaved: dict[int, Alarm] = {}
        self.save_errors = 0

    def restore(self, rows: Iterable[Mapping[str, Any]], max_id: int) -> None:
        """Take back saved alarms (listed or still active); new ids count on from max_id."""
        with self._lock:
            for r in rows:
                a = Alarm(int(r['id']), str(r['kind']), str(r['robot_id']), str(r['detail']),
                          float(r['raised']), r['cleared'], r['acked'], str(r['acked_by'] or ''),
                          str(r['key_detail'] or ''))
                self._alarms[a.id] = a
                if a.cleared is None:
                    self._open[a.key] = a
            self._ids = itertools.count(max(max_id, max(self._alarms, default=0)) + 1)

    def _changed(self, alarm: Alarm) -> None:
        if self.persist is not None:
            self._unsaved[alarm.id] = alarm

    def _save(self) -> None:
        """Save the changed alarms (under the lock); keep those that failed for later."""
        if self.persist is None:
            return
        for aid, alarm in list(self._unsaved.items()):
            try:
                self.persist(asdict(alarm))
            except Exception:  # noqa: BLE001 - the store is away: retried on the next change
                self.save_errors += 1
                return
            del self._unsaved[aid]

    def update(self, present: Mapping[Key, str], now: float | None = None) -> None:
        """Raise alarms for new conditions and mark those gone as cleared."""
        now = time.time() if now is None else now
        with self._lock:
            for key, detail in present.items():
                if key not in self._open:
                    alarm = Alarm(next(self._ids), key[1], key[0], detail, now,
                                  key_detail=key[2])
                    self._open[key] = self._alarms[alarm.id] = alarm
                    self._changed(alarm)
            for key in [k for k in self._open if k not in present]:
                alarm = self._open.pop(key)
                alarm.cleared = now
                self._changed(alarm)
            if len(self._alarms) > self.keep:  # forget the oldest acknowledged ones
                done = sorted(a.id for a in self._alarms.values() if a.acked is not None)
                for aid in done[:len(self._alarms) - self.keep]:
                    del self._alarms[aid]
            self._save()

    def listed(self) -> list[dict[str, Any]]:
        """Return the alarms not yet acknowledged, newest first."""
        with self._lock:
            return [a.to_dict() for a in sorted(self._alarms.values(), key=lambda a: -a.id)
                    if a.acked is None]

    def acknowledge(self, alarm_id: int, user: str, now: float | None = None) -> bool:
        """Acknowledge an alarm; return False if there is no such listed alarm."""
        with self._lock:
            alarm = self._alarms.get(alarm_id)
            if alarm is None or alarm.acked is not None:
                return False
            alarm.acked = time.time() if now is None else now
            alarm.acked_by = user
            self._changed(alarm)
            self._save()
            return True
