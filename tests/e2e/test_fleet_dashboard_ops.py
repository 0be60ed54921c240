"""The operator's dashboard in headless Chromium on a simulated fleet (no ROS, no MQTT).

Tasks from the form run to completion (one after a vehicle refused it, with the reason shown),
another is cancelled; a robot is paused and resumed from its panel; alarms are acknowledged;
a viewer cannot write; Korean and English; no horizontal scrolling at 1366x768 and 390x844.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from fleet_sim import LiveFleet, make_service
from kpai_browser import CHROMIUM, Browser
from kpai_fleet.node_health import NodeHealth
from kpai_testing import wait_until

DOCS = Path(__file__).resolve().parents[2] / 'docs'

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason='Debian chromium not installed')


@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    svc = make_service(tmp_path_factory.mktemp('fleet'), dashboard_password='op-pw',
                       viewer_password='view-pw', api_token='tok')
    live = LiveFleet(svc)
    live.add_kpai('robot1', 6.0, 2.0, speed=3.0, handling_s=0.5)  # nearest to rack_1
    live.add_kpai('robot2', 12.0, 6.0, speed=1.0, handling_s=0.5)
    live.add_kpai('robot3', 4.0, 10.0, nodes=NodeHealth(
        missing=('kpai_perception',), critical=frozenset({'kpai_perception'})))  # FATAL
    live.add_foreign('agv7', x=7.0, y=4.0, station_types=('floor',))  # refuses rack pickups
    live.start()
    yield live
    live.stop()


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path)
    b.call('Network.enable')
    yield b
    b.close()


def failed_task(fleet: LiveFleet) -> str:
    """Ask (by API token) for a task only robot3, which has a FATAL error, may do: it fails."""
    r = httpx.post(fleet.base + '/api/tasks', headers={'Authorization': 'Bearer tok'},
                   json={'pickup': 'dock_a', 'dropoff': 'outbound', 'robot': 'robot3'})
    assert r.status_code == 409 and 'fatal error' in r.text, r.text
    return fleet.svc.store.tasks(limit=1)[0]['task_id']


def view(b: Browser, width: int, height: int) -> None:
    b.call('Emulation.setDeviceMetricsOverride', width=width, height=height,
           deviceScaleFactor=1, mobile=width < 600)


def ev(b: Browser, expr: str) -> object:
    """Evaluate in the page; raise if the expression throws (Browser.eval returns None)."""
    res = b.call('Runtime.evaluate', expression=expr, returnByValue=True)
    if 'exceptionDetails' in res:
        details = res['exceptionDetails']
        raise AssertionError(f'{expr}: {details.get("exception", {}).get("description", details)}')
    return res['result'].get('value')


def js(b: Browser, expr: str, timeout: float = 20.0, what: str = '') -> object:
    """Wait until the expression is truthy in the page; return its value.

    (A DOM node comes back as {}, which is falsy here: test nodes with !!.) An expression that
    throws counts as not yet (right after a navigation the document may not exist yet); the
    last error is named on a timeout.
    """
    last: list[str] = []

    def value() -> object:
        try:
            return ev(b, expr)
        except AssertionError as err:
            last[:] = [str(err)]
            return None
    try:
        return wait_until(value, timeout=timeout, what=what or expr)
    except TimeoutError as err:
        raise TimeoutError(f'{err}; last error: {last[0] if last else "none"}') from None


def text(b: Browser, selector: str) -> str:
    return str(ev(b, f'document.querySelector({json.dumps(selector)})?.innerText || ""'))


def task_li(task_id: str) -> str:
    return f'document.querySelector(\'li.task[data-task="{task_id}"]\')'


def request_task(b: Browser, pickup: str, dropoff: str, robot: str = '') -> str:
    """Fill in and send the task form; return the new task's id from the confirmation."""
    ev(b, f'(() => {{ const f = document.getElementById("task-form").elements;'
           f'f.pickup.value = "{pickup}"; f.dropoff.value = "{dropoff}";'
           f'f.robot.value = "{robot}"; document.getElementById("task-submit").click(); }})()')
    msg = str(js(b, 'document.querySelector("#task-msg.ok")?.textContent.includes("task-") && '
                 'document.getElementById("task-msg").textContent', what='task confirmation'))
    return msg.split('Task ')[1].split(' ')[0]


