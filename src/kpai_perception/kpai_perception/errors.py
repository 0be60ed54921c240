"""Domain errors of kpai_perception; libraries raise these, nodes turn them into log lines."""

from __future__ import annotations

__all__ = [
    'CalibrationError',
    'CameraSourceError',
    'ConnectivityError',
    'ExtrapolationError',
    'FiducialError',
    'FrameLookupError',
    'ImageConversionError',
    'OutOfOrderError',
    'PerceptionError',
    'SafetyConfigError',
    'TrackerConfigError',
    'TransformError',
]


class PerceptionError(Exception):
    """Base class of every error raised by kpai_perception."""


class ImageConversionError(PerceptionError, ValueError):
    """An image message or array cannot be converted (bad encoding, size, step or data)."""


class CalibrationError(PerceptionError, ValueError):
    """Camera intrinsics or a calibration file are missing, malformed or not finite."""


class CameraSourceError(PerceptionError):
    """A camera source cannot be opened or stopped delivering frames."""


class TransformError(PerceptionError):
    """A transform lookup failed."""


class FrameLookupError(TransformError, LookupError):
    """A frame is unknown to the transform buffer."""


class ConnectivityError(TransformError):
    """Two known frames are not connected in the transform tree."""


class ExtrapolationError(TransformError):
    """A transform was requested at a time outside the buffered interval."""


class OutOfOrderError(PerceptionError, ValueError):
    """An input is stamped earlier than (or equal to) one already processed."""


class TrackerConfigError(PerceptionError, ValueError):
    """Tracker parameters are invalid."""


class SafetyConfigError(PerceptionError, ValueError):
    """Safety field or monitor parameters are invalid."""


class FiducialError(PerceptionError):
    """Fiducial detection or pose estimation failed or was misconfigured."""
