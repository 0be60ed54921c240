"""Test routes and the orders and instant actions the kit sends, built from the factsheet."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kpai_fleet.errors import ConfigError
from kpai_fleet.vda5050.actions import value_matches
from kpai_fleet.vda5050.base import PROTOCOL_VERSION, BlockingType
from kpai_fleet.vda5050.factsheet import ActionScope, AgvAction, Factsheet

__all__ = ['PlanError', 'Point', 'RouteSpec', 'Sender', 'build_action', 'declares',
           'default_points', 'load_route', 'order_message', 'unsupported_action_type']


class PlanError(Exception):
    """The kit cannot build a message the vehicle would accept; says what the user must give."""


@dataclass(frozen=True)
class Point:
    """A node position of the test route."""

    x: float
    y: float
    theta: float | None = None


@dataclass
class RouteSpec:
    """What the user tells the kit about the vehicle's map: positions and action parameters."""

    points: list[Point] = field(default_factory=list)
    map_id: str = ''
    deviation_xy: float | None = None
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value):
        raise ConfigError(f'{what} must be a number, got {value!r}')
    return float(value)


def _parse_route(data: Any, origin: str) -> RouteSpec:
    if isinstance(data, list):
        data = {'nodes': data}
    if not isinstance(data, dict):
        raise ConfigError(f'{origin}: expected a mapping with nodes: or a list of positions')
    unknown = set(data) - {'nodes', 'mapId', 'allowedDeviationXY', 'pick', 'drop'}
    if unknown:
        raise ConfigError(f'{origin}: unknown keys {", ".join(sorted(unknown))} (known: '
                          'nodes, mapId, allowedDeviationXY, pick, drop)')
    nodes = data.get('nodes', [])
    if not isinstance(nodes, list) or len(nodes) < 2:
        raise ConfigError(f'{origin}: nodes must list at least 2 positions ({{x, y}})')
    points = []
    for i, n in enumerate(nodes):
        if not isinstance(n, dict) or 'x' not in n or 'y' not in n:
            raise ConfigError(f'{origin}: nodes[{i}] needs x and y')
        theta = n.get('theta')
        points.append(Point(_number(n['x'], f'nodes[{i}].x'), _number(n['y'], f'nodes[{i}].y'),
                            None if theta is None else _number(theta, f'nodes[{i}].theta')))
    params = {}
    for kind in ('pick', 'drop'):
        given = data.get(kind, {}) or {}
        if not isinstance(given, dict):
            raise ConfigError(f'{origin}: {kind} must map actionParameter keys to values')
        params[kind] = dict(given)
    map_id = data.get('mapId', '')
    if not isinstance(map_id, str):
        raise ConfigError(f'{origin}: mapId must be a string')
    dev = data.get('allowedDeviationXY')
    return RouteSpec(points, map_id, None if dev is None else _number(dev, 'allowedDeviationXY'),
                     params)


def load_route(text: str) -> RouteSpec:
    """Read --nodes: inline JSON, or a JSON/YAML file with nodes, mapId, pick and drop."""
    stripped = text.strip()
    if stripped.startswith(('[', '{')):
        try:
            return _parse_route(json.loads(stripped), '--nodes')
        except ValueError as err:
            raise ConfigError(f'--nodes: malformed JSON: {err}') from None
    path = Path(text)
    try:
        content = path.read_text(encoding='utf-8')
    except OSError as err:
        raise ConfigError(f'--nodes {text!r}: cannot read ({err.strerror})') from None
    import yaml

    try:
        data = yaml.safe_load(content)
    except yaml.YAMLError as err:
        raise ConfigError(f'--nodes {text!r}: not YAML/JSON: {err}') from None
    return _parse_route(data, str(path))


def default_points(start: Point, step_m: float) -> list[Point]:
    """Return a back-and-forth route: step_m ahead along the heading, then the start again."""
    th = start.theta or 0.0
    ahead = Point(start.x + step_m * math.cos(th), start.y + step_m * math.sin(th), th)
    return [ahead, Point(start.x, start.y, th)]


def declares(factsheet: Factsheet | None, action_type: str,
             scope: ActionScope = ActionScope.INSTANT) -> bool:
    """Return True when the factsheet declares action_type for scope."""
    if factsheet is None:
        return False
    declared = factsheet.protocol_features.action(action_type)
    return declared is not None and scope in declared.action_scopes


