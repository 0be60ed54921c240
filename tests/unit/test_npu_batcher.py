"""Unit tests of the cross-camera frame batcher."""

from __future__ import annotations

import threading
import time

import pytest
from kpai_npu_bridge.batcher import FrameBatcher


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_single_camera_releases_each_frame_at_once() -> None:
    b: FrameBatcher[str] = FrameBatcher(1, max_batch=4, max_wait=10.0)
    b.put(0, 'a')
    batch = b.take(timeout=0.0)
    assert [f.payload for f in batch] == ['a']
    assert b.take(timeout=0.0) == []


def test_batch_ready_when_max_batch_cameras_have_frames() -> None:
    clock = FakeClock()
    b: FrameBatcher[str] = FrameBatcher(4, max_batch=2, max_wait=1.0, clock=clock)
    b.put(2, 'c2')
    assert b.take(timeout=0.0) == []
    clock.t += 0.01
    b.put(0, 'c0')
    batch = b.take(timeout=0.0)
    assert [f.camera for f in batch] == [2, 0]  # oldest first
    assert b.pending() == 0


def test_partial_batch_released_after_max_wait_since_oldest() -> None:
    clock = FakeClock()
    b: FrameBatcher[int] = FrameBatcher(3, max_batch=3, max_wait=0.05, clock=clock)
    b.put(0, 1)
    clock.t += 0.03
    b.put(1, 2)
    assert b.take(timeout=0.0) == []
    clock.t += 0.021  # 0.051 s after the oldest frame
    assert [f.payload for f in b.take(timeout=0.0)] == [1, 2]


def test_newest_frame_per_camera_and_drops_counted() -> None:
    b: FrameBatcher[int] = FrameBatcher(2, max_batch=2, max_wait=1.0)
    assert b.put(0, 1) is False
    assert b.put(0, 2) is True
    assert b.put(0, 3) is True
    b.put(1, 10)
    batch = b.take(timeout=0.0)
    assert sorted(f.payload for f in batch) == [3, 10]
    assert b.counters() == (4, 2, 2)


def test_batch_never_exceeds_max_batch_and_keeps_the_rest() -> None:
    clock = FakeClock()
    b: FrameBatcher[int] = FrameBatcher(5, max_batch=2, max_wait=1.0, clock=clock)
    for cam in range(5):
        clock.t += 0.001
        b.put(cam, cam)
    assert [f.camera for f in b.take(timeout=0.0)] == [0, 1]
    assert [f.camera for f in b.take(timeout=0.0)] == [2, 3]
    # one left: not a full batch, waits for max_wait
    assert b.take(timeout=0.0) == []
    clock.t += 1.0
    assert [f.camera for f in b.take(timeout=0.0)] == [4]


def test_take_blocks_until_another_thread_fills_the_batch() -> None:
    b: FrameBatcher[int] = FrameBatcher(2, max_batch=2, max_wait=5.0)
    b.put(0, 0)

    def later() -> None:
        time.sleep(0.05)
        b.put(1, 1)

    threading.Thread(target=later).start()
    t0 = time.monotonic()
    batch = b.take(timeout=2.0)
    assert len(batch) == 2
    assert time.monotonic() - t0 < 1.0


def test_take_waits_max_wait_in_real_time() -> None:
    b: FrameBatcher[int] = FrameBatcher(2, max_batch=2, max_wait=0.1)
    b.put(0, 0)
    t0 = time.monotonic()
    batch = b.take(timeout=2.0)
    dt = time.monotonic() - t0
    assert len(batch) == 1
    assert 0.05 <= dt < 1.0


def test_close_wakes_a_blocked_taker() -> None:
    b: FrameBatcher[int] = FrameBatcher(1, max_batch=1, max_wait=0.0)
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(b.take()))
    t.start()
    time.sleep(0.05)
    b.close()
    t.join(timeout=2.0)
    assert out == [[]]


def test_concurrent_producers_lose_nothing_but_replaced_frames() -> None:
    cams, per_cam = 4, 500
    b: FrameBatcher[int] = FrameBatcher(cams, max_batch=4, max_wait=0.001)
    taken: list[int] = []
    done = threading.Event()

    def consumer() -> None:
        while not done.is_set() or b.pending():
            taken.extend(f.payload for f in b.take(timeout=0.01))

    def producer(cam: int) -> None:
        for i in range(per_cam):
            b.put(cam, cam * per_cam + i)

    c = threading.Thread(target=consumer)
    c.start()
    ps = [threading.Thread(target=producer, args=(k,)) for k in range(cams)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    done.set()
    c.join(timeout=5.0)
    received, dropped, n_taken = b.counters()
    assert received == cams * per_cam
    assert n_taken == len(taken) == received - dropped
    assert len(set(taken)) == len(taken)
    # the last frame of every camera is always delivered
    for cam in range(cams):
        assert cam * per_cam + per_cam - 1 in taken


@pytest.mark.parametrize('kwargs', [
    {'cameras': 0, 'max_batch': 1, 'max_wait': 0.0},
    {'cameras': 1, 'max_batch': 0, 'max_wait': 0.0},
    {'cameras': 1, 'max_batch': 1, 'max_wait': -1.0},
])
def test_invalid_arguments_rejected(kwargs: dict) -> None:
    cameras = kwargs.pop('cameras')
    with pytest.raises(ValueError):
        FrameBatcher(cameras, **kwargs)


def test_unknown_camera_rejected() -> None:
    b: FrameBatcher[int] = FrameBatcher(2, max_batch=1, max_wait=0.0)
    with pytest.raises(IndexError):
        b.put(2, 0)
