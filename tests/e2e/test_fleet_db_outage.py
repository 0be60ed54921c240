"""A 30 s PostgreSQL outage under a stream of states: every acknowledged state is stored.

Runs bench/fleet_faults.py small (a real Mosquitto with per-robot logins, the real fleet
server ingest, a private PostgreSQL stopped for 30 s while the robots keep publishing) and
reads its results: no accepted state lost, the hostile 1 % all rejected, recovery measured.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kpai_testing import ROOT


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(not Path('/usr/lib/postgresql').is_dir() or not shutil.which('mosquitto')
                    and not Path('/usr/sbin/mosquitto').exists(),
                    reason='PostgreSQL or Mosquitto not installed (make setup installs both)')
def test_no_acknowledged_state_is_lost_to_a_30_s_database_outage(tmp_path: Path) -> None:
    out = tmp_path / 'fleet_faults.json'
    run = subprocess.run(
        [sys.executable, str(ROOT / 'bench' / 'fleet_faults.py'), '--states', '2000',
         '--robots', '4', '--rate', '100', '--broker-down-s', '2', '--db-down-s', '30',
         '--out', str(out)], capture_output=True, text=True, timeout=540, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result['lost'] == 0, result
    assert result['rows_stored'] == result['accepted_states'] > 2000, result
    mix = result['details']['hostile_mix']
    assert mix['rejected'] == mix['hostile'] > 0, mix
    assert result['db_outage_recovery_s'] is not None, result
