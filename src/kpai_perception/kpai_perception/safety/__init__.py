"""Safety fields around the robot footprint and the people-aware safety monitor (pure)."""

from kpai_perception.safety.fields import FieldConfig, SafetyFields, compute_fields
from kpai_perception.safety.monitor import (
    MonitorConfig,
    SafetyDecision,
    SafetyMonitor,
    SafetyState,
)

__all__ = [
    'FieldConfig',
    'MonitorConfig',
    'SafetyDecision',
    'SafetyFields',
    'SafetyMonitor',
    'SafetyState',
    'compute_fields',
]
