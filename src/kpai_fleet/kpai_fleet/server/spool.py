"""A bounded on-disk FIFO of JSON records: rows that wait there while the database is away."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kpai_fleet.errors import StoreError

__all__ = ['Spool']


class Spool:
    """Append-only JSON-lines file with a persisted read offset; emptied once fully read.

    Not thread-safe: the store serialises access. Records survive a restart of the server:
    what was appended and not yet consumed is read again by the next Spool on the same path.
    """

    def __init__(self, path: str | Path, *, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._offset_path = self.path.with_name(self.path.name + '.offset')
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, 'a+b')  # noqa: SIM115 - held open for the spool's life
        except OSError as err:
            raise StoreError(f'cannot open the spool {self.path}: {err}') from err
        self._size = self._drop_torn_tail(self._file.seek(0, os.SEEK_END))
        self._read = 0
        try:
            self._read = min(int(self._offset_path.read_text() or 0), self._size)
        except (OSError, ValueError):
            pass
        self.appended = 0

    def _drop_torn_tail(self, size: int) -> int:
        """Cut a last line left incomplete by a crash while appending; return the new size."""
        end = size
        while end > 0:
            start = max(0, end - 65536)
            self._file.seek(start)
            chunk = self._file.read(end - start)
            cut = chunk.rfind(b'\n')
            if cut >= 0:
                end = start + cut + 1
                break
            end = start
        if end != size:
            self._file.truncate(end)
        return end

    @property
    def pending_bytes(self) -> int:
        """Bytes appended and not yet consumed."""
        return self._size - self._read

    def __bool__(self) -> bool:
        return self.pending_bytes > 0

    def append(self, record: dict[str, Any]) -> bool:
        """Append one record; return False (nothing written) when the spool is full."""
        line = json.dumps(record, separators=(',', ':')).encode() + b'\n'
        if self._size + len(line) > self.max_bytes:
            return False
        self._file.seek(0, os.SEEK_END)
        self._file.write(line)
        self._file.flush()  # in the OS page cache: survives a crash of this process
        self._size += len(line)
        self.appended += 1
        return True

    def read(self, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Return up to limit records from the read position and the offset after them."""
        self._file.seek(self._read)
        out: list[dict[str, Any]] = []
        pos = self._read
        while len(out) < limit and pos < self._size:
            line = self._file.readline()
            if not line.endswith(b'\n'):
                break
            pos += len(line)
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out, pos

    def consume(self, offset: int) -> None:
        """Mark everything before offset as written to the database; empty a drained file."""
        self._read = min(offset, self._size)
        if self._read >= self._size or self.pending_bytes <= 0:
            self._file.truncate(0)
            self._file.flush()
            self._size = self._read = 0
        try:
            self._offset_path.write_text(str(self._read))
        except OSError:
            pass  # at worst the rows are written twice after a restart

    def sync(self) -> None:
        """Force the appended records to disk."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file (records not consumed stay for the next start)."""
        try:
            self._file.close()
        except OSError:
            pass
