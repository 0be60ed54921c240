"""Domain errors of the NPU bridge library."""

from __future__ import annotations

__all__ = [
    'BackendError',
    'BackendUnavailableError',
    'CertificationError',
    'InputError',
    'ManifestError',
    'ModelLoadError',
    'NpuBridgeError',
]


class NpuBridgeError(Exception):
    """Base class of every error raised by kpai_npu_bridge."""


class ManifestError(NpuBridgeError):
    """A model manifest is missing, malformed, inconsistent or does not match its model."""


class ModelLoadError(NpuBridgeError):
    """A backend could not load or compile a model."""


class BackendUnavailableError(NpuBridgeError):
    """A backend is unknown or its runtime/device is not available here."""


class BackendError(NpuBridgeError):
    """A backend failed while running inference."""


class InputError(NpuBridgeError):
    """Input images or tensors have the wrong shape, dtype or content."""


class CertificationError(NpuBridgeError):
    """The certification run itself could not be carried out (not a failed check)."""
