"""Lifecycle node `fleet_agent`: ROS robot state <-> VDA 5050 over MQTT; orders -> missions."""

from __future__ import annotations

import math
import os
import sys
import time
import uuid
from typing import Any

import rclpy
from action_msgs.msg import GoalStatus
from geometry_msgs.msg import PoseStamped
from kpai_perception.node_util import spin_lean
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.action import ActionClient
from rclpy.action.client import ClientGoalHandle
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import BatteryState
from tf2_msgs.msg import TFMessage
from unique_identifier_msgs.msg import UUID

from kpai_fleet.agent_core import (
    AgentConfig,
    AgentCore,
    CancelMission,
    SetPause,
    StartMission,
    load_password,
)
from kpai_fleet.agent_live import LiveShare
from kpai_fleet.errors import ConfigError
from kpai_fleet.executor_watch import LOST_MESSAGE, ExecutorWatch
from kpai_fleet.faults import FaultLog
from kpai_fleet.heartbeat import Heartbeat
from kpai_fleet.mqtt_link import MqttLink, redact_url
from kpai_fleet.node_health import NodeHealth
from kpai_fleet.vda5050.models import ConnectionState
from kpai_fleet.vda5050.state_builder import InferenceHealth, SafetyHealth
from kpai_msgs.action import ExecuteMission
from kpai_msgs.msg import InferenceStats, MissionStep, SafetyStatus
from kpai_msgs.srv import SetPaused

__all__ = ['FleetAgentNode', 'main']

_PARAMS: dict[str, tuple[Any, str]] = {
    'broker_url': ('mqtt://127.0.0.1:1883', 'mqtt://host:port or mqtts://host:port'),
    'mqtt_username': ('', 'MQTT user name, by convention the serial number (empty: anonymous; '
                      'a `kpai-fleet broker` refuses anonymous clients)'),
    'mqtt_password': ('', 'path of a file holding the MQTT password (not the password: a '
                      'parameter can be read by any ROS node); empty: $KPAI_MQTT_PASSWORD'),
    'mqtt_ca_file': ('', 'CA certificate file for TLS'),
    'manufacturer': ('KPAI', 'VDA 5050 manufacturer'),
    'serial_number': ('', 'VDA 5050 serialNumber (default: the namespace name)'),
    'interface_name': ('uagv', 'VDA 5050 interfaceName (first topic level)'),
    'map_id': ('factory', 'mapId reported in agvPosition'),
    'map_frame': ('map', 'frame of the reported position'),
    'pose': ([0.0, 0.0, 0.0], 'map pose [x, y, theta] of the odom frame origin, used when '
             'neither the `pose` topic (map frame) nor a map->odom transform is available'),
    'state_period_s': (1.0, 'state is published at least this often (<= 1 s)'),
    'min_state_interval_s': (0.1, 'minimum spacing of on-change states'),
    'visualization_period_s': (0.2, 'visualization period'),
    'action_name': ('execute_mission', 'ExecuteMission action of the mission executor'),
    'pause_service': ('mission_executor/set_paused', 'SetPaused service of the executor'),
    'goal_response_timeout_s': (5.0, 'seconds to wait for the mission executor to answer a '
                                'goal or a set_paused request; then the goal is followed by '
                                'its id and set_paused is asked again, up to 3 times (DDS can '
                                'drop an answer right after discovery), > 0'),
    'camera_topic': ('camera/image_annotated', 'image shared as a thumbnail while the fleet '
                     'server holds a camera lease (a dashboard shows it); empty: never'),
    'objects_topic': ('tracked_objects', 'kpai_msgs/TrackArray in map_frame shared with the '
                      'fleet (kpaiObjects); empty: off'),
    'objects_period_s': (1.0, 'tracked objects are sent this often, in [0.2, 10]'),
    'protective_clearance': (0.3, "the safety monitor's protective_clearance (m): the "
                             'standstill field in the factsheet, drawn on the fleet map'),
    'warning_clearance': (1.0, "the safety monitor's warning_clearance (m), likewise"),
    'autostart': (True, 'configure and activate on start'),
}


