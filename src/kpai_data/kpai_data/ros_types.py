"""ROS type helpers without rclpy: message classes by name, QoS profiles in rosbag2 terms."""

from __future__ import annotations

import importlib
from typing import Any

from .bag_metadata import QosInfo
from .errors import DataError

__all__ = ['message_class', 'qos_info']


def message_class(type_name: str) -> Any:
    """Import the Python class of 'pkg/msg/Type'; DataError when it is not installed.

    An action's feedback topic carries 'pkg/action/Name_FeedbackMessage', which the generated
    Python code keeps as Name.Impl.FeedbackMessage.
    """
    try:
        package, namespace, name = type_name.split('/')
        module = importlib.import_module(f'{package}.{namespace}')
        if namespace == 'action' and name.endswith('_FeedbackMessage') and not hasattr(
                module, name):
            return getattr(module, name.removesuffix('_FeedbackMessage')).Impl.FeedbackMessage
        return getattr(module, name)
    except (ValueError, ImportError, AttributeError) as err:
        raise DataError(f'message type {type_name!r} is not available: {err}') from err


def qos_info(profile: Any) -> QosInfo:
    """Convert an rclpy QoSProfile (as reported for an endpoint) to QosInfo."""
    def name(value: Any) -> str:
        return str(getattr(value, 'name', value)).lower()

    history = name(profile.history)
    return QosInfo(reliability=name(profile.reliability), durability=name(profile.durability),
                   history=history if history in ('keep_last', 'keep_all') else 'unknown',
                   depth=int(profile.depth), liveliness=name(profile.liveliness))
