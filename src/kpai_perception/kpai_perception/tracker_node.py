"""Node `tracker`: detections (Detection2DArray) -> tracks (kpai_msgs/TrackArray, image space)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo
from vision_msgs.msg import Detection2DArray

from kpai_msgs.msg import TrackArray
from kpai_perception.errors import OutOfOrderError
from kpai_perception.node_util import Diagnostics, GrowthWatch, declare, run_node
from kpai_perception.ros_conv import detections_from_msg, stamp_to_sec, tracks_to_msg
from kpai_perception.tracking import ByteTracker, TrackerConfig, sanitize_detections

__all__ = ['TrackerNode', 'main']


@dataclass(frozen=True)
class TrackerNodeParams:
    """Node-level parameters (the tracker's own are in TrackerConfig)."""

    image_width: int
    image_height: int
    reset_jump: float

    def __post_init__(self) -> None:
        if self.image_width < 0 or self.image_height < 0:
            raise ValueError('image_width and image_height must be >= 0 (0: no clipping)')
        if self.reset_jump <= 0:
            raise ValueError(f'reset_on_backward_jump must be > 0 s, got {self.reset_jump}')


class TrackerNode(Node):
    """Track detections of one camera; out-of-order frames are dropped and counted."""

    def __init__(self) -> None:
        super().__init__('tracker')
        d = TrackerConfig()
        self.config = TrackerConfig(
            high_thresh=declare(self, 'high_thresh', d.high_thresh, 'first-pass score'),
            low_thresh=declare(self, 'low_thresh', d.low_thresh, 'second-pass minimum score'),
            new_track_thresh=declare(self, 'new_track_thresh', d.new_track_thresh,
                                     'score to start a track'),
            match_iou=declare(self, 'match_iou', d.match_iou, 'min IoU, first pass'),
            second_match_iou=declare(self, 'second_match_iou', d.second_match_iou,
                                     'min IoU, low-score pass'),
            tentative_match_iou=declare(self, 'tentative_match_iou', d.tentative_match_iou,
                                        'min IoU for tentative tracks'),
            min_hits=declare(self, 'min_hits', d.min_hits, 'hits to confirm a track'),
            max_age=declare(self, 'max_age', d.max_age, 's a lost track is kept'),
            max_coast_frames=declare(self, 'max_coast_frames', d.max_coast_frames,
                                     'frames a lost track is still published'),
            class_aware=declare(self, 'class_aware', d.class_aware,
                                'associate only within a class'),
            meas_std=declare(self, 'meas_std', d.meas_std, 'measurement noise / box height'),
            accel_std=declare(self, 'accel_std', d.accel_std, 'process noise, heights/s^2'))
        self.params = TrackerNodeParams(
            image_width=declare(self, 'image_width', 0,
                                'clip boxes to this width; 0: take it from camera_info'),
            image_height=declare(self, 'image_height', 0,
                                 'clip boxes to this height; 0: take it from camera_info'),
            reset_jump=declare(self, 'reset_on_backward_jump', 3.0,
                               'a stamp this many s back resets the tracker (replay/sim reset)'))
        self.tracker = ByteTracker(self.config)
        self.frames = 0
        self.dropped_out_of_order = 0
        self.rejected_boxes = 0
        self.clipped_boxes = 0
        self.resets = 0
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                         history=HistoryPolicy.KEEP_LAST)
        self.pub = self.create_publisher(TrackArray, 'tracks', qos)
        self.sub = self.create_subscription(Detection2DArray, 'detections', self._on_dets, qos)
        self._info_size: tuple[int, int] | None = None
        if not (self.params.image_width and self.params.image_height):
            self.create_subscription(CameraInfo, 'camera/camera_info', self._on_info,
                                     qos_profile_sensor_data)
        self._watch = GrowthWatch()
        self.diagnostics = Diagnostics(self, self._diagnostics)
        self.get_logger().info(f'tracking {self.sub.topic_name} -> {self.pub.topic_name}')

    def _diagnostics(self) -> tuple[int, str, dict[str, Any]]:
        values: dict[str, Any] = {
            'frames': self.frames, 'dropped_out_of_order': self.dropped_out_of_order,
            'rejected_boxes': self.rejected_boxes, 'clipped_boxes': self.clipped_boxes,
            'resets': self.resets, 'tracks': len(self.tracker.all_tracks())}
        grown = self._watch.grown(values, ('dropped_out_of_order', 'rejected_boxes', 'resets'))
        if grown:
            return 1, 'bad input in the last period: ' + ', '.join(grown), values
        return 0, f'{values["tracks"]} tracks', values

    def _on_info(self, msg: CameraInfo) -> None:
        if msg.width > 0 and msg.height > 0:
            self._info_size = (int(msg.width), int(msg.height))

    def _on_dets(self, msg: Detection2DArray) -> None:
        stamp = stamp_to_sec(msg.header.stamp)
        last = self.tracker.last_stamp
        if last is not None and last - stamp > self.params.reset_jump:
            self.resets += 1
            self.get_logger().warning(
                f'stamp jumped back {last - stamp:.1f} s: tracker reset (replay or sim reset?)')
            self.tracker = ByteTracker(self.config)
        p = self.params
        size = ((p.image_width, p.image_height) if p.image_width and p.image_height
                else self._info_size)
        clean = sanitize_detections(detections_from_msg(msg), image_size=size)
        self.rejected_boxes += clean.rejected
        self.clipped_boxes += clean.clipped
        if clean.rejected:
            self.get_logger().warning(
                f'{self.rejected_boxes} invalid boxes dropped so far (NaN/inf, empty, outside)',
                throttle_duration_sec=5.0)
        try:
            tracks = self.tracker.update(clean.kept, stamp)
        except OutOfOrderError as err:
            self.dropped_out_of_order += 1
            self.get_logger().warning(
                f'{err}; dropped ({self.dropped_out_of_order} out-of-order so far)',
                throttle_duration_sec=5.0)
            return
        self.frames += 1
        self.pub.publish(tracks_to_msg(tracks, msg.header, image_size=size))


def main(args: list[str] | None = None) -> None:
    """Run the tracker node."""
    sys.exit(run_node(TrackerNode, args))
