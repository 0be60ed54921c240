"""The live dashboard in headless Chromium (DevTools protocol): robots appear and move."""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from kpai_browser import CHROMIUM, Browser
from kpai_fleet.broker import free_port
from kpai_fleet.mqtt_link import MqttLink
from kpai_fleet.vda5050.order_tracker import OrderTracker
from kpai_fleet.vda5050.state_builder import (
    HeaderSource,
    InferenceHealth,
    RobotSnapshot,
    SafetyHealth,
    build_state,
    build_visualization,
)
from kpai_testing import (
    ManagedProcess,
    fleet_broker,
    mqtt_login,
    ros_env,
    server_mqtt,
    wait_until,
)

SCREENSHOT = Path(__file__).resolve().parents[2] / 'artifacts' / 'fleet_dashboard.png'

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason='Debian chromium not installed')


def publish_fleet(broker, stop: threading.Event) -> None:
    links = {r: MqttLink(broker.url, f'e2e-{r}', **mqtt_login(broker, r))  # own identities
             for r in ('robot1', 'robot2')}
    for link in links.values():
        link.start()
        link.wait_connected(10)
    headers = {r: HeaderSource('KPAI', r) for r in ('robot1', 'robot2')}
    t0 = time.time()
    while not stop.is_set():
        t = time.time() - t0
        for i, (name, h) in enumerate(headers.items()):
            snap = RobotSnapshot(
                x=2.0 + 8 * i + 0.8 * t, y=3.0 + 4 * i, theta=0.2 * t, vx=0.8,
                position_initialized=True, battery_pct=85.0 - 40 * i,
                safety=SafetyHealth(state=i, speed_limit=1.0 - 0.5 * i, reason='test',
                                    stamp=time.time()),
                inference=InferenceHealth(backend='onnxruntime', device='CPU', fps=14.5,
                                          fallback_active=bool(i), stamp=time.time()))
            link = links[name]
            link.publish(f'uagv/v2/KPAI/{name}/state',
                         build_state(h, OrderTracker(), snap).to_json())
            link.publish(f'uagv/v2/KPAI/{name}/visualization',
                         build_visualization(h, snap).to_json(), qos=0)
        stop.wait(0.2)
    for link in links.values():
        link.stop()


def test_dashboard_shows_moving_robots(tmp_path):
    with fleet_broker(('robot1', 'robot2')) as broker:
        port = free_port()
        broker_url, mqtt_env = server_mqtt(broker)
        server = ManagedProcess(
            [sys.executable, '-m', 'kpai_fleet.cli', 'serve', '--db',
             f'sqlite:///{tmp_path}/fleet.db', '--broker', broker_url, '--port', str(port),
             '--config', str(Path(__file__).resolve().parents[2] / 'src' / 'kpai_fleet' /
                             'config' / 'fleet_server.yaml')],
            env=dict(ros_env(0), KPAI_FLEET_PASSWORD='dash-pw', **mqtt_env), name='fleet_server')
        stop = threading.Event()
        pub = threading.Thread(target=publish_fleet, args=(broker, stop), daemon=True)
        browser = None
        try:
            base = f'http://127.0.0.1:{port}'
            wait_until(lambda: _ok(base + '/login'), timeout=20, what='fleet server')
            pub.start()
            browser = Browser(tmp_path)
            browser.call('Page.enable')
            browser.login(base, 'admin', 'dash-pw')
            poses = 'JSON.stringify([...document.querySelectorAll("g.robot")].map(' \
                    'g => [g.dataset.robot, +g.dataset.x, +g.dataset.y]))'
            first = wait_until(lambda: _two(browser.eval(poses)), timeout=20,
                               what='both robots drawn')
            time.sleep(1.5)
            second = _two(browser.eval(poses))
            assert {r[0] for r in first} == {'robot1', 'robot2'}
            moved = {a[0]: b[1] - a[1] for a, b in zip(first, second, strict=True)}
            assert all(d > 0.3 for d in moved.values()), f'robots did not move: {first} {second}'
            text = browser.eval('document.getElementById("robot-list").innerText')
            assert 'robot1' in text and 'robot2' in text
            # robot2's panel: perception on the CPU fallback, safety WARNING (not a stop)
            browser.eval('document.querySelector(\'#robot-list [data-robot="robot2"]\').click()')
            panel = wait_until(lambda: browser.eval(
                'document.getElementById("panel-body").innerText'), timeout=5,
                what="robot2's panel")
            assert 'onnxruntime' in panel and 'kpai.npuFallback' in panel
            assert 'PROTECTIVE_STOP' not in panel and 'WARNING' in panel
            assert browser.eval('document.getElementById("status").textContent') == 'live'
            png = base64.b64decode(browser.call('Page.captureScreenshot', format='png')['data'])
            assert png.startswith(b'\x89PNG') and len(png) > 10_000
            SCREENSHOT.parent.mkdir(exist_ok=True)
            SCREENSHOT.write_bytes(png)
        finally:
            stop.set()
            if browser is not None:
                browser.close()
            assert server.stop() in (0, -2), server.output()


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _two(raw: object) -> list | None:
    robots = sorted(json.loads(str(raw or '[]')))
    return robots if len(robots) == 2 and all(r[1] == r[1] for r in robots) else None
