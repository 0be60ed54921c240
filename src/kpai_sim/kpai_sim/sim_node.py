"""ROS node `sim`: runs the MuJoCo factory and publishes clock, sensors, tf and ground truth."""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Twist
from kpai_perception.node_util import spin_lean
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import BatteryState, CameraInfo, Image, Imu, LaserScan
from tf2_msgs.msg import TFMessage
from vision_msgs.msg import Detection2DArray

from kpai_msgs.msg import Collision, GroundTruth

from . import messages as conv
from .config import SimConfig
from .drive import DriveLimits
from .errors import SimError
from .mapgen import rasterize, write_map_server, write_stations
from .samples import (
    BatterySample,
    CameraFrame,
    CollisionEvent,
    GroundTruthSample,
    ImuSample,
    OdomSample,
    ScanSample,
)
from .spawn import parse_pose

__all__ = ['SimNode', 'main']

SENSOR_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.BEST_EFFORT)
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)

# name: (default, description)
PARAMS: dict[str, tuple[Any, str]] = {
    'robots': (1, 'number of robots, named robot1..robotN (ignored when robot_names is set)'),
    'robot_names': ([''], 'explicit robot names (robot1, robot2, ...); empty: use robots'),
    'seed': (0, 'world seed: layout, spawn poses, people and sensor noise'),
    'people': (-1, 'people walking in the hall; -1 = one per path of the layout'),
    'spawn_poses': ([''], 'fixed spawn poses "robotN x y yaw" (map frame); others are sampled'),
    'camera_width': (320, 'camera image width, pixels'),
    'camera_height': (240, 'camera image height, pixels'),
    'camera_hfov': (1.2, 'camera horizontal field of view, radians'),
    'camera_rate': (10.0, 'camera frames per sim second (0 disables the camera)'),
    'lidar_beams': (360, 'lidar beams per revolution'),
    'lidar_rate': (10.0, 'lidar scans per sim second'),
    'lidar_range_max': (12.0, 'lidar maximum range, m'),
    'lidar_noise': (0.005, 'lidar range noise standard deviation, m'),
    'odom_rate': (50.0, 'odometry and odom->base_link tf rate, Hz (sim time)'),
    'odom_noise': (0.02, 'odometry relative velocity noise (standard deviation fraction)'),
    'imu_rate': (100.0, 'IMU rate, Hz (sim time)'),
    'ground_truth_rate': (10.0, '/ground_truth rate, Hz (sim time)'),
    'real_time_factor': (1.0, 'target sim seconds per wall second; 0 = as fast as possible'),
    'clock_rate': (25.0, '/clock rate, Hz (sim time; at most one per 10 ms control step): '
                         'every use_sim_time node handles each message'),
    'max_linear': (1.0, 'linear speed limit, m/s'),
    'max_angular': (1.5, 'yaw rate limit, rad/s'),
    'max_linear_accel': (1.0, 'linear acceleration limit, m/s^2'),
    'max_angular_accel': (3.0, 'yaw acceleration limit, rad/s^2'),
    'cmd_timeout': (0.5, 'stop when no cmd_vel arrives for this long, s (sim time)'),
    'map_yaml': ('', 'if set, write the occupancy map (map_server YAML + PGM) here at start'),
    'urdf': ('', 'robot URDF path; empty: the shipped kpai_amr.urdf'),
}


def config_from_values(values: dict[str, Any]) -> tuple[SimConfig, float]:
    """Build and validate the SimConfig and real-time factor from parameter values."""
    names = [n for n in values['robot_names'] if n]
    if not names:
        count = int(values['robots'])
        if not 1 <= count <= 64:
            raise SimError(f'robots must be within 1..64, got {count}')
        names = [f'robot{i + 1}' for i in range(count)]
    spawn = []
    for entry in values['spawn_poses']:
        if not entry.strip():
            continue
        robot, _, rest = entry.strip().partition(' ')
        spawn.append((robot, *parse_pose(rest)))
    rtf = float(values['real_time_factor'])
    if not (rtf == rtf and 0 <= rtf <= 100):
        raise SimError(f'real_time_factor must be within 0..100 (0 = as fast as possible), '
                       f'got {rtf}')
    limits = DriveLimits(values['max_linear'], values['max_angular'],
                         values['max_linear_accel'], values['max_angular_accel'],
                         values['cmd_timeout'])
    cfg = SimConfig(
        robots=tuple(names), seed=int(values['seed']), people=int(values['people']),
        camera_width=int(values['camera_width']), camera_height=int(values['camera_height']),
        camera_hfov=float(values['camera_hfov']), camera_rate=float(values['camera_rate']),
        lidar_beams=int(values['lidar_beams']), lidar_rate=float(values['lidar_rate']),
        lidar_range_max=float(values['lidar_range_max']),
        lidar_noise=float(values['lidar_noise']), odom_rate=float(values['odom_rate']),
        odom_noise=float(values['odom_noise']), imu_rate=float(values['imu_rate']),
        ground_truth_rate=float(values['ground_truth_rate']), limits=limits,
        spawn=tuple(spawn), urdf=str(values['urdf']))
    return cfg.validate(), rtf


