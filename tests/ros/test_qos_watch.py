"""QosWatch: rclpy's default QoS event handlers go, their warnings stay (issue 18).

A stack node in its own process meets a peer with an incompatible QoS and a peer with the
wrong message type on its input; it must still say so in its log, once per peer. In-process:
which handlers are removed and which stay, and that the entities can still be destroyed.
"""

from __future__ import annotations

from typing import Any

from kpai_perception.qos_watch import QosWatch, remove_default_event_handlers, type_name
from kpai_testing import RosGraph
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from vision_msgs.msg import Detection2DArray

from kpai_msgs.msg import TrackArray


def _events(node: Any) -> int:
    return sum(1 for w in node.waitables if type(w).__name__ == 'EventHandler')


def test_type_name() -> None:
    assert type_name(Detection2DArray) == 'vision_msgs/msg/Detection2DArray'
    assert type_name(String) == 'std_msgs/msg/String'


def test_removes_only_rclpy_defaults(graph: RosGraph) -> None:
    import rclpy

    node = rclpy.create_node('qos_watch_subject', context=graph.node.context)
    try:
        own: list[Any] = []
        node.create_subscription(String, 'a', lambda m: None, 10)
        node.create_publisher(String, 'b', 10)
        node.create_subscription(
            String, 'c', lambda m: None, 10,
            event_callbacks=SubscriptionEventCallbacks(incompatible_qos=own.append))
        before = _events(node)
        # rclpy's defaults: incompatible QoS and type on each of a, b, c and /parameter_events
        assert before >= 8, before
        watch = QosWatch(node, period=3600.0)
        # c keeps the handler its caller set; its default type handler goes
        assert _events(node) == 1
        assert watch.removed == before - 1
        assert remove_default_event_handlers(node) == 0  # nothing left to remove
        sub_c = [s for s in node.subscriptions if s.topic_name == '/c'][0]
        assert [h.callback for h in sub_c.event_handlers] == [own.append]
        # rclpy's destroy paths still work on the trimmed entities
        for sub in list(node.subscriptions):
            assert node.destroy_subscription(sub)
        for pub in list(node.publishers):
            assert node.destroy_publisher(pub)
    finally:
        node.destroy_node()


def test_entities_created_later_lose_their_defaults_at_the_next_check(graph: RosGraph) -> None:
    import rclpy

    # a lifecycle node creates its publishers and subscriptions on configure, after spin_lean
    node = rclpy.create_node('qos_watch_later', context=graph.node.context)
    try:
        watch = QosWatch(node, period=3600.0)
        assert _events(node) == 0
        node.create_subscription(String, 'later_in', lambda m: None, 10)
        node.create_publisher(String, 'later_out', 10)
        assert _events(node) == 4
        watch.check()
        assert _events(node) == 0
    finally:
        node.destroy_node()


def test_publisher_handlers_set_by_caller_stay(graph: RosGraph) -> None:
    import rclpy

    node = rclpy.create_node('qos_watch_pub', context=graph.node.context)
    try:
        calls: list[Any] = []
        node.create_publisher(String, 'p', 10,
                              event_callbacks=PublisherEventCallbacks(incompatible_qos=calls.append))
        remove_default_event_handlers(node)
        assert _events(node) == 1
    finally:
        node.destroy_node()


def test_stack_node_warns_about_incompatible_peers(graph: RosGraph) -> None:
    # the tracker subscribes 'detections' (sensor-data QoS: best effort, volatile); a
    # subscription of ours that demands transient-local durability from its 'tracks' is
    # incompatible, and a publisher of the wrong type on 'detections' is one too
    proc = graph.start_node('kpai_perception', 'tracker', '-r', '__ns:=/qw')
    graph.spin_until(lambda: 'tracker' in graph.node.get_node_names(), timeout=30,
                     what='tracker in the graph')
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                         reliability=ReliabilityPolicy.RELIABLE)
    graph.node.create_subscription(TrackArray, '/qw/tracks', lambda m: None, latched,
                                   event_callbacks=SubscriptionEventCallbacks(
                                       incompatible_qos=lambda e: None))
    graph.node.create_publisher(String, '/qw/detections', 10)

    def warned() -> bool:
        out = proc.output()
        return ("'/qw/detections'" in out and 'uses std_msgs/msg/String' in out
                and "'/qw/tracks' has incompatible QoS" in out)

    # the tracker checks every 5 s of steady time
    graph.spin_until(warned, timeout=30, what='the tracker warning about both peers')
    assert 'transient local subscription' in proc.output(), proc.output()[-2000:]
    assert 'deadline' not in proc.output(), proc.output()[-2000:]  # unset is unset


def test_each_peer_reported_once(graph: RosGraph) -> None:
    import rclpy

    node = rclpy.create_node('qos_watch_once', context=graph.node.context)
    try:
        node.create_subscription(String, '/qw_once', lambda m: None,
                                 QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
        watch = QosWatch(node, period=3600.0)
        # a best-effort publisher cannot serve a reliable subscription
        graph.node.create_publisher(
            String, '/qw_once', QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT),
            event_callbacks=PublisherEventCallbacks(incompatible_qos=lambda e: None))
        first = graph.spin_until(watch.check, timeout=20, what='the incompatible publisher')
        assert len(first) == 1 and 'reliable subscription' in first[0], first
        assert "on topic '/qw_once'" in first[0]
        assert watch.check() == []  # reported once while it stays
    finally:
        node.destroy_node()
