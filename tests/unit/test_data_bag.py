"""kpai_data recording pieces: message definitions, rosbag2 metadata, MCAP bag write/read."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kpai_data.bag_metadata import QosInfo, read_metadata
from kpai_data.bag_reader import BagReader, find_bags
from kpai_data.bag_writer import BagWriter, SplitPolicy
from kpai_data.errors import BagError, DataError, DefinitionError
from kpai_data.msgdefs import DELIMITER, MessageDefinitions, msg_dependencies, split_type_name
from kpai_data.playback import PlaybackClock, choose_topics, publisher_qos
from kpai_data.recording import ThreadedRecorder, TopicSelector, subscription_qos
from mcap.reader import make_reader
from mcap_ros2.writer import Writer as Ros2Writer


def _fake_share(tmp_path: Path) -> MessageDefinitions:
    """A private ament share tree with nested types, for definition resolution."""
    files = {
        'pkg_a/msg/Outer.msg': 'std_msgs/Header header  # stamp\nInner[] items\n'
                               'pkg_b/Leaf leaf\nuint8 KIND=1\nstring<=8 name\n',
        'pkg_a/msg/Inner.msg': '# comment line with Words here\npkg_b/Leaf[3] leaves\nfloat64 v\n',
        'pkg_b/msg/Leaf.msg': 'int32 x\n',
        'std_msgs/msg/Header.msg': 'builtin_interfaces/Time stamp\nstring frame_id\n',
        'builtin_interfaces/msg/Time.msg': 'int32 sec\nuint32 nanosec\n',
    }
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return MessageDefinitions(lambda pkg: tmp_path / pkg)


def test_split_type_name() -> None:
    assert split_type_name('sensor_msgs/msg/Image') == ('sensor_msgs', 'msg', 'Image')
    assert split_type_name('std_msgs/Header') == ('std_msgs', 'msg', 'Header')
    with pytest.raises(DefinitionError):
        split_type_name('not a type')


def test_msg_dependencies_skip_primitives_comments_and_constants() -> None:
    text = 'Header h\nuint8 A=1\n# Word word\nfloat64[] v\npkg/T[<=2] t\nstring<=4 s\n'
    assert msg_dependencies(text, 'mine') == ['mine/Header', 'pkg/T']


def test_full_text_resolves_nested_types_once_in_rosbag2_order(tmp_path: Path) -> None:
    defs = _fake_share(tmp_path)
    text = defs.full_text('pkg_a/msg/Outer')
    sections = text.split(DELIMITER)
    assert sections[0].startswith('std_msgs/Header header')
    names = [s.split('\n', 1)[0] for s in sections[1:]]
    # depth-first over sorted dependencies, each type exactly once
    assert names == ['MSG: pkg_a/Inner', 'MSG: pkg_b/Leaf', 'MSG: std_msgs/Header',
                     'MSG: builtin_interfaces/Time']
    assert 'int32 x' in sections[2]
    # the MCAP ROS 2 codec accepts the text and encodes/decodes with it
    import io

    buf = io.BytesIO()
    w = Ros2Writer(buf)
    schema = w.register_msgdef('pkg_a/msg/Outer', text)
    w.write_message('/t', schema, {'header': {'stamp': {'sec': 1, 'nanosec': 2}, 'frame_id': 'f'},
                                   'items': [{'leaves': [{'x': 1}, {'x': 2}, {'x': 3}], 'v': 0.5}],
                                   'leaf': {'x': 7}, 'name': 'n'}, log_time=5)
    w.finish()
    from mcap_ros2.decoder import DecoderFactory

    reader = make_reader(io.BytesIO(buf.getvalue()), decoder_factories=[DecoderFactory()])
    (_, _, _, msg), = list(reader.iter_decoded_messages())
    assert msg.items[0].leaves[2].x == 3 and msg.leaf.x == 7


def test_missing_definition_is_a_clear_error(tmp_path: Path) -> None:
    defs = _fake_share(tmp_path)
    with pytest.raises(DefinitionError, match='pkg_a/msg/Nope'):
        defs.full_text('pkg_a/msg/Nope')


def test_installed_definitions_and_hash() -> None:
    defs = MessageDefinitions()
    text = defs.full_text('vision_msgs/msg/Detection2DArray')
    assert 'MSG: vision_msgs/Detection2D\n' in text and 'MSG: geometry_msgs/Pose\n' in text
    assert text.count('MSG: std_msgs/Header\n') == 1
    assert defs.type_hash('sensor_msgs/msg/Image').startswith('RIHS01_')


def _write_bag(path: Path, **kwargs: object) -> BagWriter:
    from rclpy.serialization import serialize_message
    from std_msgs.msg import String

    w = BagWriter(path, **kwargs)  # type: ignore[arg-type]
    w.add_topic('/chatter', 'std_msgs/msg/String', [QosInfo(durability='transient_local')])
    w.add_topic('/unused', 'std_msgs/msg/String')
    for i in range(30):
        w.write('/chatter', serialize_message(String(data=f'm{i}')), 1_000_000_000 + i * 10**8)
    w.close()
    return w


@pytest.mark.parametrize('compression', ['zstd', 'lz4', 'none'])
def test_bag_roundtrip_metadata_and_channels(tmp_path: Path, compression: str) -> None:
    bag = tmp_path / 'bag'
    _write_bag(bag, compression=compression)
    info = read_metadata(bag)
    assert info['version'] == 9 and info['storage_identifier'] == 'mcap'
    assert info['relative_file_paths'] == ['bag_0.mcap']
    assert info['message_count'] == 30
    assert info['starting_time'] == {'nanoseconds_since_epoch': 1_000_000_000}
    assert info['duration'] == {'nanoseconds': 29 * 10**8}
    topics = {t['topic_metadata']['name']: t for t in info['topics_with_message_count']}
    chatter = topics['/chatter']
    assert chatter['message_count'] == 30 and topics['/unused']['message_count'] == 0
    md = chatter['topic_metadata']
    assert md['type'] == 'std_msgs/msg/String' and md['serialization_format'] == 'cdr'
    assert md['type_description_hash'].startswith('RIHS01_')
    assert md['offered_qos_profiles'][0]['durability'] == 'transient_local'
    assert set(md['offered_qos_profiles'][0]) >= {'history', 'depth', 'reliability', 'deadline',
                                                  'lifespan', 'liveliness'}
    with open(bag / 'bag_0.mcap', 'rb') as f:
        reader = make_reader(f)
        assert reader.get_header().profile == 'ros2'
        summary = reader.get_summary()
        assert summary is not None
        (schema,) = summary.schemas.values()
        assert schema.name == 'std_msgs/msg/String' and schema.encoding == 'ros2msg'
        (channel,) = summary.channels.values()
        assert channel.message_encoding == 'cdr'
        qos = yaml.safe_load(channel.metadata['offered_qos_profiles'])
        assert qos[0]['durability'] == 'transient_local'
        meta = list(reader.iter_metadata())
        assert meta and meta[0].name == 'rosbag2'
    r = BagReader(bag)
    assert r.topics['/chatter'].message_count == 30
    decoded = [m.data for _, m in r.decoded(['/chatter'])]
    assert decoded == [f'm{i}' for i in range(30)]
    assert find_bags([tmp_path]) == [bag]


def test_split_by_duration_and_size(tmp_path: Path) -> None:
    _write_bag(tmp_path / 'd', split=SplitPolicy(max_seconds=1.0))
    info = read_metadata(tmp_path / 'd')
    assert info['relative_file_paths'] == ['d_0.mcap', 'd_1.mcap', 'd_2.mcap']
    assert [f['message_count'] for f in info['files']] == [10, 10, 10]
    times = [raw.log_time for raw in BagReader(tmp_path / 'd').messages()]
    assert times == sorted(times) and len(times) == 30
    _write_bag(tmp_path / 's', split=SplitPolicy(max_bytes=1), chunk_size=1024)
    assert len(read_metadata(tmp_path / 's')['files']) == 30


def test_writer_rejects_bad_use(tmp_path: Path) -> None:
    with pytest.raises(BagError, match='compression'):
        BagWriter(tmp_path / 'x', compression='gzip')
    w = BagWriter(tmp_path / 'y')
    with pytest.raises(BagError, match='not declared'):
        w.write('/nope', b'')
    w.close()
    (tmp_path / 'z').mkdir()
    (tmp_path / 'z' / 'file').write_text('x')
    with pytest.raises(BagError, match='not empty'):
        BagWriter(tmp_path / 'z')
    with pytest.raises(BagError):
        BagReader(tmp_path / 'missing')


def test_threaded_recorder_counts_everything(tmp_path: Path) -> None:
    rec = ThreadedRecorder(BagWriter(tmp_path / 'b'))
    rec.add_topic('/a', 'std_msgs/msg/String', [])
    for i in range(500):
        rec.put('/a', b'\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00', i)
    rec.close(custom_data={'k': 'v'})
    assert rec.stats.received['/a'] == 500 and rec.stats.written['/a'] == 500
    assert rec.stats.lost == 0
    assert read_metadata(tmp_path / 'b')['custom_data'] == {'k': 'v'}


def test_topic_selection_and_qos_rules() -> None:
    sel = TopicSelector(['robot1/scan'], regex=r'/camera/', exclude='rosout')
    assert sel.wants('/robot1/scan') and sel.wants('/robot2/camera/image_raw')
    assert not sel.wants('/robot1/odom') and not sel.wants('/rosout/camera/')
    with pytest.raises(DataError):
        TopicSelector([])
    with pytest.raises(DataError):
        TopicSelector(regex='(')
    be = QosInfo(reliability='best_effort')
    latched = QosInfo(durability='transient_local')
    assert subscription_qos([QosInfo(), be]) == ('best_effort', 'volatile')
    assert subscription_qos([latched]) == ('reliable', 'transient_local')
    assert subscription_qos([]) == ('reliable', 'volatile')
    assert publisher_qos([{'reliability': 'best_effort', 'durability': 'volatile'}]) == (
        'best_effort', 'volatile')
    assert publisher_qos([{'durability': 'transient_local'}]) == ('reliable', 'transient_local')


def test_playback_clock_and_topic_choice() -> None:
    clock = PlaybackClock(bag_start_ns=10**9, start_wall=100.0, rate=2.0)
    assert clock.wall_for(3 * 10**9) == pytest.approx(101.0)
    assert clock.bag_time(101.0) == 3 * 10**9
    with pytest.raises(DataError):
        PlaybackClock(0, 0.0, rate=0.0)
    topics = ['/a/scan', '/a/odom', '/b/scan']
    assert choose_topics(topics) == sorted(topics)
    assert choose_topics(topics, ['a/odom'], regex='^/b/') == ['/a/odom', '/b/scan']
    assert choose_topics(topics, exclude='scan') == ['/a/odom']
    with pytest.raises(DataError, match='/c'):
        choose_topics(topics, ['/c'])