def _blocking(declared: AgvAction) -> str:
    allowed = declared.blocking_types or [BlockingType.HARD]
    return (BlockingType.HARD if BlockingType.HARD in allowed else allowed[0]).value


def build_action(factsheet: Factsheet, action_type: str, action_id: str,
                 given: dict[str, Any], scope: ActionScope = ActionScope.NODE
                 ) -> dict[str, Any]:
    """Return an action with the declared required parameters; raise PlanError if unknown."""
    declared = factsheet.protocol_features.action(action_type)
    if declared is None or scope not in declared.action_scopes:
        raise PlanError(f'{action_type} is not declared for scope {scope.value}')
    params: dict[str, Any] = {}
    load_types = [s.load_type for s in factsheet.load_specification.load_sets or ()]
    for p in declared.action_parameters or ():
        if p.key in given:
            value = given[p.key]
            if not value_matches(value, p.value_data_type):
                raise PlanError(f'{action_type}.{p.key}={value!r} is not the declared '
                                f'{p.value_data_type.value}')
            params[p.key] = value
        elif not p.is_optional:
            if p.key == 'loadType' and load_types:
                params[p.key] = load_types[0]
            else:
                raise PlanError(f'{action_type} requires actionParameter {p.key} '
                                f'({p.value_data_type.value}); give it in the --nodes file '
                                f'({action_type}: {{{p.key}: ...}})')
    undeclared = sorted(set(given) - set(params))
    if undeclared:
        raise PlanError(f'{action_type}: {", ".join(undeclared)} not declared in the factsheet')
    return {'actionType': action_type, 'actionId': action_id, 'blockingType': _blocking(declared),
            'actionParameters': [{'key': k, 'value': v} for k, v in params.items()]}


def unsupported_action_type(factsheet: Factsheet | None) -> str:
    """Return an actionType the factsheet does not declare."""
    declared = {a.action_type for a in factsheet.protocol_features.agv_actions} if (
        factsheet is not None) else set()
    name = 'kpaiConformanceUndeclared'
    while name in declared:
        name += 'X'
    return name


@dataclass
class Sender:
    """Header fields of the messages the kit sends, with per-topic headerIds."""

    manufacturer: str
    serial: str
    ids: dict[str, int] = field(default_factory=dict)

    def header(self, kind: str, timestamp: str) -> dict[str, Any]:
        """Return the header of the next message on topic kind."""
        hid = self.ids.get(kind, 0)
        self.ids[kind] = hid + 1
        return {'headerId': hid, 'timestamp': timestamp, 'version': PROTOCOL_VERSION,
                'manufacturer': self.manufacturer, 'serialNumber': self.serial}


def order_message(order_id: str, update_id: int, nodes: list[dict[str, Any]],
                  *, first_sequence: int = 0) -> dict[str, Any]:
    """Return the body of an order: nodes given as dicts, edges joining them.

    Each node dict holds nodeId, released, position (Point), mapId, actions and an optional
    deviation; sequenceIds start at first_sequence (even) and edges are released with their
    end node.
    """
    out_nodes, edges = [], []
    for i, n in enumerate(nodes):
        p: Point = n['position']
        pos: dict[str, Any] = {'x': p.x, 'y': p.y, 'mapId': n['mapId']}
        if p.theta is not None:
            pos['theta'] = math.atan2(math.sin(p.theta), math.cos(p.theta))
        if n.get('deviation') is not None:
            pos['allowedDeviationXY'] = n['deviation']
        seq = first_sequence + 2 * i
        out_nodes.append({'nodeId': n['nodeId'], 'sequenceId': seq, 'released': n['released'],
                          'nodePosition': pos, 'actions': list(n.get('actions', []))})
        if i:
            prev = nodes[i - 1]['nodeId']
            edges.append({'edgeId': f'{prev}-{n["nodeId"]}', 'sequenceId': seq - 1,
                          'released': n['released'], 'startNodeId': prev,
                          'endNodeId': n['nodeId'], 'actions': []})
    return {'orderId': order_id, 'orderUpdateId': update_id, 'nodes': out_nodes,
            'edges': edges}
