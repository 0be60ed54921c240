"""`kpai doctor`: check the environment the stack runs in and say how to fix what fails."""

from __future__ import annotations

import importlib
import os
import platform
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from .middleware import LOCALHOST_PROFILE_NAME, user_profile

__all__ = ['Check', 'run_checks', 'main']

OK, WARN, FAIL = 'ok', 'warn', 'FAIL'


@dataclass(frozen=True)
class Check:
    """The outcome of one environment check."""

    name: str
    status: str
    detail: str
    fix: str = ''


def _python() -> Check:
    v = sys.version_info
    impl = platform.python_implementation()
    detail = f'{impl} {v.major}.{v.minor}.{v.micro} on {platform.machine()}'
    if (v.major, v.minor) < (3, 10) or (v.major, v.minor) > (3, 13):
        return Check('python', FAIL, detail, 'use CPython 3.10-3.13: PYTHON=python3.11 make setup')
    return Check('python', OK, detail)


def _ros() -> Check:
    mode = os.environ.get('KPAI_ROS_MODE', '')
    if not os.environ.get('KPAI_ENV'):
        return Check('ros', FAIL, 'the workspace environment is not sourced', '. ./env.sh')
    try:
        rclpy = importlib.import_module('rclpy')
    except ImportError as err:
        return Check('ros', FAIL, f'rclpy does not import: {err}', 'make setup')
    from kpai_perception.ros_distro import current_distro, support_status

    where = Path(rclpy.__file__).parent
    name = current_distro()
    source = 'PyPI wheels' if mode == 'wheels' else 'apt'
    supported, status = support_status(name)
    detail = f'{status}; rclpy from {source} ({where})'
    if not supported:
        return Check('ros', WARN, detail, 'KPAI_ROS_DISTRO=jazzy make setup (the LTS)'
                     if mode == 'wheels' else 'install ROS 2 Jazzy from apt')
    return Check('ros', OK, detail)


def _interfaces() -> Check:
    missing = []
    for mod in ('kpai_msgs.msg', 'vision_msgs.msg', 'tf2_msgs.msg', 'kpai_msgs.action'):
        try:
            importlib.import_module(mod)
        except ImportError as err:
            missing.append(f'{mod} ({err})')
    if missing:
        return Check('interfaces', FAIL, 'cannot import ' + ', '.join(missing),
                     'make setup (rebuilds the workspace), then . ./env.sh')
    from rclpy.serialization import serialize_message

    from kpai_msgs.msg import TrackArray
    try:
        serialize_message(TrackArray())
    except Exception as err:  # noqa: BLE001 - report any typesupport failure
        return Check('interfaces', FAIL, f'type support does not load: {err}',
                     'source env.sh (LD_LIBRARY_PATH must include install/*/lib)')
    return Check('interfaces', OK, 'kpai_msgs, vision_msgs, tf2_msgs import and serialize')


def _middleware() -> Check:
    rmw = os.environ.get('RMW_IMPLEMENTATION', '(default)')
    profile = user_profile(os.environ)
    transports = os.environ.get('FASTDDS_BUILTIN_TRANSPORTS', '')
    rng = os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE', '(default: SUBNET)')
    domain = os.environ.get('ROS_DOMAIN_ID', '0')
    how = f'profile {Path(profile).name}' if profile else f'builtin {transports or "DEFAULT"}'
    detail = f'RMW={rmw} transports={how} discovery={rng} domain={domain}'
    if profile and not Path(profile).is_file():
        return Check('middleware', FAIL, detail + f' ({profile} does not exist)',
                     'make setup, then . ./env.sh')
    if Path(profile).name == LOCALHOST_PROFILE_NAME and rng == 'SYSTEM_DEFAULT':
        return Check('middleware', OK, detail + ' (localhost only, up to 64 processes)')
    if not profile and transports != 'LARGE_DATA':
        return Check('middleware', WARN, detail,
                     'camera images are lost with the default transports; '
                     'export FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA in every process (. ./env.sh)')
    if rng not in ('LOCALHOST',):
        return Check('middleware', WARN, detail,
                     'discovery reaches beyond this machine; for a single-machine setup: '
                     'export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST')
    return Check('middleware', OK, detail)


