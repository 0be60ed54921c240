"""The camera driver's capture loop: open, read, rate-limit, reconnect with backoff (pure)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from kpai_perception.backoff import Backoff
from kpai_perception.errors import CameraSourceError
from kpai_perception.sources import FrameSource

__all__ = ['CaptureLoop']

LogFn = Callable[[str, str], None]  # (level 'info' | 'warn', message)


class CaptureLoop:
    """Run until stopped or a file source ends; frames go to publish(frame).

    A source that cannot be opened, or a live source (device, stream) that stops delivering,
    is (re)opened after an exponentially growing delay, and each attempt is logged. rate > 0
    limits publishing to that many frames per second; 0 means the source's own rate for files
    and as fast as frames come for live sources.
    """

    def __init__(self, open_source: Callable[[], FrameSource],
                 publish: Callable[[np.ndarray], None], log: LogFn, *, rate: float = 0.0,
                 backoff: Backoff | None = None, stop: threading.Event | None = None,
                 clock: Callable[[], float] = time.monotonic, name: str = 'source') -> None:
        self._open = open_source
        self._publish = publish
        self._log = log
        self.rate = rate
        self.backoff = backoff or Backoff()
        self.stop = stop or threading.Event()
        self._clock = clock
        self.name = name
        self.frames = 0
        self.reconnects = 0
        self.open_failures = 0

    def _try_open(self) -> FrameSource | None:
        try:
            source = self._open()
        except CameraSourceError as err:
            self.open_failures += 1
            delay = self.backoff.next_delay()
            self._log('warn', f'{err}; retrying in {delay:.1f} s (attempt '
                              f'{self.backoff.attempts})')
            self.stop.wait(delay)
            return None
        fps = f' ({source.nominal_fps:.1f} fps)' if source.nominal_fps else ''
        self._log('info', f'opened {self.name}{fps}')
        return source

    def run(self) -> None:
        """Capture until stop is set or a non-live source ends."""
        source: FrameSource | None = None
        next_time = self._clock()
        try:
            while not self.stop.is_set():
                if source is None:
                    source = self._try_open()
                    continue
                frame = source.read()
                if frame is None:
                    if source.live:
                        self.reconnects += 1
                        delay = self.backoff.next_delay()
                        self._log('warn', f'{self.name} dropped after {self.frames} frames: '
                                          f'reconnecting in {delay:.1f} s '
                                          f'({self.reconnects} reconnects so far)')
                        source.close()
                        source = None
                        self.stop.wait(delay)
                        continue
                    self._log('info', f'end of {self.name} after {self.frames} frames')
                    break
                self.backoff.reset()
                rate = self.rate or (0.0 if source.live else source.nominal_fps)
                if rate > 0:
                    now = self._clock()
                    if next_time > now and self.stop.wait(next_time - now):
                        break
                    next_time = max(next_time + 1.0 / rate, self._clock() - 1.0 / rate)
                self._publish(frame)
                self.frames += 1
        finally:
            if source is not None:
                source.close()
