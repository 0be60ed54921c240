"""The stack's one middleware configuration, applied to every process it starts."""

from __future__ import annotations

from collections.abc import MutableMapping

__all__ = ['apply_middleware_defaults']


def apply_middleware_defaults(env: MutableMapping[str, str]) -> None:
    """Fill in RMW, discovery range and transports unless the user chose them already.

    Transports: Fast DDS LARGE_DATA builtin transports unless FASTDDS_BUILTIN_TRANSPORTS or
    FASTDDS_DEFAULT_PROFILES_FILE is set. Best-effort messages over the 0.5 MB shared-memory
    segment (640x480 rgb8 images and larger) are mostly lost with LARGE_DATA; the opt-in
    profile kpai_bringup/config/fastdds_localhost.xml delivers them, but ROS services and
    actions timed out under it in the planning tests, so it is not the default.
    """
    env.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    if not env.get('FASTDDS_DEFAULT_PROFILES_FILE') and not env.get('FASTDDS_BUILTIN_TRANSPORTS'):
        env['FASTDDS_BUILTIN_TRANSPORTS'] = 'LARGE_DATA'
