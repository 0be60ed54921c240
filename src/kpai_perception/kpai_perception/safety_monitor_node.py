"""Node `safety_monitor`: tracked people + odometry -> safety/status and safety/speed_limit."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float64

from kpai_msgs.msg import SafetyStatus, TrackArray
from kpai_perception.errors import SafetyConfigError, TransformError
from kpai_perception.node_util import Diagnostics, GrowthWatch, declare, run_node
from kpai_perception.ros_conv import stamp_to_sec
from kpai_perception.safety import FieldConfig, MonitorConfig, SafetyMonitor, SafetyState
from kpai_perception.safety.fields import DEFAULT_FOOTPRINT, parse_footprint
from kpai_perception.tf_buffer import TransformBuffer
from kpai_perception.tf_listener import TfListener

__all__ = ['SafetyMonitorNode', 'declare_field_config', 'main']


def declare_field_config(node: Any) -> FieldConfig:
    """Declare the safety field parameters on node and return the validated FieldConfig."""
    f = FieldConfig()
    flat = [c for p in DEFAULT_FOOTPRINT for c in p]
    footprint = declare(node, 'footprint', flat,
                        'robot outline in base_frame, flat [x0, y0, x1, y1, ...] (m)')
    return FieldConfig(
        footprint=parse_footprint(list(footprint)),
        protective_clearance=declare(node, 'protective_clearance', f.protective_clearance,
                                     'm around the footprint at standstill'),
        warning_clearance=declare(node, 'warning_clearance', f.warning_clearance,
                                  'm beyond the protective field at standstill'),
        response_time=declare(node, 'response_time', f.response_time,
                              's from detection to brakes applied'),
        deceleration=declare(node, 'deceleration', f.deceleration, 'braking m/s^2'),
        warning_time=declare(node, 'warning_time', f.warning_time,
                             's of travel the warning field adds'))


class SafetyMonitorNode(Node):
    """Evaluate the safety fields on every input and on a timer; fail safe on stale inputs."""

    def __init__(self) -> None:
        super().__init__('safety_monitor')
        m = MonitorConfig()
        fields = declare_field_config(self)
        self.config = MonitorConfig(
            fields=fields,
            max_speed=declare(self, 'max_speed', m.max_speed, 'limit when CLEAR (m/s)'),
            warning_speed=declare(self, 'warning_speed', m.warning_speed,
                                  'limit when a person is in the warning field (m/s)'),
            fault_speed=declare(self, 'fault_speed', m.fault_speed,
                                'limit when inputs are stale: 0 stops, > 0 creeps (m/s)'),
            input_timeout=declare(self, 'input_timeout', m.input_timeout,
                                  's without tracked_objects or odom before FAULT'),
            hold_time=declare(self, 'hold_time', m.hold_time,
                              's a stop or warning is held after its cause has gone'))
        self.base_frame = declare(self, 'base_frame', 'base_link', 'robot frame of the fields')
        self.person_classes = set(declare(self, 'person_classes', ['person'],
                                          'track classes treated as people'))
        rate = declare(self, 'rate', 10.0, 'evaluation timer (Hz): speed_limit heartbeat; '
                       'people and odometry are evaluated on arrival')
        if not 0 < rate <= 1000:
            raise SafetyConfigError(f'rate must be in (0, 1000] Hz, got {rate}')
        status_rate = declare(self, 'status_rate', 5.0,
                              'safety/status rate (Hz); a change is published at once')
        if not 0 < status_rate <= rate:
            raise SafetyConfigError(f'status_rate must be in (0, rate] Hz, got {status_rate}')
        self.status_period = 1.0 / status_rate
        self._last_status = -math.inf
        self._last_limit = math.nan
        self.monitor = SafetyMonitor(self.config)
        self.buffer = TransformBuffer(tolerance=0.2)
        self.tf = TfListener(self, self.buffer)
        self.dropped_tf = 0
        self._last_state: SafetyState | None = None
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                              history=HistoryPolicy.KEEP_LAST)
        self.status_pub = self.create_publisher(SafetyStatus, 'safety/status', reliable)
        self.limit_pub = self.create_publisher(Float64, 'safety/speed_limit', reliable)
        self.create_subscription(TrackArray, 'tracked_objects', self._on_objects, reliable)
        self.create_subscription(Odometry, 'odom', self._on_odom, reliable)
        self.create_timer(1.0 / rate, self._evaluate)
        self._decision: Any = None
        self.stops = 0
        self._watch = GrowthWatch()
        self.diagnostics = Diagnostics(self, self._diagnostics)
        self._evaluate()

    def _diagnostics(self) -> tuple[int, str, dict[str, Any]]:
        d = self._decision
        values: dict[str, Any] = {
            'state': d.state.name if d else 'UNKNOWN', 'speed_limit': d.speed_limit if d else 0.0,
            'protective_stops': self.stops, 'rejected_inputs': self.monitor.rejected_inputs,
            'dropped_no_transform': self.dropped_tf}
        grown = self._watch.grown(values, ('rejected_inputs', 'dropped_no_transform'))
        if d is None or d.inputs_stale:
            return 1, d.reason if d else 'not evaluated yet', values
        if grown:
            return 1, 'bad input in the last period: ' + ', '.join(grown), values
        return 0, d.reason, values

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_objects(self, msg: TrackArray) -> None:
        people = [t for t in msg.tracks if t.has_position and t.class_id in self.person_classes]
        xy = [(t.position.x, t.position.y) for t in people]
        frame = msg.header.frame_id.lstrip('/')
        if people and frame != self.base_frame:
            try:
                tf = self.buffer.lookup(self.base_frame, frame, stamp_to_sec(msg.header.stamp))
            except TransformError as err:
                # people we cannot place are not "no people": keep the input stale instead
                self.dropped_tf += 1
                self.get_logger().warning(f'tracked_objects ignored: {err}',
                                       throttle_duration_sec=2.0)
                return
            pts = tf.apply(np.array([[t.position.x, t.position.y, t.position.z]
                                     for t in people]))
            xy = [(float(p[0]), float(p[1])) for p in pts]
        if self.monitor.set_people(self._now(), xy):
            self.get_logger().warning(f'{self.monitor.rejected_inputs} non-finite inputs ignored',
                                   throttle_duration_sec=5.0)
        self._evaluate()

    def _on_odom(self, msg: Odometry) -> None:
        if not self.monitor.set_speed(self._now(), msg.twist.twist.linear.x):
            self.get_logger().warning('non-finite odometry speed ignored',
                                      throttle_duration_sec=5.0)
        self._evaluate(periodic=False)  # the fields grow with speed: publish on a change only

    def _evaluate(self, periodic: bool = True) -> None:
        """Decide; publish the limit (every periodic call or on a change), the status on a
        change or every status period. People and the timer are periodic; odometry is not."""
        d = self.monitor.evaluate(self._now())
        changed = d.state != self._last_state or d.speed_limit != self._last_limit
        self._decision = d
        wall = time.monotonic()
        if changed or periodic:
            self.limit_pub.publish(Float64(data=float(d.speed_limit)))
            self._last_limit = d.speed_limit
        if not (changed or wall - self._last_status >= self.status_period):
            return
        self._last_status = wall
        status = SafetyStatus()
        status.header.stamp = self.get_clock().now().to_msg()
        status.header.frame_id = self.base_frame
        status.state = int(d.state)
        status.speed_limit = float(d.speed_limit)
        status.reason = d.reason
        status.people_in_warning = d.people_in_warning
        status.people_in_protective = d.people_in_protective
        status.nearest_person_distance = float(d.nearest_person_distance)
        status.inputs_stale = d.inputs_stale
        self.status_pub.publish(status)
        if d.state != self._last_state:
            if d.state == SafetyState.PROTECTIVE_STOP:
                self.stops += 1
            log = self.get_logger()
            text = f'{d.state.name}: speed limit {d.speed_limit:.2f} m/s ({d.reason})'
            # one call site per severity: rclpy refuses to change it between calls
            if d.state == SafetyState.CLEAR:
                log.info(text)
            else:
                log.warning(text)
            self._last_state = d.state


def main(args: list[str] | None = None) -> None:
    """Run the safety monitor node."""
    sys.exit(run_node(SafetyMonitorNode, args))
