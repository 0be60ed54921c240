"""ROS tests of single perception nodes: safety monitor, object localizer, annotator."""

from __future__ import annotations

import math

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TransformStamped
from kpai_perception.geometry import BODY_FROM_OPTICAL, CameraModel, Transform, camera_pose
from kpai_perception.image_conv import image_to_rgb8, numpy_to_image
from kpai_perception.ros_conv import sec_to_stamp
from nav_msgs.msg import Odometry
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float64
from tf2_msgs.msg import TFMessage

from kpai_msgs.msg import SafetyStatus, Track, TrackArray

CAM = CameraModel.ideal(320, 240, 1.2)


def _person(track_id: int, x: float, y: float, *, cls: str = 'person') -> Track:
    t = Track(id=track_id, class_id=cls, score=0.9, has_position=True)
    t.position.x, t.position.y = x, y
    return t


def test_safety_monitor_stop_and_fail_safe(graph) -> None:
    proc = graph.start_node('kpai_perception', 'safety_monitor', '-p', 'input_timeout:=0.4',
                            '-p', 'fault_speed:=0.1', '-p', 'max_speed:=1.5')
    node = graph.node
    statuses: list[SafetyStatus] = []
    limits: list[float] = []
    node.create_subscription(SafetyStatus, 'safety/status', statuses.append, QoSProfile(depth=100))
    node.create_subscription(Float64, 'safety/speed_limit', lambda m: limits.append(m.data),
                             QoSProfile(depth=100))
    diags: list = []
    node.create_subscription(DiagnosticArray, '/diagnostics',
                             lambda m: diags.extend(m.status), QoSProfile(depth=50))
    objects = node.create_publisher(TrackArray, 'tracked_objects', QoSProfile(depth=10))
    odom = node.create_publisher(Odometry, 'odom', QoSProfile(depth=10))
    graph.spin_until(lambda: statuses and limits, timeout=15, what='status and limit')
    assert statuses[-1].state == SafetyStatus.FAULT and statuses[-1].inputs_stale
    assert limits[-1] == 0.1

    people: list[Track] = []
    feeding = {'on': True}

    def feed() -> None:
        if not feeding['on']:
            return
        msg = TrackArray()
        msg.header.frame_id = 'base_link'
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.tracks = list(people)
        objects.publish(msg)
        o = Odometry()
        o.twist.twist.linear.x = 0.5
        odom.publish(o)

    node.create_timer(0.05, feed)
    graph.spin_until(lambda: statuses[-1].state == SafetyStatus.CLEAR and limits[-1] == 1.5,
                     timeout=5, what='CLEAR')
    people.append(_person(1, 5.0, 0.0, cls='pallet'))  # not a person: ignored
    people.append(_person(2, 0.8, 0.1))                 # 0.8 m ahead: protective field
    graph.spin_until(lambda: statuses[-1].state == SafetyStatus.PROTECTIVE_STOP, timeout=5,
                     what='STOP')
    s = statuses[-1]
    assert s.people_in_protective == 1 and s.speed_limit == 0.0
    assert math.isclose(s.nearest_person_distance, 0.45, abs_tol=1e-6)
    graph.spin_until(lambda: limits[-1] == 0.0, timeout=2, what='speed limit 0')
    people.clear()
    people.append(_person(2, math.nan, 0.0))  # bad input: a person somewhere unknown
    graph.spin_until(lambda: statuses[-1].state == SafetyStatus.FAULT, timeout=5,
                     what='FAULT on a non-finite person position')
    s = statuses[-1]
    assert not s.inputs_stale and 'non-finite' in s.reason and s.speed_limit == 0.1
    people.clear()
    graph.spin_until(lambda: statuses[-1].state == SafetyStatus.CLEAR, timeout=5,
                     what='CLEAR after hold time')
    feeding['on'] = False  # inputs stop: fail safe after input_timeout
    graph.spin_until(lambda: statuses[-1].state == SafetyStatus.FAULT, timeout=3, what='FAULT')
    s = statuses[-1]
    assert s.inputs_stale and s.speed_limit == 0.1 and 'tracked objects' in s.reason
    n = len(diags)
    graph.spin_until(lambda: any(d.name == 'safety_monitor' and d.level == b'\x01'
                                 for d in diags[n:]), timeout=3, what='WARN diagnostics')
    stops = [kv.value for d in diags if d.name == 'safety_monitor' for kv in d.values
             if kv.key == 'protective_stops']
    assert stops[-1] == '1'
    assert proc.alive()


