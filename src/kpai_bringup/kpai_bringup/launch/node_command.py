"""Build a node's command line the way launch_ros does.

`<exe> [args] [--ros-args <ros_args>] --ros-args [-r __node:=<name>] [-r __ns:=<ns>]
[global params] [--params-file <file> | -p name:=value]... [-r from:=to]...`

Each `param` entry becomes one `--params-file`, in the order written: a `from` file is passed
as it is; an inline `name`/`value` param is written to its own temporary parameter file under
the fully qualified node name (or `/**` when name or namespace is unknown).  rcl applies the
files in order, so a later entry overrides an earlier one, except that a fully qualified node
name always wins over a `/**` wildcard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from .actions import InlineParam, NodeAction, ParamFile
from .errors import LaunchFileError
from .substitutions import SubstitutionContext, Template, parse_template

__all__ = [
    'BuiltNode',
    'absolute_namespace',
    'build_node_command',
    'coerce_param',
    'evaluate_param_value',
    'join_namespace',
    'typed_param_value',
]

_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
_NAMESPACE = re.compile(r'^(/[A-Za-z_][A-Za-z0-9_]*)*/?$')
_SCALAR_TYPES = (bool, int, float, str)


class _Scope(Protocol):
    global_params: list[tuple[str, Any]]
    global_remaps: list[tuple[str, str]]


class NodeContext(SubstitutionContext, Protocol):
    """What building a node command needs from the launch state."""

    param_dir: str

    @property
    def scope(self) -> _Scope: ...

    def ev(self, t: Template | None, default: str = '') -> str: ...


@dataclass
class BuiltNode:
    """A node's command line and the parameter files written for it."""

    cmd: list[str]
    node_name: str | None
    param_files: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def join_namespace(base: str | None, ns: str | None) -> str | None:
    """Prefix a relative namespace with base; an absolute one replaces it."""
    if ns is None or ns == '':
        return base
    if ns.startswith('/') or not base:
        return ns
    return base.rstrip('/') + '/' + ns


def absolute_namespace(ns: str) -> str:
    """Return ns starting with '/' and without a trailing '/'."""
    ns = ns if ns.startswith('/') else '/' + ns
    return ns.rstrip('/') or '/'


def _yaml_typed(text: str, where: Template) -> Any:
    """Type a substituted string by YAML rules, as launch's coerce_to_type(value, None) does."""
    if not text:
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise where.error(f"parameter value '{text}' is not valid YAML (ros2 launch rejects it;"
                          ' quote it inside the value or give type: str)') from err
    if isinstance(value, _SCALAR_TYPES):
        return value
    if isinstance(value, list) and all(isinstance(v, _SCALAR_TYPES) for v in value):
        kinds = {type(v) for v in value if not isinstance(v, str)}
        if len(kinds) <= 1:
            return value
    raise where.error(f"parameter value '{text}' gives a {type(value).__name__}; allowed are "
                      'bool, int, float, str and uniform lists of them (give type: str to keep '
                      'the text)')


def coerce_param(text: str, ptype: str | None, where: Template) -> Any:
    """Type a substituted string the way launch_ros does (YAML rules unless a type is given)."""
    if ptype is None:
        return _yaml_typed(text, where)
    if ptype == 'str':
        return text
    try:
        if ptype == 'int':
            return int(text)
        if ptype == 'float':
            return float(text)
    except ValueError as err:
        raise where.error(f"parameter value '{text}' is not a valid {ptype}") from err
    # bool: '1' and '0' count as true and false, otherwise YAML rules (coerce_to_type)
    value = _yaml_typed({'1': 'true', '0': 'false'}.get(text, text), where)
    if not isinstance(value, bool):
        raise where.error(f"parameter value '{text}' is not a valid bool")
    return value


_PY_TYPES = {'str': str, 'int': int, 'float': float, 'bool': bool}


def typed_param_value(ctx: SubstitutionContext, value: Template) -> Any:
    """Evaluate a `set_parameter` value: always YAML rules, even without substitutions."""
    return _yaml_typed(value.evaluate(ctx), value)


