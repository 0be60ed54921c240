"""A test double of another maker's VDA 5050 2.0 vehicle, written from the spec, not our code.

It builds its messages as plain JSON (not with kpai_fleet's models), publishes the factsheet
only when asked (factsheetRequest), enforces the predefined action parameters it declares and
rejects an order otherwise with an orderError, as section 6.6.4.2 describes.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

Publish = Callable[[str, bytes], None]

PICK_PARAMS = [('lhd', 'STRING', True), ('stationType', 'STRING', False),
               ('stationName', 'STRING', True), ('loadType', 'STRING', False),
               ('loadId', 'STRING', True), ('height', 'FLOAT', True), ('depth', 'FLOAT', True),
               ('side', 'STRING', True)]
DROP_PARAMS = [(k, t, True) for k, t, _ in PICK_PARAMS]
INSTANTS = ('startPause', 'stopPause', 'cancelOrder', 'stateRequest', 'factsheetRequest')


def _ts(now: float) -> str:
    return datetime.fromtimestamp(now, tz=timezone.utc).isoformat(timespec='milliseconds')[
        :-6] + 'Z'


class ForeignAgv:
    """An 'Acme' AGV: accepts pick/drop with the predefined parameters, drives node by node."""

    def __init__(self, serial: str, publish: Publish, *, x: float = 0.0, y: float = 0.0,
                 station_types: tuple[str, ...] = ('floor', 'rack'),
                 load_types: tuple[str, ...] = ('EPAL',), declare_drop: bool = True,
                 answers_orders: bool = True, clock: Callable[[], float] | None = None) -> None:
        self.serial = serial
        self.publish = publish
        self.x, self.y = x, y
        self.station_types = station_types
        self.load_types = load_types
        self.declare_drop = declare_drop
        self.answers_orders = answers_orders
        self.clock = clock or (lambda: 1.7e9)
        self.ids: dict[str, int] = {}
        self.order_id = ''
        self.order_update_id = 0
        self.last_node = ('', 0)
        self.nodes: deque[dict[str, Any]] = deque()
        self.edges: list[dict[str, Any]] = []
        self.action_states: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.received: list[tuple[str, dict[str, Any]]] = []

    # -- messages ----------------------------------------------------------------------------
    def topic(self, kind: str) -> str:
        return f'uagv/v2/Acme/{self.serial}/{kind}'

    def header(self, kind: str) -> dict[str, Any]:
        hid = self.ids.get(kind, 0)
        self.ids[kind] = hid + 1
        return {'headerId': hid, 'timestamp': _ts(self.clock()), 'version': '2.0.0',
                'manufacturer': 'Acme', 'serialNumber': self.serial}

    def send(self, kind: str, body: dict[str, Any]) -> None:
        self.publish(self.topic(kind), json.dumps(dict(self.header(kind), **body)).encode())

    def connect(self) -> None:
        self.send('connection', {'connectionState': 'ONLINE'})
        self.send_state()

    def factsheet(self) -> dict[str, Any]:
        def params(spec):
            return [{'key': k, 'valueDataType': t, 'isOptional': o} for k, t, o in spec]

        actions = [{'actionType': 'pick', 'actionScopes': ['NODE'],
                    'actionParameters': params(PICK_PARAMS)}]
        if self.declare_drop:
            actions.append({'actionType': 'drop', 'actionScopes': ['NODE'],
                            'actionParameters': params(DROP_PARAMS)})
        actions += [{'actionType': t, 'actionScopes': ['INSTANT']} for t in INSTANTS]
        return {
            'typeSpecification': {'seriesName': 'Acme Lift 2', 'agvKinematic': 'OMNI',
                                  'agvClass': 'FORKLIFT', 'maxLoadMass': 1000,
                                  'localizationTypes': ['REFLECTOR'],
                                  'navigationTypes': ['VIRTUAL_LINE_GUIDED']},
            'physicalParameters': {'speedMin': 0.1, 'speedMax': 2, 'accelerationMax': 0.5,
                                   'decelerationMax': 0.8, 'heightMin': 1.9, 'heightMax': 2.2,
                                   'width': 1.2, 'length': 2.1},
            'protocolLimits': {'maxStringLens': {'msgLen': 65536, 'idLen': 64},
                               'maxArrayLens': {'order.nodes': 50, 'order.edges': 49},
                               'timing': {'minOrderInterval': 1, 'minStateInterval': 0.5}},
            'protocolFeatures': {'optionalParameters': [], 'agvActions': actions},
            'agvGeometry': {},
            'loadSpecification': {'loadPositions': ['fork'], 'loadSets': [
                {'setName': t, 'loadType': t} for t in self.load_types]},
        }

    def state(self) -> dict[str, Any]:
        return {
            'orderId': self.order_id, 'orderUpdateId': self.order_update_id,
            'lastNodeId': self.last_node[0], 'lastNodeSequenceId': self.last_node[1],
            'nodeStates': [{'nodeId': n['nodeId'], 'sequenceId': n['sequenceId'],
                            'released': n['released']} for n in self.nodes],
            'edgeStates': [{'edgeId': e['edgeId'], 'sequenceId': e['sequenceId'],
                            'released': e['released']} for e in self.edges],
            'driving': bool(self.nodes), 'actionStates': self.action_states,
            'agvPosition': {'x': self.x, 'y': self.y, 'theta': 0.0, 'mapId': 'factory',
                            'positionInitialized': True},
            'batteryState': {'batteryCharge': 90, 'charging': False},
            'operatingMode': 'AUTOMATIC', 'errors': self.errors,
            'safetyState': {'eStop': 'NONE', 'fieldViolation': False},
        }

    def send_state(self) -> None:
        self.send('state', self.state())

    # -- incoming ----------------------------------------------------------------------------
    def receive(self, topic: str, payload: bytes) -> None:
        kind = topic.rsplit('/', 1)[-1]
        msg = json.loads(payload)
        self.received.append((kind, msg))
        if kind == 'order':
            if self.answers_orders:
                self._order(msg)
                self.send_state()
        elif kind == 'instantActions':
            for action in msg['actions']:
                self._instant(action)

    def _instant(self, action: dict[str, Any]) -> None:
        kind = action['actionType']
        status = 'FINISHED'
        if kind == 'factsheetRequest':
            self.send('factsheet', self.factsheet())
        elif kind == 'cancelOrder':
            if self.nodes:
                self.nodes.clear()
                self.edges.clear()
            else:
                status = 'FAILED'
        self.action_states.append({'actionId': action['actionId'], 'actionType': kind,
                                   'actionStatus': status})
        self.send_state()

    def _reject(self, msg: dict[str, Any], text: str, **refs: str) -> None:
        refs = dict({'headerId': str(msg['headerId']), 'orderId': msg['orderId']}, **refs)
        self.errors = [{'errorType': 'orderError', 'errorLevel': 'WARNING',
                        'errorDescription': text,
                        'errorReferences': [{'referenceKey': k, 'referenceValue': v}
                                            for k, v in refs.items()]}]

    def _order(self, msg: dict[str, Any]) -> None:
        declared = {a['actionType']: a for a in self.factsheet()['protocolFeatures']
                    ['agvActions']}
        for node in msg['nodes']:
            for action in node['actions']:
                spec = declared.get(action['actionType'])
                aid = action['actionId']
                if spec is None:
                    return self._reject(msg, 'order action is not executable: unknown '
                                        'actionType', actionId=aid)
                allowed = {p['key']: p for p in spec.get('actionParameters', [])}
                given = {p['key']: p['value'] for p in action.get('actionParameters', [])}
                for key in given:
                    if key not in allowed:
                        return self._reject(msg, 'order action is not executable: invalid '
                                            'actionParameter', actionId=aid,
                                            actionParameter=key)
                for key, p in allowed.items():
                    if not p['isOptional'] and key not in given:
                        return self._reject(msg, 'order action is not executable: missing '
                                            'actionParameter', actionId=aid,
                                            actionParameter=key)
                if given.get('stationType', self.station_types[0]) not in self.station_types:
                    return self._reject(msg, f'stationType {given["stationType"]} is not '
                                        'served by this vehicle', actionId=aid,
                                        actionParameter='stationType')
                if given.get('loadType', self.load_types[0]) not in self.load_types:
                    return self._reject(msg, 'loadType not handled', actionId=aid)
        self.errors = []
        self.order_id, self.order_update_id = msg['orderId'], msg['orderUpdateId']
        self.nodes = deque(msg['nodes'])
        self.edges = list(msg['edges'])
        self.action_states = [{'actionId': a['actionId'], 'actionType': a['actionType'],
                               'actionStatus': 'WAITING'}
                              for n in msg['nodes'] for a in n['actions']]
        return None

    # -- driving -----------------------------------------------------------------------------
    def step(self) -> bool:
        """Reach the next node and run its actions; publish the state; False when idle."""
        if not self.nodes:
            return False
        node = self.nodes.popleft()
        pos = node.get('nodePosition') or {}
        self.x, self.y = pos.get('x', self.x), pos.get('y', self.y)
        self.last_node = (node['nodeId'], node['sequenceId'])
        self.edges = [e for e in self.edges if e['sequenceId'] > node['sequenceId']]
        ids = {a['actionId'] for a in node['actions']}
        for a in self.action_states:
            if a['actionId'] in ids:
                a['actionStatus'] = 'FINISHED'
        self.send_state()
        return True
