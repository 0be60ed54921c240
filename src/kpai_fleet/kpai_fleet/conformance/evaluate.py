"""Judge what the vehicle reported in its states after the kit sent an order or an action."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kpai_fleet.vda5050.models import ActionStatus, ErrorEntry, State

__all__ = ['REJECTION_TYPES', 'SentOrder', 'action_history', 'action_status', 'errors_about',
           'is_complete', 'new_errors', 'order_problems', 'pause_problems',
           'progression_problem']

REJECTION_TYPES = ('orderError', 'validationError', 'orderUpdateError')
_RANK = {ActionStatus.WAITING: 0, ActionStatus.INITIALIZING: 1, ActionStatus.RUNNING: 2,
         ActionStatus.PAUSED: 2, ActionStatus.FINISHED: 3, ActionStatus.FAILED: 3}

Timed = Sequence[tuple[float, State]]


@dataclass
class SentOrder:
    """An order (or order update) as the kit sent it."""

    order_id: str
    update_id: int
    nodes: list[tuple[str, int, bool]]  # nodeId, sequenceId, released
    action_ids: list[str] = field(default_factory=list)

    @property
    def last_base(self) -> tuple[str, int]:
        """Return nodeId and sequenceId of the last released node."""
        released = [(n, s) for n, s, r in self.nodes if r]
        return released[-1]


def action_status(state: State, action_id: str) -> ActionStatus | None:
    """Return the status of action_id in state, or None when it is not listed."""
    for a in state.action_states:
        if a.action_id == action_id:
            return a.action_status
    return None


def action_history(states: Timed, action_id: str) -> list[ActionStatus]:
    """Return the statuses of action_id over states, repeated ones collapsed."""
    out: list[ActionStatus] = []
    for _, st in states:
        status = action_status(st, action_id)
        if status is not None and (not out or out[-1] is not status):
            out.append(status)
    return out


def progression_problem(history: list[ActionStatus], *,
                        final: ActionStatus = ActionStatus.FINISHED) -> str:
    """Return why the statuses of an action are wrong ('' when they end in final, forward)."""
    if not history:
        return 'never listed in actionStates'
    for a, b in zip(history, history[1:], strict=False):
        if _RANK[b] < _RANK[a] or (_RANK[a] == 3 and a is not b):
            return f'went from {a.value} back to {b.value}'
    if history[-1] is not final:
        return f'ended {history[-1].value}, expected {final.value}'
    return ''


def _show(history: Iterable[ActionStatus]) -> str:
    return ' -> '.join(s.value for s in history)


def is_complete(state: State, sent: SentOrder) -> bool:
    """Return True when the state shows the order at its last base node with nothing left."""
    ours = {n for n, _, _ in sent.nodes}
    return (state.order_id == sent.order_id and state.order_update_id == sent.update_id
            and (state.last_node_id, state.last_node_sequence_id) == sent.last_base
            and not any(n.node_id in ours and n.released for n in state.node_states)
            and not any(e.released for e in state.edge_states)
            and all(action_status(state, a) in (ActionStatus.FINISHED, ActionStatus.FAILED)
                    for a in sent.action_ids))


def order_problems(states: Timed, sent: SentOrder, *, horizon_before: float | None = None
                   ) -> tuple[list[str], dict[str, Any]]:
    """Return what is wrong with how states followed an order, and the observations.

    Checked: node states listed with their released flags on acceptance, lastNode moving
    forward through the order's nodes only, horizon nodes not reached before horizon_before,
    completion at the last base node with node/edge states cleared, actions to FINISHED.
    """
    problems: list[str] = []
    seqs = {(n, s) for n, s, _ in sent.nodes}
    released = {n: r for n, _, r in sent.nodes}
    mine = [(t, s) for t, s in states if s.order_id == sent.order_id
            and s.order_update_id == sent.update_id]
    details: dict[str, Any] = {'states': len(mine)}
    if not mine:
        return [f'order {sent.order_id}/{sent.update_id} never appeared in the state'], details
    first = mine[0][1]
    for ns in first.node_states:
        if ns.node_id in released and ns.released is not released[ns.node_id]:
            problems.append(f'nodeState {ns.node_id} released={ns.released}, sent '
                            f'{released[ns.node_id]}')
    reached = [(s.last_node_id, s.last_node_sequence_id) for _, s in mine
               if (s.last_node_id, s.last_node_sequence_id) in seqs]
    path = [p for i, p in enumerate(reached) if not i or reached[i - 1] != p]
    details['last_nodes'] = [f'{n}:{s}' for n, s in path]
    if any(b[1] < a[1] for a, b in zip(path, path[1:], strict=False)):
        problems.append(f'lastNode went backwards: {" -> ".join(details["last_nodes"])}')
    if horizon_before is not None:
        early = [s.last_node_id for t, s in mine if t < horizon_before
                 and not released.get(s.last_node_id, True)]
        if early:
            problems.append(f'drove onto horizon node {early[0]} before it was released')
    last = mine[-1][1]
    if (last.last_node_id, last.last_node_sequence_id) != sent.last_base:
        problems.append(f'ended at lastNode {last.last_node_id}:{last.last_node_sequence_id}, '
                        f'expected {sent.last_base[0]}:{sent.last_base[1]}')
    left = [n.node_id for n in last.node_states if n.released and n.node_id in released]
    if left:
        problems.append(f'released nodes still in nodeStates at the end: {", ".join(left)}')
    if any(e.released for e in last.edge_states):
        problems.append('released edges still in edgeStates at the end')
    actions = {}
    for aid in sent.action_ids:
        history = action_history(mine, aid)
        actions[aid] = _show(history)
        why = progression_problem(history)
        if why:
            problems.append(f'action {aid}: {why} ({_show(history) or "-"})')
    details['actions'] = actions
    return problems, details


def pause_problems(states: Timed, *, paused_at: float, resumed_at: float) -> list[str]:
    """Return what is wrong while paused: driving, or passing nodes, between the two times."""
    during = [s for t, s in states if paused_at <= t < resumed_at]
    problems = []
    if any(s.paused is not True for s in during):
        problems.append('paused went back to false before stopPause')
    if any(s.driving for s in during):
        problems.append('reported driving=true while paused')
    nodes = [(s.last_node_id, s.last_node_sequence_id) for s in during]
    if nodes and nodes[-1] != nodes[0]:
        problems.append(f'passed nodes while paused: {nodes[0][0]} -> {nodes[-1][0]}')
    return problems


def _mentions(err: ErrorEntry, needle: str) -> bool:
    return needle in err.references().values() or needle in (err.error_description or '')


def errors_about(state: State, needle: str, types: Iterable[str] = ()) -> list[ErrorEntry]:
    """Return the state's errors of types (any when empty) that reference or name needle."""
    wanted = set(types)
    return [e for e in state.errors if (not wanted or e.error_type in wanted)
            and _mentions(e, needle)]


def new_errors(before: State | None, after: State, types: Iterable[str] = ()
               ) -> list[ErrorEntry]:
    """Return errors of types in after that before did not have."""
    old = {e.model_dump_json() for e in before.errors} if before is not None else set()
    wanted = set(types)
    return [e for e in after.errors if e.model_dump_json() not in old
            and (not wanted or e.error_type in wanted)]
