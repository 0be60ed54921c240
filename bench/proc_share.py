"""Shared by the rclpy executor benchmarks (executor_layout.py, waitset_cost.py): start a source
process and the measured processes, and read the measured ones' CPU over a window."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable

from kpai_bringup.proc_cpu import parse_stat


def cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds a process has used so far."""
    with open(f'/proc/{pid}/stat') as f:
        return parse_stat(f.read()).ticks / os.sysconf('SC_CLK_TCK')


def share_of_core(source: list[str], measured: list[list[str]], seconds: float, warmup: float,
                  env: dict[str, str]) -> float:
    """Run source and the measured commands; return the measured ones' CPU as a share of one
    core over seconds, after warmup (discovery and matching, not measured). All end after."""
    return share_and_rate(source, measured, seconds, warmup, env)[0]


def share_and_rate(source: list[str], measured: list[list[str]], seconds: float,
                   warmup: float, env: dict[str, str],
                   counter: Callable[[], float] | None = None) -> tuple[float, float]:
    """As share_of_core; also return how fast counter() grew over the window, per second
    (0.0 without a counter): e.g. the callbacks the measured processes report they ran."""
    feeder = subprocess.Popen(source, env=env)
    procs = [subprocess.Popen(cmd, env=env) for cmd in measured]
    try:
        time.sleep(warmup)
        before = [cpu_seconds(p.pid) for p in procs]
        count0 = counter() if counter else 0.0
        t0 = time.monotonic()
        time.sleep(seconds)
        used = sum(cpu_seconds(p.pid) - b for p, b in zip(procs, before, strict=True))
        count1 = counter() if counter else 0.0
        elapsed = time.monotonic() - t0
        return used / elapsed, (count1 - count0) / elapsed
    finally:
        for p in [*procs, feeder]:
            p.terminate()
        for p in [*procs, feeder]:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
