"""The kit's scenarios: each sends something to the vehicle and judges its states."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from kpai_fleet.vda5050.factsheet import ActionScope, Factsheet
from kpai_fleet.vda5050.models import ActionStatus, ErrorEntry, State

from .evaluate import (
    REJECTION_TYPES,
    SentOrder,
    action_status,
    errors_about,
    is_complete,
    new_errors,
    order_problems,
    pause_problems,
)
from .options import KitOptions
from .plan import (
    PlanError,
    Point,
    build_action,
    declares,
    default_points,
    order_message,
    unsupported_action_type,
)
from .recorder import Recorder
from .verdict import CheckResult, Status

__all__ = ['Scenarios', 'Sends']

_DONE = (ActionStatus.FINISHED, ActionStatus.FAILED)


def _no_order_errors(state: State) -> list[ErrorEntry]:
    return [e for e in state.errors if e.error_type == 'noOrderToCancel']


class Sends(Protocol):
    """Whatever publishes the kit's messages (the MQTT link, or a test double)."""

    def send(self, kind: str, body: dict[str, Any]) -> float: ...


class Scenarios:
    """Runs the order and instant-action scenarios against one vehicle."""

    def __init__(self, opts: KitOptions, link: Sends, rec: Recorder,
                 say: Callable[[str], None]) -> None:
        self.opts = opts
        self.link = link
        self.rec = rec
        self.say = say
        self.factsheet: Factsheet | None = None
        self.points: list[Point] = list(opts.route.points)
        self._ids = 0

    # -- helpers -----------------------------------------------------------------------------
    def _id(self, what: str) -> str:
        self._ids += 1
        return f'kit-{self.opts.run_id}-{what}-{self._ids}'

    def instant(self, action_type: str, aid: str = '') -> tuple[str, float]:
        """Send one instant action; return its actionId and when it was sent."""
        aid = aid or self._id(action_type)
        t = self.link.send('instantActions', {'actions': [
            {'actionType': action_type, 'actionId': aid, 'blockingType': 'NONE',
             'actionParameters': []}]})
        return aid, t

    def _reflected(self, what: str, t0: float, probe: Callable[[State], bool]) -> State | None:
        """Wait for a state after t0 satisfying probe; record the latency as an event."""
        found = self.rec.wait_for(lambda: next(
            ((t, s) for t, s in self.rec.states(t0) if probe(s)), None), self.opts.timeout_s)
        self.rec.note_event(what, None if found is None else found[0] - t0)
        return None if found is None else found[1]

    def _wait_state(self, t0: float, probe: Callable[[State], bool]) -> State | None:
        found = self.rec.wait_for(lambda: next(
            (s for _, s in self.rec.states(t0) if probe(s)), None), self.opts.timeout_s)
        return found

    def _start(self) -> tuple[Point, str]:
        st = self.rec.latest_state()
        if st is None or st.agv_position is None:
            raise PlanError('the state reports no agvPosition: give the route with --nodes')
        pos = st.agv_position
        here = Point(pos.x, pos.y, pos.theta)
        if not self.points:
            self.points = default_points(here, self.opts.step_m)
        return here, self.opts.route.map_id or pos.map_id

    def _node(self, oid: str, i: int, p: Point, map_id: str, released: bool = True,
              actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return {'nodeId': f'{oid}-n{i}', 'position': p, 'mapId': map_id, 'released': released,
                'deviation': self.opts.route.deviation_xy, 'actions': actions or []}

    def _send_order(self, body: dict[str, Any]) -> tuple[SentOrder, float, State | None]:
        before = self.rec.latest_state()
        t = self.link.send('order', body)
        sent = SentOrder(body['orderId'], body['orderUpdateId'],
                         [(n['nodeId'], n['sequenceId'], n['released']) for n in body['nodes']],
                         [a['actionId'] for n in body['nodes'] for a in n['actions']])
        return sent, t, before

    def _accepted(self, sent: SentOrder, t0: float, before: State | None) -> str:
        """Wait for the order in the state; return '' or why it was not taken over."""
        def probe() -> tuple[str, str] | None:
            for _, s in self.rec.states(t0):
                if s.order_id == sent.order_id and s.order_update_id == sent.update_id:
                    return 'ok', ''
                errs = new_errors(before, s, REJECTION_TYPES)
                if errs:
                    e = errs[0]
                    return 'rejected', f'{e.error_type}: {e.error_description or ""}'.strip()
            return None
        found = self.rec.wait_for(probe, self.opts.timeout_s)
        if found is None:
            self.rec.note_event(f'order {sent.order_id}/{sent.update_id}', None)
            return f'order {sent.order_id} not in the state within {self.opts.timeout_s:g} s'
        first = next(t for t, s in self.rec.states(t0))
        self.rec.note_event(f'order {sent.order_id}/{sent.update_id}', first - t0)
        return '' if found[0] == 'ok' else f'order rejected: {found[1]}'

    def _finish(self, sent: SentOrder, t0: float) -> bool:
        return self._wait_state(t0, lambda s: is_complete(s, sent)) is not None

    def _route(self, oid: str, here: Point, map_id: str, n: int) -> list[dict[str, Any]]:
        pts = [here] + [self.points[i % len(self.points)] for i in range(n - 1)]
        return [self._node(oid, i, p, map_id) for i, p in enumerate(pts)]

    def cleanup(self) -> None:
        """Cancel whatever order a failed scenario left on the vehicle (best effort)."""
        st = self.rec.latest_state()
        if st is not None and any(n.released for n in st.node_states):
            self.say('  leftover order on the vehicle: sending cancelOrder')
            aid, t = self.instant('cancelOrder')
            self.rec.wait_for(lambda: next((s for _, s in self.rec.states(t)
                                            if action_status(s, aid) in _DONE), None),
                              self.opts.timeout_s)

    def _plan_skip(self, name: str, err: PlanError) -> CheckResult:
        return CheckResult(name, Status.SKIP, f'cannot build the test order: {err}', {}, 'plan')

    # -- orders ------------------------------------------------------------------------------
    def order_pick_drop(self) -> CheckResult:
        """An order N0 -> N1 (pick) -> N2 (drop), followed to its end."""
        name = 'order_pick_drop'
        fs = self.factsheet
        assert fs is not None
        missing = [a for a in ('pick', 'drop') if not declares(fs, a, ActionScope.NODE)]
        if missing:
            which = ' or '.join(missing)
            return CheckResult(name, Status.SKIP, f'the factsheet declares no {which} for NODE '
                               'scope', {}, 'not_declared')
        try:
            here, map_id = self._start()
            oid = self._id('order')
            given = self.opts.route.parameters
            nodes = self._route(oid, here, map_id, 3)
            nodes[1]['actions'] = [build_action(fs, 'pick', f'{oid}-pick',
                                                given.get('pick', {}))]
            nodes[2]['actions'] = [build_action(fs, 'drop', f'{oid}-drop',
                                                given.get('drop', {}))]
        except PlanError as err:
            return self._plan_skip(name, err)
        body = order_message(oid, 0, nodes)
        sent, t0, before = self._send_order(body)
        why = self._accepted(sent, t0, before)
        if why:
            return CheckResult(name, Status.FAIL, why, {'order': body})
        finished = self._finish(sent, t0)
        problems, details = order_problems(self.rec.states(t0), sent)
        if not finished and not problems:
            problems.append(f'not finished within {self.opts.timeout_s:g} s')
        if problems:
            return CheckResult(name, Status.FAIL, '; '.join(problems), details)
        return CheckResult(name, Status.PASS, f'{len(sent.nodes)} nodes traversed, pick and '
                           f'drop {", ".join(details["actions"].values())}', details)

    def order_update(self) -> CheckResult:
        """A base with a horizon node, then update 1 releasing it and appending a node."""
        name = 'order_update'
        try:
            here, map_id = self._start()
        except PlanError as err:
            return self._plan_skip(name, err)
        oid = self._id('update')
        nodes = self._route(oid, here, map_id, 4)
        first = [dict(n) for n in nodes[:3]]
        first[2]['released'] = False
        sent0, t0, before = self._send_order(order_message(oid, 0, first))
        why = self._accepted(sent0, t0, before)
        if why:
            return CheckResult(name, Status.FAIL, why)
        if not self._finish(sent0, t0):
            problems, details = order_problems(self.rec.states(t0), sent0)
            return CheckResult(name, Status.FAIL, 'did not reach the end of the base: '
                               + '; '.join(problems or ['timeout']), details)
        update = order_message(oid, 1, nodes[1:], first_sequence=2)
        sent1, t1, before = self._send_order(update)
        why = self._accepted(sent1, t1, before)
        if why:
            return CheckResult(name, Status.FAIL, f'update: {why}')
        finished = self._finish(sent1, t1)
        p0, d0 = order_problems(self.rec.states(t0), sent0, horizon_before=t1)
        p1, d1 = order_problems(self.rec.states(t1), sent1)
        problems = p0 + [f'update: {p}' for p in p1]
        if not finished and not problems:
            problems.append(f'update not finished within {self.opts.timeout_s:g} s')
        details = {'base': d0, 'update': d1}
        if problems:
            return CheckResult(name, Status.FAIL, '; '.join(problems), details)
        return CheckResult(name, Status.PASS, 'stopped at the end of the base, took update 1 '
                           f'and finished at {sent1.last_base[0]}', details)

    # -- instant actions ---------------------------------------------------------------------
    def pause(self) -> CheckResult:
        """Pause a running order, watch it stand still, resume it and let it finish."""
        name = 'pause'
        if not (declares(self.factsheet, 'startPause') and declares(self.factsheet,
                                                                    'stopPause')):
            return CheckResult(name, Status.SKIP, 'the factsheet declares no startPause/'
                               'stopPause instant actions', {}, 'not_declared')
        try:
            here, map_id = self._start()
        except PlanError as err:
            return self._plan_skip(name, err)
        oid = self._id('pause')
        sent, t0, before = self._send_order(order_message(
            oid, 0, self._route(oid, here, map_id, self.opts.long_route_nodes)))
        why = self._accepted(sent, t0, before)
        if why:
            return CheckResult(name, Status.FAIL, why)
        aid, tp = self.instant('startPause')
        st = self._reflected('startPause', tp, lambda s: (
            s.paused is True and action_status(s, aid) in _DONE)
            or action_status(s, aid) is ActionStatus.FAILED)
        if st is None or st.paused is not True:
            status = action_status(st, aid) if st else None
            return CheckResult(name, Status.FAIL, 'paused never reported true after startPause'
                               f' (action {status.value if status else "not listed"})')
        paused_at = next(t for t, s in self.rec.states(tp) if s.paused is True)
        time.sleep(self.opts.pause_hold_s)
        rid, tr = self.instant('stopPause')
        st = self._wait_state(tr, lambda s: s.paused is False
                              and action_status(s, rid) in _DONE)
        problems = pause_problems(self.rec.states(tp), paused_at=paused_at, resumed_at=tr)
        if st is None:
            problems.append('paused never reported false after stopPause')
        elif action_status(st, rid) is not ActionStatus.FINISHED:
            problems.append('stopPause not FINISHED')
        if not problems and not self._finish(sent, tr):
            problems.append(f'order not resumed to its end within {self.opts.timeout_s:g} s')
        ran_before = any(is_complete(s, sent) for t, s in self.rec.states(t0) if t < paused_at)
        details = {'hold_s': self.opts.pause_hold_s, 'finished_before_pause': ran_before}
        if problems:
            return CheckResult(name, Status.FAIL, '; '.join(problems), details)
        return CheckResult(name, Status.PASS, 'paused true, stood still for '
                           f'{self.opts.pause_hold_s:g} s, resumed and finished the order',
                           details)

    def cancel_order(self) -> CheckResult:
        """Cancel a running order: cancelOrder FINISHED, node/edge states empty, orderId kept."""
        name = 'cancel_order'
        try:
            here, map_id = self._start()
        except PlanError as err:
            return self._plan_skip(name, err)
        oid = self._id('cancel')
        sent, t0, before = self._send_order(order_message(
            oid, 0, self._route(oid, here, map_id, self.opts.long_route_nodes)))
        why = self._accepted(sent, t0, before)
        if why:
            return CheckResult(name, Status.FAIL, why)
        aid, tc = self.instant('cancelOrder')
        st = self._reflected('cancelOrder', tc, lambda s: action_status(s, aid) in _DONE)
        if st is None:
            return CheckResult(name, Status.FAIL, 'cancelOrder not FINISHED or FAILED within '
                               f'{self.opts.timeout_s:g} s')
        if action_status(st, aid) is ActionStatus.FAILED:
            if any(is_complete(s, sent) for _, s in self.rec.states(t0)):
                return CheckResult(name, Status.SKIP, 'the order finished before cancelOrder '
                                   'arrived: give a longer route (--nodes)', {}, 'too_fast')
            return CheckResult(name, Status.FAIL, 'cancelOrder FAILED on a running order')
        problems = []
        if st.node_states or st.edge_states:
            problems.append(f'{len(st.node_states)} nodeStates/{len(st.edge_states)} '
                            'edgeStates left after cancelOrder FINISHED')
        if (st.order_id, st.order_update_id) != (sent.order_id, sent.update_id):
            problems.append(f'orderId/orderUpdateId not kept: {st.order_id}/'
                            f'{st.order_update_id}')
        if problems:
            return CheckResult(name, Status.FAIL, '; '.join(problems))
        return CheckResult(name, Status.PASS, f'stopped at {st.last_node_id}, states cleared, '
                           'cancelOrder FINISHED')

    def cancel_without_order(self) -> CheckResult:
        """cancelOrder with no order: FAILED and noOrderToCancel referencing the actionId."""
        name = 'cancel_without_order'
        aid, t = self.instant('cancelOrder')
        st = self._reflected('cancelOrder (no order)', t, lambda s: action_status(
            s, aid) is ActionStatus.FINISHED or (action_status(s, aid) is ActionStatus.FAILED
                                                 and bool(_no_order_errors(s))))
        st = st or self.rec.latest_state()
        if st is None or (action_status(st, aid) is None and not errors_about(st, aid)):
            return CheckResult(name, Status.FAIL, f'no answer within {self.opts.timeout_s:g} s')
        status = action_status(st, aid)
        errs = _no_order_errors(st)
        problems = []
        if status is not ActionStatus.FAILED:
            problems.append(f'cancelOrder {status.value if status else "not listed"}, '
                            'expected FAILED')
        if not errs:
            problems.append('no noOrderToCancel error')
        elif not any(aid in e.references().values() for e in errs):
            problems.append('noOrderToCancel does not reference the actionId')
        elif errs[0].error_level.value != 'WARNING':
            problems.append(f'noOrderToCancel level {errs[0].error_level.value}, not WARNING')
        if problems:
            return CheckResult(name, Status.FAIL, '; '.join(problems) + ' (6.6.3.2)')
        return CheckResult(name, Status.PASS, 'FAILED with a noOrderToCancel warning')

    def unsupported_instant_action(self) -> CheckResult:
        """An undeclared instant action: FAILED (with a reason) or an error, never executed."""
        name = 'unsupported_instant_action'
        kind = unsupported_action_type(self.factsheet)
        aid, t = self.instant(kind)
        st = self._reflected(kind, t, lambda s: action_status(s, aid) in _DONE
                             or bool(errors_about(s, aid)))
        if st is None:
            listed = self.rec.latest_state()
            status = action_status(listed, aid) if listed else None
            what = f'left {status.value}' if status else 'silently ignored'
            return CheckResult(name, Status.FAIL, f'{kind} {what}: no FAILED actionState and '
                               f'no error within {self.opts.timeout_s:g} s')
        status = action_status(st, aid)
        if status is ActionStatus.FINISHED:
            return CheckResult(name, Status.FAIL, f'{kind} (not in the factsheet) reported '
                               'FINISHED: executed instead of rejected')
        errs = errors_about(st, aid)
        reason = next((a.result_description for a in st.action_states if a.action_id == aid
                       and a.result_description), '') or (
            errs[0].error_description if errs else '')
        return CheckResult(name, Status.PASS, f'{kind} rejected'
                           + (f': {reason}' if reason else ''))

    def unsupported_order_action(self) -> CheckResult:
        """An order with an undeclared node action: rejected with an error, not taken over."""
        name = 'unsupported_order_action'
        try:
            here, map_id = self._start()
        except PlanError as err:
            return self._plan_skip(name, err)
        kind = unsupported_action_type(self.factsheet)
        oid = self._id('unsupported')
        nodes = self._route(oid, here, map_id, 2)
        nodes[1]['actions'] = [{'actionType': kind, 'actionId': f'{oid}-x',
                                'blockingType': 'HARD', 'actionParameters': []}]
        sent, t0, before = self._send_order(order_message(oid, 0, nodes))
        why = self._accepted(sent, t0, before)
        if not why:
            return CheckResult(name, Status.FAIL, f'took over order {oid} with the undeclared '
                               f'action {kind}')
        if not why.startswith('order rejected'):
            return CheckResult(name, Status.FAIL, f'no orderError/validationError: {why}')
        return CheckResult(name, Status.PASS, why)
