"""Aggregate what the fleet demo observed into the summary printed at its end."""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ['RobotTally', 'DemoTally', 'percentile', 'process_tree_memory_bytes', 'format_summary']


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (0..100) by linear interpolation; nan for no values."""
    if not values:
        return math.nan
    s = sorted(values)
    k = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


MOVING_SPEED = 0.05  # m/s: a robot slower than this at contact was standing


@dataclass
class RobotTally:
    """What one robot did during the demo."""

    distance_m: float = 0.0
    last_xy: tuple[float, float] | None = None
    safety_stops: int = 0
    in_stop: bool = False
    collisions: int = 0  # every contact of the robot's body with something else
    collisions_moving: int = 0  # those at an impact speed over MOVING_SPEED: the robot drove
    collisions_robot: int = 0  # contacts with another robot of the fleet (either may drive)
    tasks_completed: int = 0
    detections: Counter[str] = field(default_factory=Counter)
    frames_with_detections: int = 0

    def add_position(self, x: float, y: float) -> None:
        """Accumulate driven distance from successive odometry positions."""
        if not (math.isfinite(x) and math.isfinite(y)):
            return
        if self.last_xy is not None:
            step = math.hypot(x - self.last_xy[0], y - self.last_xy[1])
            if step < 5.0:  # a jump (reset, teleport) is not driving
                self.distance_m += step
        self.last_xy = (x, y)

    def add_safety_state(self, protective_stop: bool) -> None:
        """Count transitions into a protective stop."""
        if protective_stop and not self.in_stop:
            self.safety_stops += 1
        self.in_stop = protective_stop

    def add_collision(self, impact_speed: float, *, with_robot: bool = False) -> None:
        """Count a contact; one at the robot's own speed over MOVING_SPEED counts as driven
        into (a person walking into a robot that stands still does not); with_robot: the other
        body is a robot of the fleet."""
        self.collisions += 1
        if with_robot:
            self.collisions_robot += 1
        if not (math.isfinite(impact_speed) and abs(impact_speed) <= MOVING_SPEED):
            self.collisions_moving += 1

    def add_detections(self, labels: list[str]) -> None:
        """Count detections per class of one frame."""
        self.frames_with_detections += 1
        self.detections.update(labels)


@dataclass
class DemoTally:
    """Everything the demo summary reports."""

    robots: dict[str, RobotTally] = field(default_factory=dict)
    inference_p50_ms: list[float] = field(default_factory=list)
    inference_p99_ms: list[float] = field(default_factory=list)
    # the bridge's own time per frame: image received -> detections published (stats 'total')
    bridge_p50_ms: list[float] = field(default_factory=list)
    bridge_p99_ms: list[float] = field(default_factory=list)
    sim_time_s: float = 0.0
    wall_time_s: float = 0.0
    tasks_dispatched: int = 0
    tasks_completed: int = 0
    tasks_failed: int = 0
    messages_recorded: int = 0
    recording_path: str = ''
    peak_memory_bytes: int = 0
    camera_rate_hz: float = math.nan
    odom_rate_hz: float = math.nan
    clock_rate_hz: float = math.nan
    layout: str = ''  # the robots' process layout (demo --layout)
    chaos: dict[str, Any] | None = None  # ChaosTally.to_dict() of a chaos run
    failures: dict[str, str] = field(default_factory=dict)  # failed task id -> reason

    def robot(self, name: str) -> RobotTally:
        """Return (creating on first use) the tally of robot name."""
        return self.robots.setdefault(name, RobotTally())

    @property
    def real_time_factor(self) -> float:
        return self.sim_time_s / self.wall_time_s if self.wall_time_s > 0 else math.nan

    def to_dict(self) -> dict[str, object]:
        """Return the summary as JSON-ready data."""
        detections: Counter[str] = Counter()
        for r in self.robots.values():
            detections.update(r.detections)
        return {
            'robots': {
                name: {
                    'distance_m': round(r.distance_m, 2),
                    'tasks_completed': r.tasks_completed,
                    'safety_stops': r.safety_stops,
                    'collisions': r.collisions,
                    'collisions_moving': r.collisions_moving,
                    'collisions_robot': r.collisions_robot,
                    'detections': dict(r.detections),
                }
                for name, r in sorted(self.robots.items())
            },
            'tasks_dispatched': self.tasks_dispatched,
            'tasks_completed': self.tasks_completed,
            'tasks_failed': self.tasks_failed,
            'failure_reasons': dict(Counter(self.failures.values()).most_common()),
            'chaos': self.chaos,
            'distance_m': round(sum(r.distance_m for r in self.robots.values()), 2),
            'detections_per_class': dict(sorted(detections.items())),
            'inference_latency_p50_ms': _round(percentile(self.inference_p50_ms, 50)),
            # the highest p99 of the bridges' rolling windows: an upper bound of the run's p99
            # (each window has at most 1% of its frames above it)
            'inference_latency_p99_ms': _round(max(self.inference_p99_ms, default=math.nan)),
            'bridge_latency_p50_ms': _round(percentile(self.bridge_p50_ms, 50)),
            'bridge_latency_p99_ms': _round(max(self.bridge_p99_ms, default=math.nan)),
            'safety_stops': sum(r.safety_stops for r in self.robots.values()),
            'collisions': sum(r.collisions for r in self.robots.values()),
            'collisions_moving': sum(r.collisions_moving for r in self.robots.values()),
            # each robot-robot contact is reported by both robots
            'collisions_robot': sum(r.collisions_robot for r in self.robots.values()),
            'messages_recorded': self.messages_recorded,
            'recording': self.recording_path,
            'real_time_factor': _round(self.real_time_factor),
            'camera_rate_hz': _round(self.camera_rate_hz),
            'odom_rate_hz': _round(self.odom_rate_hz),
            'clock_rate_hz': _round(self.clock_rate_hz),
            'layout': self.layout,
            'peak_memory_mib': round(self.peak_memory_bytes / 2**20, 1),
            'wall_time_s': round(self.wall_time_s, 1),
        }


def _round(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 2)


def _pss_bytes(pid_dir: Path) -> int | None:
    """Return a process's proportional set size (shared pages split among their users)."""
    try:
        for line in (pid_dir / 'smaps_rollup').read_text().splitlines():
            if line.startswith('Pss:'):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def process_tree_memory_bytes(root_pid: int, proc: Path = Path('/proc')) -> int:
    """Return the memory of root_pid and all its descendants: summed PSS (RSS if no PSS).

    PSS counts a shared page (libraries, shared-memory transport segments) once across the
    processes that map it, so the sum is what the process tree really occupies.
    """
    children: dict[int, list[int]] = {}
    dirs: dict[int, Path] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / 'stat').read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(')') + 2:].split()
        pid, ppid = int(entry.name), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        dirs[pid] = entry
    page = os.sysconf('SC_PAGE_SIZE')
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        if pid not in dirs:
            continue
        pss = _pss_bytes(dirs[pid])
        if pss is None:
            try:
                pss = int((dirs[pid] / 'statm').read_text().split()[1]) * page
            except (OSError, ValueError, IndexError):
                continue
        total += pss
    return total


