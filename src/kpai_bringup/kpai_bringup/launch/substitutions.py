"""Parse and evaluate launch substitutions such as `$(var robot)` and `$(find-pkg-share p)`.

The syntax follows the ROS 2 launch frontend grammar: `$(name arg ...)`, arguments separated
by spaces, quoted with '...' or "..." when they contain spaces, nesting allowed, `\\$` for a
literal dollar.  `$(eval ...)` and `$(command ...)` are deliberately not supported (the
stack's launch files never run code or shell out).
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Union

from .errors import SubstitutionError

__all__ = [
    'SUBSTITUTIONS',
    'Subst',
    'SubstitutionContext',
    'Template',
    'parse_template',
    'to_bool',
]

# name -> (min args, max args)
SUBSTITUTIONS: dict[str, tuple[int, int]] = {
    'var': (1, 1),
    'env': (1, 2),
    'optenv': (1, 2),
    'find-pkg-share': (1, 1),
    'find-pkg-prefix': (1, 1),
    'find-exec': (1, 1),
    'dirname': (0, 0),
    'filename': (0, 0),
    'anon': (1, 1),
    'not': (1, 1),
    'and': (2, 2),
    'or': (2, 2),
    'equals': (2, 2),
    'not-equals': (2, 2),
}


class SubstitutionContext(Protocol):
    """What evaluating a substitution needs from the launch state."""

    @property
    def current_file(self) -> str:
        """Return the path of the launch file being evaluated."""

    def configuration(self, name: str) -> str | None:
        """Return the launch configuration name, or None when it is not set."""

    def environ(self) -> dict[str, str]:
        """Return the environment the next process would get."""

    def package_prefix(self, package: str) -> str:
        """Return the install prefix of package (raise PackageNotFoundError)."""

    def anon(self, name: str) -> str:
        """Return a unique name derived from name, the same for the same name."""


@dataclass(frozen=True)
class Subst:
    """One `$(name args...)` occurrence."""

    name: str
    args: tuple[Template, ...]


Part = Union[str, Subst]


@dataclass(frozen=True)
class Template:
    """A string made of text and substitutions, with the file and line it came from."""

    parts: tuple[Part, ...]
    file: str = ''
    line: int | None = None

    @property
    def is_text(self) -> bool:
        """Return True when the template holds no substitution."""
        return all(isinstance(p, str) for p in self.parts)

    def evaluate(self, ctx: SubstitutionContext) -> str:
        """Return the string with every substitution performed."""
        return ''.join(p if isinstance(p, str) else self._perform(p, ctx) for p in self.parts)

    def error(self, message: str) -> SubstitutionError:
        """Return a SubstitutionError located at this template."""
        return SubstitutionError(message, file=self.file, line=self.line)

    def _perform(self, sub: Subst, ctx: SubstitutionContext) -> str:
        args = [a.evaluate(ctx) for a in sub.args]
        name = sub.name
        if name == 'var':
            value = ctx.configuration(args[0])
            if value is None:
                raise self.error(f"launch configuration '{args[0]}' does not exist")
            return value
        if name in ('env', 'optenv'):
            env = ctx.environ()
            if args[0] in env:
                return env[args[0]]
            if len(args) > 1:
                return args[1]
            if name == 'optenv':
                return ''
            raise self.error(f"environment variable '{args[0]}' does not exist")
        if name == 'find-pkg-prefix':
            return ctx.package_prefix(args[0])
        if name == 'find-pkg-share':
            return str(Path(ctx.package_prefix(args[0])) / 'share' / args[0])
        if name == 'find-exec':
            found = shutil.which(args[0], path=ctx.environ().get('PATH'))
            if found is None:
                raise self.error(f"executable '{args[0]}' not found on the PATH")
            return found
        if name == 'dirname':
            return str(Path(ctx.current_file).parent)
        if name == 'filename':
            return ctx.current_file
        if name == 'anon':
            return ctx.anon(args[0])
        if name == 'not':
            return _bool_str(not to_bool(args[0], where=self))
        if name == 'and':
            return _bool_str(to_bool(args[0], where=self) and to_bool(args[1], where=self))
        if name == 'or':
            return _bool_str(to_bool(args[0], where=self) or to_bool(args[1], where=self))
        if name == 'equals':
            return _bool_str(args[0] == args[1])
        if name == 'not-equals':
            return _bool_str(args[0] != args[1])
        raise self.error(f'unknown substitution $({name})')  # parse_template rejects these


def _bool_str(value: bool) -> str:
    return 'true' if value else 'false'


def to_bool(text: str, *, where: Template | None = None, what: str = 'value') -> bool:
    """Convert 'true'/'false'/'1'/'0' (any case) to bool; raise SubstitutionError otherwise."""
    low = text.strip().lower()
    if low in ('true', '1'):
        return True
    if low in ('false', '0'):
        return False
    message = f"{what} '{text}' is not a boolean (true, false, 1, 0)"
    if where is not None:
        raise where.error(message)
    raise SubstitutionError(message)


def new_anon_name(name: str) -> str:
    """Return name with a random suffix, as `$(anon name)` does."""
    return f'{name}_{uuid.uuid4().hex[:12]}'


class _Parser:
    """Recursive-descent parser over one template string."""

    def __init__(self, text: str, file: str, line: int | None) -> None:
        self.text = text
        self.pos = 0
        self.file = file
        self.line = line

    def fail(self, message: str) -> SubstitutionError:
        return SubstitutionError(f'{message} in {self.text!r}', file=self.file, line=self.line)

    def template(self, parts: list[Part]) -> Template:
        merged: list[Part] = []
        for part in parts:
            if isinstance(part, str) and merged and isinstance(merged[-1], str):
                merged[-1] += part
            elif part != '':
                merged.append(part)
        return Template(tuple(merged), self.file, self.line)

    def parse_top(self) -> Template:
        parts: list[Part] = []
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == '\\' and text.startswith('$', self.pos + 1):
                parts.append('$')
                self.pos += 2
            elif text.startswith('$(', self.pos):
                parts.append(self.substitution())
            else:
                parts.append(ch)
                self.pos += 1
        return self.template(parts)

    def substitution(self) -> Subst:
        text = self.text
        self.pos += 2
        start = self.pos
        while self.pos < len(text) and (text[self.pos].isalnum() or text[self.pos] in '_-'):
            self.pos += 1
        name = text[start:self.pos]
        if not name:
            raise self.fail('expected a substitution name after "$("')
        if name not in SUBSTITUTIONS:
            raise self.fail(f'unknown substitution $({name})')
        args: list[Template] = []
        while True:
            if self.pos >= len(text):
                raise self.fail(f'unterminated substitution $({name}')
            ch = text[self.pos]
            if ch == ')':
                self.pos += 1
                break
            if ch != ' ':
                raise self.fail(f'unexpected {ch!r} in substitution $({name}')
            while self.pos < len(text) and text[self.pos] == ' ':
                self.pos += 1
            if self.pos < len(text) and text[self.pos] != ')':
                args.append(self.argument())
        low, high = SUBSTITUTIONS[name]
        if not low <= len(args) <= high:
            expected = str(low) if low == high else f'{low} to {high}'
            raise self.fail(f'$({name}) takes {expected} argument(s), got {len(args)}')
        return Subst(name, tuple(args))

    def argument(self) -> Template:
        text = self.text
        parts: list[Part] = []
        while self.pos < len(text):
            ch = text[self.pos]
            if ch in ' )':
                break
            if ch in '\'"':
                parts.extend(self.quoted(ch))
            elif text.startswith('$(', self.pos):
                parts.append(self.substitution())
            elif ch == '\\' and self.pos + 1 < len(text):
                parts.append(text[self.pos + 1])
                self.pos += 2
            elif ch == '(':
                raise self.fail('unexpected "(" in a substitution argument (quote it)')
            else:
                parts.append(ch)
                self.pos += 1
        return self.template(parts)

    def quoted(self, quote: str) -> list[Part]:
        text = self.text
        self.pos += 1
        parts: list[Part] = []
        while True:
            if self.pos >= len(text):
                raise self.fail(f'unterminated {quote} quote')
            ch = text[self.pos]
            if ch == quote:
                self.pos += 1
                return parts
            if text.startswith('$(', self.pos):
                parts.append(self.substitution())
            elif ch == '\\' and self.pos + 1 < len(text):
                parts.append(text[self.pos + 1])
                self.pos += 2
            else:
                parts.append(ch)
                self.pos += 1


def parse_template(text: str, *, file: str = '', line: int | None = None) -> Template:
    """Parse text into a Template; raise SubstitutionError naming file:line on bad syntax."""
    return _Parser(text, file, line).parse_top()
