"""Pydantic v2 models of the VDA 5050 2.0 messages, strict JSON types, 2.1 additions ignored."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from kpai_fleet.errors import ValidationRejected
from kpai_fleet.vda5050.base import (
    PROTOCOL_VERSION,
    BlockingType,
    Header,
    Int8Percent,
    Message,
    Model,
    NonNegative,
    Uint32,
)
from kpai_fleet.vda5050.factsheet import BoundingBoxReference, Factsheet, LoadDimensions
from kpai_fleet.vda5050.guard import check_json_bytes

__all__ = [
    'MAX_PAYLOAD_BYTES', 'PROTOCOL_VERSION', 'Action', 'ActionParameter', 'ActionState',
    'ActionStatus', 'AgvPosition', 'BatteryState', 'BlockingType', 'Connection',
    'ConnectionState', 'ControlPoint', 'Edge', 'EdgeState', 'ErrorEntry', 'ErrorLevel',
    'ErrorReference', 'Factsheet', 'Header', 'Info', 'InstantActions', 'Load', 'Message',
    'Node', 'NodePosition', 'NodeState', 'Order', 'SafetyState', 'State', 'Trajectory',
    'Velocity', 'Visualization', 'format_timestamp', 'parse_message', 'parse_timestamp',
]

MAX_PAYLOAD_BYTES = 256 * 1024
_PI = math.pi + 1e-6  # the schemas write Pi as 3.14159265359


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO 8601 timestamp with a time zone (``Z`` allowed) into an aware datetime."""
    text = value.strip()
    if text.endswith(('Z', 'z')):
        text = text[:-1] + '+00:00'
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError('timestamp needs a time zone (e.g. a trailing Z)')
    return dt


def format_timestamp(epoch_s: float) -> str:
    """Format epoch seconds as the VDA 5050 form YYYY-MM-DDTHH:mm:ss.fffZ."""
    dt = datetime.fromtimestamp(epoch_s, tz=timezone.utc)
    return dt.strftime('%Y-%m-%dT%H:%M:%S.') + f'{dt.microsecond // 1000:03d}Z'


class ActionParameter(Model):
    key: str
    value: Any  # array, boolean, number, string or object

    @field_validator('value')
    @classmethod
    def _not_null(cls, v: Any) -> Any:
        if v is None:
            raise ValueError('an actionParameter value must not be null')
        return v


class Action(Model):
    action_type: str = Field(min_length=1)
    action_id: str = Field(min_length=1)
    action_description: str | None = None
    blocking_type: BlockingType
    action_parameters: list[ActionParameter] = Field(default_factory=list)

    def param(self, key: str, default: Any = None) -> Any:
        """Return the value of actionParameter key, or default."""
        for p in self.action_parameters:
            if p.key == key:
                return p.value
        return default


class NodePosition(Model):
    x: float
    y: float
    theta: float | None = Field(default=None, ge=-_PI, le=_PI)
    allowed_deviation_xy: NonNegative | None = Field(default=None, alias='allowedDeviationXY')
    allowed_deviation_theta: float | None = Field(default=None, ge=0, le=_PI)
    map_id: str
    map_description: str | None = None


class Node(Model):
    node_id: str = Field(min_length=1)
    sequence_id: Uint32
    node_description: str | None = None
    released: bool
    node_position: NodePosition | None = None
    actions: list[Action]


class ControlPoint(Model):
    x: float
    y: float
    weight: float | None = Field(default=None, gt=0)


class Trajectory(Model):
    degree: float = Field(ge=1)
    knot_vector: list[float]
    control_points: list[ControlPoint]

    @field_validator('knot_vector')
    @classmethod
    def _knots(cls, v: list[float]) -> list[float]:
        if any(not 0.0 <= k <= 1.0 for k in v):
            raise ValueError('knotVector values must lie in [0, 1]')
        return v


class Edge(Model):
    edge_id: str = Field(min_length=1)
    sequence_id: Uint32
    edge_description: str | None = None
    released: bool
    start_node_id: str
    end_node_id: str
    max_speed: NonNegative | None = None
    max_height: NonNegative | None = None
    min_height: NonNegative | None = None
    orientation: float | None = Field(default=None, ge=-_PI, le=_PI)
    orientation_type: Literal['GLOBAL', 'TANGENTIAL'] | None = None
    direction: str | None = None
    rotation_allowed: bool | None = None
    max_rotation_speed: NonNegative | None = None
    trajectory: Trajectory | None = None
    length: NonNegative | None = None
    actions: list[Action]


