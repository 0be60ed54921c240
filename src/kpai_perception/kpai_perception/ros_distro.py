"""Which ROS 2 distribution this process runs on, and how long that distribution is supported.

The stack runs on Jazzy (LTS, the default) and Kilted, from PyPI wheels or apt. It uses only
rclpy APIs present in both (tests/unit/test_rclpy_api.py checks every rclpy name the code
imports, on each distribution CI runs), so no API shims are needed; what differs between the
two at run time is only the distribution's name and support window, kept here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from importlib import metadata

__all__ = ['SUPPORTED', 'Distro', 'current_distro', 'support_status']


@dataclass(frozen=True)
class Distro:
    """A ROS 2 distribution the stack supports."""

    name: str
    title: str
    end_of_life: date
    lts: bool


SUPPORTED: dict[str, Distro] = {
    'jazzy': Distro('jazzy', 'Jazzy Jalisco', date(2029, 5, 31), lts=True),
    'kilted': Distro('kilted', 'Kilted Kaiju', date(2026, 12, 31), lts=False),
}
# rclpy's major version on each distribution (the PyPI wheels set no ROS_DISTRO)
_RCLPY_MAJOR = {7: 'jazzy', 9: 'kilted'}


def current_distro(environ: Mapping[str, str] | None = None) -> str | None:
    """Return the distribution's name: ROS_DISTRO (apt), KPAI_ROS_DISTRO (setup), or rclpy's."""
    env = os.environ if environ is None else environ
    for key in ('ROS_DISTRO', 'KPAI_ROS_DISTRO'):
        if env.get(key):
            return env[key]
    try:
        major = int(metadata.version('rclpy').split('.')[0])
    except (metadata.PackageNotFoundError, ValueError):
        return None
    return _RCLPY_MAJOR.get(major)


def support_status(name: str | None, today: date | None = None) -> tuple[bool, str]:
    """Return (supported now, one line saying which distribution and until when)."""
    if name is None:
        return False, 'unknown ROS 2 distribution'
    distro = SUPPORTED.get(name)
    if distro is None:
        return False, f'ROS 2 {name} is not one the stack is tested on (jazzy, kilted)'
    today = today or date.today()
    kind = 'LTS, ' if distro.lts else ''
    days = (distro.end_of_life - today).days
    if days < 0:
        return False, (f'ROS 2 {distro.title} ({kind}end of life {distro.end_of_life}, '
                       f'{-days} days ago): move to Jazzy (KPAI_ROS_DISTRO=jazzy)')
    return True, (f'ROS 2 {distro.title} ({kind}supported until {distro.end_of_life}, '
                  f'{days} days from now)')