def no_overflow(b: Browser) -> tuple[int, int]:
    sizes = json.loads(str(ev(b,
        'JSON.stringify([document.documentElement.scrollWidth, innerWidth])')))
    assert sizes[0] <= sizes[1], f'horizontal overflow: scrollWidth {sizes[0]} > {sizes[1]}'
    return sizes[0], sizes[1]


def test_operator_task_completes_after_a_rejection_and_another_is_cancelled(fleet, browser):
    b = browser
    view(b, 1366, 768)
    b.login(fleet.base, 'admin', 'op-pw')
    js(b, 'document.querySelectorAll("g.robot").length === 4', what='four robots on the map')
    assert ev(b, 'document.getElementById("task-form").hidden') is False
    # agv7 is nearest to rack_1 but refuses rack pickups: the task goes to a KPAI robot
    done = request_task(b, 'rack_1', 'outbound')
    js(b, f'{task_li(done)}?.dataset.status === "completed"', timeout=40,
       what='the task completed')
    card = text(b, f'li.task[data-task="{done}"]')
    assert 'rack_1 → outbound' in card and 'robot1' in card
    ev(b, f'{task_li(done)}.querySelector("[data-expand]").click()')
    attempts = str(js(b, f'{task_li(done)}.querySelector(".attempts")?.innerText',
                      what='the order attempts'))
    assert 'Acme:agv7' in attempts and 'rejected' in attempts and 'stationType' in attempts
    assert 'completed' in attempts
    # the KPIs count it (the window switch reloads them at once)
    ev(b, '(() => { const s = document.getElementById("kpi-window"); s.value = "86400";'
          's.dispatchEvent(new Event("change")); })()')
    js(b, 'parseInt(document.querySelectorAll("#kpis .tile b")[3]?.textContent) >= 1',
       what='the completed task in the KPIs')
    assert ev(b, '[...document.querySelectorAll("#kpis .kbar")].some(r => +r.getAttribute('
                 '"height") > 0)')
    assert ev(b, 'document.querySelectorAll("#kpis .util li").length') == 4
    # another task to robot2, cancelled while it runs
    cancel = request_task(b, 'rack_2', 'dock_a', robot='robot2')
    js(b, f'{task_li(cancel)}?.dataset.status === "running"', what='the task running')
    assert 'robot2' in text(b, f'li.task[data-task="{cancel}"]')
    js(b, '!!document.querySelector(\'#paths polyline[data-robot="robot2"]\')',
       what="robot2's path on the map")
    ev(b, f'{task_li(cancel)}.querySelector("[data-cancel]").click()')
    js(b, f'{task_li(cancel)}?.dataset.status === "cancelled"', what='the task cancelled')
    assert 'cancelled by admin' in text(b, f'li.task[data-task="{cancel}"]')
    assert ev(b, f'{task_li(cancel)}.querySelector("[data-cancel]")') is None
    order = fleet.svc.task(cancel)['orders'][0]['order_id']
    wait_until(lambda: fleet.svc.task(cancel)['orders'][0]['status'] == 'cancelled',
               timeout=10, what=f'robot2 cancelled order {order}')
    no_overflow(b)


