"""Staged start-up (kpai_bringup.launch.startup): the next process waits for busy starters."""

from __future__ import annotations

import os

import pytest
from kpai_bringup.launch.startup import StartGate, process_demand_seconds


class FakeCpu:
    """CPU seconds per pid that the test advances (None: the process exited)."""

    def __init__(self) -> None:
        self.cpu: dict[int, float | None] = {}

    def __call__(self, pid: int) -> float | None:
        return self.cpu.get(pid)


def test_no_limit_starts_everything_at_once() -> None:
    gate = StartGate(0)
    for pid in range(10):
        assert gate.may_start(0.0)
        gate.started(pid, 0.0)
    assert gate.starting == 0


def test_limit_waits_until_a_starter_settles() -> None:
    cpu = FakeCpu()
    gate = StartGate(2, cpu_of=cpu)
    cpu.cpu[1] = cpu.cpu[2] = 0.0
    gate.started(1, 0.0)
    gate.started(2, 0.0)
    assert not gate.may_start(0.1)
    cpu.cpu[1], cpu.cpu[2] = 0.5, 0.45  # both busy importing: 100 % and 90 % of a core
    assert not gate.may_start(0.5)
    cpu.cpu[1], cpu.cpu[2] = 0.55, 0.9  # 1 settles (10 %), 2 still busy
    assert gate.may_start(1.0) and gate.starting == 1


def test_exited_or_slow_starters_free_their_slot() -> None:
    cpu = FakeCpu()
    gate = StartGate(1, cpu_of=cpu, settle_timeout=20.0)
    cpu.cpu[1] = 0.0
    gate.started(1, 0.0)
    cpu.cpu[1] = None
    assert gate.may_start(0.6)  # exited
    cpu.cpu[2] = 0.0
    gate.started(2, 1.0)
    t = 1.0
    while t < 20.9:  # always busy: released by the timeout
        t += 0.5
        cpu.cpu[2] = (cpu.cpu[2] or 0.0) + 0.5
        assert gate.may_start(t) is (t - 1.0 >= 20.0)


def test_real_process_cpu_time() -> None:
    assert process_demand_seconds(os.getpid()) is not None
    assert process_demand_seconds(2 ** 22 + 12345) is None
    with pytest.raises(ValueError, match='limit'):
        StartGate(-1)