def _check_released_prefix(items: list[Any], what: str) -> None:
    seen_horizon = False
    for it in items:
        if not it.released:
            seen_horizon = True
        elif seen_horizon:
            raise ValueError(f'{what} {it.sequence_id}: released after a horizon element')


class Order(Header):
    order_id: str = Field(min_length=1)
    order_update_id: Uint32
    zone_set_id: str | None = None
    nodes: list[Node] = Field(min_length=1)
    edges: list[Edge]

    @model_validator(mode='after')
    def _graph_rules(self) -> Order:
        """Check the order graph: alternating sequenceIds, edge endpoints, base before horizon."""
        nodes, edges = self.nodes, self.edges
        if len(edges) != len(nodes) - 1:
            raise ValueError(f'{len(nodes)} nodes need {len(nodes) - 1} edges, got {len(edges)}')
        if not nodes[0].released:
            raise ValueError('the first node must be released (part of the base)')
        first = nodes[0].sequence_id
        if first % 2:
            raise ValueError('node sequenceIds must be even')
        for i, n in enumerate(nodes):
            if n.sequence_id != first + 2 * i:
                raise ValueError(f'node {n.node_id}: sequenceId {n.sequence_id}, '
                                 f'expected {first + 2 * i}')
        for i, e in enumerate(edges):
            if e.sequence_id != first + 2 * i + 1:
                raise ValueError(f'edge {e.edge_id}: sequenceId {e.sequence_id}, '
                                 f'expected {first + 2 * i + 1}')
            if e.start_node_id != nodes[i].node_id or e.end_node_id != nodes[i + 1].node_id:
                raise ValueError(f'edge {e.edge_id} must join {nodes[i].node_id} -> '
                                 f'{nodes[i + 1].node_id}')
            if e.released and not nodes[i + 1].released:
                raise ValueError(f'edge {e.edge_id} is released but its end node is not')
        _check_released_prefix(nodes, 'node')
        _check_released_prefix(edges, 'edge')
        ids = [a.action_id for n in nodes for a in n.actions] + [
            a.action_id for e in edges for a in e.actions]
        if len(ids) != len(set(ids)):
            raise ValueError('actionIds must be unique within an order')
        return self

    def base_nodes(self) -> list[Node]:
        """Return the released nodes (the base)."""
        return [n for n in self.nodes if n.released]


class InstantActions(Header):
    actions: list[Action]

    @model_validator(mode='after')
    def _unique(self) -> InstantActions:
        ids = [a.action_id for a in self.actions]
        if len(ids) != len(set(ids)):
            raise ValueError('actionIds must be unique')
        return self


class ConnectionState(str, Enum):
    ONLINE = 'ONLINE'
    OFFLINE = 'OFFLINE'
    CONNECTIONBROKEN = 'CONNECTIONBROKEN'


class Connection(Header):
    connection_state: ConnectionState


class NodeState(Model):
    node_id: str
    sequence_id: Uint32
    node_description: str | None = None
    node_position: NodePosition | None = None
    released: bool


class EdgeState(Model):
    edge_id: str
    sequence_id: Uint32
    edge_description: str | None = None
    released: bool
    trajectory: Trajectory | None = None


class AgvPosition(Model):
    position_initialized: bool
    localization_score: float | None = Field(default=None, ge=0, le=1)
    deviation_range: float | None = None
    x: float
    y: float
    theta: float = Field(ge=-_PI, le=_PI)
    map_id: str
    map_description: str | None = None


class Velocity(Model):
    vx: float | None = None
    vy: float | None = None
    omega: float | None = None


class Load(Model):
    load_id: str | None = None
    load_type: str | None = None
    load_position: str | None = None
    bounding_box_reference: BoundingBoxReference | None = None
    load_dimensions: LoadDimensions | None = None
    weight: NonNegative | None = None


class ActionStatus(str, Enum):
    WAITING = 'WAITING'
    INITIALIZING = 'INITIALIZING'
    RUNNING = 'RUNNING'
    PAUSED = 'PAUSED'
    FINISHED = 'FINISHED'
    FAILED = 'FAILED'


class ActionState(Model):
    action_id: str
    action_type: str | None = None
    action_description: str | None = None
    action_status: ActionStatus
    result_description: str | None = None


class BatteryState(Model):
    battery_charge: float = Field(ge=0, le=100)
    battery_voltage: float | None = None
    battery_health: Int8Percent | None = None
    charging: bool
    reach: Uint32 | None = None


class ErrorLevel(str, Enum):
    WARNING = 'WARNING'
    FATAL = 'FATAL'


class ErrorReference(Model):
    reference_key: str
    reference_value: str


