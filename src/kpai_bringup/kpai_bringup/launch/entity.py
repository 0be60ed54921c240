"""One tag of a YAML launch file with its attributes, read strictly and located by line."""

from __future__ import annotations

from typing import Any

from .errors import LaunchFileError
from .substitutions import Template, parse_template
from .yaml_loader import MarkedDict, MarkedList

__all__ = ['Entity']

class Entity:
    """A tag (`node`, `param`, ...) whose attributes are read once each; leftovers are errors."""

    def __init__(self, type_name: str, data: Any, *, file: str, line: int) -> None:
        self.type_name = type_name
        self.data = data
        self.file = file
        self.line = line
        self._read: set[str] = set()

    def error(self, message: str, attr: str | None = None) -> LaunchFileError:
        """Return a LaunchFileError located at this entity (or one of its attributes)."""
        return LaunchFileError(message, file=self.file, line=self.line_of(attr))

    def line_of(self, attr: str | None) -> int:
        """Return the line of attribute attr (or of the entity)."""
        if attr is not None and isinstance(self.data, MarkedDict):
            return self.data.line_of(attr)
        return self.line

    def has(self, name: str) -> bool:
        """Return True when the attribute is present."""
        return isinstance(self.data, MarkedDict) and name in self.data

    def raw(self, name: str, *, optional: bool = False) -> Any:
        """Return the attribute's YAML value (None when optional and absent)."""
        if not isinstance(self.data, MarkedDict):
            raise self.error(f"'{self.type_name}' expects a mapping of attributes")
        if name not in self.data:
            if optional:
                return None
            raise self.error(f"'{self.type_name}' is missing required attribute '{name}'")
        self._read.add(name)
        return self.data[name]

    def text(self, name: str, *, optional: bool = False) -> str | None:
        """Return a string attribute as plain text (no substitutions).

        As in launch_yaml, an attribute read as a string must be a YAML string: an unquoted
        number or boolean (`default: 2`, `if: true`) is an error under ros2 launch, so here too.
        """
        value = self.raw(name, optional=optional)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(self._type_message(name, value, 'a string (quote it)'), name)
        return value

    def flag(self, name: str) -> bool | None:
        """Return a boolean attribute (scoped, forwarding, shell, emulate_tty), None if absent.

        launch_yaml passes a quoted value through unconverted and the action then tests its
        truth, so `scoped: 'false'` would mean true under ros2 launch: only YAML booleans here.
        """
        value = self.raw(name, optional=True)
        if value is None or isinstance(value, bool):
            return value
        raise self.error(self._type_message(name, value, 'a YAML boolean (true or false, '
                                            'unquoted)'), name)

    def template(self, name: str, *, optional: bool = False) -> Template | None:
        """Return a scalar attribute parsed as a substitution template."""
        value = self.text(name, optional=optional)
        if value is None:
            return None
        return parse_template(value, file=self.file, line=self.line_of(name))

    def number(self, name: str, *, integer: bool = False) -> float | None:
        """Return a numeric attribute (plain YAML number, no substitutions), or None if absent.

        Typed as launch reads it: an integer attribute (respawn_max_retries) takes a YAML
        integer; a float attribute (respawn_delay, sigterm_timeout, sigkill_timeout) a YAML
        float: launch_yaml rejects `respawn_delay: 2` (an int), and a quoted '2.0' fails its
        range check, so write `2.0`.
        """
        value = self.raw(name, optional=True)
        if value is None:
            return None
        if integer and isinstance(value, int) and not isinstance(value, bool):
            return value
        if not integer and isinstance(value, float):
            return value
        kind = 'a YAML integer' if integer else "a YAML float (e.g. 2.0, not 2 or '2.0')"
        raise self.error(self._type_message(name, value, kind), name)

    def entities(self, name: str) -> list[Entity]:
        """Return an attribute holding a list of mappings (param, remap, env...) as entities."""
        value = self.raw(name, optional=True)
        if value is None:
            return []
        if not isinstance(value, MarkedList) or not all(isinstance(v, MarkedDict) for v in value):
            raise self.error(f"'{name}' of '{self.type_name}' must be a list of mappings", name)
        return [Entity(name, v, file=self.file, line=v.line) for v in value]

    def children(self) -> list[Entity]:
        """Return the child actions: a list, or a mapping with a `children` list."""
        if isinstance(self.data, MarkedDict):
            seq = self.raw('children')
            line = self.data.line_of('children')
        else:
            seq, line = self.data, self.line
        if seq is None:
            return []
        if not isinstance(seq, MarkedList):
            raise LaunchFileError(f"children of '{self.type_name}' must be a list",
                                  file=self.file, line=line)
        return entities_of(seq, file=self.file)

    def finish(self) -> None:
        """Raise on any attribute that nobody read (an unknown attribute)."""
        if isinstance(self.data, MarkedDict):
            for key in self.data:
                if key not in self._read:
                    raise self.error(f"unknown attribute '{key}' in '{self.type_name}'", key)

    def _type_message(self, name: str, value: Any, expected: str) -> str:
        return (f"'{name}' of '{self.type_name}' must be {expected}, got "
                f'{_yaml_kind(value)} {value!r}')


def _yaml_kind(value: Any) -> str:
    kinds = {bool: 'the boolean', int: 'the integer', float: 'the float', str: 'the string'}
    return kinds.get(type(value), f'a {type(value).__name__}')


def entities_of(seq: MarkedList, *, file: str) -> list[Entity]:
    """Turn a list of one-key mappings (`- node: {...}`) into entities."""
    out = []
    for item, line in zip(seq, seq.item_lines, strict=True):
        if not isinstance(item, MarkedDict) or len(item) != 1:
            raise LaunchFileError('each action must be a mapping with exactly one key, the tag '
                                  "name (e.g. '- node: {...}')", file=file, line=line)
        (tag, body), = item.items()
        out.append(Entity(tag, body, file=file, line=item.line_of(tag)))
    return out
