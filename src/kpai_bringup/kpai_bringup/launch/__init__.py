"""The kpai launcher: runs ROS 2 YAML launch files where `ros2 launch` is absent.

Pure Python (no rclpy): `yaml_loader` keeps line numbers, `entity`/`actions` parse tags
strictly, `substitutions` handles `$(...)`, `evaluate` walks the actions into a `LaunchPlan`
(`node_command` builds node command lines as launch_ros does), `supervisor` runs the plan.
"""

from __future__ import annotations

from .errors import (
    ExecutableNotFoundError,
    LaunchError,
    LaunchFileError,
    PackageNotFoundError,
    SubstitutionError,
)
from .evaluate import MIDDLEWARE_DEFAULTS, evaluate_launch_file
from .plan import DeclaredArg, LaunchPlan, ProcessSpec
from .supervisor import Supervisor

__all__ = [
    'MIDDLEWARE_DEFAULTS',
    'DeclaredArg',
    'ExecutableNotFoundError',
    'LaunchError',
    'LaunchFileError',
    'LaunchPlan',
    'PackageNotFoundError',
    'ProcessSpec',
    'SubstitutionError',
    'Supervisor',
    'evaluate_launch_file',
]
