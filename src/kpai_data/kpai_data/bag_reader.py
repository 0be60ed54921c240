"""Read MCAP recordings (a rosbag2 directory or single .mcap files), raw or decoded."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcap.exceptions import McapError
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory

from .bag_metadata import METADATA_FILE, read_metadata
from .errors import BagError

__all__ = ['BagReader', 'RawMessage', 'TopicSummary', 'find_bags']


@dataclass(frozen=True)
class RawMessage:
    """One recorded message: topic, type, CDR bytes and times (ns)."""

    topic: str
    type: str
    data: bytes
    log_time: int
    publish_time: int


@dataclass
class TopicSummary:
    """A topic of a recording with its type, offered QoS (rosbag2 dicts) and count."""

    name: str
    type: str
    offered_qos: list[dict[str, Any]] = field(default_factory=list)
    message_count: int = 0


def _qos_from_channel(text: str) -> list[dict[str, Any]]:
    import yaml

    if not text:
        return []
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


class BagReader:
    """A recording: a rosbag2 bag directory, a directory of .mcap files or one .mcap file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_file():
            self.files = [self.path]
        elif (self.path / METADATA_FILE).is_file():
            info = read_metadata(self.path)
            if info.get('storage_identifier') != 'mcap':
                raise BagError(f'{self.path}: only MCAP storage is supported, not '
                               f'{info.get("storage_identifier")!r}')
            self.files = [self.path / p for p in info['relative_file_paths']]
        elif self.path.is_dir():
            self.files = sorted(self.path.glob('*.mcap'))
        else:
            raise BagError(f'no recording at {self.path}')
        missing = [str(f) for f in self.files if not f.is_file()]
        if missing:
            raise BagError(f'{self.path}: missing storage files {missing}')
        if not self.files:
            raise BagError(f'{self.path}: no .mcap files')
        self.topics = self._summarize()

    def _summarize(self) -> dict[str, TopicSummary]:
        topics: dict[str, TopicSummary] = {}
        for path in self.files:
            try:
                with open(path, 'rb') as stream:
                    summary = make_reader(stream).get_summary()
            except (McapError, OSError, ValueError) as err:
                raise BagError(f'cannot read {path}: {err}') from err
            if summary is None:
                raise BagError(f'{path} has no summary section (unfinished recording?)')
            counts = summary.statistics.channel_message_counts if summary.statistics else {}
            for cid, channel in summary.channels.items():
                schema = summary.schemas.get(channel.schema_id)
                type_name = schema.name if schema else ''
                entry = topics.setdefault(channel.topic, TopicSummary(
                    channel.topic, type_name,
                    _qos_from_channel(channel.metadata.get('offered_qos_profiles', ''))))
                entry.message_count += counts.get(cid, 0)
        return topics

    @property
    def message_count(self) -> int:
        """Total messages in the recording."""
        return sum(t.message_count for t in self.topics.values())

    def _iter_file(self, path: Path, topics: list[str] | None) -> Iterator[RawMessage]:
        with open(path, 'rb') as stream:
            reader = make_reader(stream)
            for schema, channel, message in reader.iter_messages(
                    topics=topics, log_time_order=True):
                yield RawMessage(channel.topic, schema.name if schema else '', message.data,
                                 message.log_time, message.publish_time)

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[RawMessage]:
        """Yield raw messages of the chosen topics (all when None) in log-time order."""
        wanted = list(topics) if topics is not None else None
        streams = [self._iter_file(p, wanted) for p in self.files]
        yield from heapq.merge(*streams, key=lambda m: m.log_time)

    def decoded(self, topics: Iterable[str] | None = None,
                ) -> Iterator[tuple[RawMessage, Any]]:
        """Yield (raw, decoded) pairs; decoded objects have the message's fields."""
        factory = DecoderFactory()
        decoders: dict[str, Callable[[bytes], Any]] = {}
        schemas = self._schemas()
        for raw in self.messages(topics):
            decoder = decoders.get(raw.type)
            if decoder is None:
                found = factory.decoder_for('cdr', schemas[raw.type])
                if found is None:
                    raise BagError(f'cannot decode type {raw.type}')
                decoder = decoders[raw.type] = found
            yield raw, decoder(raw.data)

    def _schemas(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for path in self.files:
            with open(path, 'rb') as stream:
                summary = make_reader(stream).get_summary()
            if summary is not None:
                for schema in summary.schemas.values():
                    out.setdefault(schema.name, schema)
        return out


def find_bags(paths: Iterable[str | Path]) -> list[Path]:
    """Expand paths into recordings: bag directories, .mcap files, or folders holding them."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file() and p.suffix == '.mcap':
            found.append(p)
        elif (p / METADATA_FILE).is_file() or (p.is_dir() and any(p.glob('*.mcap'))):
            found.append(p)
        elif p.is_dir():
            found.extend(sorted(m.parent for m in p.glob('*/' + METADATA_FILE)))
        else:
            raise BagError(f'no recording at {p}')
    return found
