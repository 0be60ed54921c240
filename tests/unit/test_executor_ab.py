"""bench/executor_ab.py's pure parts, and the KPAI_EXECUTOR choice the nodes spin with."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

BENCH = Path(__file__).resolve().parents[2] / 'bench' / 'executor_ab.py'


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location('bench_executor_ab', BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _run(robot1: float, robot2: float, sim: float, rtf: float = 1.0) -> dict[str, Any]:
    nodes = [
        {'robot': 'robot1', 'node': 'tracker', 'cpu_s_per_sim_s': robot1},
        {'robot': 'robot2', 'node': 'tracker', 'cpu_s_per_sim_s': robot2},
        {'robot': '', 'node': 'sim', 'cpu_s_per_sim_s': sim},
    ]
    return {'per_robot': {'robot1': {'cpu_s_per_sim_s': robot1},
                          'robot2': {'cpu_s_per_sim_s': robot2}},
            'nodes': nodes,
            'by_kind': {'tracker': {'cpu_s_per_sim_s_mean': (robot1 + robot2) / 2}},
            'totals': {'cpu_s_per_sim_s': robot1 + robot2 + sim},
            'real_time_factor': rtf, 'rates_hz': {'camera': 10.0}}


def test_summarize_averages_the_robots_and_splits_node_kinds_from_the_rest() -> None:
    s = _bench().summarize(_run(0.5, 0.3, 0.35))
    assert s['per_robot'] == 0.4
    assert s['node_kinds'] == {'tracker': 0.4}
    assert s['sim'] == 0.35
    assert s['total'] == pytest.approx(1.15)


def test_medians_take_each_figure_over_the_rounds() -> None:
    b = _bench()
    rounds = [b.summarize(_run(a, a, sim, rtf)) for a, sim, rtf in
              ((0.5, 0.30, 1.0), (0.7, 0.40, 0.9), (0.6, 0.35, 0.95))]
    m = b.medians(rounds)
    assert m['per_robot'] == 0.6
    assert m['sim'] == 0.35
    assert m['real_time_factor'] == 0.95
    assert m['node_kinds'] == {'tracker': 0.6}


def test_spin_lean_refuses_an_unknown_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    from kpai_perception import node_util
    monkeypatch.setenv(node_util.EXECUTOR_ENV, 'events')
    with pytest.raises(SystemExit, match="KPAI_EXECUTOR='events': expected one of lean, rclpy"):
        node_util.spin_lean(object())
