"""Domain errors of the fleet package."""

from __future__ import annotations

__all__ = ['BrokerError', 'ConfigError', 'DispatchError', 'FleetError', 'StoreError',
           'ValidationRejected']


class FleetError(Exception):
    """Base class of all kpai_fleet errors."""


class ValidationRejected(FleetError):
    """An incoming VDA 5050 message was rejected; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConfigError(FleetError):
    """A configuration value is invalid."""


class BrokerError(FleetError):
    """The local MQTT broker could not be started or reached."""


class StoreError(FleetError):
    """The SQL store failed (connection, schema or write)."""


class DispatchError(FleetError):
    """A transport task could not be dispatched (no robot, bad station)."""
