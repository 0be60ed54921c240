"""rosbag2 metadata.yaml (format version 9, as Jazzy/Kilted rosbag2 writes it) and QoS text."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import BagError

__all__ = [
    'METADATA_FILE',
    'METADATA_VERSION',
    'FileInfo',
    'QosInfo',
    'TopicInfo',
    'build_metadata',
    'qos_to_dict',
    'qos_list_to_yaml',
    'read_metadata',
    'write_metadata',
]

METADATA_FILE = 'metadata.yaml'
METADATA_VERSION = 9
# rmw's "infinite" duration as rosbag2 prints it: INT64_MAX ns split into sec/nsec
_INFINITE = {'sec': 9223372036, 'nsec': 854775807}


@dataclass(frozen=True)
class QosInfo:
    """The QoS a publisher offered, in rosbag2's vocabulary."""

    reliability: str = 'reliable'  # reliable | best_effort
    durability: str = 'volatile'  # volatile | transient_local
    history: str = 'keep_last'
    depth: int = 10
    liveliness: str = 'automatic'


def qos_to_dict(qos: QosInfo) -> dict[str, Any]:
    """Return one offered QoS profile as rosbag2 v9 writes it."""
    return {
        'history': qos.history,
        'depth': qos.depth,
        'reliability': qos.reliability,
        'durability': qos.durability,
        'deadline': dict(_INFINITE),
        'lifespan': dict(_INFINITE),
        'liveliness': qos.liveliness,
        'liveliness_lease_duration': dict(_INFINITE),
        'avoid_ros_namespace_conventions': False,
    }


def qos_list_to_yaml(profiles: list[QosInfo]) -> str:
    """Return the QoS list as a YAML string (the MCAP channel's offered_qos_profiles)."""
    if not profiles:
        return ''
    return yaml.safe_dump([qos_to_dict(q) for q in profiles], sort_keys=False).strip()


@dataclass
class TopicInfo:
    """One recorded topic and its message count."""

    name: str
    type: str
    offered_qos: list[QosInfo] = field(default_factory=list)
    type_description_hash: str = ''
    message_count: int = 0


@dataclass
class FileInfo:
    """One storage file of a bag."""

    path: str
    start_ns: int = 0
    end_ns: int = 0
    message_count: int = 0


def _span(start: int, end: int) -> int:
    return max(0, end - start)


def build_metadata(
    *,
    files: list[FileInfo],
    topics: list[TopicInfo],
    ros_distro: str = '',
    custom_data: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Return the whole metadata document (the 'rosbag2_bagfile_information' mapping)."""
    counted = [f for f in files if f.message_count > 0]
    start = min((f.start_ns for f in counted), default=0)
    end = max((f.end_ns for f in counted), default=0)
    info: dict[str, Any] = {
        'version': METADATA_VERSION,
        'storage_identifier': 'mcap',
        'duration': {'nanoseconds': _span(start, end)},
        'starting_time': {'nanoseconds_since_epoch': start},
        'message_count': sum(f.message_count for f in files),
        'topics_with_message_count': [
            {
                'topic_metadata': {
                    'name': t.name,
                    'type': t.type,
                    'serialization_format': 'cdr',
                    'offered_qos_profiles': [qos_to_dict(q) for q in t.offered_qos],
                    'type_description_hash': t.type_description_hash,
                },
                'message_count': t.message_count,
            }
            for t in topics
        ],
        # MCAP compresses chunks inside the storage file: rosbag2-level compression is off
        'compression_format': '',
        'compression_mode': '',
        'relative_file_paths': [f.path for f in files],
        'files': [
            {
                'path': f.path,
                'starting_time': {'nanoseconds_since_epoch': f.start_ns},
                'duration': {'nanoseconds': _span(f.start_ns, f.end_ns)},
                'message_count': f.message_count,
            }
            for f in files
        ],
        'custom_data': dict(custom_data) if custom_data else None,
        'ros_distro': ros_distro,
    }
    return {'rosbag2_bagfile_information': info}


def write_metadata(directory: Path, document: dict[str, Any]) -> Path:
    """Write metadata.yaml atomically into directory and return its path."""
    path = Path(directory) / METADATA_FILE
    tmp = path.with_suffix('.yaml.tmp')
    tmp.write_text(yaml.safe_dump(document, sort_keys=False, default_flow_style=False))
    tmp.replace(path)
    return path


def read_metadata(directory: Path) -> dict[str, Any]:
    """Read and minimally validate a bag directory's metadata.yaml."""
    path = Path(directory) / METADATA_FILE
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise BagError(f'cannot read {path}: {err}') from err
    info = document.get('rosbag2_bagfile_information') if isinstance(document, dict) else None
    if not isinstance(info, dict) or 'relative_file_paths' not in info:
        raise BagError(f'{path} is not a rosbag2 metadata file')
    return info
