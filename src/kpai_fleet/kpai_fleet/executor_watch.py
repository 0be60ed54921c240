"""Which instance of the mission executor runs the agent's goal; a restart loses the mission.

A respawned mission executor knows none of the goals of its previous life, and the action
client would wait for their results forever. The agent notes the identities (endpoint GIDs)
of the action's status publisher when a goal is accepted; once none of them is left, the
executor that had the goal is gone and the mission is reported lost (the order fails with
that reason and the fleet server offers the task again). At start the agent cancels every
goal the executor may still run for a previous agent, so nothing drives on a stale goal.
"""

from __future__ import annotations

from action_msgs.srv import CancelGoal
from rclpy.node import Node

__all__ = ['ExecutorWatch', 'LOST_MESSAGE']

LOST_MESSAGE = 'mission lost: the mission executor restarted'


class ExecutorWatch:
    """Track the executor instance of the active goal; cancel stale goals once at start."""

    def __init__(self, node: Node, action_name: str, *, misses: int = 2) -> None:
        base = node.resolve_topic_name(action_name)
        self._node = node
        self._status_topic = f'{base}/_action/status'
        self._cancel = node.create_client(CancelGoal, f'{base}/_action/cancel_goal')
        self._goal_instance: frozenset[bytes] = frozenset()
        self._misses = misses
        self._absent = 0
        self._cancel_call = None
        self._cancel_sent = 0.0
        self.stale_cancelled = False

    def instances(self) -> frozenset[bytes]:
        """Return the endpoint GIDs of the action's status publishers now."""
        infos = self._node.get_publishers_info_by_topic(self._status_topic)
        return frozenset(bytes(i.endpoint_gid) for i in infos)

    def goal_accepted(self) -> None:
        """Note the executor instance that accepted the active goal."""
        self._goal_instance = self.instances()
        self._absent = 0

    def goal_finished(self) -> None:
        """Forget the instance: no goal is active."""
        self._goal_instance = frozenset()

    def lost(self) -> bool:
        """Return True once the instance that has the active goal is gone (checked ~1 Hz)."""
        if not self._goal_instance:
            return False
        if self.instances() & self._goal_instance:
            self._absent = 0
            return False
        self._absent += 1
        return self._absent >= self._misses

    def cancel_stale_goals(self, now: float) -> None:
        """Once, when the executor is reachable: cancel all its goals (zero goal id, stamp 0)."""
        if self.stale_cancelled or not self._cancel.service_is_ready():
            return
        self.stale_cancelled = True
        self._cancel_call = self._cancel.call_async(CancelGoal.Request())
        self._cancel_sent = now

    def settled(self, now: float) -> bool:
        """Return True once stale goals are cancelled (answered, or 3 s without an answer)."""
        if not self.stale_cancelled:
            return False
        call = self._cancel_call
        return call is None or call.done() or now - self._cancel_sent > 3.0
