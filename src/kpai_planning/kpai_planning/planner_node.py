"""global_planner: plan from the robot's map pose to `goal_pose` on /map + scan obstacles."""

from __future__ import annotations

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import OccupancyGrid, Path
from rclpy.node import Node

from .conversions import grid_from_msg, path_to_msg, pose_from_msg
from .costmap import Costmap
from .errors import PlanningError, PlanningFailure
from .node_util import LATCHED, RELIABLE, declare, run_node
from .params import declare_costmap
from .planner import Planner, PlannerParams
from .ros_io import RobotInputs, stamp_now

__all__ = ['GlobalPlanner', 'main']


class GlobalPlanner(Node):
    """Publish a smoothed A* `plan` for every `goal_pose` (and re-plan on a period)."""

    def __init__(self) -> None:
        super().__init__('global_planner')
        self.map_frame = declare(self, 'map_frame', 'map', 'global frame')
        self.costmap_params = declare_costmap(self).validate()
        self.planner_params = PlannerParams(
            downsample=declare(self, 'downsample', 2, 'search on k x k cell blocks'),
            cost_weight=declare(self, 'cost_weight', 3.0, 'cost weight in A*'),
        ).validate()
        period = float(declare(self, 'replan_period', 0.0, 're-plan period (s), 0 = off'))
        self.inputs = RobotInputs(self, map_frame=self.map_frame)
        self.costmap: Costmap | None = None
        self.planner: Planner | None = None
        self.goal: tuple[float, float, float] | None = None
        self.failures = 0
        self.pub = self.create_publisher(Path, 'plan', LATCHED)
        self.create_subscription(OccupancyGrid, '/map', self._on_map, LATCHED)
        self.create_subscription(PoseStamped, 'goal_pose', self._on_goal, RELIABLE)
        self.create_timer(0.1, self._absorb_scan)
        if period > 0:
            self.create_timer(period, self._replan)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_map(self, msg: OccupancyGrid) -> None:
        try:
            self.costmap = Costmap(grid_from_msg(msg), self.costmap_params)
        except PlanningError as err:
            self.get_logger().error(f'ignored map: {err}')
            return
        self.planner = Planner(self.costmap, self.planner_params)
        self.get_logger().info(f'map received, planner graph built in '
                               f'{self.planner.build_s * 1000:.0f} ms')

    def _absorb_scan(self) -> None:
        scan = self.inputs.take_scan()
        if scan is not None and self.costmap is not None:
            sensor, pts, hits, stamp = scan
            self.costmap.mark_scan((sensor[0], sensor[1]), pts, hits, stamp)

    def _on_goal(self, msg: PoseStamped) -> None:
        if msg.header.frame_id and msg.header.frame_id.lstrip('/') != self.map_frame:
            self.get_logger().warning(f'goal in frame {msg.header.frame_id!r} ignored: '
                                      f'expected {self.map_frame!r}',
                                      throttle_duration_sec=5.0)
            return
        self.goal = pose_from_msg(msg.pose)
        self._replan()

    def _replan(self) -> None:
        """Plan to the current goal now; log a failure code instead of publishing."""
        pose = self.inputs.map_pose()
        if self.goal is None or self.planner is None or self.costmap is None or pose is None:
            if self.goal is not None:
                self.get_logger().warning('cannot plan yet: waiting for map and odometry',
                                          throttle_duration_sec=5.0)
            return
        self.costmap.clear_footprint(pose[0], pose[1])
        self.costmap.update(self._now())
        try:
            plan = self.planner.plan((pose[0], pose[1]), self.goal[:2], self.goal[2])
        except PlanningFailure as err:
            self.failures += 1
            self.get_logger().error(f'planning failed: {err.code.name}: {err}')  # type: ignore[attr-defined]
            return
        self.pub.publish(path_to_msg(plan.points, self.map_frame, stamp_now(self)))
        self.get_logger().info(f'plan {plan.length:.1f} m in '
                               f'{plan.stats["total_s"] * 1000:.0f} ms')


def main(args: list[str] | None = None) -> int:
    """Run the global planner."""
    return run_node(GlobalPlanner, args)


if __name__ == '__main__':
    raise SystemExit(main())
