"""The predefined actions of VDA 5050 2.0 (section 6.8.1) and checks of action parameters."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kpai_fleet.errors import ValidationRejected
from kpai_fleet.vda5050.factsheet import (
    ActionScope,
    AgvAction,
    AgvActionParameter,
    ValueDataType,
)
from kpai_fleet.vda5050.models import Action

__all__ = ['PREDEFINED_ACTIONS', 'ActionRejected', 'ParamSpec', 'PredefinedAction',
           'check_action', 'declare_action', 'value_matches']

_S, _F = ValueDataType.STRING, ValueDataType.FLOAT
_I, _N, _E = ActionScope.INSTANT, ActionScope.NODE, ActionScope.EDGE


class ActionRejected(ValidationRejected):
    """An action does not fit its declaration; names the action and the parameter at fault."""

    def __init__(self, reason: str, action_id: str, parameter: str = '') -> None:
        super().__init__(reason)
        self.action_id = action_id
        self.parameter = parameter

    def references(self) -> dict[str, str]:
        """Return errorReferences for the error the vehicle reports (best practice 7.1)."""
        refs = {'actionId': self.action_id}
        if self.parameter:
            refs['actionParameter'] = self.parameter
        return refs


@dataclass(frozen=True)
class ParamSpec:
    """One action parameter: its key, value type and whether it may be left out."""

    key: str
    data_type: ValueDataType
    optional: bool = False
    description: str = ''


@dataclass(frozen=True)
class PredefinedAction:
    """A predefined action: its scopes and its predefined parameters."""

    action_type: str
    scopes: tuple[ActionScope, ...]
    parameters: tuple[ParamSpec, ...] = ()
    description: str = ''


def _load_params(*, station_type_optional: bool, load_type_optional: bool
                 ) -> tuple[ParamSpec, ...]:
    return (
        ParamSpec('lhd', _S, True, 'load handling device, e.g. LHD1'),
        ParamSpec('stationType', _S, station_type_optional,
                  'how the load is handled, e.g. floor, rack, passive or active conveyor'),
        ParamSpec('stationName', _S, True, 'name of the station'),
        ParamSpec('loadType', _S, load_type_optional, 'load unit, e.g. EPAL'),
        ParamSpec('loadId', _S, True, 'identification of the load'),
        ParamSpec('height', _F, True, '[m] bottom of the load related to the floor'),
        ParamSpec('depth', _F, True, '[m] for forklifts'),
        ParamSpec('side', _S, True, 'e.g. conveyor side'),
    )


# VDA 5050 2.0.0, 6.8.1. The specification assigns no blockingType to these actions; a master
# chooses it per use by 6.12 (the stack sends HARD for pick/drop: no driving, nothing else).
PREDEFINED_ACTIONS: dict[str, PredefinedAction] = {a.action_type: a for a in (
    PredefinedAction('startPause', (_I,), description='activate the pause mode'),
    PredefinedAction('stopPause', (_I,), description='deactivate the pause mode'),
    PredefinedAction('startCharging', (_I, _N), description='activate charging'),
    PredefinedAction('stopCharging', (_I, _N), description='deactivate charging'),
    PredefinedAction('initPosition', (_I, _N), (
        ParamSpec('x', _F), ParamSpec('y', _F), ParamSpec('theta', _F), ParamSpec('mapId', _S),
        ParamSpec('lastNodeId', _S)), 'reset (override) the pose of the AGV'),
    PredefinedAction('stateRequest', (_I,), description='send a new state'),
    PredefinedAction('logReport', (_I,), (ParamSpec('reason', _S),),
                     'generate and store a log report'),
    PredefinedAction('pick', (_N, _E), _load_params(
        station_type_optional=False, load_type_optional=False), 'pick a load'),
    PredefinedAction('drop', (_N, _E), _load_params(
        station_type_optional=True, load_type_optional=True), 'drop a load'),
    PredefinedAction('detectObject', (_N, _E), (ParamSpec('objectType', _S, True),),
                     'detect an object (load, charging spot, free parking position)'),
    PredefinedAction('finePositioning', (_N, _E), (
        ParamSpec('stationType', _S, True), ParamSpec('stationName', _S, True)),
        'position exactly on a target'),
    PredefinedAction('waitForTrigger', (_N,), (ParamSpec('triggerType', _S),),
                     'wait for a trigger on the AGV'),
    PredefinedAction('cancelOrder', (_I,), description='stop and delete the order'),
    PredefinedAction('factsheetRequest', (_I,), description='send the factsheet'),
)}


def declare_action(action_type: str, scopes: Iterable[ActionScope] | None = None, *,
                   extra: Iterable[ParamSpec] = (), optional: Iterable[str] = (),
                   description: str = '') -> AgvAction:
    """Return the factsheet entry of an action: predefined parameters plus extra ones.

    `optional` names predefined parameters this vehicle does not need (it still accepts them).
    """
    pre = PREDEFINED_ACTIONS.get(action_type)
    relaxed = set(optional)
    params = [AgvActionParameter(key=p.key, value_data_type=p.data_type,
                                 description=p.description or None,
                                 is_optional=p.optional or p.key in relaxed)
              for p in (pre.parameters if pre else ())]
    params += [AgvActionParameter(key=p.key, value_data_type=p.data_type,
                                  description=p.description or None, is_optional=p.optional)
               for p in extra]
    return AgvAction(action_type=action_type,
                     action_description=description or (pre.description if pre else None),
                     action_scopes=list(scopes if scopes is not None else
                                        (pre.scopes if pre else (ActionScope.NODE,))),
                     action_parameters=params or None)


def value_matches(value: Any, data_type: ValueDataType) -> bool:
    """Return True when a JSON value fits the declared valueDataType."""
    if data_type is ValueDataType.BOOL:
        return isinstance(value, bool)
    if data_type is ValueDataType.STRING:
        return isinstance(value, str)
    if data_type is ValueDataType.OBJECT:
        return isinstance(value, dict)
    if data_type is ValueDataType.ARRAY:
        return isinstance(value, list)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False  # (an int is finite; math.isfinite of a 400-digit int would overflow)
    if data_type is ValueDataType.INTEGER:
        return isinstance(value, int) or value.is_integer()
    return True  # NUMBER, FLOAT


def check_action(action: Action, declared: AgvAction | None, scope: ActionScope) -> None:
    """Check an action against its declaration; raise ValidationRejected naming the fault.

    Rejected: an undeclared actionType or scope, an undeclared actionParameter, a missing
    required one, a value of the wrong type, a key given twice.
    """
    aid = action.action_id
    where = f'action {aid} ({action.action_type})'
    if declared is None:
        raise ActionRejected(f'{where}: actionType {action.action_type!r} is not supported', aid)
    if scope not in declared.action_scopes:
        allowed = ', '.join(s.value for s in declared.action_scopes)
        raise ActionRejected(f'{where}: not usable as {scope.value} (scopes: {allowed})', aid)
    keys = [p.key for p in action.action_parameters]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ActionRejected(f'{where}: actionParameter {", ".join(twice)} given twice', aid,
                             twice[0])
    for p in action.action_parameters:
        spec = declared.parameter(p.key)
        if spec is None:
            known = ', '.join(q.key for q in declared.action_parameters or ()) or 'none'
            raise ActionRejected(
                f'{where}: invalid actionParameter {p.key!r} (declared: {known})', aid, p.key)
        if not value_matches(p.value, spec.value_data_type):
            raise ActionRejected(
                f'{where}: actionParameter {p.key!r} must be {spec.value_data_type.value}, '
                f'got {p.value!r}', aid, p.key)
    missing = [q.key for q in declared.action_parameters or ()
               if not q.is_optional and q.key not in keys]
    if missing:
        raise ActionRejected(f'{where}: missing actionParameter {", ".join(missing)}', aid,
                             missing[0])
