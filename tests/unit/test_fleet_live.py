"""KPAI live topics: camera thumbnails by lease, tracked objects, their bounds and the ACL."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from fleet_sim import Bus, SimKpai, make_service
from kpai_fleet.agent_core import AgentConfig, AgentCore
from kpai_fleet.credentials import Identity
from kpai_fleet.errors import ValidationRejected
from kpai_fleet.live_share import CameraLease, ObjectsThrottle, encode_thumbnail, image_array
from kpai_fleet.server.app import create_app
from kpai_fleet.server.live import CameraHub, TrackedObjects
from kpai_fleet.vda5050.kpai_ext import (
    MAX_OBJECTS,
    CameraRequest,
    TrackedObject,
    build_camera_request,
    build_objects,
    jpeg_size,
    parse_camera_request,
    parse_objects,
)

AUTH = {'Authorization': 'Bearer tok'}


def jpeg(w: int = 320, h: int = 240) -> bytes:
    return encode_thumbnail(np.full((h, w, 3), 90, np.uint8), max_width=w)


# -- payloads ------------------------------------------------------------------------------
def test_camera_request_round_trip_and_clamps():
    req = parse_camera_request(build_camera_request(CameraRequest(4.0, 1.0, 320)))
    assert req == CameraRequest(4.0, 1.0, 320)
    wild = parse_camera_request(b'{"leaseS": 1e9, "periodS": 0.001, "maxWidth": 100000}')
    assert wild == CameraRequest(10.0, 0.5, 640)  # a lease never exceeds 10 s, >= 0.5 s apart
    for bad in (b'[]', b'{"leaseS": "5"}', b'{"leaseS": true}', b'not json',
                b'{"a": ' * 40 + b'1' + b'}' * 40, b'{"x": "' + b'a' * 2000 + b'"}',
                b'{"leaseS": NaN}', b'\xff\xfe'):
        with pytest.raises(ValidationRejected):
            parse_camera_request(bad)


def test_objects_round_trip_and_hostile_payloads():
    objs = [TrackedObject(i, 'person', 1.0 + i, 2.0, 0.1, 0.0, 0.9) for i in range(3)]
    map_id, back = parse_objects(build_objects(objs, map_id='factory', timestamp='t'))
    assert map_id == 'factory' and back == objs
    # the builder never sends more than the parser takes
    many = [TrackedObject(i, 'box', 0.0, 0.0) for i in range(MAX_OBJECTS + 5)]
    assert len(parse_objects(build_objects(many, map_id='m', timestamp='t'))[1]) == MAX_OBJECTS
    ok = {'id': 1, 'classId': 'person', 'x': 0.0, 'y': 0.0}
    for bad in ({'objects': [ok] * (MAX_OBJECTS + 1)}, {'objects': [dict(ok, x=1e300)]},
                {'objects': [dict(ok, classId='')]}, {'objects': [dict(ok, classId='x' * 33)]},
                {'objects': [dict(ok, id=-1)]}, {'objects': [dict(ok, id=True)]},
                {'objects': [dict(ok, y='1')]}, {'objects': ['x']}, {'objects': {}},
                {'mapId': 5, 'objects': []}, []):
        with pytest.raises(ValidationRejected):
            parse_objects(json.dumps(bad).encode())
    with pytest.raises(ValidationRejected):
        parse_objects(b'{"objects": []' + b' ' * 20000 + b'}')  # over the size limit


def test_jpeg_size_reads_the_frame_header_and_refuses_the_rest():
    assert jpeg_size(jpeg(320, 240)) == (320, 240)
    good = jpeg(64, 48)
    with pytest.raises(ValidationRejected, match='not a JPEG'):
        jpeg_size(b'\x89PNG' + good[4:])
    with pytest.raises(ValidationRejected, match='exceeds'):
        jpeg_size(good, max_bytes=len(good) - 1)
    with pytest.raises(ValidationRejected):
        jpeg_size(good[:20] + b'\xff\xd9')  # truncated: no frame header
    # a frame header claiming 5000 x 5000 pixels (a decompression bomb for the browser)
    i = good.index(b'\xff\xc0')
    bomb = good[:i + 5] + (5000).to_bytes(2, 'big') * 2 + good[i + 9:]
    with pytest.raises(ValidationRejected, match='5000x5000'):
        jpeg_size(bomb)


def test_image_array_encodings_and_thumbnail_size():
    h, w = 4, 5
    rgb = np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3)
    assert (image_array('rgb8', h, w, w * 3, rgb.tobytes()) == rgb).all()
    bgr = rgb[:, :, ::-1].copy()
    assert (image_array('bgr8', h, w, w * 3, bgr.tobytes()) == rgb).all()
    padded = np.zeros((h, w * 3 + 3), np.uint8)
    padded[:, :w * 3] = rgb.reshape(h, -1)
    assert (image_array('rgb8', h, w, w * 3 + 3, padded.tobytes()) == rgb).all()
    assert image_array('mono8', h, w, w, bytes(h * w)).shape == (h, w, 3)
    for enc, step, data in (('16UC1', w * 2, bytes(h * w * 2)), ('rgb8', w, rgb.tobytes()),
                            ('rgb8', w * 3, rgb.tobytes()[:-1])):
        with pytest.raises(ValidationRejected):
            image_array(enc, h, w, step, data)
    big = np.random.default_rng(1).integers(0, 255, (480, 640, 3), np.uint8)
    out = encode_thumbnail(big, max_width=320)
    assert jpeg_size(out) == (320, 240)


# -- agent side ----------------------------------------------------------------------------
def test_camera_lease_expires_and_paces_thumbnails():
    lease = CameraLease()
    assert not lease.active(0.0) and not lease.due(0.0)
    lease.renew(CameraRequest(lease_s=3.0, period_s=1.0), now=10.0)
    assert lease.due(10.0)
    lease.mark_sent(10.0)
    assert not lease.due(10.5) and lease.due(11.0)
    lease.renew(CameraRequest(lease_s=3.0, period_s=1.0), now=12.0)
    assert lease.active(14.9) and not lease.active(15.0) and not lease.due(15.5)


def test_agent_core_leases_the_camera_and_sends_objects_at_their_rate():
    sent: list[tuple[str, bytes, int, bool]] = []
    core = AgentCore(AgentConfig(serial_number='r1'), lambda *a: sent.append(a))
    assert ('uagv/v2/KPAI/r1/kpaiCameraRequest', 0) in core.subscriptions()
    core.on_message('uagv/v2/KPAI/r1/kpaiCameraRequest', b'{"leaseS": "no"}')
    assert core.counts['camera_request_rejected'] == 1
    assert not core.tracker.errors  # a KPAI request is no VDA 5050 validationError
    core._camera_request(build_camera_request(CameraRequest(5.0)), now=100.0)
    assert core.camera.active(104.0) and not core.camera.active(105.0)
    core.publish_camera(jpeg(), now=100.0)
    assert sent[-1][0] == 'uagv/v2/KPAI/r1/kpaiCamera' and sent[-1][2:] == (0, False)
    sent.clear()
    assert not core.publish_objects_if_due(now=1.0)  # nothing tracked yet
    core.update_objects([TrackedObject(7, 'person', 1.0, 2.0)], now=1.0)
    assert core.publish_objects_if_due(now=1.0)
    assert not core.publish_objects_if_due(now=1.5)  # 1 s period
    assert core.publish_objects_if_due(now=2.0)
    assert not core.publish_objects_if_due(now=5.0)  # stale: the tracker stopped
    topic, payload, qos, _ = sent[-1]
    assert topic.endswith('/kpaiObjects') and qos == 0
    assert parse_objects(payload)[1] == [TrackedObject(7, 'person', 1.0, 2.0)]


def test_objects_throttle_sends_an_empty_list_when_the_view_is_empty():
    th = ObjectsThrottle(period_s=1.0, fresh_s=2.0)
    th.update([], now=0.0)
    assert th.take(0.0) == [] and th.take(0.5) is None


# -- server side ---------------------------------------------------------------------------
def test_camera_hub_keeps_only_asked_for_bounded_thumbnails():
    asked: list[str] = []
    hub = CameraHub(lambda rid, req: asked.append(rid), max_bytes=3 * len(jpeg()))
    with pytest.raises(ValidationRejected, match='nobody asked'):
        hub.accept('r1', jpeg(), now=0.0)
    hub.want('r1', now=0.0)
    hub.want('r1', now=1.0)  # within half a lease: no second request
    hub.want('r1', now=3.0)
    assert asked == ['r1', 'r1'] and hub.watched(now=3.0) == ['r1']
    hub.accept('r1', jpeg(), now=3.1)
    assert hub.latest('r1', now=4.0).width == 320
    assert hub.latest('r1', now=9.0) is None  # older than 5 s
    with pytest.raises(ValidationRejected):
        hub.accept('r1', b'\xff\xd8\xff' + b'x' * 10, now=3.2)
    for i in range(5):  # the byte budget holds three: the oldest go
        hub.want(f'x{i}', now=4.0)
        hub.accept(f'x{i}', jpeg(), now=4.0)
    st = hub.status()
    assert st['images'] == 3 and st['evicted'] == 3 and st['bytes'] <= 3 * len(jpeg())
    assert hub.latest('r1', now=4.0) is None and hub.latest('x4', now=4.0) is not None


def test_tracked_objects_age_out():
    book = TrackedObjects(max_age_s=3.0)
    v0 = book.version
    book.accept('r1', build_objects([TrackedObject(1, 'person', 1, 2)], map_id='f',
                                    timestamp='t'), now=100.0)
    assert book.version == v0 + 1
    [o] = book.snapshot(now=101.0)
    assert o['robot_id'] == 'r1' and o['classId'] == 'person' and o['age_s'] == 1.0
    assert book.snapshot(now=103.5) == []


# -- through the service and the API ------------------------------------------------------
@pytest.fixture
def fleet(tmp_path):
    svc = make_service(tmp_path, api_token='tok')
    bus = Bus(svc)
    yield svc, bus, TestClient(create_app(svc), base_url='http://localhost')
    svc.store.close()


def test_thumbnail_only_while_someone_looks(fleet):
    svc, bus, c = fleet
    robot = SimKpai(bus, 'robot1', 1.0, 1.0)
    bus.run()
    for _ in range(5):  # nobody looks: no lease, no frame made, nothing sent
        robot.live()
        bus.run()
    assert robot.frames_encoded == 0 and not robot.core.camera.active(0.0)
    assert c.get('/api/robots/nobody/camera.jpg', headers=AUTH).status_code == 404
    assert c.get('/api/robots/robot1/camera.jpg').status_code == 401
    r = c.get('/api/robots/robot1/camera.jpg', headers=AUTH)
    assert r.status_code == 204  # the request went out; no image yet
    bus.run()  # the vehicle gets the lease
    robot.live()
    bus.run()
    r = c.get('/api/robots/robot1/camera.jpg', headers=AUTH)
    assert r.status_code == 200 and r.headers['content-type'] == 'image/jpeg'
    assert jpeg_size(r.content) == (320, 240) and r.headers['cache-control'] == 'no-store'
    assert robot.frames_encoded == 1
    # a vehicle that sends junk or floods without a lease costs a counter, nothing else
    assert not svc._on_message('uagv/v2/KPAI/robot1/kpaiCamera', b'junk')
    assert not svc._on_message('uagv/v2/KPAI/robot2/kpaiCamera', jpeg())
    assert svc.ingest.counts['rejected_live'] == 2
    assert svc.metrics()['camera']['accepted'] == 1


def test_no_camera_request_to_another_makers_vehicle(fleet):
    svc, bus, c = fleet
    svc.view.patch('Acme:agv7', manufacturer='Acme', serial_number='agv7')
    sent = []
    svc.link.publish = lambda topic, payload, **kw: sent.append(topic) or True
    r = c.get('/api/robots/Acme:agv7/camera.jpg', headers=AUTH)
    assert r.status_code == 404 and not sent


def test_objects_reach_the_api_and_the_stream(fleet):
    svc, bus, c = fleet
    robot = SimKpai(bus, 'robot1', 5.0, 5.0)
    robot.live()
    bus.run()
    objs = c.get('/api/objects', headers=AUTH).json()
    assert {o['classId'] for o in objs} == {'person', 'pallet'}
    assert all(o['robot_id'] == 'robot1' and abs(o['x'] - 5.0) < 2.5 for o in objs)
    assert not svc._on_message('uagv/v2/KPAI/robot1/kpaiObjects', b'{"objects": 5}')


def test_acl_lets_each_vehicle_use_only_its_own_live_topics():
    v = Identity('robot1', 'vehicle', 'KPAI', 'robot1').acl('uagv')
    assert 'topic write uagv/v2/KPAI/robot1/kpaiCamera' in v
    assert 'topic write uagv/v2/KPAI/robot1/kpaiObjects' in v
    assert 'topic read uagv/v2/KPAI/robot1/kpaiCameraRequest' in v
    assert not any('+' in line or '#' in line for line in v)
    s = Identity('srv', 'server').acl('uagv')
    assert 'topic write uagv/v2/+/+/kpaiCameraRequest' in s
    assert not any(line.endswith(('kpaiCamera', 'kpaiObjects')) and 'write' in line
                   for line in s)


def test_safety_fields_at_standstill_travel_in_the_factsheet(fleet):
    from kpai_fleet.vda5050.state_builder import FIELD_SETS, field_envelopes

    prot, warn = field_envelopes(0.3, 1.0)
    assert (prot.set, warn.set) == FIELD_SETS
    # the protective field reaches 0.35 + 0.3 m ahead, the warning field 1 m further
    assert max(p.x for p in prot.polygon_points) == pytest.approx(0.65)
    assert max(p.x for p in warn.polygon_points) == pytest.approx(1.65)
    assert max(p.y for p in warn.polygon_points) == pytest.approx(1.55)
    svc, bus, c = fleet
    SimKpai(bus, 'robot1', 1.0, 1.0)
    bus.run()
    fields = next(r for r in c.get('/api/robots', headers=AUTH).json()
                  if r['robot_id'] == 'robot1')['factsheet']['fields']
    assert set(fields) == {'protectiveField', 'warningField'}
    assert len(fields['protectiveField']) == 20 and fields['protectiveField'][0] == [0.65, 0.25]


def test_the_agents_field_clearances_follow_the_safety_monitors():
    from pathlib import Path

    import yaml

    src = Path(__file__).resolve().parents[2] / 'src'
    agent = yaml.safe_load((src / 'kpai_fleet/config/fleet_agent.yaml').read_text())
    perception = yaml.safe_load((src / 'kpai_perception/config/perception.yaml').read_text())
    monitor = next(v['ros__parameters'] for v in perception.values()
                   if 'protective_clearance' in v.get('ros__parameters', {}))
    params = agent['/**/fleet_agent']['ros__parameters']
    for name in ('protective_clearance', 'warning_clearance'):
        assert params[name] == monitor[name], name
    assert AgentConfig().protective_clearance == params['protective_clearance']
