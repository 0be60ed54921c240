"""Shared by the rclpy executor benchmarks (executor_layout.py, waitset_cost.py): start a source
process and the measured processes, and read the measured ones' CPU over a window."""

from __future__ import annotations

import os
import subprocess
import time

from kpai_bringup.proc_cpu import parse_stat


def cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds a process has used so far."""
    with open(f'/proc/{pid}/stat') as f:
        return parse_stat(f.read()).ticks / os.sysconf('SC_CLK_TCK')


def share_of_core(source: list[str], measured: list[list[str]], seconds: float, warmup: float,
                  env: dict[str, str]) -> float:
    """Run source and the measured commands; return the measured ones' CPU as a share of one
    core over seconds, after warmup (discovery and matching, not measured). All end after."""
    feeder = subprocess.Popen(source, env=env)
    procs = [subprocess.Popen(cmd, env=env) for cmd in measured]
    try:
        time.sleep(warmup)
        before = [cpu_seconds(p.pid) for p in procs]
        t0 = time.monotonic()
        time.sleep(seconds)
        used = sum(cpu_seconds(p.pid) - b for p, b in zip(procs, before, strict=True))
        return used / (time.monotonic() - t0)
    finally:
        for p in [*procs, feeder]:
            p.terminate()
        for p in [*procs, feeder]:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
