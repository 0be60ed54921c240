"""Load YAML launch files into dicts and lists that remember the line of every key and item."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import LaunchFileError

__all__ = ['MarkedDict', 'MarkedList', 'load_launch_yaml', 'load_yaml_text']


class MarkedDict(dict):  # type: ignore[type-arg]
    """A YAML mapping with the 1-based line of itself and of each of its keys."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        """Return the line of key, or of the mapping if the key is unknown."""
        return self.key_lines.get(key, self.line)


class MarkedList(list):  # type: ignore[type-arg]
    """A YAML sequence with the 1-based line of itself and of each item."""

    line: int = 0
    item_lines: list[int]


class _MarkedLoader(yaml.SafeLoader):
    """SafeLoader building MarkedDict/MarkedList and refusing duplicate keys."""


def _construct_mapping(loader: _MarkedLoader, node: yaml.MappingNode) -> MarkedDict:
    loader.flatten_mapping(node)
    result = MarkedDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
        if not isinstance(key, (str, int, float, bool)):
            raise yaml.constructor.ConstructorError(
                None, None, 'mapping keys must be scalars', key_node.start_mark)
        skey = str(key)
        if skey in result.key_lines:
            raise yaml.constructor.ConstructorError(
                None, None, f'duplicate key {skey!r}', key_node.start_mark)
        result[skey] = loader.construct_object(value_node, deep=True)  # type: ignore[no-untyped-call]
        result.key_lines[skey] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _MarkedLoader, node: yaml.SequenceNode) -> MarkedList:
    result = MarkedList(
        loader.construct_object(child, deep=True)  # type: ignore[no-untyped-call]
        for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_MarkedLoader.add_constructor('tag:yaml.org,2002:map', _construct_mapping)  # type: ignore[arg-type]
_MarkedLoader.add_constructor('tag:yaml.org,2002:seq', _construct_sequence)  # type: ignore[arg-type]


def load_yaml_text(text: str, *, file: str) -> Any:
    """Parse YAML text; raise LaunchFileError with file:line on a syntax error."""
    try:
        return yaml.load(text, Loader=_MarkedLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = err.problem or err.context or 'invalid YAML'
        raise LaunchFileError(f'malformed YAML: {problem}', file=file, line=line) from err
    except yaml.YAMLError as err:
        raise LaunchFileError(f'malformed YAML: {err}', file=file) from err


def load_launch_yaml(path: str | Path) -> MarkedList:
    """Read a YAML launch file and return the list under its top-level `launch` key."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding='utf-8')
    except OSError as err:
        raise LaunchFileError(f'cannot read launch file: {err.strerror}', file=file) from err
    tree = load_yaml_text(text, file=file)
    if not isinstance(tree, MarkedDict) or 'launch' not in tree:
        line = tree.line if isinstance(tree, (MarkedDict, MarkedList)) else 1
        raise LaunchFileError("expected a mapping with a top-level 'launch' key",
                              file=file, line=line)
    extra = [k for k in tree if k != 'launch']
    if extra:
        raise LaunchFileError(f'unexpected top-level key {extra[0]!r}', file=file,
                              line=tree.line_of(extra[0]))
    body = tree['launch']
    if body is None:
        empty = MarkedList()
        empty.line, empty.item_lines = tree.line_of('launch'), []
        return empty
    if not isinstance(body, MarkedList):
        raise LaunchFileError("'launch' must be a list of actions", file=file,
                              line=tree.line_of('launch'))
    return body
