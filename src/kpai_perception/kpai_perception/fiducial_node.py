"""Node `fiducials`: image + camera_info -> AprilTag poses (Detection3DArray) and /tf frames."""

from __future__ import annotations

import sys
import threading
from typing import Any

from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage
from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose

from kpai_perception.errors import CalibrationError, FiducialError, PerceptionError
from kpai_perception.fiducials import FiducialDetector, TagDetection
from kpai_perception.geometry.camera import CameraModel
from kpai_perception.image_conv import image_to_numpy, image_to_rgb8
from kpai_perception.node_util import declare, run_node

__all__ = ['FiducialNode', 'main']


def _set_pose(pose: Any, det: TagDetection) -> None:
    t, q = det.camera_from_tag.translation, det.camera_from_tag.rotation
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in t)
    pose.orientation.w, pose.orientation.x, pose.orientation.y, pose.orientation.z = (
        float(v) for v in q)


class FiducialNode(Node):
    """Detect tags on a rate-limited subset of frames; newest frame wins, detection off-thread."""

    def __init__(self) -> None:
        super().__init__('fiducials')
        family = declare(self, 'family', 'tag36h11', 'AprilTag family')
        size = declare(self, 'tag_size', 0.16, 'black-square edge of the tags (m)')
        ids = declare(self, 'sized_ids', [-1], 'ids with their own size (see sized_sizes)')
        sizes = declare(self, 'sized_sizes', [0.0], 'sizes (m) of sized_ids, same order')
        self.frame_prefix = declare(self, 'tf_prefix', '', 'prefix of published tag frames')
        self.publish_tf = declare(self, 'publish_tf', True, 'publish camera -> tag on /tf')
        self.max_rate = declare(self, 'max_rate', 5.0, 'most frames processed per s')
        if len(ids) != len(sizes):
            raise FiducialError('sized_ids and sized_sizes must have the same length')
        per_id = {int(i): float(s) for i, s in zip(ids, sizes, strict=True) if i >= 0}
        self.detector = FiducialDetector(family=family, tag_size=size, tag_sizes=per_id,
                                         max_hamming=declare(self, 'max_hamming', 0,
                                                             'accepted bit errors'))
        if not self.max_rate > 0:
            raise FiducialError(f'max_rate must be > 0, got {self.max_rate}')
        self.camera: CameraModel | None = None
        self.bad_images = 0
        self._pending: Image | None = None
        self._wake = threading.Event()
        self._last_t = 0.0
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                              history=HistoryPolicy.KEEP_LAST)
        self.pub = self.create_publisher(Detection3DArray, 'fiducials', reliable)
        self.tf_pub = self.create_publisher(TFMessage, '/tf', QoSProfile(depth=100))
        self.create_subscription(Image, 'camera/image_raw', self._on_image,
                                 qos_profile_sensor_data)
        self.create_subscription(CameraInfo, 'camera/camera_info', self._on_info,
                                 qos_profile_sensor_data)
        self._running = True
        self._worker = threading.Thread(target=self._work, daemon=True, name='fiducials')
        self._worker.start()

    def _on_info(self, msg: CameraInfo) -> None:
        try:
            self.camera = CameraModel.from_msg(msg)
        except CalibrationError as err:
            self.get_logger().warning(f'camera_info rejected: {err}', throttle_duration_sec=10.0)

    def _on_image(self, msg: Image) -> None:
        now = self.get_clock().now().nanoseconds * 1e-9
        if now - self._last_t < 1.0 / self.max_rate:
            return
        self._last_t = now
        self._pending = msg  # only the newest frame is kept: bounded latency
        self._wake.set()

    def _work(self) -> None:
        while self._running:
            if not self._wake.wait(0.5):
                continue
            self._wake.clear()
            msg, self._pending = self._pending, None
            camera = self.camera
            if msg is None or camera is None:
                continue
            try:
                pixels = (image_to_numpy(msg) if msg.encoding in ('mono8', '8UC1')
                          else image_to_rgb8(msg))
                found = self.detector.detect(pixels, camera)
            except PerceptionError as err:
                self.bad_images += 1
                self.get_logger().warning(f'frame skipped ({self.bad_images} so far): {err}',
                                          throttle_duration_sec=5.0)
                continue
            self._publish(msg, found)

    def _publish(self, msg: Image, found: list[TagDetection]) -> None:
        out = Detection3DArray(header=msg.header)
        tfs = TFMessage()
        for det in found:
            d = Detection3D(header=msg.header, id=f'{det.family}:{det.tag_id}')
            hyp = ObjectHypothesisWithPose()
            hyp.hypothesis.class_id = f'{det.family}:{det.tag_id}'
            hyp.hypothesis.score = float(min(1.0, det.decision_margin / 100.0))
            _set_pose(hyp.pose.pose, det)
            d.results.append(hyp)
            _set_pose(d.bbox.center, det)
            size = self.detector.tag_sizes.get(det.tag_id, self.detector.tag_size)
            d.bbox.size.x = d.bbox.size.y = float(size)
            out.detections.append(d)
            tf = TransformStamped()
            tf.header = msg.header
            tf.child_frame_id = f'{self.frame_prefix}{det.family}_{det.tag_id}'
            t, q = det.camera_from_tag.translation, det.camera_from_tag.rotation
            tf.transform.translation.x, tf.transform.translation.y, \
                tf.transform.translation.z = (float(v) for v in t)
            tf.transform.rotation.w, tf.transform.rotation.x, tf.transform.rotation.y, \
                tf.transform.rotation.z = (float(v) for v in q)
            tfs.transforms.append(tf)
        self.pub.publish(out)
        if self.publish_tf and tfs.transforms:
            self.tf_pub.publish(tfs)

    def destroy_node(self) -> None:
        """Stop the worker thread, then destroy the node."""
        self._running = False
        self._wake.set()
        self._worker.join(timeout=2.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Run the fiducial detector node."""
    sys.exit(run_node(FiducialNode, args))
