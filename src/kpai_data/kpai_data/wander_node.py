"""Data-collection driver: each robot wanders its world using its lidar (cmd_vel from scan)."""

from __future__ import annotations

import sys
from typing import Any

import rclpy
from geometry_msgs.msg import Twist
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import LaserScan

from .wander import WanderPolicy

__all__ = ['WanderNode', 'main']


class WanderNode(Node):
    """Subscribe <robot>/scan, publish <robot>/cmd_vel for every robot named."""

    def __init__(self) -> None:
        super().__init__('wander')
        robots = self.declare_parameter(
            'robots', ['robot1'], ParameterDescriptor(description='robot namespaces')).value
        speed = float(self.declare_parameter('speed', 0.4).value)
        seed = int(self.declare_parameter('seed', 0).value)
        self._pubs: dict[str, Any] = {}
        for i, robot in enumerate(robots):
            policy = WanderPolicy(speed=speed, seed=seed + i)
            pub = self.create_publisher(Twist, f'/{robot}/cmd_vel', 10)
            self._pubs[robot] = pub

            def on_scan(msg: LaserScan, policy: WanderPolicy = policy, pub: Any = pub) -> None:
                lin, ang = policy.command(msg.ranges, msg.angle_min, msg.angle_increment)
                cmd = Twist()
                cmd.linear.x, cmd.angular.z = lin, ang
                pub.publish(cmd)

            self.create_subscription(LaserScan, f'/{robot}/scan', on_scan,
                                     qos_profile_sensor_data)


def main(args: list[str] | None = None) -> int:
    """Run the wandering driver until Ctrl-C."""
    rclpy.init(args=args)
    node = None
    try:
        node = WanderNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
