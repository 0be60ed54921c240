"""mission_executor: ExecuteMission action server running planner + controller in-process.

Planning and control run inside this node (one Navigator), so a mission never depends on
the timing of other processes; it still publishes `plan` and `cmd_vel` in the robot namespace
like the standalone global_planner/controller pair. It publishes the robot's map pose on `pose`
and reads the other fleet robots' `/<robot>/pose` for priority yielding.
"""

from __future__ import annotations

import math
import threading
import time

from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import OccupancyGrid, Path
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import BatteryState

from kpai_msgs.action import ExecuteMission
from kpai_msgs.srv import SetPaused

from .conversions import grid_from_msg, path_to_msg, pose_from_msg, quaternion_from_yaw
from .dock_io import FiducialDocking
from .errors import MissionError, PlanningError
from .mission import (
    ErrorCode,
    Mission,
    MissionState,
    Step,
    StepType,
    resolve_station,
    station_table,
)
from .navigator import FleetParams, Navigator, NavStatus
from .node_util import (
    LATCHED,
    LATEST,
    RELIABLE,
    SENSOR,
    declare,
    run_node,
)
from .params import declare_controller, declare_costmap, declare_max_pose_age
from .planner import PlannerParams
from .ros_io import RobotInputs, pose_age_reason, stamp_now
from .safety_input import SafetyLimitInput

__all__ = ['MissionExecutor', 'main']