class ErrorEntry(Model):
    error_type: str
    error_references: list[ErrorReference] = Field(default_factory=list)
    error_description: str | None = None
    error_level: ErrorLevel

    def references(self) -> dict[str, str]:
        """Return the errorReferences as a key -> value mapping."""
        return {r.reference_key: r.reference_value for r in self.error_references}


class Info(Model):
    info_type: str
    info_references: list[ErrorReference] = Field(default_factory=list)
    info_description: str | None = None
    info_level: Literal['INFO', 'DEBUG']


class SafetyState(Model):
    e_stop: Literal['AUTOACK', 'MANUAL', 'REMOTE', 'NONE']
    field_violation: bool


class State(Header):
    order_id: str
    order_update_id: Uint32
    zone_set_id: str | None = None
    last_node_id: str
    last_node_sequence_id: Uint32
    node_states: list[NodeState]
    edge_states: list[EdgeState]
    agv_position: AgvPosition | None = None
    velocity: Velocity | None = None
    loads: list[Load] | None = None
    driving: bool
    paused: bool | None = None
    new_base_request: bool | None = None
    distance_since_last_node: float | None = None
    action_states: list[ActionState]
    battery_state: BatteryState
    operating_mode: Literal['AUTOMATIC', 'SEMIAUTOMATIC', 'MANUAL', 'SERVICE', 'TEACHIN']
    errors: list[ErrorEntry]
    information: list[Info] | None = None
    safety_state: SafetyState


class Visualization(Header):
    agv_position: AgvPosition | None = None
    velocity: Velocity | None = None


_TOPIC_MODELS: dict[str, type[Message]] = {
    'order': Order, 'instantActions': InstantActions, 'state': State,
    'connection': Connection, 'visualization': Visualization, 'factsheet': Factsheet,
}


_PATTERN_HINTS = {
    'timestamp': 'not ISO 8601 with a time zone (YYYY-MM-DDTHH:mm:ss.fffZ)',
    'version': 'unsupported version: this side speaks VDA 5050 2.x.y ([Major].[Minor].[Patch])',
    'manufacturer': 'must be non-empty and free of MQTT topic characters / + #',
    'serialNumber': 'must be non-empty and free of MQTT topic characters / + #',
}
_EXPECTED = {'int_type': 'an integer (a JSON number without fraction)',
             'float_type': 'a number (a JSON number)', 'bool_type': 'a boolean (true or false)',
             'string_type': 'a string', 'list_type': 'an array', 'dict_type': 'an object',
             'model_type': 'an object', 'enum': None, 'literal_error': None}


def _json_kind(value: Any) -> str:
    for kinds, name in ((bool, 'boolean'), ((int, float), 'number'), (str, 'string'),
                        (dict, 'object'), (list, 'array')):
        if isinstance(value, kinds):
            return name
    return 'null' if value is None else type(value).__name__


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = '.'.join(str(p) for p in first['loc']) or '<root>'
    msg = first['msg']
    kind = first['type']
    if kind == 'string_pattern_mismatch' and first['loc'][-1] in _PATTERN_HINTS:
        msg = _PATTERN_HINTS[str(first['loc'][-1])]
    elif _EXPECTED.get(kind):
        value = first.get('input')
        shown = json.dumps(value) if len(repr(value)) < 60 else f'{repr(value)[:57]}...'
        msg = f'expected {_EXPECTED[kind]}, got the {_json_kind(value)} {shown}'
    elif kind == 'missing':
        msg = 'required field missing'
    more = f' (+{err.error_count() - 1} more)' if err.error_count() > 1 else ''
    return f'{loc}: {msg}{more}'


def parse_message(kind: str, payload: bytes | str, *,
                  max_bytes: int = MAX_PAYLOAD_BYTES) -> Message:
    """Validate a raw payload of topic kind into its model; raise ValidationRejected(reason)."""
    check_json_bytes(payload, max_bytes=max_bytes)  # before any parser can recurse into it
    model = _TOPIC_MODELS.get(kind)
    if model is None:
        raise ValidationRejected(f'unknown topic {kind!r}')
    size = len(payload)
    if size > max_bytes:
        raise ValidationRejected(f'payload of {size} bytes exceeds the {max_bytes} byte limit')
    try:
        # the VDA 5050 names only: `battery_state` for batteryState is a wrong field name
        return model.model_validate_json(payload, by_alias=True, by_name=False)
    except ValidationError as err:
        if any(e['type'] == 'json_invalid' for e in err.errors()):
            try:
                json.loads(payload)
            except ValueError as jerr:
                raise ValidationRejected(f'malformed JSON: {jerr}') from None
        raise ValidationRejected(f'schema violation in {kind}: {_describe(err)}') from None
