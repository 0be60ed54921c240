"""`make demo CHAOS=...` end to end: nodes killed with -9 come back and the fleet goes on.

Two robots, a random robot node killed every 10 s; the run ends once each robot has finished
two tasks (5 minutes at most). Checked: every killed node recovered (it answers again), no
collision the robot drove into, and tasks were completed after the first kill.

Until the stack's Fast DDS profile dropped shared memory, about one run in three here failed:
a node respawned after kill -9 came back matched but without data (robot1's mission_executor
took goals but never got /map or a speed limit). tests/ros/test_respawn_delivery.py holds
that cause down in a small scenario.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest
from kpai_testing import ManagedProcess, next_domain_id, ros_env


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_chaos_demo_recovers_and_completes_tasks(tmp_path: Path) -> None:
    run_dir = tmp_path / 'run'
    demo = ManagedProcess(
        [sys.executable, '-m', 'kpai_bringup.demo', '--robots', '2', '--duration', '300',
         '--until-tasks', '2', '--chaos', '10', '--no-record', '--run-dir', str(run_dir)],
        env=ros_env(next_domain_id()), name='demo-chaos')
    try:
        assert demo.proc.wait(timeout=600) == 0, demo.output()[-5000:]
    finally:
        demo.stop()
    out = demo.output()
    summary = json.loads((run_dir / 'summary.json').read_text())
    chaos = summary['chaos']
    assert summary['layout'] == 'processes'  # chaos kills single nodes
    assert chaos['kills'] >= 3, out[-3000:]
    assert chaos['recoveries'] == chaos['kills'], (chaos, out[-3000:])
    # chaos stops robots wherever they are (fail-closed); a simulated person may then brush
    # one that stands still: only contacts the robot drove into count here (each contact is
    # printed with what was hit, where and at what speed)
    assert summary['collisions_moving'] == 0, out[-3000:]
    first_kill = min(e['wall'] for e in chaos['events'])
    with sqlite3.connect(run_dir / 'fleet.db') as db:
        after = db.execute("SELECT COUNT(*) FROM orders WHERE status = 'completed' AND "
                           'updated > ?', (first_kill,)).fetchone()[0]
    assert after >= 1, out[-3000:]
    assert 'chaos:' in out and 'is back after' in out