def test_robot_panel_pause_resume_errors_and_alarms(fleet, browser):
    b = browser
    view(b, 1366, 768)
    b.login(fleet.base, 'admin', 'op-pw')
    js(b, 'document.querySelectorAll("g.robot").length === 4', what='four robots on the map')
    # robot3 lost a critical node (the agent's heartbeat): a FATAL error and an alarm
    ev(b, 'document.querySelector(\'g.robot[data-robot="robot3"]\')'
           '.dispatchEvent(new MouseEvent("click", {bubbles: true}))')
    js(b, '!document.getElementById("panel").hidden', what='the panel open')
    errors = str(js(b, 'document.querySelector("#panel-body .errors")?.innerText',
                    what='the errors'))
    assert 'kpai.nodeMissing' in errors and 'kpai_perception' in errors
    assert ev(b, 'document.querySelector("#panel-body .errors .level.FATAL") !== null')
    body = text(b, '#panel-body')
    assert 'onnxruntime' in body and 'NPU' in body and 'CLEAR' in body
    alarm = 'document.querySelector(\'#alarms li.alarm[data-kind="fatal_error"]\')'
    assert 'robot3' in str(js(b, f'{alarm}?.innerText', what='the fatal alarm'))
    assert ev(b, 'document.getElementById("alarm-badge").hidden') is False
    ev(b, f'{alarm}.querySelector("[data-ack]").click()')
    js(b, f'{alarm} === null', what='the alarm acknowledged')
    # pause and resume robot2 on its way
    task = request_task(b, 'rack_2', 'outbound', robot='robot2')
    js(b, f'{task_li(task)}?.dataset.status === "running"', what='the task running')
    ev(b, 'document.querySelector(\'#robot-list [data-robot="robot2"]\').click()')
    js(b, 'document.getElementById("panel-title").textContent === "robot2"')
    assert task in text(b, '#panel-body')
    ev(b, 'document.querySelector(\'#panel-actions [data-action="pause"]\').click()')
    js(b, '!!document.querySelector("#panel-body .pill.paused")', what='robot2 paused')
    assert ev(b, 'document.querySelector(\'g.robot[data-robot="robot2"]\')'
                  '.classList.contains("paused")')
    ev(b, 'document.querySelector(\'#panel-actions [data-action="resume"]\').click()')
    js(b, '!document.querySelector("#panel-body .pill.paused")', what='robot2 resumed')
    js(b, f'{task_li(task)}?.dataset.status === "completed"', timeout=60,
       what='the resumed task completed')
    ev(b, 'document.getElementById("panel-close").click()')
    assert ev(b, 'document.getElementById("panel").hidden') is True


def test_camera_thumbnail_while_the_panel_is_open_tracked_objects_and_fields(fleet, browser):
    import time

    b = browser
    robots = {v.serial: v for v in fleet.kpai}
    # no panel open anywhere (earlier tests' leases run out): no robot makes a thumbnail
    wait_until(lambda: not any(v.core.camera.active(time.monotonic()) for v in fleet.kpai),
               timeout=15, what='no camera lease')
    before = {name: v.frames_encoded for name, v in robots.items()}
    view(b, 1366, 768)
    b.login(fleet.base, 'viewer', 'view-pw')  # reading is enough to watch the camera
    js(b, 'document.querySelectorAll("g.robot").length === 4', what='four robots on the map')
    # tracked people and objects with their class labels, safety fields around the robots
    js(b, 'document.querySelectorAll(\'#objects g.tracked.person[data-robot="robot1"]\')'
          '.length === 1', what="robot1's tracked person on the map")
    labels = str(ev(b, '[...document.querySelectorAll("#objects text")]'
                        '.map(e => e.textContent).join(" ")'))
    assert 'person' in labels and 'pallet' in labels
    assert ev(b, 'document.querySelectorAll(\'g.robot[data-robot="robot1"] .field\').length') == 2
    assert ev(b, 'document.querySelectorAll(\'g.robot[data-robot="agv7"] .field\').length') == 0
    ev(b, 'document.querySelector(\'#robot-list [data-robot="robot1"]\').click()')
    width = js(b, 'document.getElementById("camera-img").naturalWidth', timeout=15,
               what="robot1's camera thumbnail loaded")
    assert width == 320 and ev(b, 'document.getElementById("camera-img").naturalHeight') == 240
    assert robots['robot1'].frames_encoded > before['robot1']
    # the thumbnail keeps coming (about 1 Hz): a newer image replaces it
    first = ev(b, 'document.getElementById("camera-img").src')
    js(b, f'document.getElementById("camera-img").src !== {json.dumps(first)} && '
          'document.getElementById("camera-img").naturalWidth > 0', timeout=10,
       what='the next thumbnail')
    ev(b, 'document.getElementById("panel-close").click()')
    assert ev(b, 'document.getElementById("camera-img").hidden') is True
    # another maker's vehicle has no KPAI camera: said so, no lease asked for
    ev(b, 'document.querySelector(\'#robot-list [data-robot="Acme:agv7"]\').click()')
    js(b, 'document.getElementById("camera-note").textContent.startsWith("none")',
       what="agv7's panel without a camera")
    ev(b, 'document.getElementById("panel-close").click()')
    # the panel closed: the lease runs out and robot1 stops; the others never started
    wait_until(lambda: not robots['robot1'].core.camera.active(time.monotonic()), timeout=15,
               what="robot1's lease to end")
    assert all(robots[n].frames_encoded == before[n] for n in ('robot2', 'robot3'))
    assert fleet.svc.camera.watched() == []
    # the map ages the objects out when their robot stops sending them
    robots['robot1'].track_person = False
    js(b, 'document.querySelectorAll(\'#objects g.tracked[data-robot="robot1"]\').length === 0',
       timeout=10, what="robot1's objects aged out")
    robots['robot1'].track_person = True


