"""Parameters that several planning nodes declare under the same names."""

from __future__ import annotations

import math
from typing import Any

from .controller import ControllerParams
from .costmap import CostmapParams
from .errors import PlanningError
from .node_util import declare

__all__ = ['declare_controller', 'declare_costmap', 'declare_max_pose_age']


def declare_costmap(node: Any) -> CostmapParams:
    """Declare the costmap parameters (same names in every node that plans) and return them."""
    return CostmapParams(
        robot_radius=declare(node, 'robot_radius', 0.3, 'robot radius (m)'),
        inflation_radius=declare(node, 'inflation_radius', 0.9, 'inflation radius (m)'),
        cost_scaling_factor=declare(node, 'cost_scaling_factor', 3.0, 'cost decay (1/m)'),
        obstacle_decay_s=declare(node, 'obstacle_decay_s', 2.0, 'scan obstacle life (s)'))


def declare_controller(node: Any, robot_radius: float) -> ControllerParams:
    """Declare the path-following parameters (same names in every node that drives)."""
    return ControllerParams(
        desired_speed=declare(node, 'desired_speed', 0.5, 'cruise speed (m/s)'),
        robot_radius=robot_radius,
        xy_goal_tolerance=declare(node, 'xy_goal_tolerance', 0.1, 'goal tolerance (m)'),
        yaw_goal_tolerance=declare(node, 'yaw_goal_tolerance', 0.15, 'yaw tolerance (rad)'))


def declare_max_pose_age(node: Any) -> float:
    """Declare `max_pose_age` (s): a node that drives stops on odometry older than this."""
    value = float(declare(node, 'max_pose_age', 0.5,
                          'stop when no odometry has arrived for this long (s, the '
                          "node's clock); 0 = do not check"))
    if not (math.isfinite(value) and value >= 0):
        raise PlanningError(f'max_pose_age must be a finite number >= 0, got {value}')
    return value
