"""Evaluate parsed launch actions in order into a LaunchPlan (processes, arguments).

The rules follow ros2 launch (launch and launch_ros, Jazzy; file names are those of the
ros2/launch and ros2/launch_ros sources), each with a unit test in tests/unit:

- Order: actions are evaluated depth first in file order, an included file's actions before
  the action after the `include`, and substitutions when their action runs (launch_service
  visits the description that way, and actions perform substitutions in execute()).
- Scoping: a `group` is scoped by default (launch configurations, the environment, the pushed
  ROS namespace, `set_parameter` and `set_remap` are restored after it: PushLaunchConfigurations
  / PushEnvironment in group_action.py); `forwarding: false` starts it with none of them but its
  `keep` list. An `include` is not scoped: its `arg` values and the included file's `arg`/`let`
  stay visible after it, so wrap includes that must not leak in a `group`.
- `$(dirname)` / `$(filename)` name the *launch file most recently included*, not the file the
  substitution is written in: include_launch_description.py stores them with
  context.extend_locals(), and locals are not scoped by groups, so after any `include` (even
  one inside a group) they name the included file until the next include. Refer to sibling
  files with `$(find-pkg-share pkg)/launch/...` instead.
- A relative `include` path is relative to the working directory (os.path.abspath), not to the
  including file.
- Attribute types as launch_yaml checks them (see entity.py): strings must be YAML strings;
  `scoped`, `forwarding`, `shell`, `emulate_tty` YAML booleans; `respawn_delay`,
  `sigterm_timeout`, `sigkill_timeout` YAML floats; `respawn_max_retries` a YAML integer.
- Parameter values (node_command.py): a YAML scalar or list keeps its type; a string with
  substitutions is typed by YAML rules after substitution; a string without substitutions stays
  a string (`value: 'true'` is a STRING parameter); `type:` converts a substituted string;
  `set_parameter` values are always typed by YAML rules.
- `if`/`unless` take true/false/1/0 (any case) and nothing else; `respawn` is typed as a bool
  by YAML rules ('1'/'0' included).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..middleware import apply_middleware_defaults
from . import packages
from .actions import (
    Action,
    Arg,
    Group,
    Include,
    Let,
    NodeAction,
    ProcessAction,
    PushNamespace,
    SetEnv,
    SetParameter,
    SetRemap,
    UnsetEnv,
    parse_actions,
)
from .entity import entities_of
from .errors import LaunchError, LaunchFileError
from .node_command import (
    absolute_namespace,
    build_node_command,
    coerce_param,
    join_namespace,
    typed_param_value,
)
from .plan import DeclaredArg, LaunchPlan, ProcessSpec
from .substitutions import Subst, Template, new_anon_name, to_bool
from .yaml_loader import load_launch_yaml

__all__ = ['LaunchState', 'evaluate_launch_file', 'load_actions']

_MAX_INCLUDE_DEPTH = 40


@dataclass
class _Scope:
    configurations: dict[str, str]
    env: dict[str, str]
    global_params: list[tuple[str, Any]]
    global_remaps: list[tuple[str, str]]


@dataclass
class LaunchState:
    """The launch context: configurations, environment, namespace, and what was collected."""

    base_env: dict[str, str]
    param_dir: str
    scope: _Scope = field(init=False)
    stack: list[_Scope] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    plan: LaunchPlan = field(default_factory=LaunchPlan)
    counter: int = 0
    describe: bool = False
    # the launch file most recently included (ros2 launch's context local, never restored)
    launch_file: str = ''
    anon_names: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        env = dict(self.base_env)
        # one consistent middleware for every child unless the user exported something else
        apply_middleware_defaults(env)
        self.initial_env = env
        self.scope = _Scope({}, dict(env), [], [])

    # --- SubstitutionContext ---
    @property
    def current_file(self) -> str:
        return self.launch_file

    def configuration(self, name: str) -> str | None:
        return self.scope.configurations.get(name)

    def environ(self) -> dict[str, str]:
        return self.scope.env

    def package_prefix(self, package: str) -> str:
        return packages.package_prefix(package, self.scope.env)

    def anon(self, name: str) -> str:
        return self.anon_names.setdefault(name, new_anon_name(name))

    # --- scopes ---
    def push(self) -> None:
        s = self.scope
        self.stack.append(s)
        self.scope = _Scope(dict(s.configurations), dict(s.env), list(s.global_params),
                            list(s.global_remaps))

    def pop(self) -> None:
        self.scope = self.stack.pop()

    def ev(self, t: Template | None, default: str = '') -> str:
        """Evaluate an optional template."""
        return default if t is None else t.evaluate(self)


def load_actions(path: str | Path) -> list[Action]:
    """Read and parse a YAML launch file (syntax, tags and attributes checked)."""
    file = str(Path(path).resolve()) if Path(path).exists() else str(path)
    return parse_actions(entities_of(load_launch_yaml(file), file=file))


def _condition_holds(state: LaunchState, act: Action) -> bool:
    try:
        return _condition_value(state, act)
    except LaunchError:
        if state.describe:  # placeholders of required arguments: show what is behind
            return True
        raise


def _condition_value(state: LaunchState, act: Action) -> bool:
    if act.if_ is not None and not to_bool(state.ev(act.if_), where=act.if_, what="'if'"):
        return False
    if act.unless is not None and to_bool(state.ev(act.unless), where=act.unless,
                                          what="'unless'"):
        return False
    return True


def _run_arg(state: LaunchState, act: Arg) -> None:
    confs = state.scope.configurations
    default = None if act.default is None else state.ev(act.default)
    state.plan.args.append(DeclaredArg(act.name, act.description, default, act.choices,
                                       act.file))
    if state.describe:
        confs.setdefault(act.name, f'<{act.name}>' if default is None else default)
        return
    if act.name not in confs:
        if default is None:
            raise LaunchFileError(f"required argument '{act.name}' not provided "
                                  f'(pass {act.name}:=<value>)', file=act.file, line=act.line)
        confs[act.name] = default
    if act.choices is not None and confs[act.name] not in act.choices:
        raise LaunchFileError(f"argument '{act.name}' is '{confs[act.name]}', valid choices are"
                              f' {act.choices}', file=act.file, line=act.line)


def _resolve_include(state: LaunchState, act: Include) -> Path:
    raw = state.ev(act.path)
    path = Path(raw)
    if not path.is_file():
        hint = ''
        if not path.is_absolute():
            hint = (f' (relative to the working directory {os.getcwd()}, as in ros2 launch; '
                    'name the file with $(find-pkg-share PACKAGE)/...)')
        if Path(state.current_file).is_absolute() and _uses_dirname(act.path):
            hint += (f'; $(dirname) is the directory of the most recently included launch file'
                     f' ({Path(state.current_file).parent}), as in ros2 launch')
        raise LaunchFileError(f"included file '{raw}' not found{hint}", file=act.file,
                              line=act.line)
    if path.suffix not in ('.yaml', '.yml'):
        raise LaunchFileError(f"cannot include '{raw}': kpai launch reads YAML launch files "
                              'only', file=act.file, line=act.line)
    return path.resolve()


def _uses_dirname(t: Template | None) -> bool:
    return t is not None and any(isinstance(p, Subst) and p.name == 'dirname' for p in t.parts)


def _run_include(state: LaunchState, act: Include) -> None:
    try:
        path = _resolve_include(state, act)
    except LaunchError:
        if state.describe:  # e.g. a path made of a required argument: nothing to show
            return
        raise
    if len(state.files) >= _MAX_INCLUDE_DEPTH:
        raise LaunchFileError('includes nested too deeply (a file including itself?)',
                              file=act.file, line=act.line)
    for name, value in act.args:
        state.scope.configurations[state.ev(name)] = state.ev(value)
    actions = load_actions(path)
    state.files.append(str(path))
    state.launch_file = str(path)  # stays after the include, as ros2 launch's locals do
    try:
        _run_actions(state, actions)
    finally:
        state.files.pop()


def _run_group(state: LaunchState, act: Group) -> None:
    scoped, forwarding = act.scoped, act.forwarding
    keep = [(state.ev(k), state.ev(v)) for k, v in act.keep]
    if scoped:
        state.push()
        if not forwarding:
            state.scope.configurations = {}
            state.scope.env = dict(state.initial_env)
            state.scope.global_params, state.scope.global_remaps = [], []
    state.scope.configurations.update(keep)
    try:
        _run_actions(state, act.children)
    finally:
        if scoped:
            state.pop()


def _process_spec(state: LaunchState, act: ProcessAction, cmd: list[str], label: str,
                  node_name: str | None = None) -> ProcessSpec:
    state.counter += 1
    env = dict(state.scope.env)
    env.setdefault('PYTHONUNBUFFERED', '1')  # Python nodes print line by line through the pipe
    for name, value in act.env:
        env[state.ev(name)] = state.ev(value)
    output = state.ev(act.output, 'log')
    if output not in ('screen', 'log', 'both', 'own_log'):
        raise LaunchFileError(f"output must be screen, log, both or own_log, got '{output}'",
                              file=act.file, line=act.line)
    prefix = [state.ev(p) for p in act.prefix]
    cwd = state.ev(act.cwd) if act.cwd is not None else None
    return ProcessSpec(
        name=f'{label}-{state.counter}', cmd=prefix + cmd, env=env, cwd=cwd, output=output,
        respawn=_respawn(state, act.respawn), respawn_delay=act.respawn_delay,
        respawn_max_retries=act.respawn_max_retries, required=act.required, shell=act.shell,
        sigterm_timeout=act.sigterm_timeout, sigkill_timeout=act.sigkill_timeout,
        node_name=node_name)


def _respawn(state: LaunchState, t: Template | None) -> bool:
    # typed as a bool substitution (YAML rules, '1'/'0' too), as ExecuteProcess does
    return False if t is None else bool(coerce_param(state.ev(t), 'bool', t))


def _run_executable(state: LaunchState, act: ProcessAction) -> None:
    cmd = [state.ev(t) for t in act.cmd]
    if not act.shell:
        cmd[0] = packages.find_program(cmd[0], state.scope.env)
    else:
        cmd = [' '.join(cmd)]
    label = state.ev(act.name) if act.name is not None else Path(cmd[0].split()[0]).name
    state.plan.processes.append(_process_spec(state, act, cmd, label))


def _run_node(state: LaunchState, act: NodeAction) -> None:
    executable = state.ev(act.executable)
    if act.package is not None:
        exe = packages.find_node_executable(state.ev(act.package), executable, state.scope.env)
    else:
        exe = packages.find_program(executable, state.scope.env)
    label = state.ev(act.exec_name) if act.exec_name is not None else Path(executable).name
    built = build_node_command(state, act, exe, label=f'{label}-{state.counter + 1}')
    for warning in built.warnings:
        state.plan.warnings.append(f'{act.file}:{act.line}: {warning}')
    state.plan.param_files.update(built.param_files)
    state.plan.processes.append(
        _process_spec(state, act, built.cmd, label, node_name=built.node_name))


def _run_one(state: LaunchState, act: Action) -> None:
    s = state.scope
    if isinstance(act, Arg):
        _run_arg(state, act)
    elif isinstance(act, Let):
        s.configurations[act.name] = state.ev(act.value)
    elif isinstance(act, SetEnv):
        s.env[state.ev(act.name)] = state.ev(act.value)
    elif isinstance(act, UnsetEnv):
        s.env.pop(state.ev(act.name), None)
    elif isinstance(act, PushNamespace):
        # kept in the `ros_namespace` configuration, as launch_ros does
        pushed = join_namespace(s.configurations.get('ros_namespace'),
                                state.ev(act.namespace) or None)
        if pushed is not None:
            s.configurations['ros_namespace'] = absolute_namespace(pushed)
    elif isinstance(act, SetParameter):
        assert act.value is not None  # parse_actions requires it
        s.global_params.append((state.ev(act.name), typed_param_value(state, act.value)))
    elif isinstance(act, SetRemap):
        s.global_remaps.append((state.ev(act.src), state.ev(act.dst)))
    elif isinstance(act, Include):
        _run_include(state, act)
    elif isinstance(act, Group):
        _run_group(state, act)
    elif isinstance(act, NodeAction):
        if not state.describe:
            _run_node(state, act)
    elif isinstance(act, ProcessAction):
        if not state.describe:
            _run_executable(state, act)
    else:  # pragma: no cover - parse_actions only builds the types above
        raise LaunchFileError(f'unsupported action {type(act).__name__}', file=act.file,
                              line=act.line)


def _run_actions(state: LaunchState, actions: list[Action]) -> None:
    for act in actions:
        if _condition_holds(state, act):
            _run_one(state, act)


def evaluate_launch_file(path: str | Path, arguments: Mapping[str, str], *,
                         env: Mapping[str, str] | None = None,
                         param_dir: str | None = None, describe: bool = False) -> LaunchPlan:
    """Parse and evaluate a launch file with name:=value arguments into a LaunchPlan.

    With describe=True only the declared arguments are collected (for --show-args): missing
    required arguments are no error and no process is resolved.
    """
    actions = load_actions(path)
    base_env = dict(os.environ if env is None else env)
    if param_dir is None and not describe:
        param_dir = tempfile.mkdtemp(prefix='kpai_launch_params_')
    state = LaunchState(base_env=base_env, param_dir=param_dir or '', describe=describe)
    state.scope.configurations.update(arguments)
    state.files.append(str(Path(path).resolve()))
    state.launch_file = state.files[-1]
    _run_actions(state, actions)
    return state.plan
