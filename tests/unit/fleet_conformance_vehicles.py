"""Simulated vehicles for the conformance kit: the stack's AgentCore on MQTT with a tiny fake
mission layer, and deliberately broken variants of it (one fault each)."""

from __future__ import annotations

import json
import threading
import time

from kpai_fleet.agent_core import (
    AgentConfig,
    AgentCore,
    CancelMission,
    SetPause,
    StartMission,
)
from kpai_fleet.mqtt_link import MqttLink
from kpai_fleet.vda5050.models import ActionStatus
from kpai_fleet.vda5050.order_mapping import KPAI_ACTIONS, StepType

FAULTS = ('field_name', 'field_type', 'header_ids', 'no_factsheet', 'executes_unsupported',
          'ignores_pause')


class SimVehicle:
    """A vehicle made of AgentCore: every step of a mission takes step_s seconds."""

    def __init__(self, url: str, serial: str = 'sim1', *, manufacturer: str = 'Sim',
                 step_s: float = 0.05, fault: str = '') -> None:
        assert not fault or fault in FAULTS, fault
        self.fault = fault
        self.step_s = step_s
        cfg = AgentConfig(broker_url=url, manufacturer=manufacturer, serial_number=serial,
                          state_period_s=1.0, min_state_interval_s=0.0,
                          visualization_period_s=0.5)
        self.core = AgentCore(cfg, self._publish)
        self.core.snapshot.position_initialized = True
        self.link = MqttLink(url, f'sim-{manufacturer}-{serial}',
                             subscriptions=self.core.subscriptions(), on_message=self._receive,
                             will=self.core.will(), on_connect=self.core.on_connected)
        self._goal: tuple[str, list] | None = None
        self._index = 0
        self._next = 0.0
        self._paused = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> SimVehicle:
        self.link.start()
        assert self.link.wait_connected(10), self.link.last_error
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if not self.link._stopping.is_set():
            self.link.stop()

    def break_connection(self) -> None:
        """Drop the TCP connection without an MQTT DISCONNECT: the broker sends the will."""
        with self.link._restart_lock:
            self.link._stopping.set()  # no watchdog restart, no reconnect
        self.link.client.loop_stop()
        sock = self.link.client.socket()
        if sock is not None:
            sock.close()

    # -- MQTT in and out, where the faults are ----------------------------------------------
    def _publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        kind = topic.rsplit('/', 1)[-1]
        if kind == 'factsheet' and self.fault == 'no_factsheet':
            return
        if kind == 'state' and self.fault in ('field_name', 'field_type', 'header_ids'):
            msg = json.loads(payload)
            if self.fault == 'field_name':
                msg['battery_state'] = msg.pop('batteryState')
            elif self.fault == 'field_type':
                msg['driving'] = str(msg['driving']).lower()
            else:
                msg['headerId'] = 7
            payload = json.dumps(msg).encode()
        self.link.publish(topic, payload, qos=qos, retain=retain)

    def _receive(self, topic: str, payload: bytes) -> None:
        if self.fault == 'executes_unsupported' and topic.endswith('/instantActions'):
            msg = json.loads(payload)
            unknown = [a for a in msg['actions'] if a['actionType'] not in KPAI_ACTIONS]
            if unknown:
                with self.core._lock:
                    for a in unknown:
                        self.core.tracker.track_instant(a['actionId'], a['actionType'],
                                                        ActionStatus.FINISHED)
                    self.core.mark_changed()
                msg['actions'] = [a for a in msg['actions'] if a not in unknown]
                if not msg['actions']:
                    return
                payload = json.dumps(msg).encode()
        self.core.on_message(topic, payload)

    # -- the fake mission layer --------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(0.01):
            for cmd in self.core.take_commands():
                self._command(cmd)
            self._advance(time.monotonic())
            self.core.tick()

    def _command(self, cmd: object) -> None:
        if isinstance(cmd, StartMission):
            self._goal = (cmd.mission_id, list(cmd.steps))
            self._index = -1
            self._next = 0.0
        elif isinstance(cmd, CancelMission) and self._goal is not None:
            mid = self._goal[0]
            self._goal = None
            self._drive(False)
            self.core.on_result(mid, False, True, 'canceled')
        elif isinstance(cmd, SetPause):
            if self.fault != 'ignores_pause':
                self._paused = cmd.paused
            self.core.on_pause_result(cmd.action_id, cmd.paused, True, '')

    def _drive(self, moving: bool) -> None:
        self.core.snapshot.vx = 0.5 if moving else 0.0
        self.core.mark_changed()

    def _advance(self, now: float) -> None:
        if self._goal is None or self._paused:
            if self._paused and self.core.snapshot.vx:
                self._drive(False)
            return
        if now < self._next:
            return
        mid, steps = self._goal
        if 0 <= self._index < len(steps):
            step = steps[self._index]
            if step.type is StepType.NAVIGATE:
                self.core.snapshot.x, self.core.snapshot.y = step.x, step.y
                self.core.snapshot.theta = step.theta
        self._index += 1
        if self._index >= len(steps):
            self._goal = None
            self._drive(False)
            self.core.on_result(mid, True, False, '')
            return
        step = steps[self._index]
        self.core.on_feedback(mid, self._index, step.step_id)
        self._drive(step.type is StepType.NAVIGATE)
        self._next = now + self.step_s
