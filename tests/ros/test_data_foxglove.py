"""Foxglove bridge process: channels advertised over WebSocket, latched map sent on subscribe,
camera subscribed in ROS only while a client watches it."""

from __future__ import annotations

import json
import re
import struct
import time

from kpai_testing import RosGraph


def test_foxglove_bridge_serves_ros_topics(graph: RosGraph) -> None:
    from nav_msgs.msg import OccupancyGrid
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from sensor_msgs.msg import Image
    from websockets.sync.client import connect

    node = graph.node
    map_pub = node.create_publisher(
        OccupancyGrid, '/map', QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    grid = OccupancyGrid()
    grid.header.frame_id = 'map'
    grid.info.width, grid.info.height, grid.info.resolution = 3, 2, 0.05
    grid.data = [0, 100, -1, 0, 0, 0]
    map_pub.publish(grid)
    img_pub = node.create_publisher(Image, '/robot1/camera/image_raw', 5)
    bridge = graph.start_node('kpai_data', 'foxglove_bridge', '-p', 'port:=0',
                              '-p', 'discovery_period:=0.2')
    match = graph.spin_until(
        lambda: re.search(r'ws://127\.0\.0\.1:(\d+)', bridge.output()), timeout=20,
        what='server address in the log')
    port = int(match.group(1))
    graph.spin_until(lambda: 'bridging /robot1/camera/image_raw' in bridge.output(), timeout=15,
                     what='camera channel advertised')
    channels: dict[str, dict] = {}
    with connect(f'ws://127.0.0.1:{port}', subprotocols=['foxglove.sdk.v1'],
                 open_timeout=10) as ws:
        while not {'/map', '/robot1/camera/image_raw'} <= set(channels):
            msg = json.loads(ws.recv(timeout=10))
            if msg.get('op') == 'advertise':
                channels.update({c['topic']: c for c in msg['channels']})
        assert channels['/map']['schemaName'] == 'foxglove.Grid'
        assert channels['/robot1/camera/image_raw']['schemaName'] == 'foxglove.RawImage'
        ws.send(json.dumps({'op': 'subscribe', 'subscriptions': [
            {'id': 1, 'channelId': channels['/map']['id']}]}))
        while True:  # the latched map is re-sent to the new subscriber
            frame = ws.recv(timeout=10)
            if isinstance(frame, bytes) and frame[0] == 0x01:
                sub_id, = struct.unpack_from('<I', frame, 1)
                assert sub_id == 1 and len(frame) > 13 + 6 * 4
                break
        # nobody watches the camera: the bridge holds no ROS subscription on it
        assert img_pub.get_subscription_count() == 0
        ws.send(json.dumps({'op': 'subscribe', 'subscriptions': [
            {'id': 2, 'channelId': channels['/robot1/camera/image_raw']['id']}]}))
        graph.spin_until(lambda: img_pub.get_subscription_count() > 0, timeout=15,
                         what='bridge subscribed to the watched camera')
        img = Image(height=2, width=3, encoding='rgb8', step=9, data=bytes(range(18)))
        img.header.frame_id = 'camera'
        deadline = time.monotonic() + 15
        got = False
        while not got and time.monotonic() < deadline:  # until the bridge's reader matched
            img_pub.publish(img)
            try:
                frame = ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            got = isinstance(frame, bytes) and frame[0] == 0x01 and \
                struct.unpack_from('<I', frame, 1)[0] == 2
        assert got, 'no camera frame reached the client'
        ws.send(json.dumps({'op': 'unsubscribe', 'subscriptionIds': [2]}))
        graph.spin_until(lambda: img_pub.get_subscription_count() == 0, timeout=15,
                         what='bridge dropped the unwatched camera')
    assert 'bridging /map' in bridge.output()
