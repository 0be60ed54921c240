"""Domain errors of the simulation package."""

from __future__ import annotations

__all__ = ['SimError', 'LayoutError', 'ConfigError', 'RobotDescriptionError']


class SimError(Exception):
    """Base class of simulation errors."""


class ConfigError(SimError):
    """An invalid simulation parameter."""


class LayoutError(SimError):
    """A world layout that cannot be built (overlaps, no free spawn pose...)."""


class RobotDescriptionError(SimError):
    """A robot URDF that lacks something the simulation needs."""
