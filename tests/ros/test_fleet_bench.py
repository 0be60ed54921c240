"""The ingest benchmark's functions at tiny scale: states sent == rows stored."""

from __future__ import annotations

import sys

from kpai_fleet.broker import LocalBroker
from kpai_testing import ROOT

sys.path.insert(0, str(ROOT / 'bench'))

import fleet_ingest  # noqa: E402


def test_throughput_and_latency_tiny(tmp_path):
    # development mode: one raw connection plays every robot (a load generator, not a robot)
    with LocalBroker(allow_anonymous=True) as broker:
        res = fleet_ingest.throughput(broker, f'sqlite:///{tmp_path}/t.db', robots=5,
                                      states=500, limit_s=60)
        assert res['lost'] == 0 and res['rows_stored'] == 500 and res['states_per_s'] > 0
        lat = fleet_ingest.latency(broker, f'sqlite:///{tmp_path}/l.db', robots=50,
                                   seconds=2.0, poll_ms=100)
        assert lat['states_seen'] == lat['states_sent'] == 100
        assert 0 < lat['p50_s'] <= lat['p99_s'] < 10
