"""`kpai-fleet conformance` against the real fleet_agent node (own process, real Mosquitto)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from kpai_fleet.conformance.options import KitOptions
from kpai_fleet.conformance.report import render_markdown, write_report
from kpai_fleet.conformance.run import run_conformance
from kpai_fleet.conformance.verdict import Status, Verdict
from kpai_testing import fleet_broker, mqtt_login, wait_until

# the in-test mission executor and MQTT observer of the fleet agent's own ROS test (tests/ros
# is not on the import path, and a copy would drift)
_spec = importlib.util.spec_from_file_location('_fleet_agent_test',
                                               Path(__file__).with_name('test_fleet_agent.py'))
assert _spec is not None and _spec.loader is not None
_agent_test = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_agent_test)
MissionServer, Observer, start_agent = (_agent_test.MissionServer, _agent_test.Observer,
                                        _agent_test.start_agent)


@pytest.fixture
def broker():
    # logins and ACL as on the demo broker: the kit logs in as the fleet server would
    with fleet_broker(('robot1',)) as b:
        yield b


def test_conformance_kit_passes_on_the_fleet_agent(graph, broker, tmp_path):
    server = MissionServer(graph.domain_id, step_s=0.1)
    obs = Observer(broker, client_id='test-conformance-observer')
    try:
        start_agent(graph, broker)
        wait_until(lambda: obs.of('state'), timeout=20, what='first state of the agent')
        lines: list[str] = []
        login = mqtt_login(broker)
        opts = KitOptions(broker_url=broker.url, manufacturer='KPAI', serial='robot1',
                          username=login['username'], password=login['password'],
                          timeout_s=15.0, connect_timeout_s=20.0, retained_wait_s=1.0,
                          event_timeout_s=3.0, pause_hold_s=1.0, long_route_nodes=8)
        report = run_conformance(opts, say=lines.append)
        paths = write_report(report, tmp_path)
        failed = {r.name: r.reason for r in report.results if r.status is not Status.PASS}
        assert report.verdict is Verdict.PASS, (failed, render_markdown(report),
                                                graph.dump_logs())
        assert failed == {'last_will': failed.get('last_will')}  # the one accepted skip
        assert paths['json'].exists() and report.exit_code == 0
        assert server.pause_calls == [True, False]
        assert len(server.goals) >= 4  # pick/drop, base + update, pause, cancel
    finally:
        obs.link.stop()
        server.close()
