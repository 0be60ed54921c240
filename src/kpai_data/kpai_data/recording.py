"""Recording logic without ROS: topic selection, QoS adaptation, threaded bag writing, counts."""

from __future__ import annotations

import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .bag_metadata import QosInfo
from .bag_writer import BagWriter
from .errors import BagError, DataError

__all__ = [
    'RecordingStats',
    'ThreadedRecorder',
    'TopicSelector',
    'default_bag_name',
    'subscription_qos',
]


def default_bag_name(now: float | None = None) -> str:
    """Return rosbag2's default bag directory name, rosbag2_YYYY_MM_DD-HH_MM_SS."""
    return time.strftime('rosbag2_%Y_%m_%d-%H_%M_%S', time.localtime(now))


class TopicSelector:
    """Decide which topics to record: explicit names, a regex, or all, minus an exclude regex."""

    def __init__(self, topics: Iterable[str] = (), *, regex: str = '', all_topics: bool = False,
                 exclude: str = '') -> None:
        self.names = {t if t.startswith('/') else '/' + t for t in topics if t}
        try:
            self.regex = re.compile(regex) if regex else None
            self.exclude = re.compile(exclude) if exclude else None
        except re.error as err:
            raise DataError(f'invalid topic regex: {err}') from err
        self.all_topics = all_topics
        if not (self.names or self.regex or all_topics):
            raise DataError('nothing to record: give topics, a regex, or all')

    def wants(self, topic: str) -> bool:
        """Return True if topic should be recorded."""
        if self.exclude is not None and self.exclude.search(topic):
            return False
        if topic in self.names or self.all_topics:
            return True
        return bool(self.regex is not None and self.regex.search(topic))


def subscription_qos(offered: list[QosInfo]) -> tuple[str, str]:
    """Return (reliability, durability) that matches every offered profile.

    Reliable only when every publisher is reliable (a reliable reader cannot match a
    best-effort writer); transient-local only when every publisher offers it, so latched
    topics such as /map are recorded with their last sample.
    """
    if not offered:
        return 'reliable', 'volatile'
    reliable = all(q.reliability == 'reliable' for q in offered)
    latched = all(q.durability == 'transient_local' for q in offered)
    return ('reliable' if reliable else 'best_effort',
            'transient_local' if latched else 'volatile')


@dataclass
class RecordingStats:
    """Per-topic counts of messages received by the subscriptions and written to the bag."""

    received: Counter[str]
    written: Counter[str]
    dropped: Counter[str]
    errors: int = 0

    @property
    def lost(self) -> int:
        """Messages received but not written."""
        return sum(self.received.values()) - sum(self.written.values())

    def summary(self) -> str:
        """Return one line with the totals."""
        return (f'received {sum(self.received.values())}, written {sum(self.written.values())}, '
                f'dropped {sum(self.dropped.values())}, lost {self.lost}, '
                f'write errors {self.errors} on {len(self.received)} topics')


class ThreadedRecorder:
    """Queue serialized messages from callbacks and write them on a dedicated thread."""

    def __init__(self, writer: BagWriter, *, queue_limit: int = 0) -> None:
        self.writer = writer
        self.stats = RecordingStats(Counter(), Counter(), Counter())
        self._queue: queue.Queue[tuple[str, bytes, int] | None] = queue.Queue(
            maxsize=max(0, queue_limit))
        self._lock = threading.Lock()
        self._error: str = ''
        self._thread = threading.Thread(target=self._run, name='bag-writer', daemon=True)
        self._thread.start()
        self._closed = False

    def add_topic(self, name: str, type_name: str, offered: list[QosInfo]) -> None:
        """Declare a topic (call before its first message is queued)."""
        with self._lock:
            self.writer.add_topic(name, type_name, offered)

    def put(self, topic: str, data: bytes, log_time_ns: int) -> bool:
        """Queue one message; return False (and count a drop) when the queue is full."""
        self.stats.received[topic] += 1
        try:
            self._queue.put_nowait((topic, data, log_time_ns))
        except queue.Full:
            self.stats.dropped[topic] += 1
            return False
        return True

    @property
    def backlog(self) -> int:
        """Messages waiting to be written."""
        return self._queue.qsize()

    @property
    def last_error(self) -> str:
        """The last write error ('' if none)."""
        return self._error

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            topic, data, stamp = item
            try:
                with self._lock:
                    self.writer.write(topic, data, stamp)
                self.stats.written[topic] += 1
            except (BagError, OSError, ValueError) as err:
                self.stats.errors += 1
                self._error = str(err)

    def close(self, *, custom_data: dict[str, str] | None = None, timeout: float = 60.0) -> Path:
        """Write everything queued, finish the bag and return its directory."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout)
            if custom_data:
                self.writer.set_custom_data(custom_data)
        return self.writer.close()
