"""Node `object_localizer`: tracks (image space) + camera_info + /tf -> tracked_objects."""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from typing import Any

from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo

from kpai_msgs.msg import TrackArray
from kpai_perception.errors import CalibrationError, TransformError
from kpai_perception.geometry.camera import CameraModel
from kpai_perception.localization import LocalizerConfig, VelocityFilter, locate_box
from kpai_perception.node_util import Diagnostics, GrowthWatch, declare, run_node
from kpai_perception.ros_conv import stamp_to_sec
from kpai_perception.tf_buffer import TransformBuffer
from kpai_perception.tf_listener import TfListener

__all__ = ['LocalizerNode', 'main']


@dataclass(frozen=True)
class LocalizerParams:
    """Frames and timing of the localizer node."""

    target_frame: str
    robot_frame: str
    tf_tolerance: float

    def __post_init__(self) -> None:
        if not self.target_frame:
            raise ValueError('target_frame must not be empty')
        if self.tf_tolerance < 0:
            raise ValueError(f'tf_tolerance must be >= 0 s, got {self.tf_tolerance}')


class _Output:
    """One output frame: publisher plus its own velocity filter."""

    def __init__(self, node: Node, frame: str, topic: str, config: LocalizerConfig) -> None:
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                         history=HistoryPolicy.KEEP_LAST)
        self.frame = frame
        self.pub = node.create_publisher(TrackArray, topic, qos)
        self.velocity = VelocityFilter(config)


class LocalizerNode(Node):
    """Project each track's foot point onto the floor and publish positions in map/robot frames."""

    def __init__(self) -> None:
        super().__init__('object_localizer')
        self.params = LocalizerParams(
            target_frame=declare(self, 'target_frame', 'map', 'fixed frame of tracked_objects'),
            robot_frame=declare(self, 'robot_frame', '',
                                'also publish tracked_objects/robot in this frame; empty: off'),
            tf_tolerance=declare(self, 'tf_tolerance', 0.1,
                                 's a transform may be older than the image it is used for'))
        d = LocalizerConfig()
        self.config = LocalizerConfig(
            plane_z=declare(self, 'plane_z', d.plane_z, 'floor height in target frames (m)'),
            max_range=declare(self, 'max_range', d.max_range, 'max floor distance (m)'),
            velocity_alpha=declare(self, 'velocity_alpha', d.velocity_alpha,
                                   'EMA weight of new velocity samples'),
            forget_after=declare(self, 'forget_after', d.forget_after,
                                 's before an unseen track is forgotten'),
            person_min_height=declare(self, 'person_min_height', d.person_min_height,
                                      'smallest person height (m): places people whose feet '
                                      'are below the image from the top of their box'),
            person_min_width=declare(self, 'person_min_width', d.person_min_width,
                                     'smallest person width (m): ranges people cut off at '
                                     'both image edges'),
            person_classes=tuple(declare(self, 'person_classes', list(d.person_classes),
                                         'class ids treated as people')))
        self.buffer = TransformBuffer(tolerance=self.params.tf_tolerance)
        self.tf = TfListener(self, self.buffer)
        self.camera: CameraModel | None = None
        self.bad_camera_info = 0
        self.dropped_no_camera = 0
        self.dropped_tf = 0
        self.unlocated = 0
        self.outputs = [_Output(self, self.params.target_frame, 'tracked_objects', self.config)]
        if self.params.robot_frame:
            self.outputs.append(_Output(self, self.params.robot_frame, 'tracked_objects/robot',
                                        self.config))
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                         history=HistoryPolicy.KEEP_LAST)
        self.create_subscription(CameraInfo, 'camera/camera_info', self._on_info,
                                 qos_profile_sensor_data)
        self.create_subscription(TrackArray, 'tracks', self._on_tracks, qos)
        self.frames = 0
        self._watch = GrowthWatch()
        self.diagnostics = Diagnostics(self, self._diagnostics)

    def _diagnostics(self) -> tuple[int, str, dict[str, Any]]:
        values: dict[str, Any] = {
            'frames': self.frames, 'bad_camera_info': self.bad_camera_info,
            'dropped_no_camera_info': self.dropped_no_camera, 'dropped_no_transform':
            self.dropped_tf, 'unlocated_tracks': self.unlocated,
            'rejected_transforms': self.buffer.rejected}
        grown = self._watch.grown(values, ('bad_camera_info', 'dropped_no_camera_info',
                                           'dropped_no_transform', 'rejected_transforms'))
        if grown:
            return 1, 'inputs missing or bad in the last period: ' + ', '.join(grown), values
        return 0, f'{self.frames} frames localised', values

    def _on_info(self, msg: CameraInfo) -> None:
        try:
            self.camera = CameraModel.from_msg(msg)
        except CalibrationError as err:
            self.bad_camera_info += 1
            self.get_logger().warning(
                f'camera_info rejected ({self.bad_camera_info} so far): {err}',
                throttle_duration_sec=5.0)

    def _on_tracks(self, msg: TrackArray) -> None:
        log = self.get_logger()
        if self.camera is None:
            self.dropped_no_camera += 1
            log.warning('no valid camera_info yet: tracks dropped', throttle_duration_sec=5.0)
            return
        camera_frame = msg.camera_frame_id or msg.header.frame_id or self.camera.frame_id
        stamp = stamp_to_sec(msg.header.stamp)
        for out in self.outputs:
            try:
                world_from_cam = self.buffer.lookup(out.frame, camera_frame, stamp)
            except TransformError as err:
                self.dropped_tf += 1
                log.warning(f'no transform {out.frame} <- {camera_frame}: {err}',
                         throttle_duration_sec=5.0)
                continue
            result = TrackArray()
            result.header = copy.deepcopy(msg.header)
            result.header.frame_id = out.frame
            result.camera_frame_id = camera_frame
            for track in msg.tracks:
                t = copy.deepcopy(track)
                b = t.bbox
                pos = locate_box(self.camera, world_from_cam, b.center.position.x,
                                 b.center.position.y, b.size_x, b.size_y, self.config,
                                 class_id=t.class_id)
                t.has_position = pos is not None
                if pos is None:
                    self.unlocated += 1
                else:
                    t.position.x, t.position.y, t.position.z = (float(v) for v in pos)
                    vel = out.velocity.update(int(t.id), stamp, pos)
                    t.velocity.x, t.velocity.y, t.velocity.z = (float(v) for v in vel)
                result.tracks.append(t)
            out.velocity.prune(stamp)
            out.pub.publish(result)
        self.frames += 1


def main(args: list[str] | None = None) -> None:
    """Run the object localizer node."""
    sys.exit(run_node(LocalizerNode, args))
