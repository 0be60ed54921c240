"""kinematic_sim: a minimal diff-drive simulator (odom, tf, scan, collisions) for tests."""

from __future__ import annotations

import math

from geometry_msgs.msg import TransformStamped, Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import LaserScan
from tf2_msgs.msg import TFMessage

from kpai_msgs.msg import Collision

from .conversions import quaternion_from_yaw
from .errors import ConfigError
from .kinematic_sim import KinematicWorld, SimRobot
from .mapio import load_map
from .node_util import LATCHED, RELIABLE, SENSOR, declare, run_node

__all__ = ['KinematicSim', 'main']


class KinematicSim(Node):
    """Integrate cmd_vel of N robots on a map; publish odom, /tf, scan and collisions."""

    def __init__(self) -> None:
        super().__init__('kinematic_sim')
        path = declare(self, 'yaml_filename', '', 'map_server-format map of the world')
        names = list(declare(self, 'robots', ['robot1'], 'robot names (namespaces)'))
        poses = list(declare(self, 'initial_poses', [0.0, 0.0, 0.0], 'x, y, yaw per robot'))
        self.rate = float(declare(self, 'rate', 50.0, 'integration rate (Hz)'))
        self.scan_rate = float(declare(self, 'scan_rate', 10.0, 'scan rate (Hz)'))
        radius = float(declare(self, 'robot_radius', 0.25, 'robot radius (m)'))
        if not path:
            raise ConfigError('parameter yaml_filename is required')
        if len(poses) != 3 * len(names):
            raise ConfigError(f'initial_poses needs 3 values per robot, got {len(poses)} '
                              f'for {len(names)} robots')
        robots = [SimRobot(n, *poses[3 * i:3 * i + 3], radius=radius)
                  for i, n in enumerate(names)]
        self.world = KinematicWorld(load_map(path), robots)
        self.odom_pubs = {n: self.create_publisher(Odometry, f'/{n}/odom', SENSOR)
                          for n in names}
        self.scan_pubs = {n: self.create_publisher(LaserScan, f'/{n}/scan', SENSOR)
                          for n in names}
        self.coll_pubs = {n: self.create_publisher(Collision, f'/{n}/collisions', RELIABLE)
                          for n in names}
        self.tf_pub = self.create_publisher(TFMessage, '/tf', 50)
        self.static_pub = self.create_publisher(TFMessage, '/tf_static', LATCHED)
        for n in names:
            self.create_subscription(Twist, f'/{n}/cmd_vel',
                                     lambda m, n=n: self._on_cmd(n, m), RELIABLE)
        statics = TFMessage()
        for n in names:
            t = TransformStamped()
            t.header.frame_id = 'map'
            t.child_frame_id = f'{n}/odom'
            t.transform.rotation.w = 1.0
            statics.transforms.append(t)
        self.static_pub.publish(statics)
        self.contacts: set[tuple[str, str]] = set()
        self.ignored = 0
        self.create_timer(1.0 / self.rate, self._step)
        self.create_timer(1.0 / self.scan_rate, self._scan)

    def _on_cmd(self, name: str, msg: Twist) -> None:
        if not self.world.command(name, msg.linear.x, msg.angular.z):
            self.ignored += 1
            self.get_logger().warning(f'ignored non-finite cmd_vel for {name}',
                                      throttle_duration_sec=5.0)

    def _step(self) -> None:
        self.world.step(1.0 / self.rate)
        stamp = self.get_clock().now().to_msg()
        tf = TFMessage()
        for r in self.world.robots.values():
            odom = Odometry()
            odom.header.stamp = stamp
            odom.header.frame_id = f'{r.name}/odom'
            odom.child_frame_id = f'{r.name}/base_link'
            odom.pose.pose.position.x, odom.pose.pose.position.y = r.x, r.y
            odom.pose.pose.orientation = quaternion_from_yaw(r.yaw)
            odom.twist.twist.linear.x, odom.twist.twist.angular.z = r.v, r.w
            self.odom_pubs[r.name].publish(odom)
            t = TransformStamped()
            t.header = odom.header
            t.child_frame_id = odom.child_frame_id
            t.transform.translation.x, t.transform.translation.y = r.x, r.y
            t.transform.rotation = odom.pose.pose.orientation
            tf.transforms.append(t)
        self.tf_pub.publish(tf)
        now = set(self.world.contacts())
        for robot, other in now - self.contacts:
            r = self.world.robots[robot]
            msg = Collision()
            msg.header.stamp = stamp
            msg.header.frame_id = 'map'
            msg.robot, msg.other = robot, other
            msg.position.x, msg.position.y = r.x, r.y
            msg.impact_speed = abs(r.v)
            self.coll_pubs[robot].publish(msg)
            self.get_logger().warning(f'collision: {robot} with {other}')
        self.contacts = now

    def _scan(self) -> None:
        stamp = self.get_clock().now().to_msg()
        for r in self.world.robots.values():
            msg = LaserScan()
            msg.header.stamp = stamp
            msg.header.frame_id = f'{r.name}/base_link'
            msg.angle_min = -math.pi
            msg.angle_increment = 2 * math.pi / 360
            msg.angle_max = msg.angle_min + 359 * msg.angle_increment
            msg.range_min, msg.range_max = 0.05, 8.0
            msg.ranges = [float(v) for v in self.world.scan(r.name)]
            self.scan_pubs[r.name].publish(msg)


def main(args: list[str] | None = None) -> int:
    """Run the kinematic simulator."""
    return run_node(KinematicSim, args)


if __name__ == '__main__':
    raise SystemExit(main())