def _rendering() -> Check:
    gl = os.environ.get('MUJOCO_GL', '')
    code = ('import mujoco; m = mujoco.MjModel.from_xml_string("<mujoco><worldbody>'
            '<light pos=\'0 0 3\'/><geom type=\'box\' size=\'.1 .1 .1\'/></worldbody></mujoco>");'
            'r = mujoco.Renderer(m, 32, 32); d = mujoco.MjData(m); mujoco.mj_forward(m, d);'
            'r.update_scene(d); print(r.render().mean())')
    try:
        out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                             timeout=60)
    except subprocess.TimeoutExpired:
        return Check('rendering', FAIL, f'MuJoCo renderer (MUJOCO_GL={gl}) hung', '')
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ['?'])[-1]
        return Check('rendering', FAIL, f'MuJoCo cannot render headless (MUJOCO_GL={gl}): {last}',
                     'apt-get install libegl1 libopengl0 (EGL) or libosmesa6 and '
                     'MUJOCO_GL=osmesa')
    return Check('rendering', OK, f'MuJoCo headless rendering works (MUJOCO_GL={gl})')


def _tcp_ok(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
                (parsed.hostname or '127.0.0.1', parsed.port or default_port), 2):
            return True
    except OSError:
        return False


def _broker() -> Check:
    url = os.environ.get('KPAI_FLEET_BROKER', '')
    binary = shutil.which('mosquitto') or ('/usr/sbin/mosquitto'
                                            if Path('/usr/sbin/mosquitto').exists() else '')
    if url:
        if _tcp_ok(url, 1883):
            return Check('mqtt broker', OK, f'{url} accepts connections')
        return Check('mqtt broker', FAIL, f'{url} does not accept connections',
                     'start the broker or unset KPAI_FLEET_BROKER to let the demo start one')
    if binary:
        return Check('mqtt broker', OK, f'no broker configured; the demo starts {binary}')
    return Check('mqtt broker', FAIL, 'no KPAI_FLEET_BROKER and no mosquitto installed',
                 'apt-get install mosquitto, or export KPAI_FLEET_BROKER=mqtt://host:1883')


def _database() -> Check:
    url = os.environ.get('KPAI_FLEET_DB', '')
    initdb = sorted(Path('/usr/lib/postgresql').glob('*/bin/initdb'))
    if url.startswith('postgres'):
        if _tcp_ok(url, 5432):
            return Check('database', OK, f'fleet store {url.split("@")[-1]} reachable')
        return Check('database', FAIL, f'fleet store {url} not reachable', 'start PostgreSQL')
    detail = 'fleet store: SQLite file (default)'
    if not initdb:
        return Check('database', WARN, detail + '; PostgreSQL not installed (tests need it)',
                     'apt-get install postgresql')
    return Check('database', OK, detail + f'; PostgreSQL server available ({initdb[-1].parent})')


def _browser() -> Check:
    path = shutil.which('chromium') or shutil.which('chromium-browser')
    if not path:
        return Check('browser', WARN, 'no Chromium: the dashboard e2e tests cannot run',
                     'apt-get install chromium')
    return Check('browser', OK, f'headless Chromium at {path}')


def _inference() -> Check:
    found, missing = [], []
    for mod in ('onnxruntime', 'openvino', 'cv2'):
        try:
            m = importlib.import_module(mod)
            found.append(f'{mod} {getattr(m, "__version__", "")}'.strip())
        except ImportError:
            missing.append(mod)
    if 'onnxruntime' in missing:
        return Check('inference', FAIL, 'onnxruntime missing (the CPU reference backend)',
                     'make setup')
    return Check('inference', OK, ', '.join(found)
                 + (f' (missing: {", ".join(missing)})' if missing else ''))


CHECKS: tuple[Callable[[], Check], ...] = (
    _python, _ros, _interfaces, _middleware, _rendering, _inference, _broker, _database,
    _browser)


def run_checks() -> list[Check]:
    """Run every check; a check that raises is reported as a failure."""
    results = []
    for check in CHECKS:
        try:
            results.append(check())
        except Exception as err:  # noqa: BLE001 - a broken check is itself a finding
            results.append(Check(check.__name__.strip('_'), FAIL, f'check crashed: {err!r}'))
    return results


def main(argv: list[str] | None = None) -> int:
    """Print the checks; exit 1 when any failed."""
    del argv
    results = run_checks()
    width = max(len(c.name) for c in results)
    for c in results:
        print(f'[{c.status:>4}] {c.name:<{width}}  {c.detail}')
        if c.fix and c.status != OK:
            print(f'{"":>7}{"":<{width}}  fix: {c.fix}')
    failed = [c for c in results if c.status == FAIL]
    print(f'{len(results) - len(failed)} of {len(results)} checks passed'
          + (f'; {len(failed)} failed' if failed else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
