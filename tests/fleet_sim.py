"""A simulated fleet without ROS or MQTT, for dashboard and API tests.

A FleetService (not started: no broker) whose publishes go through a Bus to in-process
vehicles: KPAI agents (AgentCore) whose missions a stand-in executor drives along the steps at
a set speed, and another maker's vehicle (ForeignAgv). `LiveFleet` also serves the app with
uvicorn on a loopback port and pumps the bus in a thread, for headless-browser tests.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fleet_foreign_agv import ForeignAgv
from kpai_fleet.agent_core import AgentConfig, AgentCore, CancelMission, SetPause, StartMission
from kpai_fleet.live_share import encode_thumbnail
from kpai_fleet.node_health import NodeHealth
from kpai_fleet.server.config import ServerConfig, load_config
from kpai_fleet.server.service import FleetService
from kpai_fleet.vda5050.kpai_ext import TrackedObject
from kpai_fleet.vda5050.order_mapping import MissionStep
from kpai_fleet.vda5050.state_builder import InferenceHealth, SafetyHealth

__all__ = ['STATIONS', 'Bus', 'LiveFleet', 'SimKpai', 'make_service']

STATIONS = {'dock_a': {'x': 1.0, 'y': 1.0, 'theta': 0.0},
            'rack_1': {'x': 8.0, 'y': 4.0, 'station_type': 'rack'},
            'rack_2': {'x': 14.0, 'y': 9.0, 'station_type': 'rack'},
            'outbound': {'x': 18.0, 'y': 2.0, 'station_type': 'floor'}}


def make_service(tmp: Path, **over: Any) -> FleetService:
    """Return a FleetService on a SQLite file in tmp, not connected to any broker."""
    kw: dict[str, Any] = dict(broker_url='mqtt://127.0.0.1:9', db_url=f'sqlite:///{tmp}/f.db',
                              stations=STATIONS, bounds=[-2.0, -2.0, 22.0, 14.0])
    kw.update(over)
    cfg: ServerConfig = load_config(None, **kw)
    return FleetService(cfg)


class Bus:
    """Carries messages between the server and the vehicles, in order (thread-safe)."""

    def __init__(self, svc: FleetService) -> None:
        self.svc = svc
        self.queue: deque[tuple[str, str, bytes]] = deque()
        self.vehicles: dict[str, Any] = {}
        self.refused = 0
        self.lock = threading.RLock()
        svc.link.publish = self.server_publish  # type: ignore[method-assign]

    def server_publish(self, topic: str, payload: bytes, **_kw: Any) -> bool:
        self.queue.append(('vehicle', topic, payload))
        return True

    def vehicle_publish(self, topic: str, payload: bytes, *_qos_retain: Any) -> None:
        self.queue.append(('server', topic, payload))

    def run(self) -> None:
        """Deliver every queued message (and those they cause)."""
        with self.lock:
            while self.queue:
                dest, topic, payload = self.queue.popleft()
                if dest == 'server':
                    self.refused += not self.svc._on_message(topic, payload)
                    continue
                for prefix, receive in self.vehicles.items():
                    if topic.startswith(prefix):
                        receive(topic, payload)
            self.svc.store.flush()


@dataclass
class _Mission:
    mission_id: str
    steps: tuple[MissionStep, ...]
    index: int = -1
    waited: float = 0.0


@dataclass
class SimKpai:
    """A KPAI agent whose missions are driven along their steps at `speed` m/s."""

    bus: Bus
    serial: str
    x: float
    y: float
    speed: float = 2.0
    handling_s: float | None = None  # None: the steps' own durations
    nodes: NodeHealth | None = None
    core: AgentCore = field(init=False)
    mission: _Mission | None = None
    paused: bool = False
    frames_encoded: int = 0  # camera thumbnails made (only while the server holds a lease)
    track_person: bool = True  # a person walks beside the robot (its tracked objects)

    def __post_init__(self) -> None:
        self.core = AgentCore(AgentConfig(serial_number=self.serial), self.bus.vehicle_publish)
        snap = self.core.snapshot
        snap.x, snap.y, snap.position_initialized, snap.battery_pct = self.x, self.y, True, 87.0
        self.bus.vehicles[f'uagv/v2/KPAI/{self.serial}/'] = self.core.on_message
        self.core.on_connected()
        self.publish()

    def publish(self) -> None:
        """Refresh the health reports and publish the state."""
        snap = self.core.snapshot
        now = time.time()
        snap.safety = SafetyHealth(state=0, speed_limit=1.2, reason='clear', stamp=now)
        snap.inference = InferenceHealth(backend='onnxruntime', device='NPU', model_name='yolo',
                                         fps=14.8, latency_p99_ms=38.5, stamp=now)
        snap.nodes = self.nodes
        self.core.publish_state()

    def live(self, now: float | None = None) -> None:
        """Share a camera thumbnail while leased and the tracked objects, as the agent does."""
        now = time.monotonic() if now is None else now
        snap = self.core.snapshot
        if self.core.camera.due(now):
            self.frames_encoded += 1
            self.core.publish_camera(encode_thumbnail(_camera_frame(
                self.frames_encoded), max_width=self.core.camera.request.max_width), now)
        if self.track_person:
            a = now * 0.5
            self.core.update_objects([
                TrackedObject(1, 'person', snap.x + 1.5 * math.cos(a), snap.y + 1.5 * math.sin(a),
                              score=0.9),
                TrackedObject(2, 'pallet', snap.x + 2.0, snap.y - 1.0, score=0.8)], now)
        self.core.publish_objects_if_due(now)

    def tick(self, dt: float) -> None:
        """Take the agent's commands and advance the running mission by dt seconds."""
        for cmd in self.core.take_commands():
            if isinstance(cmd, StartMission):
                self.mission = _Mission(cmd.mission_id, cmd.steps)
            elif isinstance(cmd, CancelMission) and self.mission is not None:
                mid, self.mission = self.mission.mission_id, None
                self.core.snapshot.vx = 0.0
                self.core.on_result(mid, False, True, 'cancelled')
            elif isinstance(cmd, SetPause):
                self.paused = cmd.paused
                self.core.on_pause_result(cmd.action_id, cmd.paused, True, '')
        m = self.mission
        snap = self.core.snapshot
        snap.vx = 0.0
        if m is None or self.paused:
            return
        if m.index < 0 or self._step_done(m, dt):
            m.index += 1
            m.waited = 0.0
            if m.index >= len(m.steps):
                self.mission = None
                self.core.on_result(m.mission_id, True, False, '')
                return
            self.core.on_feedback(m.mission_id, m.index, m.steps[m.index].step_id)

    def _step_done(self, m: _Mission, dt: float) -> bool:
        step = m.steps[m.index]
        snap = self.core.snapshot
        if step.type.name == 'NAVIGATE':
            dx, dy = step.x - snap.x, step.y - snap.y
            dist = math.hypot(dx, dy)
            reach = self.speed * dt
            if dist <= reach:
                snap.x, snap.y = step.x, step.y
                return True
            snap.x += dx / dist * reach
            snap.y += dy / dist * reach
            snap.theta = math.atan2(dy, dx)
            snap.vx = self.speed
            return False
        m.waited += dt
        need = step.duration_s if self.handling_s is None else self.handling_s
        return m.waited >= need


