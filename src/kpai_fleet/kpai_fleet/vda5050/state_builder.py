"""Build outgoing VDA 5050 messages (state, visualization, connection, factsheet)."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass

from kpai_fleet.node_health import NodeHealth
from kpai_fleet.vda5050.factsheet import (
    AgvGeometry,
    Envelope2d,
    LoadSpecification,
    MaxStringLens,
    OptionalParameter,
    PhysicalParameters,
    PolygonPoint,
    ProtocolFeatures,
    ProtocolLimits,
    Timing,
    TypeSpecification,
)
from kpai_fleet.vda5050.models import (
    MAX_PAYLOAD_BYTES,
    PROTOCOL_VERSION,
    AgvPosition,
    BatteryState,
    Connection,
    ConnectionState,
    ErrorEntry,
    ErrorLevel,
    ErrorReference,
    Factsheet,
    Info,
    SafetyState,
    State,
    Velocity,
    Visualization,
    format_timestamp,
)
from kpai_fleet.vda5050.order_tracker import OrderTracker

__all__ = ['FIELD_SETS', 'HeaderSource', 'InferenceHealth', 'RobotSnapshot', 'SafetyHealth',
           'build_connection', 'build_factsheet', 'build_state', 'build_visualization',
           'field_envelopes']

# the factsheet's envelopes2d sets that carry the safety fields at standstill
FIELD_SETS = ('kpai.protectiveField', 'kpai.warningField')
AGV_LENGTH, AGV_WIDTH = 0.7, 0.5

SAFETY_NAMES = ('CLEAR', 'WARNING', 'PROTECTIVE_STOP', 'FAULT')


@dataclass
class SafetyHealth:
    """The latest kpai_msgs/SafetyStatus, reduced to what the fleet shows."""

    state: int = 0
    speed_limit: float = 0.0
    reason: str = ''
    inputs_stale: bool = False
    stamp: float = 0.0


@dataclass
class InferenceHealth:
    """The latest kpai_msgs/InferenceStats, reduced to what the fleet shows."""

    backend: str = ''
    device: str = ''
    model_name: str = ''
    fps: float = 0.0
    latency_p99_ms: float = 0.0
    fallback_active: bool = False
    fallback_reason: str = ''
    frames_dropped: int = 0
    errors: int = 0
    stamp: float = 0.0


@dataclass
class RobotSnapshot:
    """What the agent knows about its robot at one instant."""

    x: float = 0.0
    y: float = 0.0
    theta: float = 0.0
    map_id: str = 'factory'
    position_initialized: bool = False
    vx: float = 0.0
    vy: float = 0.0
    omega: float = 0.0
    battery_pct: float = 100.0
    battery_voltage: float | None = None
    charging: bool = False
    safety: SafetyHealth | None = None
    inference: InferenceHealth | None = None
    nodes: NodeHealth | None = None
    driving_threshold: float = 0.01

    @property
    def driving(self) -> bool:
        return abs(self.vx) > self.driving_threshold or abs(self.omega) > self.driving_threshold


class HeaderSource:
    """Per-topic headerId counters and the common header fields."""

    def __init__(self, manufacturer: str, serial_number: str) -> None:
        self.manufacturer = manufacturer
        self.serial_number = serial_number
        self._ids: defaultdict[str, int] = defaultdict(int)

    def header(self, topic: str, now: float | None = None) -> dict[str, object]:
        """Return the header fields for the next message on topic."""
        hid = self._ids[topic]
        self._ids[topic] = hid + 1
        return {'header_id': hid, 'timestamp': format_timestamp(time.time() if now is None
                                                                else now),
                'version': PROTOCOL_VERSION, 'manufacturer': self.manufacturer,
                'serial_number': self.serial_number}


def _refs(**kv: object) -> list[ErrorReference]:
    return [ErrorReference(reference_key=k, reference_value=str(v)) for k, v in kv.items()]


def _position(snap: RobotSnapshot) -> AgvPosition | None:
    if not all(math.isfinite(v) for v in (snap.x, snap.y, snap.theta)):
        return None
    theta = math.atan2(math.sin(snap.theta), math.cos(snap.theta))
    return AgvPosition(x=snap.x, y=snap.y, theta=theta, map_id=snap.map_id,
                       position_initialized=snap.position_initialized)


def _health(snap: RobotSnapshot, now: float, stale_s: float
            ) -> tuple[list[ErrorEntry], list[Info], bool]:
    errors: list[ErrorEntry] = []
    info: list[Info] = []
    field_violation = False
    s = snap.safety
    if s is not None:
        name = SAFETY_NAMES[s.state] if 0 <= s.state < len(SAFETY_NAMES) else str(s.state)
        stale = now - s.stamp > stale_s
        info.append(Info(info_type='kpai.safety', info_level='INFO', info_description=s.reason,
                         info_references=_refs(state=name, speedLimit=f'{s.speed_limit:.2f}',
                                               inputsStale=s.inputs_stale, stale=stale)))
        field_violation = s.state == 2
        if s.state == 2:
            errors.append(ErrorEntry(error_type='kpai.safetyStop', error_level=ErrorLevel.WARNING,
                                     error_description=s.reason or 'person in protective field'))
        elif s.state == 3 or stale:
            errors.append(ErrorEntry(error_type='kpai.safetyFault',
                                     error_level=ErrorLevel.WARNING,
                                     error_description=s.reason or 'safety status stale'))
    p = snap.inference
    if p is not None:
        stale = now - p.stamp > stale_s
        info.append(Info(info_type='kpai.perception', info_level='INFO',
                         info_description=f'{p.backend} on {p.device}',
                         info_references=_refs(
                             backend=p.backend, device=p.device, model=p.model_name,
                             fps=f'{p.fps:.1f}', latencyP99Ms=f'{p.latency_p99_ms:.1f}',
                             fallback=p.fallback_active, dropped=p.frames_dropped,
                             errors=p.errors, stale=stale)))
        if p.fallback_active:
            errors.append(ErrorEntry(error_type='kpai.npuFallback', error_level=ErrorLevel.WARNING,
                                     error_description=p.fallback_reason or 'CPU fallback'))
        if stale:
            errors.append(ErrorEntry(error_type='kpai.perceptionStale',
                                     error_level=ErrorLevel.WARNING,
                                     error_description='no inference statistics recently'))
    errors.extend(_node_errors(snap.nodes))
    return errors, info, field_violation


def _node_errors(h: NodeHealth | None) -> list[ErrorEntry]:
    if h is None:
        return []

    def level(name: str) -> ErrorLevel:
        return ErrorLevel.FATAL if name in h.critical else ErrorLevel.WARNING

    out = [ErrorEntry(error_type='kpai.nodeMissing', error_level=level(n),
                      error_description=f'node {n} is not running',
                      error_references=_refs(nodeName=n)) for n in h.missing]
    out += [ErrorEntry(error_type='kpai.nodeStarting', error_level=ErrorLevel.WARNING,
                       error_description=f'node {n} is not up yet (the robot is starting)',
                       error_references=_refs(nodeName=n)) for n in h.starting]
    out += [ErrorEntry(error_type='kpai.nodeInactive', error_level=level(n),
                       error_description=f'node {n} is {state}, not active',
                       error_references=_refs(nodeName=n, lifecycleState=state))
            for n, state in h.inactive]
    return out


def build_state(headers: HeaderSource, tracker: OrderTracker, snap: RobotSnapshot, *,
                now: float | None = None, stale_s: float = 5.0) -> State:
    """Assemble the state message from the order tracker and the robot snapshot."""
    now = time.time() if now is None else now
    errors, info, violation = _health(snap, now, stale_s)
    battery = min(100.0, max(0.0, snap.battery_pct)) if math.isfinite(snap.battery_pct) else 0.0
    return State(
        **headers.header('state', now),  # type: ignore[arg-type]
        order_id=tracker.order_id, order_update_id=tracker.order_update_id,
        last_node_id=tracker.last_node_id, last_node_sequence_id=tracker.last_node_sequence_id,
        driving=snap.driving, paused=tracker.paused, operating_mode='AUTOMATIC',
        node_states=tracker.node_states(), edge_states=tracker.edge_states(),
        agv_position=_position(snap),
        velocity=Velocity(vx=snap.vx, vy=snap.vy, omega=snap.omega),
        action_states=tracker.action_states(),
        battery_state=BatteryState(battery_charge=battery, charging=snap.charging,
                                   battery_voltage=snap.battery_voltage),
        errors=list(tracker.errors) + errors, information=info,
        safety_state=SafetyState(e_stop='NONE', field_violation=violation))


def build_visualization(headers: HeaderSource, snap: RobotSnapshot,
                        now: float | None = None) -> Visualization:
    """Assemble the visualization message (position and velocity only)."""
    return Visualization(**headers.header('visualization', now),  # type: ignore[arg-type]
                         agv_position=_position(snap),
                         velocity=Velocity(vx=snap.vx, vy=snap.vy, omega=snap.omega))


def build_connection(headers: HeaderSource, state: ConnectionState,
                     now: float | None = None) -> Connection:
    """Assemble a connection message."""
    return Connection(**headers.header('connection', now),  # type: ignore[arg-type]
                      connection_state=state)


def _rounded_rect(length: float, width: float, margin: float, arc_points: int = 4
                  ) -> list[PolygonPoint]:
    """The outline of a length x width rectangle (centred) grown by margin, corners rounded."""
    out = []
    for cx, cy, start in ((length / 2, width / 2, 0.0), (-length / 2, width / 2, 90.0),
                          (-length / 2, -width / 2, 180.0), (length / 2, -width / 2, 270.0)):
        for k in range(arc_points + 1):
            a = math.radians(start + 90.0 * k / arc_points)
            out.append(PolygonPoint(x=round(cx + margin * math.cos(a), 3),
                                    y=round(cy + margin * math.sin(a), 3)))
    return out


def field_envelopes(protective_clearance: float, warning_clearance: float, *,
                    length: float = AGV_LENGTH, width: float = AGV_WIDTH) -> list[Envelope2d]:
    """Return the protective and warning fields at standstill as VDA 5050 2D envelopes.

    The safety monitor grows them with speed; a fleet map shows the standstill extent.
    """
    margins = (protective_clearance, protective_clearance + warning_clearance)
    return [Envelope2d(set=name, polygon_points=_rounded_rect(length, width, m),
                       description='safety field at standstill (vehicle frame, m)')
            for name, m in zip(FIELD_SETS, margins, strict=True)]


def build_factsheet(headers: HeaderSource, *, max_speed: float = 1.0,
                    msg_len: int = MAX_PAYLOAD_BYTES, min_state_interval_s: float = 0.1,
                    state_interval_s: float = 1.0, visualization_interval_s: float = 0.2,
                    envelopes: list[Envelope2d] | None = None,
                    now: float | None = None) -> Factsheet:
    """Describe the KPAI differential-drive AMR and the protocol subset this agent supports."""
    from kpai_fleet.vda5050.order_mapping import KPAI_ACTIONS

    return Factsheet(
        **headers.header('factsheet', now),  # type: ignore[arg-type]
        type_specification=TypeSpecification(
            series_name='KPAI-AMR', agv_kinematic='DIFF', agv_class='CARRIER',
            max_load_mass=100.0, localization_types=['NATURAL'],
            navigation_types=['AUTONOMOUS']),
        physical_parameters=PhysicalParameters(
            speed_min=0.0, speed_max=max_speed, acceleration_max=1.0, deceleration_max=1.5,
            height_min=0.3, height_max=0.4, width=AGV_WIDTH, length=AGV_LENGTH),
        protocol_limits=ProtocolLimits(
            max_string_lens=MaxStringLens(msg_len=msg_len, id_numerical_only=False),
            max_array_lens={'order.nodes': 1000, 'order.edges': 999},
            timing=Timing(min_order_interval=0.0, min_state_interval=min_state_interval_s,
                          default_state_interval=state_interval_s,
                          visualization_interval=visualization_interval_s)),
        protocol_features=ProtocolFeatures(
            optional_parameters=[OptionalParameter(
                parameter='order.nodes.nodePosition.theta', support='SUPPORTED')],
            agv_actions=list(KPAI_ACTIONS.values())),
        agv_geometry=AgvGeometry(envelopes2d=envelopes or None),
        load_specification=LoadSpecification(load_positions=['top']))
