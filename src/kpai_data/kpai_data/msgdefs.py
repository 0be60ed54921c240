"""Full ROS 2 message definitions (.msg text with dependencies) as rosbag2 stores them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from .errors import DefinitionError

__all__ = [
    'DELIMITER',
    'MessageDefinitions',
    'msg_dependencies',
    'split_type_name',
]

# One line of 80 '=' then 'MSG: <pkg>/<Type>' separates concatenated definitions (ros2msg).
DELIMITER = '=' * 80 + '\n'

_PRIMITIVES = frozenset({
    'bool', 'byte', 'char', 'float32', 'float64', 'int8', 'uint8', 'int16', 'uint16',
    'int32', 'uint32', 'int64', 'uint64', 'string', 'wstring',
})
# a field's type at the start of a line: 'pkg/Type', 'Type', 'Type[]', 'Type[3]', 'Type[<=4]'
_FIELD_TYPE = re.compile(r'^\s*([A-Za-z][A-Za-z0-9_/]*)(?:\[[^\]]*\])?\s+\S', re.MULTILINE)
_NAME_PART = r'[A-Za-z][A-Za-z0-9_]*'
_TYPE_NAME = re.compile(rf'^({_NAME_PART})/(?:({_NAME_PART})/)?({_NAME_PART})$')


def split_type_name(type_name: str) -> tuple[str, str, str]:
    """Split 'pkg/msg/Type' or 'pkg/Type' into (package, namespace, type)."""
    match = _TYPE_NAME.match(type_name)
    if not match:
        raise DefinitionError(f'invalid message type name {type_name!r}')
    package, namespace, name = match.groups()
    return package, namespace or 'msg', name


def msg_dependencies(text: str, package: str) -> list[str]:
    """Return the sorted non-primitive field types of a .msg text as 'pkg/Type'."""
    deps: set[str] = set()
    for line in text.splitlines():
        code = line.split('#', 1)[0]
        match = _FIELD_TYPE.match(code)
        if not match:
            continue
        type_token = match.group(1)
        # bounded strings ('string<=10') never reach here; constants use primitive types
        if type_token in _PRIMITIVES:
            continue
        deps.add(type_token if '/' in type_token else f'{package}/{type_token}')
    return sorted(deps)


def _ament_share(package: str) -> Path:
    from ament_index_python.packages import (
        PackageNotFoundError,
        get_package_share_directory,
    )

    try:
        return Path(get_package_share_directory(package))
    except PackageNotFoundError as err:
        raise DefinitionError(f'package {package!r} not found in the ament index') from err


class MessageDefinitions:
    """Resolve and cache full message definitions from share/<pkg>/msg/*.msg files."""

    def __init__(self, share_lookup: Callable[[str], Path] | None = None) -> None:
        self._share = share_lookup or _ament_share
        self._texts: dict[str, str] = {}
        self._full: dict[str, str] = {}

    def _msg_path(self, type_name: str, suffix: str) -> Path:
        package, namespace, name = split_type_name(type_name)
        return self._share(package) / namespace / f'{name}{suffix}'

    def text(self, type_name: str) -> str:
        """Return the .msg file text of one type (no dependencies)."""
        package, namespace, name = split_type_name(type_name)
        key = f'{package}/{namespace}/{name}'
        if key not in self._texts:
            path = self._msg_path(type_name, '.msg')
            try:
                self._texts[key] = path.read_text()
            except OSError as err:
                raise DefinitionError(f'no definition for {type_name!r} at {path}') from err
        return self._texts[key]

    def full_text(self, type_name: str, *, max_depth: int = 50) -> str:
        """Return the definition with every nested type appended after a delimiter."""
        if type_name in self._full:
            return self._full[type_name]
        seen: set[str] = set()

        def append(name: str, depth: int) -> str:
            if depth <= 0:
                raise DefinitionError(f'definition of {type_name!r} nests too deeply')
            package = split_type_name(name)[0]
            body = self.text(name)
            out = body
            for dep in msg_dependencies(body, package):
                if dep in seen:
                    continue
                seen.add(dep)
                out += '\n' + DELIMITER + f'MSG: {dep}\n' + append(dep, depth - 1)
            return out

        self._full[type_name] = append(type_name, max_depth)
        return self._full[type_name]

    def type_hash(self, type_name: str) -> str:
        """Return the RIHS01 type description hash of a type ('' when unknown)."""
        path = self._msg_path(type_name, '.json')
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return ''
        package, namespace, name = split_type_name(type_name)
        wanted = f'{package}/{namespace}/{name}'
        for entry in data.get('type_hashes', []):
            if entry.get('type_name') == wanted:
                return str(entry.get('hash_string', ''))
        return ''