def format_summary(data: dict[str, object]) -> str:
    """Render the summary dict as the lines the demo prints."""
    lines = ['', '=== KPAI fleet demo summary ===']
    robots = data.get('robots', {})
    assert isinstance(robots, dict)
    lines.append(f"tasks: {data['tasks_completed']} completed, {data['tasks_failed']} failed, "
                 f"{data['tasks_dispatched']} dispatched")
    for name, r in robots.items():
        det = ', '.join(f'{k}={v}' for k, v in sorted(r['detections'].items())) or 'none'
        lines.append(f"  {name}: {r['tasks_completed']} tasks, {r['distance_m']} m driven, "
                     f"{r['safety_stops']} safety stops, "
                     f"{r['collisions']} collisions, detections: {det}")
    reasons = data.get('failure_reasons')
    if isinstance(reasons, dict) and reasons:
        lines.append('failed tasks: ' + '; '.join(f'{n} x {why}' for why, n in reasons.items()))
    per_class = data['detections_per_class']
    assert isinstance(per_class, dict)
    lines.append('detections per class: '
                 + (', '.join(f'{k}={v}' for k, v in per_class.items()) or 'none'))
    lines.append(f"inference latency: model p50 {data['inference_latency_p50_ms']} ms, "
                 f"p99 <= {data['inference_latency_p99_ms']} ms (highest window); "
                 f"bridge, image received -> detections published, p50 "
                 f"{data.get('bridge_latency_p50_ms')} ms, "
                 f"p99 <= {data.get('bridge_latency_p99_ms')} ms")
    lines.append(f"safety stops: {data['safety_stops']}, collisions: {data['collisions']} "
                 f"({data.get('collisions_moving', '-')} with the robot moving, "
                 f"{data.get('collisions_robot', '-')} between robots, counted by both)")
    lines.append(f"simulation real-time factor: {data['real_time_factor']} "
                 f"(cameras {data.get('camera_rate_hz')} Hz, odometry "
                 f"{data.get('odom_rate_hz')} Hz, clock {data.get('clock_rate_hz')} Hz; "
                 f"layout {data.get('layout') or '-'}), "
                 f"peak memory of all processes: {data['peak_memory_mib']} MiB")
    lines.append(f"messages recorded: {data['messages_recorded']} in {data['recording'] or '-'}")
    chaos = data.get('chaos')
    if isinstance(chaos, dict):
        lines.append(f"chaos: {chaos['kills']} nodes killed, {chaos['recoveries']} recovered, "
                     f"time to recover p50 {chaos['ttr_p50_s']} s, max {chaos['ttr_max_s']} s")
    return '\n'.join(lines)
