"""The stack's one middleware configuration, applied to every process it starts."""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

__all__ = ['PROFILE_FILE', 'find_profile', 'apply_middleware_defaults']

PROFILE_FILE = 'fastdds_localhost.xml'
_SHARE = Path('share') / 'kpai_bringup' / 'config' / PROFILE_FILE
_SOURCE = Path(__file__).resolve().parents[1] / 'config' / PROFILE_FILE


def find_profile(env: Mapping[str, str]) -> str | None:
    """Return the installed Fast DDS profile of kpai_bringup, or None if it is not found."""
    for prefix in env.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        if prefix and (Path(prefix) / _SHARE).is_file():
            return str(Path(prefix) / _SHARE)
    return str(_SOURCE) if _SOURCE.is_file() else None


def apply_middleware_defaults(env: MutableMapping[str, str]) -> None:
    """Fill in RMW, discovery range and transports unless the user chose them already.

    Transports: the shared-memory + loopback-UDP profile (large images without loss), unless
    FASTDDS_DEFAULT_PROFILES_FILE or FASTDDS_BUILTIN_TRANSPORTS is set; LARGE_DATA if the
    profile cannot be found.
    """
    env.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    if not env.get('FASTDDS_DEFAULT_PROFILES_FILE') and not env.get('FASTDDS_BUILTIN_TRANSPORTS'):
        profile = find_profile(env)
        if profile:
            env['FASTDDS_DEFAULT_PROFILES_FILE'] = profile
        else:
            env['FASTDDS_BUILTIN_TRANSPORTS'] = 'LARGE_DATA'
