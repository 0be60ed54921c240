"""controller: follow `plan` with regulated pure pursuit, publish `cmd_vel` on a timer."""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import OccupancyGrid, Path
from rclpy.node import Node

from .controller import ControllerStatus, PurePursuit
from .conversions import grid_from_msg, pose_from_msg
from .costmap import CostmapParams
from .errors import PlanningError
from .navigator import Navigator
from .node_util import LATCHED, RELIABLE, declare, run_node
from .params import declare_controller, declare_max_pose_age
from .ros_io import RobotInputs, pose_age_reason
from .safety_input import SafetyLimitInput

__all__ = ['Controller', 'main']


class Controller(Node):
    """Track the latest plan; stop on a zero speed limit; ask for a re-plan when stuck."""

    def __init__(self) -> None:
        super().__init__('controller')
        rate = float(declare(self, 'control_rate', 20.0, 'control loop rate (Hz)'))
        if not 1.0 <= rate <= 100.0:
            raise PlanningError(f'control_rate must be in [1, 100] Hz, got {rate}')
        self.map_frame = declare(self, 'map_frame', 'map', 'global frame')
        radius = float(declare(self, 'robot_radius', 0.3, 'robot radius (m)'))
        params = declare_controller(self, radius)
        self.max_pose_age = declare_max_pose_age(self)
        # the Navigator supplies the clearance (static map + latest scan) for the collision check
        self.nav = Navigator(costmap_params=CostmapParams(robot_radius=radius,
                                                          inflation_radius=max(radius, 0.9)),
                             controller_params=params)
        self.ctrl: PurePursuit = self.nav.controller
        self.inputs = RobotInputs(self, map_frame=self.map_frame)
        self.safety = SafetyLimitInput(self)
        self.goal: PoseStamped | None = None
        self.status = ControllerStatus.IDLE
        self.cmd_pub = self.create_publisher(Twist, 'cmd_vel', RELIABLE)
        self.goal_pub = self.create_publisher(PoseStamped, 'goal_pose', RELIABLE)
        self.create_subscription(Path, 'plan', self._on_plan, LATCHED)
        self.create_subscription(OccupancyGrid, '/map', self._on_map, LATCHED)
        self.create_timer(1.0 / rate, self._tick)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_map(self, msg: OccupancyGrid) -> None:
        try:
            self.nav.set_map(grid_from_msg(msg))
        except PlanningError as err:
            self.get_logger().error(f'ignored map: {err}')

    def _on_plan(self, msg: Path) -> None:
        pts = np.array([pose_from_msg(p.pose) for p in msg.poses], dtype=float).reshape(-1, 3)
        if not np.isfinite(pts).all():
            self.get_logger().warning('ignored plan with non-finite poses',
                                      throttle_duration_sec=5.0)
            return
        self.ctrl.set_path(pts)
        if msg.poses:
            self.goal = msg.poses[-1]
            self.goal.header = msg.header

    def _tick(self) -> None:
        now = self._now()
        scan = self.inputs.take_scan()
        if scan is not None:
            sensor, pts, hits, stamp = scan
            self.nav.add_scan((sensor[0], sensor[1]), pts, hits, stamp, mark=False)
        pose = self.inputs.map_pose()
        if pose is None:
            return
        limit = self.safety.limit(now)
        stale = pose_age_reason(now, self.inputs.odom_received, self.max_pose_age)
        if stale is not None:
            self.get_logger().warning(f'stopped: {stale}', throttle_duration_sec=2.0)
            limit = 0.0
        was_active = self.ctrl.active
        cmd = self.ctrl.compute(pose, now, self.nav.clearance, limit)
        if was_active or cmd.v or cmd.w:
            twist = Twist()
            twist.linear.x, twist.angular.z = cmd.v, cmd.w
            self.cmd_pub.publish(twist)
        if cmd.status == ControllerStatus.REPLAN and self.goal is not None:
            self.get_logger().warning('stuck: backed up, asking the planner for a new plan')
            self.goal_pub.publish(self.goal)
        if cmd.status != self.status:
            self.get_logger().info(f'status {cmd.status.value}')
            self.status = cmd.status


def main(args: list[str] | None = None) -> int:
    """Run the controller."""
    return run_node(Controller, args)


if __name__ == '__main__':
    raise SystemExit(main())
