"""Launch actions parsed from YAML entities, still holding unevaluated substitutions."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Union

from .entity import Entity
from .errors import LaunchFileError
from .substitutions import Part, Subst, Template, parse_template

__all__ = [
    'Action',
    'Arg',
    'Group',
    'Include',
    'InlineParam',
    'Let',
    'NodeAction',
    'ParamFile',
    'ProcessAction',
    'PushNamespace',
    'SetEnv',
    'SetParameter',
    'SetRemap',
    'UnsetEnv',
    'parse_actions',
    'split_cmdline',
]

OUTPUTS = ('screen', 'log', 'both', 'own_log')
PARAM_TYPES = ('str', 'int', 'float', 'bool')


@dataclass
class Action:
    """Common part of every action: where it is and its if/unless conditions."""

    file: str
    line: int
    if_: Template | None = None
    unless: Template | None = None


@dataclass
class Arg(Action):
    name: str = ''
    default: Template | None = None
    description: str = ''
    choices: list[str] | None = None


@dataclass
class Let(Action):
    name: str = ''
    value: Template | None = None


@dataclass
class SetEnv(Action):
    name: Template | None = None
    value: Template | None = None


@dataclass
class UnsetEnv(Action):
    name: Template | None = None


@dataclass
class PushNamespace(Action):
    namespace: Template | None = None


@dataclass
class SetParameter(Action):
    """`set_parameter`: the value is always a string typed by YAML rules, as launch_ros does."""

    name: Template | None = None
    value: Template | None = None


@dataclass
class SetRemap(Action):
    src: Template | None = None
    dst: Template | None = None


@dataclass
class Group(Action):
    scoped: bool = True
    forwarding: bool = True
    keep: list[tuple[Template, Template]] = field(default_factory=list)
    children: list[Action] = field(default_factory=list)


@dataclass
class Include(Action):
    path: Template | None = None
    args: list[tuple[Template, Template]] = field(default_factory=list)


@dataclass
class ParamFile:
    path: Template
    allow_substs: bool | Template = False


@dataclass
class InlineParam:
    """A named parameter: value is a YAML scalar/list (strings as Templates) or nested params.

    Typed as launch_ros types it: YAML numbers, booleans and lists keep their type; a string
    with substitutions is typed by YAML rules after substitution (`$(var x)` giving `true` is a
    bool); a string without substitutions stays a string (`value: 'true'` is the string
    'true', which a node declaring a bool rejects).
    """

    name: Template
    value: Any
    type: str | None = None


Param = Union[ParamFile, InlineParam]


@dataclass
class ProcessAction(Action):
    """`executable` (cmd) and the process part of `node`."""

    cmd: list[Template] = field(default_factory=list)
    name: Template | None = None
    cwd: Template | None = None
    env: list[tuple[Template, Template]] = field(default_factory=list)
    output: Template | None = None
    respawn: Template | None = None
    respawn_delay: float = 0.0
    respawn_max_retries: int = -1
    required: bool = False
    prefix: list[Template] = field(default_factory=list)
    shell: bool = False
    sigterm_timeout: float = 5.0
    sigkill_timeout: float = 5.0


@dataclass
class NodeAction(ProcessAction):
    package: Template | None = None
    executable: Template | None = None
    exec_name: Template | None = None
    node_name: Template | None = None
    namespace: Template | None = None
    args: list[Template] = field(default_factory=list)
    ros_args: list[Template] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    remaps: list[tuple[Template, Template]] = field(default_factory=list)


def split_cmdline(t: Template) -> list[Template]:
    """Split a command line on spaces; a substitution's value is never split."""
    args: list[list[Part]] = []
    cur: list[Part] = []
    for part in t.parts:
        if isinstance(part, Subst):
            cur.append(part)
            continue
        try:
            tokens = shlex.split(part)
        except ValueError as err:
            raise t.error(f'cannot split command line: {err}') from err
        if part[:1].isspace() and cur:
            args.append(cur)
            cur = []
        for i, tok in enumerate(tokens):
            if i > 0:
                args.append(cur)
                cur = []
            cur.append(tok)
        if part[-1:].isspace() and cur:
            args.append(cur)
            cur = []
    if cur:
        args.append(cur)
    return [Template(tuple(a), t.file, t.line) for a in args]