GL_HINT = ('headless rendering needs EGL (Debian: libegl1 libegl-mesa0 libgl1-mesa-dri) or '
           'MUJOCO_GL=osmesa (Debian: libosmesa6)')


def load_simulator() -> Any:
    """Import the simulator; MuJoCo sets up its GL backend on import and may fail there."""
    try:
        from .simulator import Simulator
    except Exception as err:  # noqa: BLE001 - GL import failures come in many types
        backend = os.environ.get('MUJOCO_GL', '')
        raise SimError(f'cannot load MuJoCo with MUJOCO_GL={backend!r} ({err!r}); '
                       f'{GL_HINT}') from err
    return Simulator


class SimNode(Node):
    """Owns the Simulator; a worker thread steps it, the executor thread takes cmd_vel."""

    def __init__(self) -> None:
        super().__init__('sim')
        values = {}
        for name, (default, description) in PARAMS.items():
            values[name] = self.declare_parameter(
                name, default, ParameterDescriptor(description=description,
                                                   read_only=True)).value
        self.config, self.rtf = config_from_values(values)
        clock_rate = float(values['clock_rate'])
        if not (clock_rate == clock_rate and 1.0 <= clock_rate <= 1000.0):
            raise SimError(f'clock_rate must be within 1..1000 Hz, got {clock_rate}')
        self.clock_period = 1.0 / clock_rate
        self._next_clock = -1.0
        self._watch_time = -math.inf  # subscriber counts of the optional topics, per second
        self._watch_counts: dict[int, int] = {}
        self.sim = load_simulator()(self.config)
        if values['map_yaml']:
            try:
                yaml_path, _ = write_map_server(rasterize(self.sim.layout), values['map_yaml'])
                write_stations(self.sim.layout,
                               yaml_path.with_name(yaml_path.stem + '_stations.yaml'))
            except OSError as err:
                raise SimError(f'cannot write map_yaml {values["map_yaml"]}: {err}') from err
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.failed = False
        self.clock_pub = self.create_publisher(Clock, '/clock', QoSProfile(depth=1))
        self.tf_pub = self.create_publisher(TFMessage, '/tf', QoSProfile(depth=100))
        self.tf_static_pub = self.create_publisher(TFMessage, '/tf_static', LATCHED)
        self.gt_pub = self.create_publisher(GroundTruth, '/ground_truth', RELIABLE)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', RELIABLE)
        self.pubs: dict[str, dict[str, Any]] = {}
        for robot in self.config.robots:
            ns = f'/{robot}/'
            self.pubs[robot] = {
                'image': self.create_publisher(Image, ns + 'camera/image_raw', SENSOR_QOS),
                'info': self.create_publisher(CameraInfo, ns + 'camera/camera_info',
                                              SENSOR_QOS),
                'scan': self.create_publisher(LaserScan, ns + 'scan', SENSOR_QOS),
                'odom': self.create_publisher(Odometry, ns + 'odom', RELIABLE),
                'imu': self.create_publisher(Imu, ns + 'imu', SENSOR_QOS),
                'battery': self.create_publisher(BatteryState, ns + 'battery', RELIABLE),
                'collisions': self.create_publisher(Collision, ns + 'collisions', RELIABLE),
                'gt_det': self.create_publisher(Detection2DArray,
                                                ns + 'ground_truth/detections', RELIABLE),
            }
            self.create_subscription(Twist, ns + 'cmd_vel',
                                     lambda msg, r=robot: self._on_cmd_vel(r, msg), RELIABLE)
        self._publish_static_tf()
        self._wall_start = time.monotonic()
        self._steps = 0
        self._rtf_window = (time.monotonic(), 0.0)
        self.measured_rtf = 0.0
        self.create_timer(1.0, self._publish_diagnostics)
        self._thread = threading.Thread(target=self._run, name='sim-loop', daemon=True)
        self._thread.start()
        robots = ', '.join(f'{p.name}@({p.x:.2f}, {p.y:.2f}, {p.yaw:.2f})'
                           for p in (r.pose for r in self.sim.robots.values()))
        self.get_logger().info(
            f'factory seed {self.config.seed}, {len(self.sim.layout.people)} people, robots '
            f'{robots}; real_time_factor {self.rtf or "max"}')

    def _publish_static_tf(self) -> None:
        transforms = []
        for robot, r in self.sim.robots.items():
            transforms.append(conv.static_transform(
                0.0, 'map', f'{robot}/odom', (r.pose.x, r.pose.y, 0.0), (0.0, 0.0, r.pose.yaw)))
            transforms += [conv.joint_transform(0.0, robot, j)
                           for j in self.sim.robot_spec.fixed_joints]
        self.tf_static_pub.publish(TFMessage(transforms=transforms))

    def _on_cmd_vel(self, robot: str, msg: Twist) -> None:
        with self._lock:
            reason = self.sim.command(robot, msg.linear.x, msg.angular.z)
        if reason:
            self.get_logger().warning(f'{robot}: {reason}', throttle_duration_sec=2.0)

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as err:  # noqa: BLE001 - a dying loop must take the node down
            if self._stop.is_set() or not self.context.ok():
                return  # shutting down: publishers may already be gone
            self.get_logger().fatal(f'simulation loop failed: {err!r}')
            self.failed = True
            self.context.try_shutdown()
        finally:
            self.sim.close()  # the GL context belongs to this thread

    def _loop(self) -> None:
        anchor_wall, anchor_sim = time.monotonic(), self.sim.time
        while not self._stop.is_set() and self.context.ok():
            with self._lock:
                out = self.sim.step()
                now = self.sim.time
            self._publish(out, now)
            self._steps += 1
            if self.rtf > 0:
                ahead = (now - anchor_sim) / self.rtf - (time.monotonic() - anchor_wall)
                if ahead > 0:
                    self._stop.wait(ahead)
                elif ahead < -1.0:  # fell far behind: do not try to catch up in a burst
                    anchor_wall, anchor_sim = time.monotonic(), now

    def _publish(self, out: list[Any], now: float) -> None:
        if now >= self._next_clock - 1e-9:
            self.clock_pub.publish(Clock(clock=conv.stamp(now)))
            self._next_clock = now + self.clock_period
        tfs = []
        for s in out:
            pubs = self.pubs.get(getattr(s, 'robot', ''), {})
            if isinstance(s, OdomSample):
                odom, tf = conv.odom_msgs(s, self.config.odom_noise)
                pubs['odom'].publish(odom)
                tfs.append(tf)
            elif isinstance(s, ImuSample):
                if self._watched(pubs['imu']):  # 50 Hz per robot that often nobody reads
                    pubs['imu'].publish(conv.imu_msg(s))
            elif isinstance(s, ScanSample):
                pubs['scan'].publish(conv.scan_msg(s))
            elif isinstance(s, CameraFrame):
                image = conv.image_msg(s)
                pubs['image'].publish(image)
                pubs['info'].publish(conv.camera_info_msg(image.header, self.sim.camera))
                pubs['gt_det'].publish(conv.detections_msg(image.header, s))
            elif isinstance(s, BatterySample):
                pubs['battery'].publish(conv.battery_msg(s))
            elif isinstance(s, CollisionEvent):
                pubs['collisions'].publish(conv.collision_msg(s))
                self.get_logger().warning(
                    f'{s.robot} collided with {s.other} at {s.impact_speed:.2f} m/s',
                    throttle_duration_sec=1.0)
            elif isinstance(s, GroundTruthSample):
                if self._watched(self.gt_pub):
                    self.gt_pub.publish(conv.ground_truth_msg(s))
        if tfs:
            self.tf_pub.publish(TFMessage(transforms=tfs))

    def _watched(self, pub: Any) -> bool:
        """True if pub has subscribers (counts refreshed once a wall second)."""
        now = time.monotonic()
        if now - self._watch_time > 1.0:
            self._watch_time = now
            self._watch_counts.clear()
        count = self._watch_counts.get(id(pub))
        if count is None:
            count = self._watch_counts[id(pub)] = pub.get_subscription_count()
        return count > 0

    def _publish_diagnostics(self) -> None:
        wall0, sim0 = self._rtf_window
        wall, simt = time.monotonic(), self.sim.time
        if wall > wall0:
            self.measured_rtf = (simt - sim0) / (wall - wall0)
        self._rtf_window = (wall, simt)
        status = DiagnosticStatus(level=DiagnosticStatus.OK, name='sim',
                                  message=f'real-time factor {self.measured_rtf:.2f}',
                                  hardware_id='kpai_sim')
        values = {'sim_time': f'{simt:.3f}', 'real_time_factor': f'{self.measured_rtf:.3f}',
                  'target_real_time_factor': str(self.rtf)}
        for robot, r in self.sim.robots.items():
            values[f'{robot}.cmd_vel_rejected'] = str(r.drive.rejected)
            values[f'{robot}.cmd_vel_clamped'] = str(r.drive.clamped)
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = conv.stamp(simt)
        self.diag_pub.publish(msg)

    def shutdown(self) -> None:
        """Stop the loop thread and release the renderer."""
        self._stop.set()
        self._thread.join(timeout=5.0)


def main(args: list[str] | None = None) -> int:
    """Run the simulation node until interrupted."""
    rclpy.init(args=args)
    node: SimNode | None = None
    code = 0
    try:
        node = SimNode()
        spin_lean(node)
    except (SimError, ParameterException) as err:
        print(f'sim: {err}', file=sys.stderr)
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # an entity failed while Ctrl-C tore the context down under the executor: shutdown
    finally:
        if node is not None:
            code = code or (1 if node.failed else 0)
            node.shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == '__main__':
    sys.exit(main())
