"""Transport-task dispatch: pick the nearest idle robot with enough battery, build its order."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kpai_fleet.errors import DispatchError
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

__all__ = ['Place', 'TransportTask', 'build_cancel', 'build_order', 'choose_robot',
           'resolve_place']

UNAVAILABLE_CONNECTIONS = ('OFFLINE', 'CONNECTIONBROKEN')


@dataclass(frozen=True)
class Place:
    """A named station or a bare pose on the map."""

    name: str
    x: float
    y: float
    theta: float | None = None


@dataclass(frozen=True)
class TransportTask:
    """Carry a load from pickup to dropoff."""

    pickup: Place
    dropoff: Place
    load_s: float = 2.0
    unload_s: float = 2.0


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
    return Place(str(spec.get('name') or f'pose_{x:.2f}_{y:.2f}'), x, y, theta)


def choose_robot(robots: Iterable[Mapping[str, Any]], target: Place, *,
                 min_battery: float = 30.0, exclude: Iterable[str] = ()) -> str:
    """Return the id of the nearest available robot to target; DispatchError when none fits."""
    excluded = set(exclude)
    best: tuple[float, str] | None = None
    reasons: list[str] = []
    for r in robots:
        rid = str(r.get('robot_id', ''))
        why = ''
        if rid in excluded:
            why = 'already has a task'
        elif r.get('connection') in UNAVAILABLE_CONNECTIONS:
            why = f'connection {r.get("connection")}'
        elif not r.get('idle', False) or r.get('paused'):
            why = 'busy'
        elif float(r.get('battery') or 0.0) < min_battery:
            why = f'battery {float(r.get("battery") or 0.0):.0f}% < {min_battery:.0f}%'
        elif any(e.get('level') == 'FATAL' for e in r.get('errors', [])):
            why = 'fatal error'
        elif r.get('x') is None or r.get('y') is None:
            why = 'position unknown'
        if why:
            reasons.append(f'{rid}: {why}')
            continue
        d = math.hypot(float(r['x']) - target.x, float(r['y']) - target.y)
        if best is None or (d, rid) < best:
            best = (d, rid)
    if best is None:
        raise DispatchError('no robot available' + (f' ({"; ".join(reasons)})' if reasons
                                                    else ''))
    return best[1]


def _pose(p: Place, map_id: str) -> NodePosition:
    return NodePosition(x=p.x, y=p.y, theta=p.theta, map_id=map_id)


def build_order(robot: Mapping[str, Any], task: TransportTask, order_id: str, *,
                header_id: int, now: float, map_id: str = 'factory') -> Order:
    """Build a 3-node VDA 5050 order: current position -> pickup (pick) -> dropoff (drop)."""
    start = Place('start', float(robot['x']), float(robot['y']), None)

    def act(kind: str, aid: str, duration: float, station: str) -> Action:
        return Action(action_type=kind, action_id=aid, blocking_type=BlockingType.HARD,
                      action_parameters=[ActionParameter(key='duration', value=duration),
                                         ActionParameter(key='stationId', value=station)])

    names = [f'{order_id}-start', task.pickup.name, task.dropoff.name]
    nodes = [
        Node(node_id=names[0], sequence_id=0, released=True,
             node_position=_pose(start, map_id), actions=[]),
        Node(node_id=names[1], sequence_id=2, released=True,
             node_position=_pose(task.pickup, map_id),
             actions=[act('pick', f'{order_id}-pick', task.load_s, task.pickup.name)]),
        Node(node_id=names[2], sequence_id=4, released=True,
             node_position=_pose(task.dropoff, map_id),
             actions=[act('drop', f'{order_id}-drop', task.unload_s, task.dropoff.name)]),
    ]
    edges = [Edge(edge_id=f'{names[i]}->{names[i + 1]}', sequence_id=2 * i + 1, released=True,
                  start_node_id=names[i], end_node_id=names[i + 1], actions=[])
             for i in range(2)]
    return Order(header_id=header_id, timestamp=format_timestamp(now),
                 version=PROTOCOL_VERSION, manufacturer=str(robot.get('manufacturer') or 'KPAI'),
                 serial_number=str(robot.get('serial_number') or robot['robot_id']),
                 order_id=order_id, order_update_id=0, nodes=nodes, edges=edges)


def build_cancel(robot: Mapping[str, Any], order_id: str, *, header_id: int,
                 now: float) -> InstantActions:
    """Build the instantActions message cancelling robot's order order_id (cancelOrder)."""
    return InstantActions(
        header_id=header_id, timestamp=format_timestamp(now), version=PROTOCOL_VERSION,
        manufacturer=str(robot.get('manufacturer') or 'KPAI'),
        serial_number=str(robot.get('serial_number') or robot['robot_id']),
        actions=[Action(action_type='cancelOrder', action_id=f'cancel-{order_id}',
                        blocking_type=BlockingType.HARD)])
