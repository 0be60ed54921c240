"""`robot_tf`: publish a robot's URDF fixed joints (and optionally map -> odom) on /tf_static.

On real robots this replaces robot_state_publisher for the stack's needs (all joints the
perception stack uses are fixed) and works where robot_state_publisher is not installed.
Frames are prefixed with the robot name, as in the simulation: <robot>/base_link, ...
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import rclpy
from kpai_sim.errors import SimError
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from tf2_msgs.msg import TFMessage

__all__ = ['RobotTfNode', 'main']


@dataclass(frozen=True)
class RobotTfConfig:
    """Parameters of the robot_tf node."""

    robot: str
    urdf: str
    map_to_odom: tuple[float, ...]


class RobotTfNode(Node):
    """Latch the robot's fixed transforms once; nothing to do afterwards."""

    def __init__(self) -> None:
        super().__init__('robot_tf')
        ns = self.get_namespace().strip('/')
        robot = self.declare_parameter(
            'robot', ns or 'robot1',
            ParameterDescriptor(description='frame prefix (default: the namespace)')).value
        urdf = self.declare_parameter(
            'urdf', '', ParameterDescriptor(
                description="URDF file ('' = the stack's kpai_amr.urdf)")).value
        pose = self.declare_parameter(
            'map_to_odom', [0.0], ParameterDescriptor(
                description='[x, y, yaw]: publish a static map -> <robot>/odom (fixed start '
                            'pose, no localization); [] or [0.0] = leave it to localization')
        ).value
        pose = tuple(float(v) for v in pose)
        if len(pose) not in (0, 1, 3) or not all(math.isfinite(v) for v in pose):
            raise ValueError(f'map_to_odom must be [x, y, yaw] of finite numbers, got {pose}')
        self.config = RobotTfConfig(str(robot), str(urdf), pose if len(pose) == 3 else ())
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._pub = self.create_publisher(TFMessage, '/tf_static', latched)
        self._pub.publish(TFMessage(transforms=self._transforms()))
        self.get_logger().info(f'published the static transforms of {self.config.robot}')

    def _transforms(self) -> list[object]:
        from kpai_sim.messages import joint_transform, static_transform
        from kpai_sim.robot_description import load_robot_spec

        spec = load_robot_spec(self.config.urdf or None)
        out = [joint_transform(0.0, self.config.robot, j) for j in spec.fixed_joints]
        if self.config.map_to_odom:
            x, y, yaw = self.config.map_to_odom
            out.append(static_transform(0.0, 'map', f'{self.config.robot}/odom', (x, y, 0.0),
                                        (0.0, 0.0, yaw)))
        return out


def main(args: list[str] | None = None) -> int:
    """Run the node until shutdown; exit 2 on a bad URDF or parameter."""
    rclpy.init(args=args)
    node = None
    try:
        node = RobotTfNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, OSError, SimError) as err:
        print(f'robot_tf: {err}', file=sys.stderr)
        return 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
