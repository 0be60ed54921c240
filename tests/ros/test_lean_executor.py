"""LeanExecutor: rclpy's single-threaded executor minus its self-wakes (issue 18).

Same semantics as rclpy's SingleThreadedExecutor (callbacks, timers, services with their
clients, coroutine callbacks, mutually exclusive groups), and about one wait per message
instead of two.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import rclpy
from kpai_perception.lean_executor import LeanExecutor
from kpai_testing import RosGraph, next_domain_id, wait_until
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.task import Future
from std_msgs.msg import Int32
from std_srvs.srv import Trigger


@pytest.fixture
def context() -> Iterator[Context]:
    ctx = Context()
    rclpy.init(context=ctx, domain_id=next_domain_id())
    try:
        yield ctx
    finally:
        rclpy.try_shutdown(context=ctx)


def _spin_until(executor: Any, condition: Any, timeout: float = 10.0) -> None:
    def step() -> bool:
        executor.spin_once(timeout_sec=0.05)
        return bool(condition())
    wait_until(step, timeout=timeout, interval=0.0, what='the executor to do the work')


def test_callbacks_timers_and_services(context: Context) -> None:
    node = rclpy.create_node('lean_a', context=context)
    ex = LeanExecutor(context=context)
    ex.add_node(node)
    got: list[int] = []
    ticks: list[int] = []
    node.create_subscription(Int32, 'n', lambda m: got.append(m.data), 10)
    pub = node.create_publisher(Int32, 'n', 10)
    node.create_timer(0.01, lambda: ticks.append(1))

    def serve(req: Any, resp: Any) -> Any:
        resp.success, resp.message = True, 'served'
        return resp
    node.create_service(Trigger, 'svc', serve)
    client = node.create_client(Trigger, 'svc')
    _spin_until(ex, lambda: pub.get_subscription_count() > 0 and client.service_is_ready())
    for i in range(5):
        pub.publish(Int32(data=i))
    future = client.call_async(Trigger.Request())
    _spin_until(ex, lambda: len(got) == 5 and future.done() and len(ticks) >= 3)
    assert got == [0, 1, 2, 3, 4]
    assert future.result().message == 'served'
    node.destroy_node()


def test_coroutine_callback_holds_its_exclusive_group(context: Context) -> None:
    node = rclpy.create_node('lean_b', context=context)
    ex = LeanExecutor(context=context)
    ex.add_node(node)
    group = MutuallyExclusiveCallbackGroup()
    gate: Future = Future(executor=ex)
    order: list[str] = []

    async def slow(msg: Int32) -> None:
        order.append(f'start {msg.data}')
        if msg.data == 0:
            await gate  # suspended: the group stays busy, message 1 waits for it
        order.append(f'end {msg.data}')
    node.create_subscription(Int32, 'c', slow, 10, callback_group=group)
    pub = node.create_publisher(Int32, 'c', 10)
    _spin_until(ex, lambda: pub.get_subscription_count() > 0)
    pub.publish(Int32(data=0))
    pub.publish(Int32(data=1))
    _spin_until(ex, lambda: order == ['start 0'])
    for _ in range(10):  # message 1 is there, but its group is busy
        ex.spin_once(timeout_sec=0.02)
    assert order == ['start 0']
    node.create_timer(0.01, lambda: gate.done() or gate.set_result(True))
    _spin_until(ex, lambda: len(order) == 4)
    assert order == ['start 0', 'end 0', 'start 1', 'end 1']
    node.destroy_node()


def _guard_triggered(executor: Any, context: Context) -> bool:
    """Whether the executor's own guard condition is set (a wait on it alone, no timeout)."""
    ws = _rclpy.WaitSet(0, 1, 0, 0, 0, 0, context.handle)
    with executor._guard.handle:
        ws.add_guard_condition(executor._guard.handle)
        ws.wait(0)
        return bool(ws.get_ready_entities('guard_condition'))


@pytest.mark.parametrize('lean', [True, False], ids=['lean', 'rclpy'])
def test_a_callback_does_not_wake_the_executor(context: Context, lean: bool) -> None:
    node = rclpy.create_node('lean_c', context=context)
    ex = LeanExecutor(context=context) if lean else SingleThreadedExecutor(context=context)
    ex.add_node(node)
    got: list[int] = []
    node.create_subscription(Int32, 'w', lambda m: got.append(m.data), 10)
    pub = node.create_publisher(Int32, 'w', 10)
    _spin_until(ex, lambda: pub.get_subscription_count() > 0)
    for i in range(3):
        _guard_triggered(ex, context)  # clear what adding the node and entities set
        pub.publish(Int32(data=i))
        _spin_until(ex, lambda i=i: got[-1:] == [i])
        # rclpy's handler sets the guard twice per callback, so its next wait returns at
        # once with nothing to do; the lean executor's next wait blocks until there is work
        assert _guard_triggered(ex, context) is not lean
    node.destroy_node()


def test_kpai_executor_chooses_rclpy_or_stops_with_a_message(graph: RosGraph) -> None:
    ok = graph.start_node('kpai_perception', 'tracker', '-r', '__ns:=/ex_rclpy',
                          KPAI_EXECUTOR='rclpy')
    graph.spin_until(lambda: '/ex_rclpy' in [ns for _n, ns in
                                             graph.node.get_node_names_and_namespaces()],
                     timeout=30, what='the tracker on rclpy executor in the graph')
    assert ok.alive()
    bad = graph.start_node('kpai_perception', 'tracker', '-r', '__ns:=/ex_bad',
                           KPAI_EXECUTOR='events')
    bad.stopped = True  # its non-zero exit is what is tested, not a failure of the graph
    wait_until(lambda: not bad.alive(), timeout=30, what='the tracker to refuse KPAI_EXECUTOR')
    assert bad.proc.returncode == 1
    assert "KPAI_EXECUTOR='events': expected one of lean, rclpy" in bad.output()