def test_viewer_sees_but_cannot_write(fleet, browser):
    b = browser
    failed = failed_task(fleet)
    view(b, 1366, 768)
    b.login(fleet.base, 'viewer', 'view-pw')
    js(b, 'document.querySelectorAll("g.robot").length === 4', what='four robots on the map')
    js(b, f'{task_li(failed)}?.dataset.status === "failed"', what='the failed task')
    assert 'robot3: fatal error' in text(b, f'li.task[data-task="{failed}"] .reason')
    assert 'viewer' in text(b, '#who')
    assert ev(b, 'document.getElementById("task-form").hidden') is True
    assert ev(b, 'document.getElementById("viewer-note").hidden') is False
    assert ev(b, 'document.querySelectorAll("[data-cancel], [data-ack]").length') == 0
    ev(b, 'document.querySelector(\'#robot-list [data-robot="robot1"]\').click()')
    js(b, '!document.getElementById("panel").hidden')
    assert ev(b, 'document.getElementById("panel-actions").hidden') is True
    # the API refuses the viewer even with its own session's CSRF token
    ev(b, 'window.__post = null; fetch("/api/session").then(r => r.json()).then(s => '
           'fetch("/api/tasks", {method: "POST", headers: {"Content-Type": "application/json",'
           '[s.csrf_header]: s.csrf}, body: JSON.stringify({pickup: "rack_1", '
           'dropoff: "outbound"})})).then(async r => { window.__post = [r.status, '
           '(await r.json()).detail]; })')
    status, detail = js(b, 'window.__post', what='the POST answer')
    assert status == 403 and 'viewer' in detail