_SERVER_WAIT_S = 30.0  # a goal waits this long for the executor (it may still be starting)
# a password file not there yet is waited for: the launch file's broker provisions it
_SECRET_WAIT_S = 15.0
_PAUSE_ATTEMPTS = 3


def _yaw(q: Any) -> float:
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


class FleetAgentNode(LifecycleNode):
    """Bridges one robot to the fleet: state/visualization out, orders/instantActions in."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('fleet_agent', **kwargs)
        for name, (default, text) in _PARAMS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=text))
        self.add_on_set_parameters_callback(self._on_set)
        self.core: AgentCore | None = None
        self.link: MqttLink | None = None
        self._goal_handle: Any = None
        self._goal_mission = ''
        self._pending: tuple[StartMission, float] | None = None
        self._active = ''  # mission id of the goal sent and not finished yet
        # the goal whose answer is awaited: (mission id, goal id, answer future, deadline)
        self._awaiting: tuple[str, UUID, Any, float] | None = None
        # set_paused requests awaiting their answer: (command, future, deadline, attempt)
        self._pause_calls: list[tuple[SetPause, Any, float, int]] = []
        self._pose_map: tuple[float, float, float, float] | None = None
        self._map_odom: tuple[float, float, float] | None = None
        self._timer: Any = None
        self._subs: list[Any] = []
        self.live: LiveShare | None = None
        self.heartbeat = Heartbeat(self, self._on_node_health)
        if self.get_parameter('autostart').value:
            self._auto = self.create_timer(0.01, self._autostart)

    # -- configuration ---------------------------------------------------------------------
    def _config(self) -> AgentConfig:
        v = {n: self.get_parameter(n).value for n in _PARAMS}
        serial = v['serial_number'] or self.get_namespace().strip('/').replace('/', '_')
        pose = list(v['pose'])
        if len(pose) != 3 or not all(math.isfinite(float(p)) for p in pose):
            raise ConfigError('pose must be [x, y, theta] with finite values')
        timeout = v['goal_response_timeout_s']
        if not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
            raise ConfigError(f'goal_response_timeout_s must be a number > 0, got {timeout!r}')
        return AgentConfig(
            broker_url=v['broker_url'], mqtt_username=v['mqtt_username'],
            mqtt_password=load_password(v['mqtt_password'], os.environ,
                                        wait_s=_SECRET_WAIT_S),
            mqtt_ca_file=v['mqtt_ca_file'],
            manufacturer=v['manufacturer'], serial_number=serial or 'robot',
            interface_name=v['interface_name'], map_id=v['map_id'],
            state_period_s=float(v['state_period_s']),
            min_state_interval_s=float(v['min_state_interval_s']),
            visualization_period_s=float(v['visualization_period_s']),
            objects_period_s=float(v['objects_period_s']),
            protective_clearance=float(v['protective_clearance']),
            warning_clearance=float(v['warning_clearance'])).validate()

    def _on_set(self, params: list[Parameter]) -> SetParametersResult:
        for p in params:
            if p.name in ('state_period_s', 'visualization_period_s') and not (
                    isinstance(p.value, float) and 0 < p.value <= 1.0):
                return SetParametersResult(successful=False, reason=f'{p.name} must be (0, 1]')
        return SetParametersResult(successful=True)

    def _autostart(self) -> None:
        self.destroy_timer(self._auto)
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise ConfigError('configuration failed (see the error above)')
        self.trigger_activate()

    # -- lifecycle -------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            cfg = self._config()
        except ConfigError as err:
            self.get_logger().error(f'invalid parameters: {err}')
            return TransitionCallbackReturn.FAILURE
        faults = FaultLog(self.get_logger().warning)
        self.core = core = AgentCore(cfg, self._publish, faults=faults)
        self.link = MqttLink(cfg.broker_url, f'kpai-agent-{cfg.manufacturer}-'
                             f'{cfg.serial_number}', username=cfg.mqtt_username,
                             password=cfg.mqtt_password, ca_file=cfg.mqtt_ca_file,
                             subscriptions=core.subscriptions(), on_message=core.on_message,
                             will=core.will(), on_connect=core.on_connected,
                             buffer_limit=cfg.buffer_limit, faults=faults)
        self._x0, self._y0, self._th0 = (float(p) for p in self.get_parameter('pose').value)
        self._map_frame = str(self.get_parameter('map_frame').value)
        self._response_timeout = float(self.get_parameter('goal_response_timeout_s').value)
        self._action = ActionClient(self, ExecuteMission, self.get_parameter('action_name').value)
        self._executor = ExecutorWatch(self, self.get_parameter('action_name').value)
        self._pause = self.create_client(SetPaused, self.get_parameter('pause_service').value)
        self.get_logger().info(f'VDA 5050 agent for {cfg.manufacturer}/{cfg.serial_number} '
                               f'on {redact_url(cfg.broker_url)}')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        assert self.link is not None
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self._subs = [
            self.create_subscription(Odometry, 'odom', self._on_odom, qos_profile_sensor_data),
            self.create_subscription(BatteryState, 'battery', self._on_battery,
                                     qos_profile_sensor_data),
            self.create_subscription(SafetyStatus, 'safety/status', self._on_safety, reliable),
            self.create_subscription(InferenceStats, 'inference_stats', self._on_stats,
                                     reliable),
            self.create_subscription(PoseStamped, 'pose', self._on_pose, 10),
            self.create_subscription(TFMessage, '/tf', self._on_tf, 50),
            self.create_subscription(TFMessage, '/tf_static', self._on_tf, QoSProfile(
                depth=50, durability=rclpy.qos.DurabilityPolicy.TRANSIENT_LOCAL)),
        ]
        assert self.core is not None
        self.live = LiveShare(self, self.core, image_topic=str(self.get_parameter(
            'camera_topic').value), objects_topic=str(self.get_parameter('objects_topic').value),
            map_frame=self._map_frame)
        self.link.start()
        self._timer = self.create_timer(0.1, self._tick)
        self.heartbeat.start()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release_runtime()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release_runtime()
        self.core = None
        self.link = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release_runtime()
        return TransitionCallbackReturn.SUCCESS

    def _release_runtime(self) -> None:
        self.heartbeat.stop()
        if self._timer is None:
            return
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        for s in self._subs:
            self.destroy_subscription(s)
        self._subs = []
        if self.live is not None:
            self.live.close()
            self.live = None
        if self.link is not None and self.core is not None:
            self.link.stop(final=(self.core.topic('connection'),
                                  self.core.connection_message(ConnectionState.OFFLINE)))

    # -- MQTT ------------------------------------------------------------------------------
    def _publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        link = self.link
        if link is not None and not link.publish(topic, payload, qos=qos, retain=retain,
                                                 buffer=qos > 0) and qos > 0:
            self.get_logger().warn(f'MQTT broker away ({link.last_error or "not connected"}): '
                                   f'{link.buffered} messages buffered',
                                   throttle_duration_sec=1.0)

    def _tick(self) -> None:
        core = self.core
        if core is None:
            return
        self._check_goal_answer()
        self._check_pause_answers()
        self._executor.cancel_stale_goals(time.monotonic())
        if self._pending is not None:
            cmd, deadline = self._pending
            if self._active:  # the executor takes one goal at a time: wait for the old result
                if time.monotonic() > deadline:
                    self._pending = None
                    core.on_goal_rejected(cmd.mission_id, 'previous mission did not stop')
            elif self._action.server_is_ready() and self._executor.settled(time.monotonic()):
                self._pending = None
                self._send_goal(cmd)
            elif time.monotonic() > deadline:
                self._pending = None
                self.get_logger().error('mission executor action server not available')
                core.on_goal_rejected(cmd.mission_id, 'action server not available')
        for cmd in core.take_commands():
            if isinstance(cmd, StartMission):
                self._start_mission(cmd)
            elif isinstance(cmd, CancelMission):
                self._cancel_mission()
            elif isinstance(cmd, SetPause):
                self._set_pause(cmd)
        core.tick()
        if self.live is not None:
            self.live.tick()

    # -- ROS inputs ------------------------------------------------------------------------
    def _on_node_health(self, health: NodeHealth) -> None:
        core = self.core
        if core is None:
            return
        if health != core.snapshot.nodes:
            for name in health.missing:
                self.get_logger().warning(f'node {name} of this robot is not running',
                                          throttle_duration_sec=10.0)
            core.snapshot.nodes = health
            core.mark_changed()
        self._check_executor(core)

    def _check_executor(self, core: AgentCore) -> None:
        """Report a mission lost with the executor instance that had it."""
        if self._active and self._executor.lost():
            mission = self._active
            self.get_logger().error(f'{LOST_MESSAGE} (mission {mission}): the order fails')
            self._active = ''
            self._goal_handle = None
            self._awaiting = None
            self._executor.goal_finished()
            core.on_result(mission, False, False, LOST_MESSAGE)

    def _on_odom(self, msg: Odometry) -> None:
        if self.core is None:
            return
        p = msg.pose.pose.position
        yaw = _yaw(msg.pose.pose.orientation)
        if not all(math.isfinite(v) for v in (p.x, p.y, yaw)):
            self.get_logger().warn('odometry with NaN/inf ignored', throttle_duration_sec=5.0)
            return
        if msg.header.frame_id.lstrip('/') == self._map_frame:
            ox, oy, oth = 0.0, 0.0, 0.0
        elif self._map_odom is not None:
            ox, oy, oth = self._map_odom
        else:
            ox, oy, oth = self._x0, self._y0, self._th0
        c, s = math.cos(oth), math.sin(oth)
        snap = self.core.snapshot
        was_driving = snap.driving
        fresh = self._pose_map is not None and time.monotonic() - self._pose_map[3] < 2.0
        if not fresh:  # the executor's map pose (topic `pose`) wins while it is fresh
            snap.x, snap.y = ox + c * p.x - s * p.y, oy + s * p.x + c * p.y
            snap.theta = math.atan2(math.sin(yaw + oth), math.cos(yaw + oth))
        snap.vx, snap.vy = msg.twist.twist.linear.x, msg.twist.twist.linear.y
        snap.omega = msg.twist.twist.angular.z
        snap.position_initialized = True
        if snap.driving != was_driving:
            self.core.mark_changed()

    def _on_pose(self, msg: PoseStamped) -> None:
        if self.core is None:
            return
        p = msg.pose.position
        yaw = _yaw(msg.pose.orientation)
        if msg.header.frame_id.lstrip('/') not in ('', self._map_frame) or not all(
                math.isfinite(v) for v in (p.x, p.y, yaw)):
            self.get_logger().warn('pose not in the map frame or not finite: ignored',
                                   throttle_duration_sec=5.0)
            return
        self._pose_map = (p.x, p.y, yaw, time.monotonic())
        snap = self.core.snapshot
        snap.x, snap.y, snap.theta = p.x, p.y, yaw
        snap.position_initialized = True

    def _on_tf(self, msg: TFMessage) -> None:
        for t in msg.transforms:
            if t.header.frame_id.lstrip('/') == self._map_frame and t.child_frame_id.endswith(
                    'odom') and t.child_frame_id.strip('/').startswith(
                    self.get_namespace().strip('/')):
                tr = t.transform
                self._map_odom = (tr.translation.x, tr.translation.y, _yaw(tr.rotation))

    def _on_battery(self, msg: BatteryState) -> None:
        if self.core is None:
            return
        snap = self.core.snapshot
        pct = msg.percentage * 100.0 if msg.percentage <= 1.0 else msg.percentage
        if math.isfinite(pct):
            snap.battery_pct = min(100.0, max(0.0, pct))
        snap.battery_voltage = msg.voltage if math.isfinite(msg.voltage) else None
        charging = msg.power_supply_status == BatteryState.POWER_SUPPLY_STATUS_CHARGING
        if charging != snap.charging:
            snap.charging = charging
            self.core.mark_changed()

    def _on_safety(self, msg: SafetyStatus) -> None:
        if self.core is None:
            return
        old = self.core.snapshot.safety
        self.core.snapshot.safety = SafetyHealth(
            state=int(msg.state), speed_limit=float(msg.speed_limit), reason=msg.reason,
            inputs_stale=bool(msg.inputs_stale), stamp=time.time())
        if old is None or old.state != msg.state:
            self.core.mark_changed()

    def _on_stats(self, msg: InferenceStats) -> None:
        if self.core is None:
            return
        old = self.core.snapshot.inference
        self.core.snapshot.inference = InferenceHealth(
            backend=msg.backend, device=msg.device, model_name=msg.model_name, fps=msg.fps,
            latency_p99_ms=msg.total.p99_ms, fallback_active=msg.fallback_active,
            fallback_reason=msg.fallback_reason, frames_dropped=int(msg.frames_dropped),
            errors=int(msg.errors), stamp=time.time())
        if old is None or old.fallback_active != msg.fallback_active:
            self.core.mark_changed()

    # -- mission executor ------------------------------------------------------------------
    def _start_mission(self, cmd: StartMission) -> None:
        if self._goal_handle is not None:  # an order update replaces the running mission
            self._goal_handle.cancel_goal_async()
        if (not self._active and self._action.server_is_ready()
                and self._executor.settled(time.monotonic())):
            self._pending = None
            self._send_goal(cmd)
        else:  # wait (without blocking the executor) for discovery or the old goal's end
            self._pending = (cmd, time.monotonic() + _SERVER_WAIT_S)

    def _send_goal(self, cmd: StartMission) -> None:
        goal = ExecuteMission.Goal()
        goal.mission_id = cmd.mission_id
        for s in cmd.steps:
            m = MissionStep()
            m.type = int(s.type)
            m.step_id = s.step_id
            m.target = PoseStamped()
            m.target.header.frame_id = s.frame_id
            m.target.pose.position.x, m.target.pose.position.y = s.x, s.y
            m.target.pose.orientation.z = math.sin(s.theta / 2.0)
            m.target.pose.orientation.w = math.cos(s.theta / 2.0)
            m.station_id = s.station_id
            m.duration_s = float(s.duration_s)
            m.battery_target = float(s.battery_target)
            goal.steps.append(m)
        mission = cmd.mission_id
        self._goal_mission = mission
        self._active = mission
        goal_id = UUID(uuid=list(uuid.uuid4().bytes))
        future = self._action.send_goal_async(
            goal, feedback_callback=lambda fb: self._on_feedback(mission, fb),
            goal_uuid=goal_id)
        self._awaiting = (mission, goal_id, future, time.monotonic() + self._response_timeout)
        future.add_done_callback(lambda f: self._on_goal_response(mission, f.result()))

    def _check_goal_answer(self) -> None:
        """Go on without a goal's answer that did not come in time: ask for its result by id.

        Fast DDS drops a service response when the server has not yet matched the client's
        response reader (ros2/rmw_fastrtps#706): the mission runs, its acceptance never arrives.
        A handle rebuilt from the goal id asks the executor for that goal's result; a goal the
        executor does not know (its request was lost, or it was rejected) ends with status
        UNKNOWN, reported as a failed mission.
        """
        if self._awaiting is None:
            return
        mission, goal_id, future, deadline = self._awaiting
        if future.done() or time.monotonic() < deadline:
            return
        self.get_logger().warn(f'mission {mission}: no answer to the goal after '
                               f'{self._response_timeout:g} s; asking for its result by goal id')
        response = ExecuteMission.Impl.SendGoalService.Response(accepted=True)
        self._on_goal_response(mission, ClientGoalHandle(self._action, goal_id, response))

    def _on_feedback(self, mission: str, fb: Any) -> None:
        if self.core is not None:
            f = fb.feedback
            self.core.on_feedback(mission, int(f.current_step), f.current_step_id)

    def _on_goal_response(self, mission: str, handle: Any) -> None:
        awaiting, self._awaiting = self._awaiting, None
        if awaiting is None or awaiting[0] != mission or (
                bytes(awaiting[1].uuid) != bytes(handle.goal_id.uuid)):
            self._awaiting = awaiting
            return  # a late answer to a goal already handled by id (or superseded)
        if self.core is None:
            return
        if not handle.accepted:
            if self._active == mission:
                self._active = ''
            self.core.on_goal_rejected(mission, 'goal rejected')
            return
        if self._goal_mission == mission:
            self._goal_handle = handle
            self._executor.goal_accepted()
        handle.get_result_async().add_done_callback(lambda f: self._on_result(mission, f))

    def _on_result(self, mission: str, future: Any) -> None:
        if self.core is None:
            return
        response = future.result()
        res = response.result
        canceled = res.error_code == ExecuteMission.Result.CANCELED
        message = res.message
        if response.status == GoalStatus.STATUS_UNKNOWN:
            message = ('the mission executor does not know the goal (its request or its '
                       'answer was lost)')
        if self._goal_mission == mission:
            self._goal_handle = None
            self._executor.goal_finished()
        if self._active == mission:
            self._active = ''
        self.core.on_result(mission, bool(res.success), canceled, message)

    def _cancel_mission(self) -> None:
        if self._pending is not None and self.core is not None:
            cmd, self._pending = self._pending[0], None
            self.core.on_result(cmd.mission_id, False, True, 'canceled before start')
        if self._goal_handle is not None:
            self._goal_handle.cancel_goal_async()

    def _set_pause(self, cmd: SetPause) -> None:
        assert self.core is not None
        core = self.core
        if not self._pause.service_is_ready():
            core.on_pause_result(cmd.action_id, cmd.paused, False,
                                 'set_paused service not available')
            return
        self._pause_calls.append(self._call_pause(cmd, attempt=1))

    def _call_pause(self, cmd: SetPause, attempt: int) -> tuple[SetPause, Any, float, int]:
        assert self.core is not None
        core = self.core
        future = self._pause.call_async(SetPaused.Request(paused=cmd.paused))

        def done(f: Any) -> None:
            if f.cancelled():
                return
            resp = f.result()
            core.on_pause_result(cmd.action_id, cmd.paused, bool(resp and resp.success),
                                 resp.message if resp else 'no response')
        future.add_done_callback(done)
        return cmd, future, time.monotonic() + self._response_timeout, attempt

    def _check_pause_answers(self) -> None:
        """Ask set_paused again when its answer did not come (idempotent: sets a value)."""
        waiting = []
        for cmd, future, deadline, attempt in self._pause_calls:
            if future.done():
                continue
            if time.monotonic() < deadline:
                waiting.append((cmd, future, deadline, attempt))
                continue
            self._pause.remove_pending_request(future)
            future.cancel()
            if attempt < _PAUSE_ATTEMPTS and self.core is not None:
                self.get_logger().warn(f'{cmd.action_id}: no answer from set_paused after '
                                       f'{self._response_timeout:g} s; asking again')
                waiting.append(self._call_pause(cmd, attempt + 1))
            elif self.core is not None:
                self.core.on_pause_result(cmd.action_id, cmd.paused, False,
                                          f'no answer from set_paused ({attempt} requests)')
        self._pause_calls = waiting


def main(args: list[str] | None = None) -> int:
    """Run the fleet agent until shutdown."""
    rclpy.init(args=args)
    node = None
    code = 0
    try:
        node = FleetAgentNode()
        # every callback here returns at once (goals, results and service calls are async): a
        # single thread, as rclpy's multi-threaded executor costs ~10x more CPU per message
        spin_lean(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ConfigError as err:
        print(f'fleet_agent: {err}', file=sys.stderr)
        code = 2
    except Exception:
        if rclpy.ok():
            raise
        # an entity failed while Ctrl-C tore the context down under the executor: shutdown
    finally:
        if node is not None:
            node._release_runtime()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == '__main__':
    sys.exit(main())
