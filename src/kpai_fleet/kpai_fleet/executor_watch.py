"""Which instance of the mission executor runs the agent's goal; a restart loses the mission.

A respawned mission executor knows none of the goals of its previous life, and the action
client would wait for their results forever. The agent notes the identities (endpoint GIDs)
of the action's status publisher when a goal is accepted; once none of them is left, the
executor that had the goal is gone and the mission is reported lost (the order fails with
that reason and the fleet server offers the task again). At start the agent cancels every
goal the executor may still run for a previous agent, so nothing drives on a stale goal, and
sends its first goal only once those goals have ended (the executor takes one goal at a time
and rejects a new one while the cancelled one is still winding down).
"""

from __future__ import annotations

from typing import Any

from action_msgs.msg import GoalStatus, GoalStatusArray
from action_msgs.srv import CancelGoal
from rclpy.node import Node
from rclpy.qos import qos_profile_action_status_default

__all__ = ['ExecutorWatch', 'LOST_MESSAGE']

LOST_MESSAGE = 'mission lost: the mission executor restarted'
CANCEL_ANSWER_WAIT_S = 2.0  # ask again / go on without the stale-goal cancel's answer after this
CANCEL_ATTEMPTS = 3
STALE_GOAL_END_WAIT_S = 10.0  # go on after this even if a cancelled goal never ended
_RUNNING = (GoalStatus.STATUS_ACCEPTED, GoalStatus.STATUS_EXECUTING, GoalStatus.STATUS_CANCELING)


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
        self._calls: list[Any] = []  # every attempt of the stale cancel
        self._cancel_sent = 0.0
        self._first_sent = 0.0
        self._attempts = 0
        self._settled_once = False
        self.stale_cancelled = False
        self._running: frozenset[bytes] = frozenset()  # goals the executor runs now
        self._ended: set[bytes] = set()  # goals seen ended before the first goal of ours
        node.create_subscription(GoalStatusArray, self._status_topic, self._on_status,
                                 qos_profile_action_status_default)

    def _on_status(self, msg: GoalStatusArray) -> None:
        # each message lists every goal the server still tracks, with its latest status
        self._running = frozenset(bytes(s.goal_info.goal_id.uuid) for s in msg.status_list
                                  if s.status in _RUNNING)
        if not self._settled_once:  # only the goals of the stale cancel matter
            self._ended |= {bytes(s.goal_info.goal_id.uuid) for s in msg.status_list
                            if s.status not in _RUNNING}

    def instances(self) -> frozenset[bytes]:
        """Return the endpoint GIDs of the action's status publishers now."""
        infos = self._node.get_publishers_info_by_topic(self._status_topic)
        return frozenset(bytes(i.endpoint_gid) for i in infos)

    def goal_accepted(self) -> None:
        """Note the executor instance that accepted the active goal."""
        self._settled_once = True
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
        """When the executor is reachable: cancel all its goals (zero goal id, stamp 0).

        Asked again (at most CANCEL_ATTEMPTS times) while no answer comes: Fast DDS drops a
        service response when the server has not yet matched the client's response reader
        (ros2/rmw_fastrtps#706), and the request itself may be lost the same way.
        """
        if not self._cancel.service_is_ready():
            return
        call = self._calls[-1] if self._calls else None
        if self.stale_cancelled and (
                self._settled_once or call is None or call.done()
                or self._attempts >= CANCEL_ATTEMPTS
                or now - self._cancel_sent < CANCEL_ANSWER_WAIT_S):
            return  # never again once a goal of ours may run: it would be cancelled too
        if not self.stale_cancelled:
            self._first_sent = now
        self.stale_cancelled = True
        self._attempts += 1
        self._calls.append(self._cancel.call_async(CancelGoal.Request()))
        self._cancel_sent = now

    def settled(self, now: float) -> bool:
        """Return True once stale goals are cancelled and have ended.

        The executor takes one goal at a time and rejects a new one while a cancelled one
        winds down. Ended: every goal an answer named as cancelling was seen in a terminal
        state on the action's status topic; if no answer named one (nothing to cancel, or an
        earlier attempt whose answer was lost cancelled it), an answer came (or every attempt
        went unanswered) and the status topic shows no goal accepted, executing or
        cancelling. After STALE_GOAL_END_WAIT_S from the first attempt the agent goes on.
        """
        if not self.stale_cancelled:
            return False
        if not self._settled_once:
            answers = [c.result() for c in self._calls if c.done() and c.result() is not None]
            # a later attempt finds the goal an earlier (unanswered) one already cancels and
            # names none: the goals named by any answer, and the status topic, both count
            named = {bytes(g.goal_id.uuid) for a in answers for g in a.goals_canceling}
            if named:
                ended = not (named - self._ended)
            else:
                waited = answers or (self._attempts >= CANCEL_ATTEMPTS
                                     and now - self._cancel_sent > CANCEL_ANSWER_WAIT_S)
                ended = bool(waited) and not self._running
            self._settled_once = ended or now - self._first_sent > STALE_GOAL_END_WAIT_S
            if self._settled_once:
                stale = (f'{len(named)} goal(s) named by the cancel' if answers
                         else 'the cancel was not answered')
                self._node.get_logger().info(
                    f'stale goals of the mission executor: {stale}; '
                    f'{"none running" if ended else "still running"} after '
                    f'{now - self._first_sent:.1f} s; goals may be sent')
        return self._settled_once