def test_korean_english_and_layout_at_desktop_and_phone_sizes(fleet, browser):
    b = browser
    failed = failed_task(fleet)
    # for the pictures: robot2 on its way, and agv7's connection lost (the broker's last will)
    r = httpx.post(fleet.base + '/api/tasks', headers={'Authorization': 'Bearer tok'},
                   json={'pickup': 'rack_2', 'dropoff': 'dock_a', 'robot': 'robot2'})
    assert r.status_code == 201, r.text
    with fleet.bus.lock:
        fleet.foreign[0].send('connection', {'connectionState': 'CONNECTIONBROKEN'})
        fleet.bus.run()
    b.call('Network.setExtraHTTPHeaders', headers={'Accept-Language': 'ko-KR,ko;q=0.9,en;q=0.5'})
    view(b, 1366, 768)
    b.login(fleet.base, 'admin', 'op-pw')
    js(b, 'document.documentElement.lang === "ko"', what='Korean from Accept-Language')
    js(b, 'document.querySelectorAll("g.robot").length === 4')
    js(b, f'{task_li(failed)}?.dataset.status === "failed"', what='the failed task')
    assert text(b, '#task-box h2') == '작업' and text(b, '#task-submit') == '요청'
    assert text(b, 'header h1') == 'KPAI 플릿'
    assert '로봇 4대' in text(b, '#summary')
    assert text(b, f'li.task[data-task="{failed}"] .pill') == '실패'
    lost = '#alarms li.alarm[data-kind="connection_lost"]'
    assert '연결 끊김' in str(js(b, f"document.querySelector('{lost}')?.innerText",
                                 what='the connection alarm'))
    js(b, '!!document.querySelector(\'#paths polyline[data-robot="robot2"]\')',
       what="robot2's path")
    statuses = str(ev(b, '[...document.querySelectorAll("#tasks .pill")]'
                          '.map(e => e.textContent).join(" ")'))
    assert not any(w in statuses for w in ('failed', 'completed', 'cancelled'))
    # times from Intl in Korean (오전/오후)
    assert any(w in text(b, '#tasks') for w in ('오전', '오후'))
    ev(b, 'document.querySelector("[data-expand]").click()')
    js(b, '!!document.querySelector(".attempts")', what='the attempts')
    no_overflow(b)
    # for the pictures: robot2's panel with its camera, tracked objects on the map
    ev(b, 'document.querySelector(\'#robot-list [data-robot="robot2"]\').click()')
    js(b, 'document.getElementById("camera-img").naturalWidth > 0', timeout=15,
       what="robot2's camera thumbnail")
    js(b, 'document.querySelectorAll("#objects g.tracked").length >= 4', what='tracked objects')
    shots = {'ko': b.screenshot()}
    ev(b, '(() => { const s = document.getElementById("lang"); s.value = "en";'
           's.dispatchEvent(new Event("change")); })()')
    js(b, 'document.documentElement.lang === "en"', what='English')
    js(b, 'document.querySelector("#task-box h2").textContent === "Tasks"')
    assert text(b, '#task-submit') == 'Request' and '4 robots' in text(b, '#summary')
    labels = str(ev(b, '[...document.querySelectorAll("#objects text")].map(e => e.textContent)'
                        '.join(" ")'))
    assert 'person' in labels and '사람' not in labels  # the map's labels switched too
    js(b, '!!document.querySelector(".attempts")', what='the attempts')
    no_overflow(b)
    shots['en'] = b.screenshot()
    # the choice is remembered over the Accept-Language default
    b.open(fleet.base + '/')
    js(b, 'document.querySelector("#task-box h2")?.textContent === "Tasks"')
    js(b, 'document.querySelectorAll("#robot-list li.robot-card").length === 4',
       what='the robot list after reloading')
    for width, height in ((390, 844), (1366, 768)):
        view(b, width, height)
        for lang in ('en', 'ko'):
            ev(b, f'(() => {{ const s = document.getElementById("lang"); s.value = "{lang}";'
                   's.dispatchEvent(new Event("change")); })()')
            js(b, f'document.documentElement.lang === "{lang}"')
            ev(b, 'document.querySelector(\'#robot-list [data-robot="robot3"]\').click()')
            js(b, '!document.getElementById("panel").hidden', what=f'the panel at {width} px')
            no_overflow(b)
            ev(b, 'document.getElementById("panel-close").click()')
            no_overflow(b)
    with fleet.bus.lock:
        fleet.foreign[0].send('connection', {'connectionState': 'ONLINE'})
        fleet.bus.run()
    for lang, png in shots.items():
        assert png.startswith(b'\x89PNG') and len(png) > 20_000
        if os.environ.get('KPAI_UPDATE_SCREENSHOT') == '1':
            (DOCS / f'dashboard-{lang}.png').write_bytes(png)
