"""VDA 5050 MQTT topic layout: <interfaceName>/<majorVersion>/<manufacturer>/<serial>/<topic>."""

from __future__ import annotations

from dataclasses import dataclass

from kpai_fleet.errors import ValidationRejected

__all__ = ['AGV_TOPICS', 'MASTER_TOPICS', 'TopicAddress', 'parse_topic', 'robot_key']

AGV_TOPICS = ('state', 'connection', 'visualization', 'factsheet')
MASTER_TOPICS = ('order', 'instantActions')


@dataclass(frozen=True)
class TopicAddress:
    """The parts of one robot's topic."""

    interface: str
    major: str
    manufacturer: str
    serial: str
    kind: str = ''

    def topic(self, kind: str) -> str:
        """Return the full topic name for kind (state, order, ...)."""
        return f'{self.interface}/{self.major}/{self.manufacturer}/{self.serial}/{kind}'

    @property
    def robot_id(self) -> str:
        return robot_key(self.manufacturer, self.serial)


def robot_key(manufacturer: str, serial: str) -> str:
    """Return the fleet-wide robot id: the serial number, prefixed when not ours."""
    return serial if manufacturer == 'KPAI' else f'{manufacturer}:{serial}'


def parse_topic(topic: str) -> TopicAddress:
    """Split a topic into its parts; raise ValidationRejected on a malformed topic."""
    parts = topic.split('/')
    if len(parts) != 5 or not all(parts):
        raise ValidationRejected(f'topic {topic!r} is not <interface>/<v>/<mfr>/<serial>/<topic>')
    iface, major, mfr, serial, kind = parts
    if not (major.startswith('v') and major[1:].isdigit()):
        raise ValidationRejected(f'topic {topic!r}: bad major version {major!r}')
    return TopicAddress(iface, major, mfr, serial, kind)
