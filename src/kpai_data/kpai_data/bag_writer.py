"""Write a rosbag2-compatible MCAP bag directory from serialized (CDR) messages."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml
from mcap.well_known import MessageEncoding, SchemaEncoding
from mcap.writer import CompressionType
from mcap.writer import Writer as McapWriter

from .bag_metadata import (
    FileInfo,
    QosInfo,
    TopicInfo,
    build_metadata,
    qos_list_to_yaml,
    write_metadata,
)
from .errors import BagError, DefinitionError
from .msgdefs import MessageDefinitions

__all__ = ['COMPRESSIONS', 'BagWriter', 'SplitPolicy']

COMPRESSIONS = {'zstd': CompressionType.ZSTD, 'lz4': CompressionType.LZ4,
                'none': CompressionType.NONE}


@dataclass(frozen=True)
class SplitPolicy:
    """Start a new storage file past a size (bytes) or a duration (s); 0 disables each."""

    max_bytes: int = 0
    max_seconds: float = 0.0

    def due(self, size: int, first_ns: int | None, now_ns: int) -> bool:
        """Return True when the current file should be closed before writing at now_ns."""
        if self.max_bytes > 0 and size >= self.max_bytes:
            return True
        if self.max_seconds > 0 and first_ns is not None:
            return now_ns - first_ns >= int(self.max_seconds * 1e9)
        return False


class _OpenFile:
    """One MCAP file being written, with its schema/channel ids."""

    def __init__(self, path: Path, compression: CompressionType, chunk_size: int) -> None:
        self.path = path
        self.stream: IO[bytes] = open(path, 'wb')  # noqa: SIM115 - closed in close()
        self.writer = McapWriter(self.stream, chunk_size=chunk_size, compression=compression)
        self.writer.start(profile='ros2', library='kpai_data recorder (mcap python)')
        self.schemas: dict[str, int] = {}
        self.channels: dict[str, int] = {}
        self.sequence: dict[str, int] = {}
        self.info = FileInfo(path=path.name)

    def size(self) -> int:
        return self.stream.tell()

    def close(self, serialized_metadata: str, ros_distro: str) -> None:
        # rosbag2's MCAP plugin keeps a copy of the bag metadata inside each file
        self.writer.add_metadata('rosbag2', {
            'serialized_metadata': serialized_metadata, 'ros_distro': ros_distro})
        self.writer.finish()
        self.stream.close()


class BagWriter:
    """Record serialized messages into <dir>/<dir>_<n>.mcap plus metadata.yaml."""

    def __init__(
        self,
        directory: str | Path,
        *,
        compression: str = 'zstd',
        chunk_size: int = 1 << 20,
        split: SplitPolicy | None = None,
        definitions: MessageDefinitions | None = None,
        ros_distro: str = '',
        custom_data: dict[str, str] | None = None,
    ) -> None:
        if compression not in COMPRESSIONS:
            raise BagError(f'compression must be one of {sorted(COMPRESSIONS)}, '
                           f'not {compression!r}')
        self.directory = Path(directory)
        if self.directory.exists() and any(self.directory.iterdir()):
            raise BagError(f'output directory {self.directory} exists and is not empty')
        self.directory.mkdir(parents=True, exist_ok=True)
        self._compression = COMPRESSIONS[compression]
        self._chunk_size = chunk_size
        self._split = split or SplitPolicy()
        self._defs = definitions or MessageDefinitions()
        self._ros_distro = ros_distro
        self._custom = custom_data
        self._topics: dict[str, TopicInfo] = {}
        self._definitions: dict[str, str] = {}
        self._files: list[FileInfo] = []
        self._current: _OpenFile | None = None
        self._closed = False

    @property
    def topics(self) -> dict[str, TopicInfo]:
        """Recorded topics by name."""
        return self._topics

    @property
    def message_count(self) -> int:
        """Messages written so far."""
        return sum(t.message_count for t in self._topics.values())

    def add_topic(self, name: str, type_name: str, offered_qos: list[QosInfo] | None = None,
                  *, definition: str | None = None) -> None:
        """Declare a topic; resolves its full message definition (DefinitionError if none)."""
        if name in self._topics:
            if self._topics[name].type != type_name:
                raise BagError(f'topic {name} already recorded as {self._topics[name].type}')
            return
        if type_name not in self._definitions:
            self._definitions[type_name] = (
                definition if definition is not None else self._defs.full_text(type_name))
        try:
            type_hash = self._defs.type_hash(type_name) if definition is None else ''
        except DefinitionError:
            type_hash = ''
        self._topics[name] = TopicInfo(name=name, type=type_name,
                                       offered_qos=list(offered_qos or []),
                                       type_description_hash=type_hash)

    def _open_next(self) -> _OpenFile:
        index = len(self._files)
        path = self.directory / f'{self.directory.name}_{index}.mcap'
        current = _OpenFile(path, self._compression, self._chunk_size)
        self._files.append(current.info)
        self._current = current
        return current

    def _channel(self, f: _OpenFile, topic: TopicInfo) -> int:
        channel = f.channels.get(topic.name)
        if channel is not None:
            return channel
        schema = f.schemas.get(topic.type)
        if schema is None:
            schema = f.writer.register_schema(
                topic.type, SchemaEncoding.ROS2, self._definitions[topic.type].encode())
            f.schemas[topic.type] = schema
        metadata = {'offered_qos_profiles': qos_list_to_yaml(topic.offered_qos)}
        if topic.type_description_hash:
            metadata['topic_type_hash'] = topic.type_description_hash
        channel = f.writer.register_channel(
            topic.name, MessageEncoding.CDR, schema, metadata)
        f.channels[topic.name] = channel
        return channel

    def write(self, topic: str, data: bytes, log_time_ns: int | None = None,
              publish_time_ns: int | None = None) -> None:
        """Append one serialized message of a declared topic."""
        if self._closed:
            raise BagError('bag writer is closed')
        info = self._topics.get(topic)
        if info is None:
            raise BagError(f'topic {topic} was not declared with add_topic()')
        now = time.time_ns() if log_time_ns is None else int(log_time_ns)
        f = self._current
        if f is None:
            f = self._open_next()
        elif f.info.message_count and self._split.due(f.size(), f.info.start_ns, now):
            self._close_current()
            f = self._open_next()
        channel = self._channel(f, info)
        seq = f.sequence.get(topic, 0)
        f.sequence[topic] = seq + 1
        f.writer.add_message(channel_id=channel, log_time=now, data=data,
                             publish_time=now if publish_time_ns is None else publish_time_ns,
                             sequence=seq & 0xFFFFFFFF)
        if f.info.message_count == 0:
            f.info.start_ns = f.info.end_ns = now
        else:
            f.info.start_ns = min(f.info.start_ns, now)
            f.info.end_ns = max(f.info.end_ns, now)
        f.info.message_count += 1
        info.message_count += 1

    def set_custom_data(self, data: dict[str, str]) -> None:
        """Set the metadata's custom_data (string keys and values)."""
        self._custom = {str(k): str(v) for k, v in data.items()}

    def metadata(self) -> dict[str, Any]:
        """Return the metadata document describing everything written so far."""
        return build_metadata(files=self._files, topics=list(self._topics.values()),
                              ros_distro=self._ros_distro, custom_data=self._custom)

    def _close_current(self) -> None:
        if self._current is None:
            return
        document = yaml.safe_dump(self.metadata(), sort_keys=False)
        self._current.close(document, self._ros_distro)
        self._current = None
        write_metadata(self.directory, self.metadata())

    def close(self) -> Path:
        """Finish the current file and write metadata.yaml; return the bag directory."""
        if not self._closed:
            if self._current is None and not self._files:
                self._open_next()  # an empty bag still gets one valid file
            self._close_current()
            self._closed = True
        return self.directory

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
