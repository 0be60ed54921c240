"""kpai doctor: each check reports the failure and the fix a user needs."""

from __future__ import annotations

import socket

import pytest

from kpai_bringup import doctor


def test_middleware_warns_on_default_transports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv('FASTDDS_DEFAULT_PROFILES_FILE', raising=False)
    monkeypatch.delenv('FASTRTPS_DEFAULT_PROFILES_FILE', raising=False)
    monkeypatch.setenv('FASTDDS_BUILTIN_TRANSPORTS', 'DEFAULT')
    c = doctor._middleware()
    assert c.status == doctor.WARN
    assert 'LARGE_DATA' in c.fix


def test_middleware_fails_on_a_missing_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('FASTDDS_DEFAULT_PROFILES_FILE', '/nonexistent/profile.xml')
    assert doctor._middleware().status == doctor.FAIL


def test_middleware_warns_on_subnet_discovery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'SUBNET')
    assert doctor._middleware().status == doctor.WARN


def test_ros_fails_when_env_not_sourced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv('KPAI_ENV', raising=False)
    c = doctor._ros()
    assert c.status == doctor.FAIL and 'env.sh' in c.fix


def test_broker_url_unreachable_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port that is certainly closed: bound, never listening
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        monkeypatch.setenv('KPAI_FLEET_BROKER', f'mqtt://127.0.0.1:{port}')
        assert doctor._broker().status == doctor.FAIL


def test_broker_url_reachable(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        s.listen(1)
        monkeypatch.setenv('KPAI_FLEET_BROKER', f'mqtt://127.0.0.1:{s.getsockname()[1]}')
        assert doctor._broker().status == doctor.OK


def test_crashing_check_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> doctor.Check:
        raise RuntimeError('broken probe')

    monkeypatch.setattr(doctor, 'CHECKS', (boom,))
    [result] = doctor.run_checks()
    assert result.status == doctor.FAIL and 'broken probe' in result.detail


def test_main_exit_code_follows_failures(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(doctor, 'CHECKS', (lambda: doctor.Check('a', doctor.OK, 'fine'),))
    assert doctor.main() == 0
    monkeypatch.setattr(doctor, 'CHECKS', (lambda: doctor.Check('b', doctor.FAIL, 'bad', 'do x'),))
    assert doctor.main() == 1
    assert 'fix: do x' in capsys.readouterr().out
