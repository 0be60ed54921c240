"""Options of a conformance run: where the vehicle is, what to send, how long to wait."""

from __future__ import annotations

from dataclasses import dataclass, field

from kpai_fleet.errors import ConfigError
from kpai_fleet.mqtt_link import parse_broker_url

from .plan import RouteSpec
from .recorder import STATE_MAX_GAP_S

__all__ = ['KitOptions']


@dataclass(frozen=True)
class KitOptions:
    """Everything a run needs; the timeouts shrink for tests, the defaults suit real vehicles."""

    broker_url: str = field(repr=False)  # may hold a password
    manufacturer: str
    serial: str
    interface: str = 'uagv'
    major: str = 'v2'
    username: str = ''
    password: str = field(default='', repr=False)
    ca_file: str = ''
    timeout_s: float = 60.0  # each reaction: order accepted, action done, order finished
    connect_timeout_s: float = 35.0  # first state: at the latest every 30 s (6.10)
    retained_wait_s: float = 2.0  # retained connection/factsheet after subscribing
    event_timeout_s: float = 5.0  # an event (order, instant action) reflected in a state
    max_state_gap_s: float = STATE_MAX_GAP_S
    pause_hold_s: float = 2.0  # how long the kit watches a paused vehicle
    step_m: float = 1.0  # default route: this far ahead along the heading and back
    long_route_nodes: int = 5  # nodes of the orders that are paused and cancelled
    await_will_s: float = 0.0  # > 0: ask the operator to break the connection, watch the will
    route: RouteSpec = field(default_factory=RouteSpec)
    run_id: str = ''

    def validate(self) -> KitOptions:
        """Return self, or raise ConfigError naming the bad value."""
        parse_broker_url(self.broker_url)
        for name in ('manufacturer', 'serial', 'interface'):
            value = getattr(self, name)
            if not value or any(c in value for c in '/+# '):
                raise ConfigError(f'{name}={value!r} must be non-empty without / + # or spaces')
        if not (self.major.startswith('v') and self.major[1:].isdigit()):
            raise ConfigError(f'version {self.major!r} must look like v2')
        for name in ('timeout_s', 'connect_timeout_s', 'event_timeout_s', 'max_state_gap_s'):
            if not getattr(self, name) > 0:
                raise ConfigError(f'{name} must be > 0')
        for name in ('retained_wait_s', 'pause_hold_s', 'step_m', 'await_will_s'):
            if not getattr(self, name) >= 0:
                raise ConfigError(f'{name} must be >= 0')
        if self.long_route_nodes < 3:
            raise ConfigError('long_route_nodes must be >= 3')
        return self

    def topic(self, kind: str) -> str:
        """Return the vehicle's topic of kind."""
        return f'{self.interface}/{self.major}/{self.manufacturer}/{self.serial}/{kind}'
