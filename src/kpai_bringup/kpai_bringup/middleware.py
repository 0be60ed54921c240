"""The stack's one middleware configuration, applied to every process it starts."""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path

__all__ = ['LOCALHOST_PROFILE_NAME', 'apply_middleware_defaults', 'localhost_profile']

LOCALHOST_PROFILE_NAME = 'fastdds_localhost_discovery.xml'


def localhost_profile() -> str:
    """Return the path of the stack's localhost discovery profile for Fast DDS.

    The installed share directory first (apt and wheels installs), then the source tree.
    """
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        try:
            path = Path(get_package_share_directory('kpai_bringup')) / 'config'
            if (path / LOCALHOST_PROFILE_NAME).is_file():
                return str(path / LOCALHOST_PROFILE_NAME)
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    return str(Path(__file__).resolve().parent.parent / 'config' / LOCALHOST_PROFILE_NAME)


def apply_middleware_defaults(env: MutableMapping[str, str]) -> None:
    """Fill in RMW, discovery range and transports unless the user chose them already.

    Discovery: LOCALHOST by default. With rmw_fastrtps_cpp, LOCALHOST reaches only the first 32
    participants of a machine (rmw's maxInitialPeersRange), fewer than a 4-robot demo starts;
    unless you set a Fast DDS profile or static peers, LOCALHOST is carried out by the stack's
    profile config/fastdds_localhost_discovery.xml (same transports, no multicast, 64 peers)
    with ROS_AUTOMATIC_DISCOVERY_RANGE=SYSTEM_DEFAULT, so that rmw keeps the profile.

    Transports: otherwise Fast DDS LARGE_DATA builtin transports unless FASTDDS_BUILTIN_TRANSPORTS
    or FASTDDS_DEFAULT_PROFILES_FILE is set. The opt-in profile
    kpai_bringup/config/fastdds_localhost.xml carries best-effort images over 0.5 MB.
    """
    rmw = env.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    rng = env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    profile = env.get('FASTDDS_DEFAULT_PROFILES_FILE', '')
    ours = not profile or Path(profile).name == LOCALHOST_PROFILE_NAME
    if (rmw == 'rmw_fastrtps_cpp' and ours and not env.get('ROS_STATIC_PEERS')
            and (rng == 'LOCALHOST' or (rng == 'SYSTEM_DEFAULT' and profile))):
        env['FASTDDS_DEFAULT_PROFILES_FILE'] = profile or localhost_profile()
        env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'SYSTEM_DEFAULT'
        # Fast DDS lets this variable replace a profile's transports (measured: a process with
        # both and LARGE_DATA did not reach plain LOCALHOST ones); rmw's LOCALHOST ignores it
        env.pop('FASTDDS_BUILTIN_TRANSPORTS', None)
        return
    if not env.get('FASTDDS_DEFAULT_PROFILES_FILE') and not env.get('FASTDDS_BUILTIN_TRANSPORTS'):
        env['FASTDDS_BUILTIN_TRANSPORTS'] = 'LARGE_DATA'
