"""The kpai launcher: runs ROS 2 YAML launch files where `ros2 launch` is absent.

Pure Python (no rclpy): `yaml_loader` keeps line numbers, `entity`/`actions` parse tags
strictly, `substitutions` handles `$(...)`, `evaluate` walks the actions into a `LaunchPlan`
(`node_command` builds node command lines as launch_ros does), `supervisor` runs the plan.

Supported (same names and meaning as the ROS 2 YAML frontend; every tag takes `if`/`unless`):
- `arg` (name, default, description, choice[value]), `let` (name, value)
- `node` (pkg, exec, name, namespace, exec_name, args, ros_args, output, respawn,
  respawn_delay, respawn_max_retries, on_exit: shutdown, launch-prefix, cwd, shell,
  emulate_tty (accepted, no effect), sigterm_timeout, sigkill_timeout;
  children param [name/value[/type] | name + nested param | from[/allow_substs]],
  remap [from/to], env [name/value])
- `executable` (cmd, name and the same process attributes and env children as `node`)
- `include` (file, arg [name/value]) of YAML launch files
- `group` (scoped, forwarding, keep [name/value], children)
- `push-ros-namespace` / `push_ros_namespace` (namespace), `set_env`, `unset_env`,
  `set_parameter` (name, value), `set_remap` (from, to)
- substitutions: var, env, optenv, find-pkg-share, find-pkg-prefix, find-exec, dirname,
  filename, anon, not, and, or, equals, not-equals (nestable)

Semantics follow ros2 launch (Jazzy's launch and launch_ros): the rules that the stack's
files touch (evaluation order, scoping, `$(dirname)` after an include, parameter typing,
attribute types) are written down in `evaluate` and tested one by one in
tests/unit/test_launch_upstream_rules.py. A file that fails under `ros2 launch` fails here too,
with file:line.

Differences from ros2 launch:
- the whole file (and every include) is parsed and evaluated before any process starts, so
  a bad tag, attribute, substitution or missing argument stops the launch with `file:line`
  (exit 2) instead of failing halfway; duplicate keys in a mapping are an error too;
- not supported: XML and Python launch files, `$(eval)`, `$(command)`, event handlers,
  timers, composable nodes, lifecycle transitions; an unknown tag is an error;
- a required process (`on_exit: shutdown`) that fails makes the launcher exit 1;
- Python children get PYTHONUNBUFFERED=1 unless set; every child gets the stack's middleware
  defaults (see `kpai_bringup.middleware`) unless the user exported other values.
"""

from __future__ import annotations

from .errors import (
    ExecutableNotFoundError,
    LaunchError,
    LaunchFileError,
    PackageNotFoundError,
    SubstitutionError,
)
from .evaluate import evaluate_launch_file
from .plan import DeclaredArg, LaunchPlan, ProcessSpec
from .supervisor import Supervisor

__all__ = [
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
