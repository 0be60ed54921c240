"""ROS side of docking on fiducials: station tags, the camera mount from /tf_static, sightings."""

from __future__ import annotations

import math
import threading
from typing import Any

from kpai_perception.errors import TransformError
from kpai_perception.geometry.transform import Transform
from kpai_perception.tf_buffer import TransformBuffer
from tf2_msgs.msg import TFMessage
from vision_msgs.msg import Detection3DArray

from .conversions import compose
from .docking import DockDecision, TagFixes, decide_dock, parse_tag_id, tag_axis
from .errors import MissionError
from .mission import Step
from .node_util import RELIABLE, declare
from .ros_io import RobotInputs

__all__ = ['FiducialDocking']

SETTLE_S = 0.3  # sightings count from this long after arrival at the pre-dock pose (standing)
KEEP = 10  # sightings kept per tag
STAMP_WINDOW_S = 5.0  # image stamps older than this (or from the future) are from another clock


class FiducialDocking:
    """Finish DOCK steps at tagged stations on the tag the camera sees (kpai_perception)."""

    def __init__(self, node: Any, inputs: RobotInputs, station_names: list[str]) -> None:
        self.node = node
        self.inputs = inputs
        names = [n for n in station_names if n]
        tags = [int(t) for t in declare(
            node, 'station_tags', [-1],
            'AprilTag id on each of station_names (-1: none); DOCK steps at a tagged station '
            'finish on the tag seen on `fiducials`')]
        if tags != [-1] and len(tags) != len(names):
            raise MissionError(f'station_tags needs one id for each of the {len(names)} '
                               f'station_names, got {len(tags)}')
        self.tags = {n: t for n, t in zip(names, tags, strict=False) if t >= 0}
        self.family = str(declare(node, 'fiducial_family', 'tag36h11', 'AprilTag family'))
        self.standoff = float(declare(node, 'dock_tag_standoff', 0.75,
                                      'docked base pose in front of the tag face (m)'))
        self.wait_s = float(declare(node, 'fiducial_wait_s', 3.0,
                                    's to wait at the pre-dock pose for the station tag'))
        self.max_correction = float(declare(
            node, 'dock_max_correction', 0.5,
            'largest shift from the configured station pose a tag may ask for (m)'))
        self.min_sightings = int(declare(
            node, 'dock_tag_sightings', 5,
            'tag sightings (standing at the pre-dock pose) combined into the docked pose; '
            'fewer are used once fiducial_wait_s has passed'))
        self.tag_yaw = bool(declare(
            node, 'dock_tag_yaw', False,
            "dock along the heading measured from the tag instead of the station's configured "
            'yaw (the tag gives the position either way; its measured heading is noisy: 1 deg '
            'moves the docked pose 1.3 cm sideways at 0.75 m standoff)'))
        self.require = bool(declare(node, 'dock_require_fiducial', False,
                                    'fail a DOCK at a tagged station whose tag is not seen '
                                    '(else dock on the configured pose)'))
        if not 1 <= self.min_sightings <= KEEP:
            raise MissionError(f'dock_tag_sightings must be in [1, {KEEP}], '
                               f'got {self.min_sightings}')
        if not (self.standoff > 0 and self.wait_s >= 0 and self.max_correction > 0
                and all(math.isfinite(v) for v in (self.standoff, self.wait_s,
                                                   self.max_correction))):
            raise MissionError('dock_tag_standoff and dock_max_correction must be > 0, '
                               'fiducial_wait_s >= 0')
        self.fixes = TagFixes(keep=KEEP)
        self.buffer = TransformBuffer()
        self.sightings = 0
        self.unusable = 0
        self._lock = threading.Lock()
        self._wanted = set(self.tags.values())
        self._waiting_since: float | None = None
        if self.tags:
            inputs.add_static_listener(self._on_static)
            node.create_subscription(Detection3DArray, 'fiducials', self._on_fiducials,
                                     RELIABLE)

    def _now(self) -> float:
        return float(self.node.get_clock().now().nanoseconds) * 1e-9

    def _on_static(self, msg: TFMessage) -> None:
        self.buffer.add_message(msg, static=True)

    def _on_fiducials(self, msg: Detection3DArray) -> None:
        pose = self.inputs.map_pose()
        base = self.inputs.base_frame
        if pose is None or not base or not msg.detections:
            return
        try:
            base_from_cam = self.buffer.lookup(base, msg.header.frame_id)
        except (TransformError, ValueError) as err:
            self.unusable += 1
            self.node.get_logger().warning(f'fiducials unusable: {err}',
                                           throttle_duration_sec=10.0)
            return
        # the sighting's time is the image's: a frame taken while the robot still turned onto
        # the pre-dock pose but handled late (a loaded machine) must not count as standing.
        # A stamp from another clock (e.g. sim time while this node runs on wall time) is not
        # comparable: then the time it arrived stands in.
        now = self._now()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        taken = stamp if 0.0 <= now - stamp <= STAMP_WINDOW_S else now
        for det in msg.detections:
            for hyp in det.results:
                tag = parse_tag_id(hyp.hypothesis.class_id, self.family)
                if tag is None or tag not in self._wanted:
                    continue
                p, q = hyp.pose.pose.position, hyp.pose.pose.orientation
                base_from_tag = base_from_cam * Transform.create((p.x, p.y, p.z),
                                                                 (q.w, q.x, q.y, q.z))
                axis = tag_axis(base_from_tag.translation, base_from_tag.as_matrix()[:3, :3])
                if axis is None:
                    self.unusable += 1
                    continue
                with self._lock:
                    self.fixes.add(tag, taken, compose(pose, axis))
                    self.sightings += 1

    def decide(self, step: Step, now: float) -> DockDecision:
        """Return how to finish the DOCK step at the pre-dock pose (call it every tick there)."""
        tag = self.tags.get(step.station_id)
        if tag is None:
            self._waiting_since = None
            return DockDecision('pose')
        if self._waiting_since is None:
            self._waiting_since = now
        since = self._waiting_since
        waited, wait_s = now - since, self.wait_s + SETTLE_S
        with self._lock:  # enough sightings, or what there is once the wait is over
            fix = self.fixes.latest(tag, since=since + SETTLE_S,
                                    min_count=self.min_sightings if waited < wait_s else 1)
        decision = decide_dock(station=step.station_id, tag_id=tag,
                               nominal=(step.x, step.y, step.yaw), fix=fix,
                               waited_s=waited, wait_s=wait_s,
                               max_correction=self.max_correction, standoff=self.standoff,
                               tag_yaw=self.tag_yaw, require=self.require)
        if decision.action != 'wait':
            self._waiting_since = None
        return decision

    def reset(self) -> None:
        """Forget a pending wait (the mission moved on, was paused or ended)."""
        self._waiting_since = None
