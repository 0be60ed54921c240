"""Map VDA 5050 order nodes and actions onto KPAI mission steps (mirrors kpai_msgs/MissionStep)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from kpai_fleet.errors import ValidationRejected
from kpai_fleet.vda5050.actions import ParamSpec, check_action, declare_action
from kpai_fleet.vda5050.factsheet import ActionScope, AgvAction, ValueDataType
from kpai_fleet.vda5050.models import Action, Node

__all__ = [
    'ACTION_STEP_TYPES', 'INSTANT_ACTIONS', 'KPAI_ACTIONS', 'MissionStep', 'StepType',
    'action_to_step', 'node_step_id', 'nodes_to_steps',
]


class StepType(IntEnum):
    """The step kinds of kpai_msgs/MissionStep (same numeric values)."""

    NAVIGATE = 0
    DOCK = 1
    WAIT = 2
    LOAD = 3
    UNLOAD = 4
    CHARGE = 5


# VDA 5050 predefined actions (and the stack's aliases) that become a mission step.
ACTION_STEP_TYPES: dict[str, StepType] = {
    'pick': StepType.LOAD,
    'drop': StepType.UNLOAD,
    'finePositioning': StepType.DOCK,
    'dock': StepType.DOCK,
    'startCharging': StepType.CHARGE,
    'charge': StepType.CHARGE,
    'wait': StepType.WAIT,
}
# Instant actions this agent handles itself (no mission step).
INSTANT_ACTIONS = ('cancelOrder', 'startPause', 'stopPause', 'stateRequest', 'factsheetRequest')

_NUM, _STR = ValueDataType.NUMBER, ValueDataType.STRING
_DURATION = ParamSpec('duration', _NUM, True, '[s] KPAI: time the step takes')
_STATION_ID = ParamSpec('stationId', _STR, True, 'KPAI: station (fiducial) id, as stationName')
_TARGET = ParamSpec('batteryTarget', _NUM, True, 'KPAI: charge up to this [%] (or 0..1)')
_NODE = (ActionScope.NODE,)
# What this agent declares in its factsheet and accepts: the predefined parameters (the KPAI
# AMR carries one load on top and needs neither stationType nor loadType, so it marks them
# optional but accepts them) plus its own optional extras.
KPAI_ACTIONS: dict[str, AgvAction] = {a.action_type: a for a in (
    declare_action('pick', _NODE, extra=(_DURATION, _STATION_ID),
                   optional=('stationType', 'loadType')),
    declare_action('drop', _NODE, extra=(_DURATION, _STATION_ID)),
    declare_action('finePositioning', _NODE, extra=(_STATION_ID,)),
    declare_action('startCharging', _NODE, extra=(_TARGET, _DURATION)),
    declare_action('dock', _NODE, extra=(ParamSpec('stationName', _STR, True), _STATION_ID),
                   description='KPAI: dock at a station (fiducial) or at the node pose'),
    declare_action('charge', _NODE, extra=(_TARGET, _DURATION),
                   description='KPAI: charge at the current dock (as startCharging)'),
    declare_action('wait', _NODE, extra=(_DURATION,),
                   description='KPAI: stand still for duration seconds'),
    *(declare_action(t, (ActionScope.INSTANT,)) for t in INSTANT_ACTIONS),
)}

DEFAULT_HANDLING_S = 2.0


@dataclass(frozen=True)
class MissionStep:
    """One mission step; `action_id` is set for steps made from an action, else `node_id`."""

    type: StepType
    step_id: str
    x: float = 0.0
    y: float = 0.0
    theta: float = 0.0
    frame_id: str = 'map'
    station_id: str = ''
    duration_s: float = 0.0
    battery_target: float = 0.0
    node_id: str = ''
    sequence_id: int = 0
    action_id: str = ''


def node_step_id(node_id: str, sequence_id: int) -> str:
    """Return the step id of the navigation step to a node."""
    return f'node:{node_id}:{sequence_id}'


def _show(raw: object) -> str:
    """Return a short printable form of a parameter value (huge integers by their size)."""
    if isinstance(raw, int) and raw.bit_length() > 64:
        return f'<integer of {raw.bit_length()} bits>'
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + '...'


def _number(action: Action, key: str, default: float, *, lo: float = 0.0,
            hi: float = 1e6) -> float:
    raw = action.param(key, default)
    try:
        value = float(raw)
    except OverflowError:  # an integer past the double range: out of range, not a crash
        value = math.inf if raw > 0 else -math.inf
    except (TypeError, ValueError):
        raise ValidationRejected(
            f'action {action.action_id}: parameter {key}={_show(raw)} is not a '
            'number') from None
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ValidationRejected(
            f'action {action.action_id}: parameter {key}={_show(raw)} outside [{lo}, {hi}]')
    return value


def action_to_step(action: Action, node: Node, x: float, y: float, theta: float) -> MissionStep:
    """Turn one node action into a mission step; raise ValidationRejected if unsupported."""
    kind = ACTION_STEP_TYPES.get(action.action_type)
    if kind is None:
        raise ValidationRejected(
            f'action {action.action_id}: unsupported actionType {action.action_type!r} '
            f'(supported: {", ".join(sorted(ACTION_STEP_TYPES))})')
    check_action(action, KPAI_ACTIONS.get(action.action_type), ActionScope.NODE)
    station = str(action.param('stationId', action.param('stationName', '')) or '')
    duration = 0.0
    target = 0.0
    if kind in (StepType.LOAD, StepType.UNLOAD):
        duration = _number(action, 'duration', DEFAULT_HANDLING_S, hi=3600)
    elif kind is StepType.WAIT:
        duration = _number(action, 'duration', 1.0, hi=86400)
    elif kind is StepType.CHARGE:
        duration = _number(action, 'duration', 0.0, hi=86400)
        target = _number(action, 'batteryTarget', 0.0, hi=100.0)
        target = target / 100.0 if target > 1.0 else target
        if duration == 0.0 and target == 0.0:
            target = 0.95
    return MissionStep(type=kind, step_id=action.action_id, x=x, y=y, theta=theta,
                       station_id=station, duration_s=duration, battery_target=target,
                       node_id=node.node_id, sequence_id=node.sequence_id,
                       action_id=action.action_id)


def nodes_to_steps(nodes: Sequence[Node], *, start_xy: tuple[float, float] | None = None,
                   skip_first_navigation: bool = False) -> list[MissionStep]:
    """Map released nodes to steps: NAVIGATE to each node, then its actions in order."""
    steps: list[MissionStep] = []
    prev = start_xy
    for i, node in enumerate(nodes):
        if not node.released:
            break
        pos = node.node_position
        if pos is None:
            if i == 0 and prev is not None:
                x, y, theta = prev[0], prev[1], 0.0
            else:
                raise ValidationRejected(f'node {node.node_id} has no nodePosition')
        else:
            x, y = pos.x, pos.y
            if pos.theta is not None:
                theta = pos.theta
            elif prev is not None and math.hypot(x - prev[0], y - prev[1]) > 1e-6:
                theta = math.atan2(y - prev[1], x - prev[0])
            else:
                theta = 0.0
        if not (i == 0 and skip_first_navigation):
            steps.append(MissionStep(type=StepType.NAVIGATE,
                                     step_id=node_step_id(node.node_id, node.sequence_id),
                                     x=x, y=y, theta=theta, node_id=node.node_id,
                                     sequence_id=node.sequence_id))
        steps.extend(action_to_step(a, node, x, y, theta) for a in node.actions)
        prev = (x, y)
    return steps