class MissionExecutor(Node):
    """Execute transport missions step by step; one mission at a time."""

    def __init__(self) -> None:
        super().__init__('mission_executor')
        ns = self.get_namespace().strip('/')
        self.robot = declare(self, 'robot_name', ns or 'robot1', 'this robot (fleet priority)')
        fleet = list(declare(self, 'fleet_robots', [''], 'all robots, highest priority first'))
        fleet = [r for r in fleet if r]
        self.rate = float(declare(self, 'control_rate', 20.0, 'control loop rate (Hz)'))
        self.map_frame = declare(self, 'map_frame', 'map', 'global frame')
        self.safety_stop_timeout = float(declare(
            self, 'safety_stop_timeout', 60.0, 'fail SAFETY_STOP after a stop this long (s)'))
        self.map_timeout = float(declare(
            self, 'map_timeout', 15.0, 'fail a mission if no map arrives within this (s)'))
        if not 1.0 <= self.rate <= 100.0:
            raise PlanningError(f'control_rate must be in [1, 100] Hz, got {self.rate}')
        costmap = declare_costmap(self)
        planner = PlannerParams(
            downsample=declare(self, 'planner_downsample', 2, 'search on k x k cell blocks'),
            cost_weight=declare(self, 'planner_cost_weight', 3.0, 'cost weight in A*'))
        controller = declare_controller(self, costmap.robot_radius)
        self.max_pose_age = declare_max_pose_age(self)
        self.dock_offset = float(declare(self, 'dock_offset', 0.6, 'pre-dock distance (m)'))
        station_names = list(declare(self, 'station_names', [''],
                                     'docking stations a DOCK step may name by station_id'))
        self.stations = station_table(
            station_names, list(declare(self, 'station_poses', [0.0],
                                        'docked pose x, y, yaw (map frame) of each of '
                                        'station_names')))
        self.nav = Navigator(costmap_params=costmap, planner_params=planner,
                             controller_params=controller,
                             dock_xy_tolerance=declare(
                                 self, 'dock_xy_tolerance', 0.02,
                                 'goal tolerance of the final straight docking leg (m)'),
                             blocked_goal_timeout=declare(
                                 self, 'blocked_goal_timeout', 20.0,
                                 's to wait for scan obstacles (people, robots) to clear a goal '
                                 'that is free in the map before the step fails'),
                             fleet=FleetParams(robots=tuple(fleet), name=self.robot,
                                               yield_distance=declare(
                                                   self, 'yield_distance', 1.5,
                                                   'wait for higher-priority robots this close'),
                                               yield_timeout=declare(
                                                   self, 'yield_timeout', 8.0,
                                                   'stop waiting for a robot that does not clear '
                                                   'the way after this long (s); drive around '
                                                   'it')))
        self.lock = threading.Lock()
        self.inputs = RobotInputs(self, map_frame=self.map_frame)
        self.docking = FiducialDocking(self, self.inputs, station_names)
        self.mission: Mission | None = None
        self.battery: float | None = None
        self.safety = SafetyLimitInput(self)
        self.stopped_since: float | None = None
        self._plan_seen = 0
        self._was_active = False
        self._tick_waiters: list[Future] = []
        self.cmd_pub = self.create_publisher(Twist, 'cmd_vel', RELIABLE)
        self.plan_pub = self.create_publisher(Path, 'plan', LATCHED)
        self.pose_pub = self.create_publisher(PoseStamped, 'pose', 10)
        self.create_subscription(OccupancyGrid, '/map', self._on_map, LATCHED)
        self.create_subscription(BatteryState, 'battery', self._on_battery, SENSOR)
        for other in fleet:
            if other != self.robot:
                # newest only, as odometry: yielding decides on where the others are now
                self.create_subscription(PoseStamped, f'/{other}/pose',
                                         lambda m, o=other: self._on_other(o, m), LATEST)
        self.create_service(SetPaused, '~/set_paused', self._on_set_paused)
        self.action = ActionServer(
            self, ExecuteMission, 'execute_mission', execute_callback=self._execute,
            goal_callback=self._on_goal, cancel_callback=lambda _g: CancelResponse.ACCEPT)
        self.create_timer(1.0 / self.rate, self._tick)
        self.get_logger().info(f'mission executor for {self.robot}, fleet {fleet or "-"}')

    # -- inputs ----------------------------------------------------------------
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_map(self, msg: OccupancyGrid) -> None:
        try:
            grid = grid_from_msg(msg)
        except PlanningError as err:
            self.get_logger().error(f'ignored map: {err}')
            return
        with self.lock:
            self.nav.set_map(grid)
        self.get_logger().info(f'map {grid.width}x{grid.height} received')

    def _on_battery(self, msg: BatteryState) -> None:
        if math.isfinite(msg.percentage):
            self.battery = msg.percentage

    def _on_other(self, name: str, msg: PoseStamped) -> None:
        with self.lock:
            self.nav.update_other(name, pose_from_msg(msg.pose), self._now())

    def _on_set_paused(self, req: SetPaused.Request, resp: SetPaused.Response
                       ) -> SetPaused.Response:
        with self.lock:
            m = self.mission
            if m is None or m.done:
                resp.success, resp.message = False, 'no active mission'
            elif req.paused:
                resp.success = m.pause()
                resp.message = 'paused' if resp.success else f'cannot pause in {m.state.value}'
                if resp.success:
                    self.nav.cancel()
            else:
                resp.success = m.resume()
                resp.message = 'resumed' if resp.success else f'cannot resume {m.state.value}'
        return resp

    # -- action ------------------------------------------------------------------
    def _on_goal(self, _goal: ExecuteMission.Goal) -> GoalResponse:
        with self.lock:
            busy = self.mission is not None and not self.mission.done
        return GoalResponse.REJECT if busy else GoalResponse.ACCEPT

    def _next_tick(self) -> Future:
        """Return a future the control loop completes on its next tick."""
        fut = Future()
        self._tick_waiters.append(fut)
        return fut

    async def _execute(self, handle: object) -> ExecuteMission.Result:
        # a coroutine that wakes on each control tick: the whole node runs on one thread
        # (rclpy's multi-threaded executor costs ~10x more CPU per message)
        goal = handle.request  # type: ignore[attr-defined]
        result = ExecuteMission.Result()
        try:
            steps = [self._step(s) for s in goal.steps]
            with self.lock:
                self.mission = Mission(goal.mission_id, steps, self._now(),
                                       dock_offset=self.dock_offset)
        except MissionError as err:
            result.success, result.error_code, result.message = False, 5, str(err)
            handle.abort()  # type: ignore[attr-defined]
            return result
        self.get_logger().info(f'mission {goal.mission_id}: {len(steps)} steps')
        last_fb = 0.0
        while True:
            await self._next_tick()
            if not self.context.ok():  # Ctrl-C: the node is going away; stop driving
                self.nav.cancel()
                result.message = 'mission executor shut down'
                return result
            with self.lock:
                m = self.mission
                assert m is not None
                if handle.is_cancel_requested and not m.done:  # type: ignore[attr-defined]
                    m.cancel()
                    self.nav.cancel()
                done = m.done
                fb = m.feedback()
            if done:
                break
            if time.monotonic() - last_fb > 0.5:
                last_fb = time.monotonic()
                msg = ExecuteMission.Feedback()
                for key, value in fb.items():
                    setattr(msg, key, value)
                try:
                    handle.publish_feedback(msg)  # type: ignore[attr-defined]
                except Exception:
                    if self.context.ok():
                        raise  # a real failure; at shutdown the loop ends on the next pass
        self._publish_stop()
        result.success = m.state == MissionState.SUCCEEDED
        result.error_code = int(m.error_code)
        result.message = m.message
        result.steps_completed = m.steps_completed
        if m.state == MissionState.SUCCEEDED:
            handle.succeed()  # type: ignore[attr-defined]
        elif m.state == MissionState.CANCELED:
            handle.canceled()  # type: ignore[attr-defined]
        else:
            handle.abort()  # type: ignore[attr-defined]
        self.get_logger().info(f'mission {goal.mission_id}: {m.state.value} {m.message}')
        return result

    def _step(self, s: object) -> Step:
        x, y, yaw = pose_from_msg(s.target.pose)  # type: ignore[attr-defined]
        try:
            kind = StepType(s.type)  # type: ignore[attr-defined]
        except ValueError as err:
            raise MissionError(f'unknown step type {s.type}') from err  # type: ignore[attr-defined]
        # a DOCK step naming only its station (no target frame): the configured docked pose
        if (kind == StepType.DOCK and s.station_id  # type: ignore[attr-defined]
                and not s.target.header.frame_id):  # type: ignore[attr-defined]
            x, y, yaw = resolve_station(s.station_id, self.stations)  # type: ignore[attr-defined]
        return Step(kind, s.step_id, x, y, yaw, s.station_id,  # type: ignore[attr-defined]
                    s.duration_s, s.battery_target)  # type: ignore[attr-defined]

    # -- control loop ------------------------------------------------------------------
    def _publish_stop(self) -> None:
        self.cmd_pub.publish(Twist())

    def _tick(self) -> None:
        try:
            self._control()
        finally:  # wake the mission coroutine whatever this tick did
            waiters, self._tick_waiters = self._tick_waiters, []
            for fut in waiters:
                fut.set_result(None)

    def _control(self) -> None:
        now = self._now()
        pose = self.inputs.map_pose()
        if pose is None:
            return
        with self.lock:
            scan = self.inputs.take_scan()
            if scan is not None:
                sensor, pts, hits, stamp = scan
                self.nav.add_scan((sensor[0], sensor[1]), pts, hits, stamp)
            self._publish_pose(pose)
            m = self.mission
            if m is None or m.done or m.state == MissionState.PAUSED:
                self.docking.reset()
                if self._was_active:
                    self._publish_stop()
                    self._was_active = False
                return
            self._was_active = True
            self._drive(m, pose, now)

    def _publish_pose(self, pose: tuple[float, float, float]) -> None:
        msg = PoseStamped()
        msg.header.frame_id = self.map_frame
        msg.header.stamp = stamp_now(self)
        msg.pose.position.x, msg.pose.position.y = pose[0], pose[1]
        msg.pose.orientation = quaternion_from_yaw(pose[2])
        self.pose_pub.publish(msg)

    def _drive(self, m: Mission, pose: tuple[float, float, float], now: float) -> None:
        m.update(now, battery=self.battery, distance_remaining=self.nav.distance_remaining(pose))
        if self.nav.planner is None:
            if now - m.now > self.map_timeout:
                m.fail(ErrorCode.PLANNING_FAILED, f'no map on /map after {self.map_timeout} s')
            return  # timed steps still advance; motion waits for the map
        if m.awaiting_dock and not self._finish_dock(m, now):
            self._publish_stop()
            return  # at the pre-dock pose, looking for the station's tag
        req = m.motion_request()
        if req is not None and not self.nav.start(pose, (req.x, req.y, req.yaw), now,
                                                  straight=req.straight):
            m.fail(ErrorCode.PLANNING_FAILED, self.nav.message)
        if self.nav.plan_count != self._plan_seen and self.nav.last_plan is not None:
            self._plan_seen = self.nav.plan_count
            self.plan_pub.publish(path_to_msg(self.nav.last_plan, self.map_frame,
                                              stamp_now(self)))
        if m.done or self.nav.status != NavStatus.ACTIVE:
            self._publish_stop()
            return
        limit = self.safety.limit(now)
        stale = pose_age_reason(now, self.inputs.odom_received, self.max_pose_age)
        if stale is not None:
            self.get_logger().warning(f'stopped: {stale}', throttle_duration_sec=2.0)
            limit = 0.0
        ev = self.nav.step(pose, now, limit)
        twist = Twist()
        twist.linear.x, twist.angular.z = ev.command.v, ev.command.w
        self.cmd_pub.publish(twist)
        if ev.yielding_to:
            self.get_logger().info(f'yielding to higher-priority {ev.yielding_to}',
                                   throttle_duration_sec=2.0)
        if ev.status == NavStatus.SUCCEEDED:
            m.arrived(now)
        elif ev.status == NavStatus.FAILED:
            m.fail(ErrorCode.NAVIGATION_FAILED, ev.message)
        stopped = limit <= 0.0
        if stopped and self.stopped_since is None:
            self.stopped_since = now
        elif not stopped:
            self.stopped_since = None
        if (self.stopped_since is not None and self.safety_stop_timeout > 0
                and now - self.stopped_since > self.safety_stop_timeout):
            m.fail(ErrorCode.SAFETY_STOP,
                   f'safety speed limit 0 for more than {self.safety_stop_timeout:.0f} s')


    def _finish_dock(self, m: Mission, now: float) -> bool:
        """Choose the final docking leg (tag or configured pose); False while still looking."""
        step = m.current
        assert step is not None
        decision = self.docking.decide(step, now)
        if decision.action == 'wait':
            return False
        if decision.action == 'fail':
            m.fail(ErrorCode.DOCKING_FAILED, decision.reason)
        elif decision.action == 'tag' and decision.pose is not None:
            m.refine_dock(*decision.pose)
            self.get_logger().info(decision.reason)
        elif decision.reason:
            self.get_logger().warning(decision.reason)
        return True


def main(args: list[str] | None = None) -> int:
    """Run the mission executor."""
    return run_node(MissionExecutor, args)


if __name__ == '__main__':
    raise SystemExit(main())
