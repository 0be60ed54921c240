"""Recorder and player as separate processes: nothing lost, types/definitions right, replay."""

from __future__ import annotations

import signal
from pathlib import Path

from kpai_data.bag_metadata import read_metadata
from kpai_data.bag_reader import BagReader
from kpai_testing import RosGraph, wait_until
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory

N = 40


def test_record_then_play(graph: RosGraph, tmp_path: Path) -> None:
    from geometry_msgs.msg import Twist
    from nav_msgs.msg import OccupancyGrid
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import String
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    node = graph.node
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    sensor = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {
        '/chatter': node.create_publisher(String, '/chatter', 50),
        '/robot1/cmd_vel': node.create_publisher(Twist, '/robot1/cmd_vel', 50),
        '/robot1/camera/image_raw': node.create_publisher(Image, '/robot1/camera/image_raw',
                                                          sensor),
        '/robot1/detections': node.create_publisher(Detection2DArray, '/robot1/detections', 50),
    }
    map_pub = node.create_publisher(OccupancyGrid, '/map', latched)
    grid = OccupancyGrid()
    grid.info.width, grid.info.height, grid.info.resolution = 4, 2, 0.05
    grid.data = [0, 100, -1, 0, 0, 0, 100, 100]
    map_pub.publish(grid)  # before the recorder exists: must arrive through transient-local

    bag = tmp_path / 'rec'
    rec = graph.start_node(
        'kpai_data', 'recorder', '-p', 'topics:=[/chatter, /map]', '-p', 'regex:=^/robot1/',
        '-p', f'output:={bag}', '-p', 'discovery_period:=0.2', '-p', 'compression:=lz4',
        '-p', 'report_period:=0.2')
    graph.spin_until(lambda: all(p.get_subscription_count() > 0 for p in pubs.values()),
                     timeout=15, what='recorder subscriptions')
    for i in range(N):
        pubs['/chatter'].publish(String(data=f'msg {i}'))
        tw = Twist()
        tw.linear.x = float(i)
        pubs['/robot1/cmd_vel'].publish(tw)
        img = Image(height=8, width=4, encoding='rgb8', step=12, data=bytes([i % 256] * 96))
        img.header.frame_id = 'robot1/camera_optical'
        img.header.stamp.sec = i
        pubs['/robot1/camera/image_raw'].publish(img)
        det = Detection2DArray(header=img.header)
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id, hyp.hypothesis.score = 'person', 0.5
        d = Detection2D(header=img.header, results=[hyp], id=str(i))
        d.bbox.center.position.x, d.bbox.size_x = float(i), 3.0
        det.detections = [d]
        pubs['/robot1/detections'].publish(det)
        graph.spin_until(lambda: True, timeout=1)  # pace the burst a little
    # the recorder reports its counts: stop it with SIGINT once it has received everything
    graph.spin_until(lambda: f'received {4 * N + 1},' in rec.output(), timeout=15,
                     what='recorder received all messages')
    rec.send_signal(signal.SIGINT)
    wait_until(lambda: not rec.alive(), timeout=15, what='recorder exit')
    assert rec.proc.returncode == 0, rec.output()
    out = rec.output()
    assert 'lost 0' in out, out

    info = read_metadata(bag)
    counts = {t['topic_metadata']['name']: t['message_count']
              for t in info['topics_with_message_count']}
    assert counts == {'/chatter': N, '/robot1/cmd_vel': N, '/robot1/camera/image_raw': N,
                      '/robot1/detections': N, '/map': 1}, counts
    assert info['custom_data']['kpai.lost'] == '0'
    types = {t['topic_metadata']['name']: t['topic_metadata']['type']
             for t in info['topics_with_message_count']}
    assert types['/robot1/detections'] == 'vision_msgs/msg/Detection2DArray'

    decoded: dict[str, list] = {}
    for rel in info['relative_file_paths']:
        with open(bag / rel, 'rb') as f:
            reader = make_reader(f, decoder_factories=[DecoderFactory()])
            for schema, channel, _, msg in reader.iter_decoded_messages():
                assert schema.encoding == 'ros2msg' and channel.message_encoding == 'cdr'
                decoded.setdefault(channel.topic, []).append(msg)
    assert [m.data for m in decoded['/chatter']] == [f'msg {i}' for i in range(N)]
    assert [m.linear.x for m in decoded['/robot1/cmd_vel']] == [float(i) for i in range(N)]
    last = decoded['/robot1/detections'][-1].detections[0]
    assert last.results[0].hypothesis.class_id == 'person' and last.bbox.size_x == 3.0
    assert decoded['/robot1/camera/image_raw'][5].data == bytes([5] * 96)
    assert list(decoded['/map'][0].data) == [0, 100, -1, 0, 0, 0, 100, 100]

    # the player republishes them with the right types
    got: list[str] = []
    node.create_subscription(String, '/chatter', lambda m: got.append(m.data), 100)
    got_tw: list[float] = []
    node.create_subscription(Twist, '/robot1/cmd_vel', lambda m: got_tw.append(m.linear.x), 100)
    assert BagReader(bag).message_count == 4 * N + 1
    graph.start_node('kpai_data', 'player', '-p', f'bag:={bag}', '-p', 'rate:=5.0',
                     '-p', 'topics:=[/chatter, /robot1/cmd_vel]', '-p', 'start_delay:=0.2',
                     '-p', 'wait_for_subscribers:=1')
    graph.spin_until(lambda: len(got) >= N and len(got_tw) >= N, timeout=30,
                     what='replayed messages')
    assert got == [f'msg {i}' for i in range(N)]
    assert got_tw == [float(i) for i in range(N)]


def test_sigterm_also_finishes_the_bag(graph: RosGraph, tmp_path: Path) -> None:
    """A launcher escalates SIGINT to SIGTERM: the bag must still get its metadata."""
    from std_msgs.msg import String

    pub = graph.node.create_publisher(String, '/chatter', 50)
    bag = tmp_path / 'rec'
    rec = graph.start_node('kpai_data', 'recorder', '-p', 'topics:=[/chatter]',
                           '-p', f'output:={bag}', '-p', 'discovery_period:=0.2',
                           '-p', 'report_period:=0.2')
    graph.spin_until(lambda: pub.get_subscription_count() > 0, timeout=15,
                     what='recorder subscription')
    for i in range(5):
        pub.publish(String(data=f'msg {i}'))
    graph.spin_until(lambda: 'received 5,' in rec.output(), timeout=15,
                     what='recorder received the messages')
    rec.send_signal(signal.SIGTERM)
    wait_until(lambda: not rec.alive(), timeout=15, what='recorder exit')
    assert rec.proc.returncode == 0, rec.output()
    counts = {t['topic_metadata']['name']: t['message_count']
              for t in read_metadata(bag)['topics_with_message_count']}
    assert counts == {'/chatter': 5}
