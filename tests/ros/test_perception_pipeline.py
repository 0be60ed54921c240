"""Integration: video file -> camera_driver -> npu_bridge -> tracker -> localizer -> safety.

Every stage runs as its own process in namespace /robot1. The video (made here with
cv2.VideoWriter) shows a red 'person' (0.5 x 0.3 x 1.7 m box, rendered with the robot's camera
model: 320x240, hfov 1.2 rad, 0.6 m above the floor at x = 0.28 m) walking from 7 m towards
the robot at 2 m/s. The bridge runs a real ONNX model on the real onnxruntime backend: a
red-blob detector built below (mask of red pixels -> bounding box, labelled 'person'), so
detections come from the pixels, not from a script. Odometry (published by the test) says the
robot drives at 1.2 m/s, which puts the protective field's front edge 1.73 m ahead of
base_link. The test finds the first frame in which the person is inside that field (by
ground truth) and checks that a PROTECTIVE_STOP arrives within 200 ms of that frame's image
stamp; each frame carries its index as a binary code in its top-left corner.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import pytest
from geometry_msgs.msg import TransformStamped
from kpai_perception.calibration import Calibration, dump_calibration
from kpai_perception.geometry import BODY_FROM_OPTICAL, CameraModel, Transform, camera_pose
from kpai_perception.image_conv import image_to_rgb8
from kpai_perception.safety import FieldConfig
from kpai_perception.safety.fields import stopping_distance
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from nav_msgs.msg import Odometry
from onnx import TensorProto, helper, numpy_helper
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import Image
from tf2_msgs.msg import TFMessage

from kpai_msgs.msg import SafetyStatus, TrackArray

pytest.importorskip('kpai_npu_bridge.manifest')
from kpai_npu_bridge.manifest import (  # noqa: E402
    DecoderSpec,
    InputSpec,
    ModelManifest,
    PreprocessSpec,
    Thresholds,
    write_manifest,
)

NS = '/robot1'
W, H, HFOV, FPS = 320, 240, 1.2, 15.0
CAMERA = CameraModel.ideal(W, H, HFOV)
CAM_X, CAM_Z = 0.28, 0.6
BASE_FROM_OPTICAL = camera_pose(CAM_X, 0.0, CAM_Z)
ROBOT_SPEED = 1.2
EMPTY_FRAMES, HOLD_FRAMES = 12, 12
START_D, END_D, WALK_SPEED = 7.0, 1.0, 2.0
BITS = 8


def person_distances() -> list[float | None]:
    """Distance (m, from base_link to the person's front) per frame; None: nobody in view."""
    walk = int(round((START_D - END_D) / WALK_SPEED * FPS))
    return ([None] * EMPTY_FRAMES + [START_D - WALK_SPEED * k / FPS for k in range(walk + 1)]
            + [END_D] * HOLD_FRAMES)


def render(index: int, distance: float | None) -> np.ndarray:
    """Return one BGR frame: floor/wall backdrop, the person box, the frame index code."""
    img = np.full((H, W, 3), 90, np.uint8)
    img[H // 2:] = 120  # floor below the horizon
    if distance is not None:
        corners = np.array([[x, y, z] for x in (distance, distance + 0.3)
                            for y in (-0.25, 0.25) for z in (0.0, 1.7)])
        uv = CAMERA.project(BASE_FROM_OPTICAL.inverse().apply(corners))
        x1, y1 = np.floor(uv.min(axis=0)).astype(int)
        x2, y2 = np.ceil(uv.max(axis=0)).astype(int)
        img[max(y1, 0):min(y2, H), max(x1, 0):min(x2, W)] = (30, 30, 220)
    for b in range(BITS):  # 8x8 blocks (JPEG-aligned): white = 1
        img[0:8, 8 * b:8 * b + 8] = 255 if index >> b & 1 else 0
    return img


def decode_index(rgb: np.ndarray) -> int:
    """Read the frame index back from an RGB image."""
    return sum(1 << b for b in range(BITS) if rgb[0:8, 8 * b:8 * b + 8].mean() > 128)


def build_red_blob_detector(path: Path, size: int) -> None:
    """Write an ONNX 'person' detector: bounding box of reddish pixels, YOLOv8 layout [N,5,1]."""
    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, value: Any) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(kind: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    nodes.append(helper.make_node('Split', ['images'], ['r', 'g', 'b'], axis=1))
    half_gb = op('Mul', [op('Add', ['g', 'b'], 'gb'), const('half', np.float32(0.5))], 'gb2')
    red = op('Sub', ['r', half_gb], 'redness')
    mask = op('Cast', [op('Greater', [red, const('thr', np.float32(0.3))], 'gt')], 'mask',
              to=TensorProto.FLOAT)
    idx = np.arange(size, dtype=np.float32)
    parts = {}
    for a, axes in (('x', [1, 2]), ('y', [1, 3])):
        line = op('ReduceMax', [mask], f'{a}_line', axes=axes, keepdims=0)
        hi = op('ReduceMax', [op('Mul', [line, const(f'{a}_i', idx)], f'{a}_hm')], f'{a}_hi',
                axes=[1], keepdims=1)
        lo_r = op('ReduceMax', [op('Mul', [line, const(f'{a}_r', size - 1 - idx)], f'{a}_lm')],
                  f'{a}_lr', axes=[1], keepdims=1)
        lo = op('Sub', [const(f'{a}_last', np.float32([size - 1])), lo_r], f'{a}_lo')
        span = op('Add', [op('Sub', [hi, lo], f'{a}_d'), const(f'{a}_1', np.float32([1.0]))],
                  f'{a}_span')
        mid = op('Mul', [op('Add', [hi, lo], f'{a}_s'), const(f'{a}_h', np.float32([0.5]))],
                 f'{a}_m')
        parts[a] = (op('Add', [mid, const(f'{a}_o', np.float32([0.5]))], f'{a}_c'), span, line)
    present = op('ReduceMax', [parts['x'][2]], 'present', axes=[1], keepdims=1)
    score = op('Mul', [present, const('conf', np.float32([0.9]))], 'score')
    cat = op('Concat', [parts['x'][0], parts['y'][0], parts['x'][1], parts['y'][1], score],
             'cat', axis=1)
    op('Unsqueeze', [cat, const('ax', np.array([2], np.int64))], 'output0')
    graph = helper.make_graph(
        nodes, 'red_blob',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT, ['N', 3, size, size])],
        [helper.make_tensor_value_info('output0', TensorProto.FLOAT, ['N', 5, 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    write_manifest(ModelManifest(
        task='detection', input=InputSpec('images', (None, 3, size, size), 'NCHW', 'float32'),
        decoder=DecoderSpec(type='yolov8'), labels=('person',), sha256='0' * 64,
        preprocess=PreprocessSpec(resize='letterbox'), thresholds=Thresholds(score=0.5),
        description='red blob test detector'), path)


def _tf(parent: str, child: str, tf: Transform, stamp: Any) -> TransformStamped:
    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = parent, child
    msg.header.stamp = stamp
    t, q = tf.translation, tf.rotation
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = (
        float(v) for v in t)
    (msg.transform.rotation.w, msg.transform.rotation.x, msg.transform.rotation.y,
     msg.transform.rotation.z) = (float(v) for v in q)
    return msg


def _stamp(msg: Any) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def test_person_walking_in_triggers_stop_within_200ms(graph, tmp_path: Path) -> None:
    distances = person_distances()
    video = tmp_path / 'walk.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), FPS, (W, H))
    for k, d in enumerate(distances):
        writer.write(render(k, d))
    writer.release()
    f, c = CAMERA.k[0, 0], (W - 1) / 2
    cal = tmp_path / 'camera.yaml'
    cal.write_text(dump_calibration(Calibration(
        W, H, 'front', (f, 0.0, c, 0.0, f, (H - 1) / 2, 0.0, 0.0, 1.0), (0.0,) * 5,
        (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
        (f, 0.0, c, 0.0, 0.0, f, (H - 1) / 2, 0.0, 0.0, 0.0, 1.0, 0.0), 'plumb_bob')))
    model = tmp_path / 'red_blob.onnx'
    build_red_blob_detector(model, W)

    ns = ['-r', f'__ns:={NS}']
    graph.start_node('kpai_perception', 'camera_driver', *ns, '-p', f'source:={video}',
                     '-p', f'fps:={FPS}', '-p', f'camera_info_url:={cal}',
                     '-p', 'frame_id:=robot1/camera_optical', '-p', 'reliable:=true',
                     '-p', 'autostart:=false')
    graph.start_node('kpai_npu_bridge', 'npu_bridge', *ns, '-p', f'model_path:={model}',
                     '-p', 'max_wait_ms:=2.0', '-p', f'cache_dir:={tmp_path / "cache"}')
    graph.start_node('kpai_perception', 'tracker', *ns, '-p', f'image_width:={W}',
                     '-p', f'image_height:={H}')
    graph.start_node('kpai_perception', 'object_localizer', *ns,
                     '-p', 'robot_frame:=robot1/base_link')
    graph.start_node('kpai_perception', 'safety_monitor', *ns,
                     '-p', 'base_frame:=robot1/base_link', '-p', 'input_timeout:=1.0')

    node = graph.node
    frames: dict[int, float] = {}       # frame index -> image stamp
    statuses: list[tuple[float, SafetyStatus]] = []  # (arrival wall time, status)
    objects: list[tuple[float, TrackArray]] = []

    def on_image(msg: Image) -> None:
        frames.setdefault(decode_index(image_to_rgb8(msg)), _stamp(msg))

    node.create_subscription(Image, f'{NS}/camera/image_raw', on_image, QoSProfile(depth=100))
    node.create_subscription(SafetyStatus, f'{NS}/safety/status',
                             lambda m: statuses.append((time.time(), m)), QoSProfile(depth=200))
    node.create_subscription(TrackArray, f'{NS}/tracked_objects',
                             lambda m: objects.append((time.time(), m)), QoSProfile(depth=200))
    static_pub = node.create_publisher(
        TFMessage, '/tf_static',
        QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    tf_pub = node.create_publisher(TFMessage, '/tf', QoSProfile(depth=100))
    odom_pub = node.create_publisher(Odometry, f'{NS}/odom', QoSProfile(depth=10))
    now = node.get_clock().now().to_msg()
    static_pub.publish(TFMessage(transforms=[
        _tf('map', 'robot1/odom', Transform.identity(), now),
        _tf('robot1/base_link', 'robot1/camera_link',
            Transform.create((CAM_X, 0.0, CAM_Z), (1, 0, 0, 0)), now),
        _tf('robot1/camera_link', 'robot1/camera_optical', BODY_FROM_OPTICAL, now)]))

    def feed() -> None:  # odometry and the robot's pose, as a base driver would publish
        stamp = node.get_clock().now().to_msg()
        tf_pub.publish(TFMessage(transforms=[
            _tf('robot1/odom', 'robot1/base_link', Transform.identity(), stamp)]))
        odom = Odometry()
        odom.header.stamp, odom.header.frame_id = stamp, 'robot1/odom'
        odom.child_frame_id = 'robot1/base_link'
        odom.twist.twist.linear.x = ROBOT_SPEED
        odom_pub.publish(odom)

    node.create_timer(0.05, feed)
    graph.spin_until(lambda: node.count_subscribers(f'{NS}/camera/image_raw') >= 2
                     and node.count_publishers(f'{NS}/detections') >= 1
                     and node.count_subscribers(f'{NS}/detections') >= 1
                     and node.count_subscribers(f'{NS}/tracks') >= 1
                     and node.count_subscribers(f'{NS}/tracked_objects') >= 2,
                     timeout=30, what='pipeline discovery')
    graph.spin_until(lambda: statuses, timeout=10, what='first safety status')
    assert statuses[-1][1].state == SafetyStatus.FAULT  # no tracked objects yet: fail safe

    client = node.create_client(ChangeState, f'{NS}/camera_driver/change_state')
    graph.spin_until(client.service_is_ready, timeout=10, what='camera_driver lifecycle')
    for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
        future = client.call_async(ChangeState.Request(transition=Transition(id=transition)))
        graph.spin_until(future.done, timeout=10, what=f'transition {transition}')
        assert future.result().success

    last = len(distances) - 1
    graph.spin_until(lambda: last in frames and any(
        s.state == SafetyStatus.PROTECTIVE_STOP for _, s in statuses),
        timeout=30, what='whole video and a protective stop')
    graph.spin_until(lambda: objects and _stamp(objects[-1][1]) >= frames[last], timeout=5,
                     what='last frame through the pipeline')

    fields = FieldConfig()
    front_edge = (max(p[0] for p in fields.footprint) + fields.protective_clearance
                  + stopping_distance(ROBOT_SPEED, fields))
    first_inside = next(k for k, d in enumerate(distances) if d is not None and d <= front_edge)
    assert first_inside in frames, 'the frame that shows the person must have been published'
    t_frame = frames[first_inside]
    t_stop, stop = next((t, s) for t, s in statuses if s.state == SafetyStatus.PROTECTIVE_STOP)
    latency = t_stop - t_frame
    # CLEAR (pipeline running, nobody near) was reported before the person came close
    clear_before = [s for t, s in statuses if t < t_frame - 0.5 and s.state == SafetyStatus.CLEAR]
    assert clear_before, 'the pipeline should report CLEAR before the person is near'
    assert stop.people_in_protective >= 1 and stop.speed_limit == 0.0
    print(f'\nprotective field front edge {front_edge:.2f} m; first frame inside: #{first_inside} '
          f'(person at {distances[first_inside]:.2f} m); stop {latency * 1000:.0f} ms after '
          f"that frame's stamp ({stop.reason})")
    assert -0.3 < latency <= 0.2, f'stop {latency * 1000:.0f} ms after the frame'

    # per-frame latency image stamp -> tracked_objects, and where the person was placed
    lat = [t - _stamp(m) for t, m in objects if m.tracks]
    errors = []
    by_stamp = {v: k for k, v in frames.items()}
    for _, m in objects:
        k = by_stamp.get(_stamp(m))
        people = [t for t in m.tracks if t.has_position and t.class_id == 'person']
        if k is None or distances[k] is None or not people or distances[k] < 1.5:
            continue  # feet below the image edge closer than ~1.46 m
        errors.append(abs(people[0].position.x - distances[k]))
    print(f'image -> tracked_objects latency p50 {np.median(lat) * 1000:.0f} ms, '
          f'max {max(lat) * 1000:.0f} ms over {len(lat)} frames; ground position error '
          f'median {np.median(errors) * 100:.1f} cm, max {max(errors) * 100:.1f} cm '
          f'({len(errors)} frames, 1.5..7 m)')
    assert len(errors) > 20 and float(np.median(errors)) < 0.15
    assert math.isfinite(stop.nearest_person_distance)
