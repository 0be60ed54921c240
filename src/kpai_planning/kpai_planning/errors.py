"""Domain errors of kpai_planning; libraries raise these, nodes turn them into log lines."""

from __future__ import annotations

__all__ = [
    'ConfigError',
    'MapFormatError',
    'MissionError',
    'PlanningError',
    'PlanningFailure',
]


class PlanningError(Exception):
    """Base class of every error raised by kpai_planning."""


class MapFormatError(PlanningError, ValueError):
    """A map YAML or image file is missing, malformed or inconsistent."""


class ConfigError(PlanningError, ValueError):
    """A parameter set is invalid (the message says which value and why)."""


class MissionError(PlanningError, ValueError):
    """A mission is malformed (unknown step type, missing target, bad duration)."""


class PlanningFailure(PlanningError):
    """A global plan could not be made; `code` is a planner.FailureCode."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
