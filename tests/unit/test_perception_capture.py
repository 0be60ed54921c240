"""Unit tests of the camera driver's capture loop: rate limit, file end, reconnect backoff."""

from __future__ import annotations

import threading

import numpy as np
from kpai_perception.backoff import Backoff
from kpai_perception.capture import CaptureLoop
from kpai_perception.errors import CameraSourceError


class FakeStop(threading.Event):
    """A stop event whose waits advance a fake clock instead of sleeping."""

    def __init__(self, clock: list[float]) -> None:
        super().__init__()
        self.clock = clock
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(float(timeout or 0.0))
        self.clock[0] += float(timeout or 0.0)
        return self.is_set()


class FakeSource:
    def __init__(self, frames: int, *, live: bool, fps: float = 0.0) -> None:
        self.left = frames
        self.live = live
        self.nominal_fps = fps
        self.closed = False

    def read(self) -> np.ndarray | None:
        if self.left <= 0:
            return None
        self.left -= 1
        return np.zeros((2, 2, 3), np.uint8)

    def close(self) -> None:
        self.closed = True


def _loop(opener, clock: list[float], *, rate: float = 0.0, limit: int = 1000):
    stop = FakeStop(clock)
    logs: list[tuple[str, str]] = []
    stamps: list[float] = []

    def publish(frame: np.ndarray) -> None:
        stamps.append(clock[0])
        if len(stamps) >= limit:
            stop.set()

    loop = CaptureLoop(opener, publish, lambda lvl, msg: logs.append((lvl, msg)), rate=rate,
                       backoff=Backoff(0.5, 4.0), stop=stop, clock=lambda: clock[0],
                       name='cam')
    return loop, stop, logs, stamps


def test_file_source_at_its_own_rate_then_ends() -> None:
    clock = [0.0]
    src = FakeSource(5, live=False, fps=10.0)
    loop, _, logs, stamps = _loop(lambda: src, clock)
    loop.run()
    np.testing.assert_allclose(stamps, [0.0, 0.1, 0.2, 0.3, 0.4])
    assert src.closed and loop.frames == 5
    assert logs[-1] == ('info', 'end of cam after 5 frames')


def test_rate_parameter_overrides_source_rate() -> None:
    clock = [0.0]
    loop, _, _, stamps = _loop(lambda: FakeSource(100, live=False, fps=30.0), clock, rate=5.0,
                               limit=4)
    loop.run()
    np.testing.assert_allclose(stamps, [0.0, 0.2, 0.4, 0.6])


def test_open_failures_back_off_exponentially_then_recover() -> None:
    clock = [0.0]
    attempts = [0]

    def opener() -> FakeSource:
        attempts[0] += 1
        if attempts[0] <= 4:
            raise CameraSourceError('cannot open device 0')
        return FakeSource(3, live=True)

    loop, stop, logs, stamps = _loop(opener, clock, limit=3)
    loop.run()
    assert stop.waits[:4] == [0.5, 1.0, 2.0, 4.0]
    assert [m for lvl, m in logs if lvl == 'warn'][0] == (
        'cannot open device 0; retrying in 0.5 s (attempt 1)')
    assert ('info', 'opened cam') in logs and len(stamps) == 3 and loop.open_failures == 4


def test_live_stream_drop_reconnects_and_resets_backoff() -> None:
    clock = [0.0]
    sources = [FakeSource(2, live=True), FakeSource(2, live=True), FakeSource(10, live=True)]
    opened: list[FakeSource] = []

    def opener() -> FakeSource:
        opened.append(sources[len(opened)])
        return opened[-1]

    loop, stop, logs, stamps = _loop(opener, clock, limit=6)
    loop.run()
    assert loop.reconnects == 2 and len(stamps) == 6
    assert opened[0].closed and opened[1].closed
    drops = [m for lvl, m in logs if 'dropped' in m]
    # frames in between reset the backoff: each drop waits the initial delay again
    assert drops == ['cam dropped after 2 frames: reconnecting in 0.5 s (1 reconnects so far)',
                     'cam dropped after 4 frames: reconnecting in 0.5 s (2 reconnects so far)']


def test_stop_interrupts() -> None:
    clock = [0.0]
    loop, stop, _, stamps = _loop(lambda: FakeSource(100, live=True), clock)
    stop.set()
    loop.run()
    assert stamps == []
