"""The stack's one middleware configuration, applied to every process it starts."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from pathlib import Path

__all__ = ['LOCALHOST_PROFILE_NAME', 'PROFILE_VARS', 'apply_middleware_defaults',
           'localhost_profile', 'profile_vars', 'user_profile']

LOCALHOST_PROFILE_NAME = 'fastdds_localhost_discovery.xml'
# Fast DDS 2.x (Jazzy) reads FASTRTPS_DEFAULT_PROFILES_FILE only, 3.x (Kilted) reads
# FASTDDS_DEFAULT_PROFILES_FILE and warns in every process about the old name (measured here:
# with the FASTDDS_ name alone, a Jazzy process loaded no profile and discovered by multicast)
PROFILE_VARS = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')
FASTDDS2_DISTROS = ('humble', 'iron', 'jazzy')


def profile_vars(env: Mapping[str, str]) -> tuple[str, ...]:
    """The profile variable(s) the distribution's Fast DDS reads (both if it is unknown)."""
    from kpai_perception.ros_distro import current_distro

    distro = current_distro(env)
    if distro is None:
        return PROFILE_VARS
    return (PROFILE_VARS[1],) if distro in FASTDDS2_DISTROS else (PROFILE_VARS[0],)


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


def user_profile(env: Mapping[str, str]) -> str:
    """Return the Fast DDS profile file env names under either variable, or ''."""
    return next((env[v] for v in PROFILE_VARS if env.get(v)), '')


def apply_middleware_defaults(env: MutableMapping[str, str]) -> None:
    """Fill in RMW, discovery range and transports unless the user chose them already.

    Discovery: LOCALHOST by default. With rmw_fastrtps_cpp, LOCALHOST reaches only the first 32
    participants of a machine (rmw's maxInitialPeersRange), fewer than a 4-robot demo starts;
    unless you set a Fast DDS profile or static peers, LOCALHOST is carried out by the stack's
    profile config/fastdds_localhost_discovery.xml (unicast discovery to 127.0.0.1, no multicast,
    64 peers; UDP only with 4 MiB socket buffers: Fast DDS's shared memory transport can leave a
    node respawned after kill -9 matched but without data; measured, see the profile),
    named under the variable the distribution's Fast DDS reads, with
    ROS_AUTOMATIC_DISCOVERY_RANGE=SYSTEM_DEFAULT so that rmw keeps the profile.

    Transports: otherwise Fast DDS LARGE_DATA builtin transports unless FASTDDS_BUILTIN_TRANSPORTS
    or a profile is set. The opt-in profile kpai_bringup/config/fastdds_localhost.xml carries
    best-effort images over 0.5 MB.
    """
    rmw = env.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    rng = env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    profile = user_profile(env)
    ours = not profile or Path(profile).name == LOCALHOST_PROFILE_NAME
    if (rmw == 'rmw_fastrtps_cpp' and ours and not env.get('ROS_STATIC_PEERS')
            and (rng == 'LOCALHOST' or (rng == 'SYSTEM_DEFAULT' and profile))):
        path = profile or localhost_profile()
        for var in PROFILE_VARS:
            env.pop(var, None)
        for var in profile_vars(env):
            env[var] = path
        env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'SYSTEM_DEFAULT'
        # Fast DDS lets this variable replace a profile's transports (measured: a process with
        # both and LARGE_DATA did not reach plain LOCALHOST ones); rmw's LOCALHOST ignores it
        env.pop('FASTDDS_BUILTIN_TRANSPORTS', None)
        return
    if not user_profile(env) and not env.get('FASTDDS_BUILTIN_TRANSPORTS'):
        env['FASTDDS_BUILTIN_TRANSPORTS'] = 'LARGE_DATA'