def _static_tf() -> TFMessage:
    base_from_cam_link = Transform.create((0.28, 0.0, 0.6), (1, 0, 0, 0))
    out = TFMessage()
    for parent, child, tf in (('map', 'base_link', Transform.create((10, 5, 0), (1, 0, 0, 0))),
                              ('base_link', 'camera_link', base_from_cam_link),
                              ('camera_link', 'camera_optical', BODY_FROM_OPTICAL)):
        m = TransformStamped()
        m.header.frame_id, m.child_frame_id = parent, child
        t, q = tf.translation, tf.rotation
        m.transform.translation.x, m.transform.translation.y, m.transform.translation.z = (
            float(v) for v in t)
        (m.transform.rotation.w, m.transform.rotation.x, m.transform.rotation.y,
         m.transform.rotation.z) = (float(v) for v in q)
        out.transforms.append(m)
    return out


def _camera_info(k: list[float]) -> CameraInfo:
    info = CameraInfo(width=320, height=240, distortion_model='plumb_bob')
    info.k = k
    info.d = [0.0] * 5
    return info


def test_localizer_positions_and_bad_camera_info(graph) -> None:
    proc = graph.start_node('kpai_perception', 'object_localizer', '-p',
                            'robot_frame:=base_link')
    node = graph.node
    in_map: list[TrackArray] = []
    in_base: list[TrackArray] = []
    node.create_subscription(TrackArray, 'tracked_objects', in_map.append, QoSProfile(depth=50))
    node.create_subscription(TrackArray, 'tracked_objects/robot', in_base.append,
                             QoSProfile(depth=50))
    tracks_pub = node.create_publisher(TrackArray, 'tracks', QoSProfile(depth=10))
    info_pub = node.create_publisher(CameraInfo, 'camera/camera_info', QoSProfile(depth=10))
    static = node.create_publisher(TFMessage, '/tf_static', QoSProfile(
        depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    static.publish(_static_tf())
    graph.spin_until(lambda: tracks_pub.get_subscription_count() and
                     info_pub.get_subscription_count(), timeout=15, what='localizer')
    bad = list(CAM.k.ravel())
    bad[0] = math.nan
    # a person 4 m ahead of base_link, 0.5 m to the left: project its foot point
    base_from_optical = camera_pose(0.28, 0.0, 0.6)
    foot = CAM.project(base_from_optical.inverse().apply(np.array([[4.0, 0.5, 0.0]])))[0]
    arr = TrackArray()
    arr.header.frame_id = arr.camera_frame_id = 'camera_optical'
    arr.header.stamp = sec_to_stamp(100.0)
    person = Track(id=7, class_id='person', score=0.8)
    person.bbox.center.position.x, person.bbox.center.position.y = foot[0], foot[1] - 30.0
    person.bbox.size_x, person.bbox.size_y = 24.0, 60.0
    outside = Track(id=8, class_id='box', score=0.8)
    outside.bbox.center.position.x, outside.bbox.center.position.y = 5000.0, 5000.0
    outside.bbox.size_x = outside.bbox.size_y = 10.0
    arr.tracks = [person, outside]

    def send_until(cond, info: CameraInfo, what: str) -> None:
        count = [0]

        def step() -> bool:  # camera_info is best-effort: repeat it, as a driver would
            count[0] += 1
            if count[0] % 10 == 1:
                info_pub.publish(info)
                tracks_pub.publish(arr)
            return cond()
        graph.spin_until(step, timeout=10, what=what)

    send_until(lambda: 'camera_info rejected' in proc.output(), _camera_info(bad),
               'NaN camera_info rejected')
    assert not in_map and proc.alive()
    send_until(lambda: in_map and in_base, _camera_info(list(CAM.k.ravel())),
               'tracked objects')
    base = {t.id: t for t in in_base[-1].tracks}
    assert in_base[-1].header.frame_id == 'base_link'
    assert base[7].has_position and not base[8].has_position
    np.testing.assert_allclose([base[7].position.x, base[7].position.y, base[7].position.z],
                               [4.0, 0.5, 0.0], atol=1e-6)
    world = {t.id: t for t in in_map[-1].tracks}[7]
    assert in_map[-1].header.frame_id == 'map'
    np.testing.assert_allclose([world.position.x, world.position.y], [14.0, 5.5], atol=1e-6)
    assert (in_map[-1].header.stamp.sec, in_map[-1].camera_frame_id) == (100, 'camera_optical')


def test_annotator_draws_on_images(graph) -> None:
    graph.start_node('kpai_perception', 'annotator', '-p', 'max_rate:=0.0')
    node = graph.node
    out: list[Image] = []
    node.create_subscription(Image, 'camera/image_annotated', out.append, QoSProfile(depth=10))
    img_pub = node.create_publisher(Image, 'camera/image_raw', QoSProfile(depth=10))
    trk_pub = node.create_publisher(TrackArray, 'tracks', QoSProfile(depth=10))
    graph.spin_until(lambda: img_pub.get_subscription_count() and
                     trk_pub.get_subscription_count(), timeout=15, what='annotator')
    arr = TrackArray()
    t = Track(id=3, class_id='person', score=0.9)
    t.bbox.center.position.x, t.bbox.center.position.y = 160.0, 120.0
    t.bbox.size_x, t.bbox.size_y = 40.0, 80.0
    arr.tracks = [t]
    frame = np.full((240, 320, 3), 50, np.uint8)
    counter = [0]

    def step() -> bool:
        counter[0] += 1
        if counter[0] % 10 == 1:
            trk_pub.publish(arr)
            img_pub.publish(numpy_to_image(frame, 'rgb8'))
            bad = numpy_to_image(frame, 'rgb8')
            bad.encoding = 'weird16'  # unknown encoding: dropped and counted, no crash
            img_pub.publish(bad)
        return any(image_to_rgb8(m)[120, 140].tolist() != [50, 50, 50] for m in out)

    graph.spin_until(step, timeout=10, what='annotated image with the box')
    rgb = image_to_rgb8(out[-1])
    assert rgb[120, 160].tolist() == [50, 50, 50]  # inside the box untouched


def test_fiducial_node_publishes_tag_pose(graph) -> None:
    import cv2
    from kpai_perception.fiducials import tag_bitmap
    from vision_msgs.msg import Detection3DArray

    graph.start_node('kpai_perception', 'fiducials', '-p', 'tag_size:=0.2',
                     '-p', 'max_rate:=20.0')
    node = graph.node
    got: list[Detection3DArray] = []
    tfs: list[TFMessage] = []
    node.create_subscription(Detection3DArray, 'fiducials', got.append, QoSProfile(depth=10))
    node.create_subscription(TFMessage, '/tf', tfs.append, QoSProfile(depth=10))
    img_pub = node.create_publisher(Image, 'camera/image_raw', QoSProfile(depth=10))
    info_pub = node.create_publisher(CameraInfo, 'camera/camera_info', QoSProfile(depth=10))
    # a fronto-parallel tag 1.5 m ahead: its 10 cells (8 black + ring) span 10/8 * 0.2 m
    cam = CameraModel.ideal(640, 480, 1.0)
    f = cam.k[0, 0]
    cells = 10
    px = int(round(f * 0.2 / 8 * cells / 1.5))
    tag = cv2.resize(tag_bitmap(5), (px, px), interpolation=cv2.INTER_NEAREST)
    img = np.full((480, 640), 128, np.uint8)
    y0, x0 = 240 - px // 2, 320 - px // 2
    img[y0:y0 + px, x0:x0 + px] = tag
    frame = numpy_to_image(img, 'mono8')
    frame.header.frame_id = 'camera_optical'
    info = CameraInfo(width=640, height=480)
    info.k = list(cam.k.ravel())
    counter = [0]

    def step() -> bool:
        counter[0] += 1
        if counter[0] % 10 == 1:
            info_pub.publish(info)
            img_pub.publish(frame)
        return any(m.detections for m in got)

    graph.spin_until(step, timeout=15, what='tag detection')
    det = next(m for m in got if m.detections).detections[0]
    assert det.results[0].hypothesis.class_id == 'tag36h11:5'
    p = det.results[0].pose.pose.position
    assert abs(p.z - 1.5) < 0.04 and abs(p.x) < 0.03 and abs(p.y) < 0.03
    graph.spin_until(lambda: any(t.child_frame_id == 'tag36h11_5' for m in tfs
                                 for t in m.transforms), timeout=5, what='tag frame on /tf')


def test_annotator_subscribes_inputs_only_while_watched(graph) -> None:
    graph.start_node('kpai_perception', 'annotator')
    node = graph.node
    img_pub = node.create_publisher(Image, 'camera/image_raw', QoSProfile(depth=10))
    graph.spin_until(lambda: node.count_publishers('camera/image_annotated') > 0, timeout=15,
                     what='annotator up')
    assert img_pub.get_subscription_count() == 0  # nobody watches: no camera subscription
    sub = node.create_subscription(Image, 'camera/image_annotated', lambda m: None,
                                   QoSProfile(depth=1))
    graph.spin_until(lambda: img_pub.get_subscription_count() > 0, timeout=15,
                     what='camera subscribed once watched')
    node.destroy_subscription(sub)
    graph.spin_until(lambda: img_pub.get_subscription_count() == 0, timeout=15,
                     what='camera dropped once unwatched')
