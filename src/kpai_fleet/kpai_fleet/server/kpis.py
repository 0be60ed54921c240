"""Fleet KPIs over a time window: tasks per hour, task time mean and p95, utilisation per robot,
safety stops per hour and the inference latency over time.

Computed from the store's task, order and sample rows (server times, never the robots' clocks).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ['fleet_kpis', 'percentile']

BUSY_ORDER_STATUSES = ('dispatched', 'running', 'completed', 'failed', 'cancelled')
OPEN_ORDER_STATUSES = ('dispatched', 'running')


def percentile(values: list[float], q: float) -> float | None:
    """Return the q-th percentile (0..100, linear interpolation) of values, None if empty."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def fleet_kpis(tasks: Iterable[Mapping[str, Any]], orders: Iterable[Mapping[str, Any]],
               robots: Iterable[str], *, now: float, window_s: float,
               buckets: int = 12, safety_stops: Iterable[Mapping[str, Any]] = (),
               latency: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Return the KPIs of the window [now - window_s, now).

    A task counts when it completed in the window; its time is created -> completed. A robot
    is busy from the dispatch of an order until the order ended (now for an open one); the
    orders it rejected do not count. A safety stop counts in the window it began; the
    latency series is the mean, per bucket, of the robots' p99 inference latency samples.
    """
    start = now - window_s
    width = window_s / buckets
    per_bucket = [0] * buckets
    durations: list[float] = []
    failed = cancelled = 0
    for t in tasks:
        done = float(t.get('updated') or 0.0)
        if not start <= done < now:
            continue
        if t.get('status') == 'completed':
            durations.append(done - float(t.get('created') or done))
            per_bucket[min(buckets - 1, int((done - start) / width))] += 1
        elif t.get('status') == 'failed':
            failed += 1
        elif t.get('status') == 'cancelled':
            cancelled += 1
    busy: dict[str, float] = dict.fromkeys(robots, 0.0)
    for o in orders:
        status = o.get('status')
        if status not in BUSY_ORDER_STATUSES:
            continue
        begin = float(o.get('created') or 0.0)
        end = now if status in OPEN_ORDER_STATUSES else float(o.get('updated') or begin)
        overlap = min(end, now) - max(begin, start)
        if overlap > 0:
            rid = str(o.get('robot_id'))
            busy[rid] = busy.get(rid, 0.0) + overlap
    def bucket(ts: float) -> int | None:
        return min(buckets - 1, int((ts - start) / width)) if start <= ts < now else None

    stops = [0] * buckets
    stops_by_robot: dict[str, int] = {}
    for s in safety_stops:
        b = bucket(float(s['ts']))
        if b is not None:
            stops[b] += 1
            stops_by_robot[str(s['robot_id'])] = stops_by_robot.get(str(s['robot_id']), 0) + 1
    lat: list[list[float]] = [[] for _ in range(buckets)]
    for p in latency:
        b = bucket(float(p['ts']))
        if b is not None:
            lat[b].append(float(p['value']))
    all_lat = [v for vs in lat for v in vs]
    return {
        'safety_stops': sum(stops), 'safety_stops_per_hour': sum(stops) * 3600.0 / window_s,
        'safety_stops_per_bucket': stops, 'safety_stops_by_robot': dict(sorted(
            stops_by_robot.items())),
        'latency_ms_per_bucket': [sum(vs) / len(vs) if vs else None for vs in lat],
        'latency_ms_p95': percentile(all_lat, 95),
        'window_s': window_s, 'since': start, 'until': now,
        'tasks_completed': len(durations), 'tasks_failed': failed,
        'tasks_cancelled': cancelled,
        'tasks_per_hour': len(durations) * 3600.0 / window_s,
        'task_time_mean_s': sum(durations) / len(durations) if durations else None,
        'task_time_p95_s': percentile(durations, 95),
        'completed_per_bucket': per_bucket, 'bucket_s': width,
        'utilisation': {rid: min(1.0, b / window_s) for rid, b in sorted(busy.items())},
    }
