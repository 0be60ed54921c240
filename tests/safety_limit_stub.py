"""Test double of a robot's safety monitor: publishes a constant speed limit at 10 Hz.

The controller and the mission executor stop without a fresh limit from a node named
`safety_monitor` in their namespace; planning tests that do not run perception start this:
    python tests/safety_limit_stub.py --ros-args -r __ns:=/robot1 -p limit:=1.5
"""

from __future__ import annotations

import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from std_msgs.msg import Float64


def main() -> int:
    """Publish `limit` (m/s) on safety/speed_limit every `period` seconds."""
    rclpy.init(args=sys.argv)
    node = Node('safety_monitor')
    limit = float(node.declare_parameter('limit', 1.5).value)
    period = float(node.declare_parameter('period', 0.1).value)
    pub = node.create_publisher(Float64, 'safety/speed_limit', 10)
    node.create_timer(period, lambda: pub.publish(Float64(data=limit)))
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
