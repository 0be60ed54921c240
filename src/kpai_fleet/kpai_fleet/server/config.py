"""Fleet server configuration: a frozen dataclass from YAML, environment and CLI overrides."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kpai_fleet.errors import ConfigError
from kpai_fleet.mqtt_link import parse_broker_url
from kpai_fleet.server.dispatch import Place

__all__ = ['ServerConfig', 'load_config']

ENV_OVERRIDES = {
    'KPAI_FLEET_TOKEN': 'api_token',
    'KPAI_FLEET_PASSWORD': 'dashboard_password',
    'KPAI_FLEET_VIEWER_PASSWORD': 'viewer_password',
    'KPAI_FLEET_DB': 'db_url',
    'KPAI_FLEET_BROKER': 'broker_url',
    'KPAI_FLEET_MQTT_PASSWORD': 'mqtt_password',
    'KPAI_FLEET_ALLOWED_HOSTS': 'allowed_hosts',
}


def _default_db() -> str:
    base = Path(os.environ.get('XDG_STATE_HOME', Path.home() / '.local' / 'state'))
    return 'sqlite:///' + str(base / 'kpai' / 'fleet.db')


@dataclass(frozen=True)
class ServerConfig:
    """Everything `kpai-fleet serve` needs; validated by validate()."""

    broker_url: str = field(default='mqtt://127.0.0.1:1883', repr=False)  # may hold a password
    mqtt_username: str = ''
    mqtt_password: str = field(default='', repr=False)
    mqtt_ca_file: str = ''
    client_id: str = 'kpai-fleet-server'
    interface: str = 'uagv'
    db_url: str = field(default_factory=_default_db)
    host: str = '127.0.0.1'
    port: int = 8080
    api_token: str = field(default='', repr=False)
    dashboard_user: str = 'admin'      # the operator: sees the fleet and acts on it
    # empty: `kpai-fleet serve` makes one up and prints it
    dashboard_password: str = field(default='', repr=False)
    viewer_user: str = 'viewer'        # read-only dashboard login (cannot submit or cancel)
    viewer_password: str = field(default='', repr=False)  # empty: no viewer login
    public_read: bool = False      # true: reads need no login (kiosk screens on a closed network)
    session_secret: str = field(default='', repr=False)
    session_max_age_s: int = 12 * 3600
    cors_origins: tuple[str, ...] = ()
    flush_ms: float = 50.0
    batch_rows: int = 2000
    retention_days: float = 7.0
    max_payload_bytes: int = 256 * 1024
    allowed_robots: tuple[str, ...] = ()
    min_battery: float = 30.0
    map_id: str = 'factory'
    map_yaml: str = ''
    bounds: tuple[float, float, float, float] = (-5.0, -5.0, 25.0, 15.0)
    stations: Mapping[str, Place] = field(default_factory=dict)
    stream_hz: float = 5.0
    load_type: str = 'EPAL'            # VDA 5050 loadType of tasks that name none
    order_timeout_s: float = 10.0      # an order not in the vehicle's state by then: rejected
    # Host headers the HTTP server answers (DNS rebinding); '*' answers any. The bind address
    # is added when it is a specific one.
    allowed_hosts: tuple[str, ...] = ('localhost', '127.0.0.1', '::1')
    fault_log_interval_s: float = 10.0   # at most one log line per fault kind this often
    store_queue_rows: int = 20000        # rows waiting in memory for the database
    spool_path: str = ''                 # on-disk spool beyond that ('': next to the db)
    spool_max_mb: int = 256
    objects_max_age_s: float = 3.0       # tracked objects not renewed by then leave the map

    def validate(self) -> ServerConfig:
        """Return self if every value is usable; raise ConfigError naming the bad one."""
        parse_broker_url(self.broker_url)
        if not self.db_url.startswith(('sqlite:', 'postgresql://', 'postgres://')):
            raise ConfigError(f'db_url {self.db_url!r}: use sqlite:///path or postgresql://')
        if not 0 < self.port < 65536:
            raise ConfigError(f'port {self.port} out of range')
        checks = [('flush_ms', self.flush_ms > 0), ('batch_rows', self.batch_rows > 0),
                  ('retention_days', self.retention_days > 0),
                  ('max_payload_bytes', self.max_payload_bytes >= 1024),
                  ('min_battery', 0 <= self.min_battery <= 100),
                  ('stream_hz', 0 < self.stream_hz <= 50),
                  ('order_timeout_s', 0 < self.order_timeout_s <= 3600),
                  ('load_type', bool(self.load_type)),
                  ('fault_log_interval_s', self.fault_log_interval_s >= 0),
                  ('store_queue_rows', self.store_queue_rows >= 1),
                  ('spool_max_mb', self.spool_max_mb >= 1),
                  ('objects_max_age_s', 0 < self.objects_max_age_s <= 60)]
        for name, ok in checks:
            if not ok:
                raise ConfigError(f'{name}={getattr(self, name)!r} is out of range')
        xmin, ymin, xmax, ymax = self.bounds
        if not (all(math.isfinite(v) for v in self.bounds) and xmin < xmax and ymin < ymax):
            raise ConfigError(f'bounds {self.bounds} must be finite [xmin, ymin, xmax, ymax]')
        if self.map_yaml and not Path(self.map_yaml).is_file():
            raise ConfigError(f'map_yaml {self.map_yaml} does not exist')
        if self.viewer_user == self.dashboard_user:
            raise ConfigError(f'viewer_user {self.viewer_user!r} must differ from '
                              'dashboard_user')
        if '*' in self.cors_origins:
            raise ConfigError('cors_origins must list explicit origins, not *')
        return self


def _coerce(name: str, value: Any) -> Any:
    if name == 'stations':
        if not isinstance(value, Mapping):
            raise ConfigError('stations must map a name to {x, y[, theta]}')
        out = {}
        for key, spec in value.items():
            try:
                theta = spec.get('theta')
                station_type = spec.get('station_type', 'floor')
                out[str(key)] = Place(str(key), float(spec['x']), float(spec['y']),
                                      float(theta) if theta is not None else None,
                                      str(station_type))
            except (AttributeError, KeyError, TypeError, ValueError) as err:
                raise ConfigError(f'station {key!r}: needs numeric x and y ({err})') from None
        return out
    if name == 'public_read':
        if isinstance(value, str):
            if value.lower() not in ('true', 'false', '1', '0', 'yes', 'no'):
                raise ConfigError(f'public_read must be true or false, got {value!r}')
            return value.lower() in ('true', '1', 'yes')
        return bool(value)
    if name in ('cors_origins', 'allowed_robots', 'allowed_hosts'):
        if isinstance(value, str):  # from the environment: comma-separated
            value = [v.strip() for v in value.split(',') if v.strip()]
        return tuple(str(v) for v in (value or ()))
    if name == 'bounds':
        try:
            vals = tuple(float(v) for v in value)
        except (TypeError, ValueError) as err:
            raise ConfigError(f'bounds: {err}') from None
        if len(vals) != 4:
            raise ConfigError('bounds needs 4 numbers [xmin, ymin, xmax, ymax]')
        return vals
    return value


def load_config(path: str | None = None, **overrides: Any) -> ServerConfig:
    """Build the configuration: defaults < YAML file < environment < explicit overrides."""
    data: dict[str, Any] = {}
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f'cannot read {path}: {err}') from None
        if not isinstance(loaded, dict):
            raise ConfigError(f'{path}: expected a mapping at the top level')
        data.update(loaded.get('fleet_server', loaded))
    for env, name in ENV_OVERRIDES.items():
        if os.environ.get(env):
            data[name] = os.environ[env]
    data.update({k: v for k, v in overrides.items() if v is not None})
    names = {f.name: f for f in dataclasses.fields(ServerConfig)}
    unknown = set(data) - set(names)
    if unknown:
        raise ConfigError(f'unknown configuration keys: {", ".join(sorted(unknown))}')
    kwargs = {k: _coerce(k, v) for k, v in data.items()}
    if path and kwargs.get('map_yaml') and not Path(kwargs['map_yaml']).is_absolute():
        kwargs['map_yaml'] = str(Path(path).parent / kwargs['map_yaml'])
    try:
        cfg = ServerConfig(**kwargs)
    except TypeError as err:
        raise ConfigError(str(err)) from None
    return cfg.validate()
