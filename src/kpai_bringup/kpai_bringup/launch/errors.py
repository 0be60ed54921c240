"""Errors of the kpai launcher: file errors carry the file and line they concern."""

from __future__ import annotations

__all__ = [
    'ExecutableNotFoundError',
    'LaunchError',
    'LaunchFileError',
    'PackageNotFoundError',
    'SubstitutionError',
]


class LaunchError(Exception):
    """Base class of every launcher error."""


class LaunchFileError(LaunchError):
    """A launch file is malformed, uses an unknown tag/attribute or misses an argument."""

    def __init__(self, message: str, *, file: str = '', line: int | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = self.file or '<launch>'
        if self.line is not None:
            where += f':{self.line}'
        return f'{where}: {self.message}'


class SubstitutionError(LaunchFileError):
    """A substitution cannot be parsed or evaluated (unknown variable, bad syntax...)."""


class PackageNotFoundError(LaunchError):
    """A package is not in the ament index of AMENT_PREFIX_PATH."""


class ExecutableNotFoundError(LaunchError):
    """A node or process executable does not exist."""
