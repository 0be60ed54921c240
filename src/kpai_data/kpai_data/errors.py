"""Domain errors of the data feedback loop (recording, playback, datasets, training)."""

from __future__ import annotations

__all__ = [
    'BagError',
    'DataError',
    'DatasetError',
    'DefinitionError',
    'TrainingError',
]


class DataError(Exception):
    """Base class of every kpai_data error."""


class DefinitionError(DataError):
    """A message definition could not be found or parsed."""


class BagError(DataError):
    """A recording could not be written or read."""


class DatasetError(DataError):
    """A dataset could not be exported or loaded."""


class TrainingError(DataError):
    """Training, evaluation or export of a detector failed."""