def evaluate_param_value(ctx: SubstitutionContext, value: Any, ptype: str | None = None) -> Any:
    """Evaluate a node parameter value as launch_ros does (see InlineParam for the rules)."""
    if isinstance(value, Template):
        text = value.evaluate(ctx)
        if not value.is_text:
            return coerce_param(text, ptype, value)
        # a literal string stays a string; with a non-str type launch_ros rejects it
        if ptype not in (None, 'str'):
            raise value.error(f"parameter value '{text}' is a quoted string but its type is "
                              f'{ptype}: ros2 launch rejects this; write it unquoted')
        return text
    if isinstance(value, list):
        if value and all(isinstance(v, InlineParam) for v in value):
            return {v.name.evaluate(ctx): evaluate_param_value(ctx, v.value, v.type)
                    for v in value}
        return [evaluate_param_value(ctx, v, ptype) for v in value]
    if ptype is not None and not (isinstance(value, _PY_TYPES[ptype])
                                  and not (ptype == 'int' and isinstance(value, bool))):
        raise LaunchFileError(f'parameter value {value!r} is not of type {ptype}')
    return value


def _rule_value(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return text[:-4].rstrip() if text.endswith('\n...') else text.removesuffix('...').strip()


def _write(path: Path, text: str, files: dict[str, str]) -> str:
    path.write_text(text, encoding='utf-8')
    files[str(path)] = text
    return str(path)


def build_node_command(ctx: NodeContext, act: NodeAction, exe: str, *, label: str) -> BuiltNode:
    """Return the command line for node act whose executable resolved to exe."""
    def fail(message: str) -> LaunchFileError:
        return LaunchFileError(message, file=act.file, line=act.line)

    name = ctx.ev(act.node_name) if act.node_name is not None else None
    if name is not None and not _NAME.match(name):
        raise fail(f"invalid node name '{name}'")
    own_ns = ctx.ev(act.namespace) if act.namespace is not None else None
    ns = join_namespace(ctx.configuration('ros_namespace'), own_ns)
    if ns is not None:
        ns = absolute_namespace(ns)
        if not _NAMESPACE.match(ns) or '//' in ns:
            raise fail(f"invalid namespace '{ns}'")
    full_name = None
    if name is not None and ns is not None:
        full_name = ns.rstrip('/') + '/' + name

    cmd = [exe, *(ctx.ev(a) for a in act.args)]
    if act.ros_args:
        cmd += ['--ros-args', *(ctx.ev(a) for a in act.ros_args)]
    cmd.append('--ros-args')
    if name is not None:
        cmd += ['-r', f'__node:={name}']
    if ns is not None:
        cmd += ['-r', f'__ns:={ns}']
    for pname, pvalue in ctx.scope.global_params:
        cmd += ['-p', f'{pname}:={_rule_value(pvalue)}']

    built = BuiltNode(cmd, full_name or name)
    param_dir = Path(ctx.param_dir)
    for i, param in enumerate(act.params):
        if isinstance(param, ParamFile):
            path = ctx.ev(param.path)
            if not Path(path).is_file():
                built.warnings.append(f'parameter file path is not a file: {path}')
                continue
            allow = param.allow_substs
            if isinstance(allow, Template):
                allow = coerce_param(ctx.ev(allow), 'bool', allow)
            if allow:
                text = parse_template(Path(path).read_text(encoding='utf-8'),
                                      file=path).evaluate(ctx)
                path = _write(param_dir / f'{label}_params_{i}.yaml', text, built.param_files)
            cmd += ['--params-file', path]
        else:
            key = full_name or '/**'
            value = evaluate_param_value(ctx, param.value, param.type)
            doc = {key: {'ros__parameters': {param.name.evaluate(ctx): value}}}
            text = yaml.safe_dump(doc, default_flow_style=False, sort_keys=False)
            cmd += ['--params-file',
                    _write(param_dir / f'{label}_params_{i}.yaml', text, built.param_files)]
    for src, dst in [*ctx.scope.global_remaps,
                     *((ctx.ev(s), ctx.ev(d)) for s, d in act.remaps)]:
        cmd += ['-r', f'{src}:={dst}']
    return built