def _common(e: Entity, cls: type, **kwargs: Any) -> Any:
    return cls(file=e.file, line=e.line, if_=e.template('if', optional=True),
               unless=e.template('unless', optional=True), **kwargs)


def _pairs(e: Entity, attr: str, a: str, b: str) -> list[tuple[Template, Template]]:
    out = []
    for sub in e.entities(attr):
        first, second = sub.template(a), sub.template(b)
        sub.finish()
        assert first is not None and second is not None
        out.append((first, second))
    return out


def _param_value(e: Entity, value: Any) -> Any:
    if isinstance(value, str):
        return parse_template(value, file=e.file, line=e.line_of('value'))
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, list) and all(isinstance(v, (str, bool, int, float)) for v in value):
        return [_param_value(e, v) for v in value]
    raise e.error('a parameter value must be a scalar or a list of scalars', 'value')


def _params(e: Entity) -> list[Param]:
    out: list[Param] = []
    for p in e.entities('param'):
        if p.has('from'):
            if p.has('name'):
                raise p.error("'name' and 'from' are mutually exclusive in 'param'")
            path = p.template('from')
            assert path is not None
            out.append(ParamFile(path, _allow_substs(p)))
            p.finish()
        elif p.has('name'):
            out.append(_inline_param(p))
        else:
            raise p.error("'param' needs a 'name' (with 'value' or nested 'param') or 'from'")
    return out


def _allow_substs(p: Entity) -> bool | Template:
    value = p.raw('allow_substs', optional=True)
    if value is None or isinstance(value, bool):
        return bool(value)
    return p.template('allow_substs') or False  # a string: a substitution, typed later


def _inline_param(p: Entity) -> InlineParam:
    name = p.template('name')
    assert name is not None
    ptype = p.text('type', optional=True)
    if ptype is not None and ptype not in PARAM_TYPES:
        raise p.error(f"unsupported parameter type '{ptype}' (supported: "
                      f"{', '.join(PARAM_TYPES)})", 'type')
    if p.has('value') and p.has('param'):
        raise p.error("'value' and nested 'param' are mutually exclusive")
    if p.has('value'):
        value = _param_value(p, p.raw('value'))
    elif p.has('param'):
        if ptype is not None:
            raise p.error("'type' cannot be used with nested 'param'", 'type')
        nested = []
        for sub in p.entities('param'):
            if not sub.has('name'):
                raise sub.error("nested 'param' needs a 'name'")
            nested.append(_inline_param(sub))
        value = nested
    else:
        raise p.error("'param' needs a 'value' or nested 'param'")
    p.finish()
    return InlineParam(name, value, ptype)


def _process_common(e: Entity, act: ProcessAction, *, read_name: bool) -> None:
    if read_name:
        act.name = e.template('name', optional=True)
    act.cwd = e.template('cwd', optional=True)
    act.env = _pairs(e, 'env', 'name', 'value')
    act.output = e.template('output', optional=True)
    act.respawn = e.template('respawn', optional=True)
    delay = e.number('respawn_delay')
    if delay is not None:
        if delay < 0:
            raise e.error('respawn_delay must not be negative', 'respawn_delay')
        act.respawn_delay = delay
    retries = e.number('respawn_max_retries', integer=True)
    if retries is not None:
        act.respawn_max_retries = int(retries)
    on_exit = e.text('on_exit', optional=True)
    if on_exit is not None:
        if on_exit != 'shutdown':
            raise e.error(f"on_exit must be 'shutdown', got '{on_exit}'", 'on_exit')
        act.required = True
    prefix = e.template('launch-prefix', optional=True)
    act.prefix = split_cmdline(prefix) if prefix is not None else []
    for attr in ('sigterm_timeout', 'sigkill_timeout'):
        value = e.number(attr)
        if value is not None:
            if value < 0:
                raise e.error(f'{attr} must not be negative', attr)
            setattr(act, attr, value)
    act.shell = bool(e.flag('shell'))
    e.flag('emulate_tty')  # accepted; output is line-buffered anyway


