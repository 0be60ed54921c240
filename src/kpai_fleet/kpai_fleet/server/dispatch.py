"""Transport-task dispatch: the nearest idle capable robot, an order from what it declares."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kpai_fleet.errors import DispatchError
from kpai_fleet.vda5050.actions import value_matches
from kpai_fleet.vda5050.factsheet import ActionScope, AgvAction, Factsheet
from kpai_fleet.vda5050.models import (
    PROTOCOL_VERSION,
    Action,
    ActionParameter,
    BlockingType,
    Edge,
    InstantActions,
    Node,
    NodePosition,
    Order,
    format_timestamp,
)

__all__ = ['NOT_READY_ERRORS', 'Choice', 'Place', 'TransportTask', 'build_cancel',
           'build_instant', 'build_order',
           'check_capability', 'choose_robot', 'resolve_place', 'select_robot',
           'task_actions']

# errors (VDA 5050 errorType) of a robot whose nodes are not all up: no work for it yet
NOT_READY_ERRORS = frozenset({'kpai.nodeStarting', 'kpai.nodeMissing', 'kpai.nodeInactive'})

UNAVAILABLE_CONNECTIONS = ('OFFLINE', 'CONNECTIONBROKEN')


@dataclass(frozen=True)
class Place:
    """A named station or a bare pose on the map."""

    name: str
    x: float
    y: float
    theta: float | None = None
    station_type: str = 'floor'  # VDA 5050 pick/drop stationType (project specific)


@dataclass(frozen=True)
class TransportTask:
    """Carry a load of load_type from pickup to dropoff."""

    pickup: Place
    dropoff: Place
    load_s: float = 2.0
    unload_s: float = 2.0
    load_type: str = 'EPAL'  # VDA 5050 pick/drop loadType (project specific)


def resolve_place(spec: str | Mapping[str, Any], stations: Mapping[str, Place]) -> Place:
    """Turn a station name or {x, y[, theta]} into a Place; raise DispatchError if unknown."""
    if isinstance(spec, str):
        if spec not in stations:
            raise DispatchError(f'unknown station {spec!r} (known: {", ".join(sorted(stations))})')
        return stations[spec]
    try:
        x, y = float(spec['x']), float(spec['y'])
        theta = float(spec['theta']) if spec.get('theta') is not None else None
    except (KeyError, TypeError, ValueError) as err:
        raise DispatchError(f'a pose needs numeric x and y: {err}') from None
    if not all(math.isfinite(v) for v in (x, y, theta if theta is not None else 0.0)):
        raise DispatchError('pose values must be finite')
    station_type = spec.get('station_type', 'floor')
    if not isinstance(station_type, str) or not station_type:
        raise DispatchError('station_type must be a non-empty string')
    return Place(str(spec.get('name') or f'pose_{x:.2f}_{y:.2f}'), x, y, theta, station_type)


@dataclass(frozen=True)
class Choice:
    """The chosen robot and why each other robot was not chosen."""

    robot_id: str
    not_chosen: dict[str, str] = field(default_factory=dict)


def select_robot(robots: Iterable[Mapping[str, Any]], target: Place, *,
                 min_battery: float = 30.0, exclude: Iterable[str] = (),
                 unable: Mapping[str, str] | None = None) -> Choice:
    """Choose the nearest available robot to target; DispatchError (with reasons) if none.

    `unable` maps robots that cannot do the task (per their factsheet) to the reason.
    """
    excluded = set(exclude)
    cannot = dict(unable or {})
    eligible: list[tuple[float, str]] = []
    reasons: dict[str, str] = {}
    for r in robots:
        rid = str(r.get('robot_id', ''))
        why = ''
        if rid in excluded:
            why = 'already has a task'
        elif r.get('connection') in UNAVAILABLE_CONNECTIONS:
            why = f'connection {r.get("connection")}'
        elif rid in cannot:
            why = cannot[rid]
        elif not r.get('idle', False) or r.get('paused'):
            why = 'busy'
        elif float(r.get('battery') or 0.0) < min_battery:
            why = f'battery {float(r.get("battery") or 0.0):.0f}% < {min_battery:.0f}%'
        elif any(e.get('level') == 'FATAL' for e in r.get('errors', [])):
            why = 'fatal error'
        elif any(e.get('type') in NOT_READY_ERRORS for e in r.get('errors', [])):
            why = 'starting: ' + ', '.join(sorted(
                e.get('description') or e.get('type', '') for e in r.get('errors', [])
                if e.get('type') in NOT_READY_ERRORS))
        elif r.get('x') is None or r.get('y') is None:
            why = 'position unknown'
        if why:
            reasons[rid] = why
        else:
            eligible.append((math.hypot(float(r['x']) - target.x, float(r['y']) - target.y),
                             rid))
    if not eligible:
        text = '; '.join(f'{rid}: {why}' for rid, why in reasons.items())
        raise DispatchError('no robot available' + (f' ({text})' if text else ''))
    eligible.sort()
    for d, rid in eligible[1:]:
        reasons[rid] = f'farther away ({d:.1f} m from {target.name})'
    return Choice(eligible[0][1], reasons)


def choose_robot(robots: Iterable[Mapping[str, Any]], target: Place, *,
                 min_battery: float = 30.0, exclude: Iterable[str] = ()) -> str:
    """Return the id of the nearest available robot to target; DispatchError when none fits."""
    return select_robot(robots, target, min_battery=min_battery, exclude=exclude).robot_id


def _param_values(kind: str, place: Place, task: TransportTask) -> dict[str, Any]:
    """Values the server can give the parameters of a pick or drop (the rest it cannot)."""
    return {'stationType': place.station_type, 'stationName': place.name,
            'loadType': task.load_type,
            'duration': task.load_s if kind == 'pick' else task.unload_s}


def _declared_action(kind: str, aid: str, place: Place, task: TransportTask,
                     declared: AgvAction | None) -> Action:
    """Build a pick/drop with exactly the parameters the vehicle declares and we can fill."""
    if declared is None or ActionScope.NODE not in declared.action_scopes:
        raise DispatchError(f'does not declare the action {kind} on nodes')
    values = _param_values(kind, place, task)
    params: list[ActionParameter] = []
    for spec in declared.action_parameters or ():
        value = values.get(spec.key)
        if value is not None and value_matches(value, spec.value_data_type):
            params.append(ActionParameter(key=spec.key, value=value))
        elif not spec.is_optional:
            raise DispatchError(f'{kind} requires actionParameter {spec.key} '
                                f'({spec.value_data_type.value}), which the task cannot fill')
    return Action(action_type=kind, action_id=aid, blocking_type=BlockingType.HARD,
                  action_parameters=params)


def task_actions(agv_actions: Mapping[str, AgvAction], task: TransportTask, order_id: str
                 ) -> tuple[Action, Action]:
    """Return the pick and drop of a task for a vehicle; DispatchError saying why it cannot."""
    return (_declared_action('pick', f'{order_id}-pick', task.pickup, task,
                             agv_actions.get('pick')),
            _declared_action('drop', f'{order_id}-drop', task.dropoff, task,
                             agv_actions.get('drop')))


def check_capability(factsheet: Factsheet | None, task: TransportTask) -> str:
    """Return why the vehicle of this factsheet cannot do task, or '' when it can."""
    if factsheet is None:
        return 'no factsheet received yet (factsheetRequest sent)'
    declared = {a.action_type: a for a in factsheet.protocol_features.agv_actions}
    try:
        task_actions(declared, task, 'check')
    except DispatchError as err:
        return str(err)
    load_sets = factsheet.load_specification.load_sets or []
    types = sorted({s.load_type for s in load_sets})
    if types and task.load_type not in types:
        return f'cannot carry loadType {task.load_type} (loadSets: {", ".join(types)})'
    return ''


def _pose(p: Place, map_id: str) -> NodePosition:
    return NodePosition(x=p.x, y=p.y, theta=p.theta, map_id=map_id)


def build_order(robot: Mapping[str, Any], task: TransportTask, order_id: str, *,
                header_id: int, now: float, agv_actions: Mapping[str, AgvAction],
                map_id: str = 'factory') -> Order:
    """Build a 3-node VDA 5050 order: current position -> pickup (pick) -> dropoff (drop).

    The pick and drop carry only the parameters the vehicle declares in its factsheet
    (agv_actions by actionType); DispatchError when the vehicle cannot do them.
    """
    start = Place('start', float(robot['x']), float(robot['y']), None)
    pick, drop = task_actions(agv_actions, task, order_id)
    names = [f'{order_id}-start', task.pickup.name, task.dropoff.name]
    nodes = [
        Node(node_id=names[0], sequence_id=0, released=True,
             node_position=_pose(start, map_id), actions=[]),
        Node(node_id=names[1], sequence_id=2, released=True,
             node_position=_pose(task.pickup, map_id),
             actions=[pick]),
        Node(node_id=names[2], sequence_id=4, released=True,
             node_position=_pose(task.dropoff, map_id),
             actions=[drop]),
    ]
    edges = [Edge(edge_id=f'{names[i]}->{names[i + 1]}', sequence_id=2 * i + 1, released=True,
                  start_node_id=names[i], end_node_id=names[i + 1], actions=[])
             for i in range(2)]
    return Order(header_id=header_id, timestamp=format_timestamp(now),
                 version=PROTOCOL_VERSION, manufacturer=str(robot.get('manufacturer') or 'KPAI'),
                 serial_number=str(robot.get('serial_number') or robot['robot_id']),
                 order_id=order_id, order_update_id=0, nodes=nodes, edges=edges)


def build_instant(robot: Mapping[str, Any], action_type: str, action_id: str, *,
                  header_id: int, now: float,
                  blocking_type: BlockingType = BlockingType.NONE) -> InstantActions:
    """Build an instantActions message with one parameterless action (e.g. factsheetRequest)."""
    return InstantActions(
        header_id=header_id, timestamp=format_timestamp(now), version=PROTOCOL_VERSION,
        manufacturer=str(robot.get('manufacturer') or 'KPAI'),
        serial_number=str(robot.get('serial_number') or robot['robot_id']),
        actions=[Action(action_type=action_type, action_id=action_id,
                        blocking_type=blocking_type)])


def build_cancel(robot: Mapping[str, Any], order_id: str, *, header_id: int,
                 now: float) -> InstantActions:
    """Build the instantActions message cancelling robot's order order_id (cancelOrder)."""
    return build_instant(robot, 'cancelOrder', f'cancel-{order_id}', header_id=header_id,
                         now=now, blocking_type=BlockingType.HARD)
