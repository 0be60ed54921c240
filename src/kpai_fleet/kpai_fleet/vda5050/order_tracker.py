"""Order bookkeeping of one vehicle: accept/update/cancel, progress, node/edge/action states."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kpai_fleet.errors import ValidationRejected
from kpai_fleet.vda5050.actions import ActionRejected, check_action
from kpai_fleet.vda5050.factsheet import ActionScope
from kpai_fleet.vda5050.models import (
    Action,
    ActionState,
    ActionStatus,
    Edge,
    EdgeState,
    ErrorEntry,
    ErrorLevel,
    ErrorReference,
    Node,
    NodeState,
    Order,
)
from kpai_fleet.vda5050.order_mapping import KPAI_ACTIONS, MissionStep, StepType, nodes_to_steps

__all__ = ['OrderDecision', 'OrderTracker']

MAX_ERRORS = 20  # errors kept for the state, oldest dropped (bounded state size)

DecisionKind = Literal['start', 'append', 'ignore', 'reject']


@dataclass
class OrderDecision:
    """What the agent must do after an order arrived."""

    kind: DecisionKind
    steps: list[MissionStep] = field(default_factory=list)
    reason: str = ''


def _err(kind: str, text: str, level: ErrorLevel = ErrorLevel.WARNING,
         **refs: str) -> ErrorEntry:
    return ErrorEntry(error_type=kind, error_description=text, error_level=level,
                      error_references=[ErrorReference(reference_key=k, reference_value=v)
                                        for k, v in refs.items()])


class OrderTracker:
    """Holds the current order and turns mission progress into VDA 5050 states."""

    def __init__(self) -> None:
        self.order_id = ''
        self.order_update_id = 0
        self.last_node_id = ''
        self.last_node_sequence_id = 0
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []
        self.actions: dict[str, ActionState] = {}
        self.pending_steps: list[MissionStep] = []
        self.errors: list[ErrorEntry] = []
        self.paused = False
        self.failed = False

    # -- queries ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while released nodes remain to be reached or steps remain to run."""
        return bool(self.pending_steps) or any(n.released for n in self.nodes)

    def node_states(self) -> list[NodeState]:
        """Return the nodeStates of the nodes still to traverse."""
        return [NodeState(node_id=n.node_id, sequence_id=n.sequence_id, released=n.released,
                          node_description=n.node_description, node_position=n.node_position)
                for n in self.nodes]

    def edge_states(self) -> list[EdgeState]:
        """Return the edgeStates of the edges still to traverse."""
        return [EdgeState(edge_id=e.edge_id, sequence_id=e.sequence_id, released=e.released,
                          edge_description=e.edge_description) for e in self.edges]

    def action_states(self) -> list[ActionState]:
        """Return the actionStates of the current order and of instant actions."""
        return list(self.actions.values())

    # -- orders ----------------------------------------------------------------------------
    def receive(self, order: Order, *, position: tuple[float, float] | None = None
                ) -> OrderDecision:
        """Decide on an incoming order: start, append (update), ignore (resend) or reject."""
        try:
            _check_usable(order)
            if order.order_id == self.order_id:
                return self._update(order)
            if self.busy and not self.failed:
                raise ValidationRejected(
                    f'orderError: busy with order {self.order_id}; cancel it first')
            steps = nodes_to_steps(order.nodes, start_xy=position)
        except ValidationRejected as rej:
            kind = rej.reason.split(':', 1)[0] if rej.reason.startswith('order') else (
                'orderError')
            refs = rej.references() if isinstance(rej, ActionRejected) else {}
            self.add_error(kind, rej.reason, headerId=str(order.header_id), topic='order',
                           orderId=order.order_id, orderUpdateId=str(order.order_update_id),
                           **refs)
            return OrderDecision('reject', reason=rej.reason)
        self.order_id = order.order_id
        self.order_update_id = order.order_update_id
        self.nodes = list(order.nodes)
        self.edges = list(order.edges)
        self.actions = {a.action_id: ActionState(action_id=a.action_id, action_type=a.action_type,
                                                 action_status=ActionStatus.WAITING)
                        for a in _order_actions(order.nodes, order.edges)}
        self.pending_steps = list(steps)
        self.errors = []
        self.failed = False
        return OrderDecision('start', steps=steps)

    def _update(self, order: Order) -> OrderDecision:
        if order.order_update_id == self.order_update_id:
            return OrderDecision('ignore', reason='same orderUpdateId: already accepted')
        if order.order_update_id < self.order_update_id:
            raise ValidationRejected(
                f'orderUpdateError: orderUpdateId {order.order_update_id} is older than '
                f'{self.order_update_id}')
        base = [n for n in self.nodes if n.released]
        stitch = (base[-1].node_id, base[-1].sequence_id) if base else (
            self.last_node_id, self.last_node_sequence_id)
        first = order.nodes[0]
        if (first.node_id, first.sequence_id) != stitch:
            raise ValidationRejected(
                f'orderUpdateError: update must start at the last base node {stitch[0]} '
                f'(sequenceId {stitch[1]}), got {first.node_id} ({first.sequence_id})')
        start = None
        if first.node_position is not None:
            start = (first.node_position.x, first.node_position.y)
        known = set(self.actions)
        steps = nodes_to_steps(order.nodes, start_xy=start, skip_first_navigation=True)
        steps = [s for s in steps if not s.action_id or s.action_id not in known]
        self.order_update_id = order.order_update_id
        self.nodes = base + list(order.nodes[1:]) if base else list(order.nodes[1:])
        self.edges = [e for e in self.edges if e.released] + list(order.edges)
        for a in _order_actions(order.nodes, order.edges):
            self.actions.setdefault(a.action_id, ActionState(
                action_id=a.action_id, action_type=a.action_type,
                action_status=ActionStatus.WAITING))
        self.pending_steps.extend(steps)
        self.failed = False
        return OrderDecision('append', steps=steps)

    # -- progress --------------------------------------------------------------------------
    def step_started(self, step_id: str) -> None:
        """Mark the step step_id as running (and every step before it as done)."""
        while self.pending_steps and self.pending_steps[0].step_id != step_id:
            if not any(s.step_id == step_id for s in self.pending_steps):
                return
            self.step_done(self.pending_steps[0].step_id)
        if self.pending_steps:
            step = self.pending_steps[0]
            if step.action_id in self.actions:
                self._set_action(step.action_id, ActionStatus.RUNNING)

    def step_done(self, step_id: str) -> None:
        """Mark step step_id finished: reach its node or finish its action."""
        idx = next((i for i, s in enumerate(self.pending_steps) if s.step_id == step_id), None)
        if idx is None:
            return
        for step in self.pending_steps[:idx + 1]:
            if step.type is StepType.NAVIGATE:
                self._reach(step.node_id, step.sequence_id)
            elif step.action_id in self.actions:
                self._set_action(step.action_id, ActionStatus.FINISHED)
        del self.pending_steps[:idx + 1]

    def all_done(self) -> None:
        """The mission succeeded: every pending step is finished."""
        if self.pending_steps:
            self.step_done(self.pending_steps[-1].step_id)

    def mission_failed(self, reason: str) -> None:
        """The mission failed at its current step: fail that step's action, record an error."""
        self.failed = True
        if self.pending_steps:
            step = self.pending_steps[0]
            if step.action_id in self.actions:
                self._set_action(step.action_id, ActionStatus.FAILED, reason)
        self.errors.append(_err('kpai.missionFailed', reason, ErrorLevel.FATAL,
                                orderId=self.order_id))
        del self.errors[:-MAX_ERRORS]

    def cancel(self) -> bool:
        """Cancel the current order; return False when there was none to cancel."""
        if not self.busy:
            return False
        for aid, st in self.actions.items():
            if st.action_status not in (ActionStatus.FINISHED, ActionStatus.FAILED):
                self._set_action(aid, ActionStatus.FAILED, 'order cancelled')
        self.nodes = []
        self.edges = []
        self.pending_steps = []
        # the order's errors (e.g. kpai.missionFailed) go with it: the robot is free again
        self.errors = [e for e in self.errors if not any(
            r.reference_key == 'orderId' and r.reference_value == self.order_id
            for r in e.error_references or [])]
        self.failed = False
        return True

    # -- instant actions -------------------------------------------------------------------
    def track_instant(self, action_id: str, action_type: str, status: ActionStatus,
                      result: str = '') -> None:
        """Record the state of an instant action."""
        self.actions[action_id] = ActionState(
            action_id=action_id, action_type=action_type, action_status=status,
            result_description=result or None)

    def add_error(self, kind: str, text: str, **refs: str) -> None:
        """Record an error to report in the next state (bounded list)."""
        self.errors.append(_err(kind, text, **refs))
        del self.errors[:-MAX_ERRORS]

    # -- internals -------------------------------------------------------------------------
    def _set_action(self, action_id: str, status: ActionStatus, result: str = '') -> None:
        old = self.actions[action_id]
        self.actions[action_id] = old.model_copy(update={
            'action_status': status, 'result_description': result or old.result_description})

    def _reach(self, node_id: str, sequence_id: int) -> None:
        self.last_node_id = node_id
        self.last_node_sequence_id = sequence_id
        self.nodes = [n for n in self.nodes if n.sequence_id > sequence_id]
        self.edges = [e for e in self.edges if e.sequence_id > sequence_id]


def _check_usable(order: Order) -> None:
    """Reject what this agent cannot do: edge actions, trajectories, undeclared actions."""
    if any(e.actions for e in order.edges):
        raise ValidationRejected('orderError: edge actions are not supported')
    if any(e.trajectory is not None for e in order.edges):
        raise ValidationRejected('orderError: edge trajectories are not supported '
                                 '(the AGV plans its own path)')
    for node in order.nodes:  # the horizon too: an order it cannot finish is rejected whole
        for action in node.actions:
            check_action(action, KPAI_ACTIONS.get(action.action_type), ActionScope.NODE)


def _order_actions(nodes: list[Node], edges: list[Edge]) -> list[Action]:
    out = [a for n in nodes if n.released for a in n.actions]
    out += [a for e in edges if e.released for a in e.actions]
    return out