def _parse_node(e: Entity) -> NodeAction:
    act: NodeAction = _common(e, NodeAction)
    act.package = e.template('pkg', optional=True)
    act.executable = e.template('exec')
    act.exec_name = e.template('exec_name', optional=True)
    act.node_name = e.template('name', optional=True)
    act.name = act.exec_name
    act.namespace = e.template('namespace', optional=True)
    args = e.template('args', optional=True)
    act.args = split_cmdline(args) if args is not None else []
    ros_args = e.template('ros_args', optional=True)
    act.ros_args = split_cmdline(ros_args) if ros_args is not None else []
    act.params = _params(e)
    act.remaps = _pairs(e, 'remap', 'from', 'to')
    _process_common(e, act, read_name=False)
    return act


def _parse_executable(e: Entity) -> ProcessAction:
    act: ProcessAction = _common(e, ProcessAction)
    cmd = e.template('cmd')
    assert cmd is not None
    act.cmd = split_cmdline(cmd)
    if not act.cmd:
        raise e.error("'cmd' of 'executable' is empty", 'cmd')
    _process_common(e, act, read_name=True)
    return act


def _parse_arg(e: Entity) -> Arg:
    choices = None
    if e.has('choice'):
        choices = []
        for c in e.entities('choice'):
            choices.append(str(c.text('value')))
            c.finish()
    return _common(e, Arg, name=e.text('name'), default=e.template('default', optional=True),
                   description=e.text('description', optional=True) or '', choices=choices)


def _parse_group(e: Entity) -> Group:
    scoped, forwarding = e.flag('scoped'), e.flag('forwarding')
    act: Group = _common(e, Group, scoped=True if scoped is None else scoped,
                         forwarding=True if forwarding is None else forwarding)
    act.keep = _pairs(e, 'keep', 'name', 'value')
    act.children = parse_actions(e.children())
    return act


def _parse_one(e: Entity) -> Action:
    tag = e.type_name
    if tag == 'node':
        act: Action = _parse_node(e)
    elif tag == 'executable':
        act = _parse_executable(e)
    elif tag == 'arg':
        act = _parse_arg(e)
    elif tag == 'let':
        act = _common(e, Let, name=e.text('name'), value=e.template('value'))
    elif tag == 'set_env':
        act = _common(e, SetEnv, name=e.template('name'), value=e.template('value'))
    elif tag == 'unset_env':
        act = _common(e, UnsetEnv, name=e.template('name'))
    elif tag in ('push-ros-namespace', 'push_ros_namespace'):
        act = _common(e, PushNamespace, namespace=e.template('namespace'))
    elif tag == 'set_parameter':
        act = _common(e, SetParameter, name=e.template('name'), value=e.template('value'))
    elif tag == 'set_remap':
        act = _common(e, SetRemap, src=e.template('from'), dst=e.template('to'))
    elif tag == 'include':
        act = _common(e, Include, path=e.template('file'),
                      args=_pairs(e, 'arg', 'name', 'value'))
    elif tag == 'group':
        act = _parse_group(e)
    else:
        raise LaunchFileError(f"unknown tag '{tag}'", file=e.file, line=e.line)
    e.finish()
    return act


def parse_actions(entities: list[Entity]) -> list[Action]:
    """Parse entities into actions; raise LaunchFileError (file:line) on any problem."""
    return [_parse_one(e) for e in entities]