def _camera_frame(n: int, w: int = 640, h: int = 480) -> np.ndarray:
    """A synthetic annotated camera image: a floor, a green box that moves with n."""
    img = np.zeros((h, w, 3), np.uint8)
    img[h // 2:] = (60, 60, 70)
    x = 40 + (n * 37) % (w - 160)
    img[180:400, x:x + 100] = (40, 200, 60)
    return img


class LiveFleet:
    """The app on a loopback port with simulated vehicles moving in real time."""

    def __init__(self, svc: FleetService, *, period_s: float = 0.1,
                 state_every_s: float = 0.3) -> None:
        import uvicorn
        from kpai_fleet.broker import free_port
        from kpai_fleet.server.app import create_app

        self.svc = svc
        self.bus = Bus(svc)
        self.kpai: list[SimKpai] = []
        self.foreign: list[ForeignAgv] = []
        self.period_s = period_s
        self.state_every_s = state_every_s
        self.port = free_port()
        self.base = f'http://127.0.0.1:{self.port}'
        self.server = uvicorn.Server(uvicorn.Config(create_app(svc), host='127.0.0.1',
                                                    port=self.port, log_level='warning'))
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self.server.run, daemon=True),
                         threading.Thread(target=self._pump, daemon=True)]

    def add_kpai(self, serial: str, x: float, y: float, **kw: Any) -> SimKpai:
        """Add a KPAI agent at (x, y)."""
        with self.bus.lock:
            v = SimKpai(self.bus, serial, x, y, **kw)
            self.kpai.append(v)
            self.bus.run()
        return v

    def add_foreign(self, serial: str, **kw: Any) -> ForeignAgv:
        """Add another maker's vehicle (it executes a node per state period)."""
        with self.bus.lock:
            agv = ForeignAgv(serial, self.bus.vehicle_publish, clock=time.time, **kw)
            self.bus.vehicles[f'uagv/v2/Acme/{serial}/'] = agv.receive
            agv.connect()
            self.foreign.append(agv)
            self.bus.run()
        return agv

    def start(self) -> LiveFleet:
        for th in self._threads:
            th.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise TimeoutError('uvicorn did not start')
            time.sleep(0.05)
        return self

    def _pump(self) -> None:
        last_state = 0.0
        while not self._stop.wait(self.period_s):
            with self.bus.lock:
                self.bus.run()
                for v in self.kpai:
                    v.tick(self.period_s)
                    v.live()
                now = time.monotonic()
                if now - last_state >= self.state_every_s:
                    last_state = now
                    for v in self.kpai:
                        v.publish()
                    for agv in self.foreign:
                        if not agv.step():
                            agv.send_state()
                self.bus.run()
                self.svc.ingest.check_timeouts()
                self.svc.retry_waiting()

    def stop(self) -> None:
        self._stop.set()
        self.server.should_exit = True
        for th in self._threads:
            th.join(timeout=10)
        self.svc.store.close()
