"""MQTT identities of the fleet: per-user passwords, the Mosquitto password file and ACL.

A credentials directory (default `$KPAI_FLEET_SECRETS`, else `~/.local/state/kpai/mqtt`)
holds, for the broker, `passwd` (PBKDF2-SHA512 hashes in Mosquitto's `$7$` format) and `acl`,
and for each client `<user>.password` (mode 0600: the only place a password is written) and
`identities.json` (who is who, no secrets). Every file is readable by its owner only: the
broker must run as the same user (`kpai-fleet broker` does, also as root). A running
`kpai-fleet broker` writes its Mosquitto PID to `broker.pid`; `kpai-fleet credentials` sends
that process SIGHUP after a change so it reloads both files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import signal
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from kpai_fleet.errors import ConfigError

__all__ = ['SECRETS_ENV', 'SERVER_USER', 'VEHICLE_TOPICS_IN', 'VEHICLE_TOPICS_OUT',
           'CredentialStore', 'Identity', 'default_secrets_dir', 'hash_password',
           'verify_password']

SECRETS_ENV = 'KPAI_FLEET_SECRETS'
SERVER_USER = 'kpai-fleet-server'
# what a vehicle may publish (its own topics only) and read (its own commands only)
# (kpai...: the stack's live topics beside VDA 5050's, see vda5050/kpai_ext.py)
VEHICLE_TOPICS_OUT = ('state', 'connection', 'visualization', 'factsheet', 'kpaiCamera',
                      'kpaiObjects')
VEHICLE_TOPICS_IN = ('order', 'instantActions', 'kpaiCameraRequest')
_ITERATIONS = 1000
_NAME = re.compile(r'[A-Za-z0-9_.\-]{1,64}')
# VDA 5050 allows ':' in manufacturer and serialNumber; never '/', '+', '#' or spaces
_TOPIC_LEVEL = re.compile(r'[A-Za-z0-9_.:\-]{1,64}')


def default_secrets_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return $KPAI_FLEET_SECRETS, else $XDG_STATE_HOME/kpai/mqtt (~/.local/state/...)."""
    env = os.environ if environ is None else environ
    if env.get(SECRETS_ENV):
        return Path(env[SECRETS_ENV])
    base = Path(env.get('XDG_STATE_HOME') or Path.home() / '.local' / 'state')
    return base / 'kpai' / 'mqtt'


def hash_password(password: str, *, iterations: int = _ITERATIONS,
                  salt: bytes | None = None) -> str:
    """Return Mosquitto's `$7$` (PBKDF2-HMAC-SHA512) hash of password."""
    salt = secrets.token_bytes(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac('sha512', password.encode(), salt, iterations)
    return (f'$7${iterations}${base64.b64encode(salt).decode()}$'
            f'{base64.b64encode(digest).decode()}')


def verify_password(password: str, hashed: str) -> bool:
    """Return True if password matches a `$7$` hash from hash_password or mosquitto_passwd."""
    parts = hashed.split('$')
    if len(parts) != 5 or parts[1] != '7':
        return False
    try:
        iterations, salt = int(parts[2]), base64.b64decode(parts[3])
    except ValueError:
        return False
    return secrets.compare_digest(hash_password(password, iterations=iterations, salt=salt),
                                  hashed)


@dataclass(frozen=True)
class Identity:
    """One MQTT user: a vehicle (manufacturer + serial number) or the fleet server."""

    user: str
    role: str  # 'vehicle' or 'server'
    manufacturer: str = ''
    serial_number: str = ''

    def acl(self, interface: str) -> list[str]:
        """Return this user's lines of the Mosquitto ACL file."""
        lines = [f'user {self.user}']
        if self.role == 'server':
            lines += [f'topic read {interface}/v2/#',
                      f'topic write {interface}/v2/+/+/order',
                      f'topic write {interface}/v2/+/+/instantActions',
                      f'topic write {interface}/v2/+/+/kpaiCameraRequest']
        else:
            base = f'{interface}/v2/{self.manufacturer}/{self.serial_number}'
            lines += [f'topic write {base}/{t}' for t in VEHICLE_TOPICS_OUT]
            lines += [f'topic read {base}/{t}' for t in VEHICLE_TOPICS_IN]
        return lines


def _check(kind: str, value: str, pattern: re.Pattern[str]) -> str:
    if not pattern.fullmatch(value):
        extra = "', ':'" if pattern is _TOPIC_LEVEL else "'"
        raise ConfigError(f"{kind} {value!r}: use 1 to 64 letters, digits, '_', '.', '-{extra}")
    return value


class CredentialStore:
    """The credentials directory of one broker; every change rewrites passwd and acl."""

    def __init__(self, root: Path | str, *, interface: str = 'uagv') -> None:
        self.root = Path(root)
        self.interface = _check('interface name', interface, _NAME)

    # -- paths -----------------------------------------------------------------------------
    @property
    def passwd_path(self) -> Path:
        return self.root / 'passwd'

    @property
    def acl_path(self) -> Path:
        return self.root / 'acl'

    @property
    def pid_path(self) -> Path:
        return self.root / 'broker.pid'

    def password_file(self, user: str) -> Path:
        """Return the path of user's 0600 password file."""
        return self.root / f'{_check("user", user, _NAME)}.password'

    # -- queries ---------------------------------------------------------------------------
    def identities(self) -> list[Identity]:
        """Return every provisioned identity, sorted by user."""
        path = self.root / 'identities.json'
        if not path.exists():
            return []
        try:
            data = json.loads(path.read_text())
            found = [Identity(**item) for item in data['identities']]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(f'{path}: unreadable identities ({err})') from None
        return sorted(found, key=lambda i: i.user)

    def get(self, user: str) -> Identity | None:
        """Return user's identity, or None."""
        return next((i for i in self.identities() if i.user == user), None)

    def password(self, user: str) -> str:
        """Return user's password from its file; raise ConfigError if it is not there."""
        path = self.password_file(user)
        try:
            return path.read_text().rstrip('\r\n')
        except OSError as err:
            raise ConfigError(f'no password file for {user!r} at {path} '
                              f'({type(err).__name__}): provision it with '
                              '`kpai-fleet credentials add`') from None

    # -- changes ---------------------------------------------------------------------------
    def add_vehicle(self, manufacturer: str, serial_number: str, *, user: str = '',
                    rotate: bool = False) -> Identity:
        """Provision a vehicle (user defaults to its serial number); keep an existing password
        unless rotate."""
        _check('manufacturer', manufacturer, _TOPIC_LEVEL)
        _check('serial number', serial_number, _TOPIC_LEVEL)
        user = user or serial_number
        if not _NAME.fullmatch(user):
            raise ConfigError(f'serial number {serial_number!r} is not a valid MQTT user name '
                              '(it holds a colon): choose one with --user')
        return self._add(Identity(user, 'vehicle', manufacturer, serial_number), rotate)

    def add_server(self, user: str = SERVER_USER, *, rotate: bool = False) -> Identity:
        """Provision the fleet server's identity (reads all, writes orders/instantActions)."""
        return self._add(Identity(_check('user', user, _NAME), 'server'), rotate)

    def _add(self, ident: Identity, rotate: bool) -> Identity:
        found = {i.user: i for i in self.identities()}
        old = found.get(ident.user)
        if old is not None and old != ident:
            raise ConfigError(f'user {ident.user!r} already exists as {old.role} '
                              f'{old.manufacturer}/{old.serial_number}; remove it first')
        if ident.role == 'vehicle':
            for other in found.values():
                if (other.user != ident.user and other.role == 'vehicle'
                        and (other.manufacturer, other.serial_number)
                        == (ident.manufacturer, ident.serial_number)):
                    raise ConfigError(f'{ident.manufacturer}/{ident.serial_number} is already '
                                      f'provisioned as user {other.user!r}')
        self._ensure_root()
        pw_file = self.password_file(ident.user)
        if rotate or not pw_file.exists():
            _write_private(pw_file, secrets.token_urlsafe(24) + '\n')
        found[ident.user] = ident
        self._save(list(found.values()))
        return ident

    def remove(self, user: str) -> Identity:
        """Remove user's identity and password file; raise ConfigError if unknown."""
        found = {i.user: i for i in self.identities()}
        if user not in found:
            raise ConfigError(f'no identity {user!r} in {self.root}')
        ident = found.pop(user)
        self._save(list(found.values()))
        self.password_file(user).unlink(missing_ok=True)
        return ident

    def write_broker_files(self) -> None:
        """Rewrite passwd (hashes of every password file) and acl from the identities."""
        self._ensure_root()
        idents = self.identities()
        old = _read_hashes(self.passwd_path)
        lines = []
        for ident in idents:
            pw = self.password(ident.user)
            hashed = old.get(ident.user, '')
            if not verify_password(pw, hashed):  # keep a hash (and its salt) while it holds
                hashed = hash_password(pw)
            lines.append(f'{ident.user}:{hashed}\n')
        acl = ['# generated by `kpai-fleet credentials`; edits are overwritten']
        for ident in idents:
            acl += ['', *ident.acl(self.interface)]
        _write_private(self.passwd_path, ''.join(lines))
        _write_private(self.acl_path, '\n'.join(acl) + '\n')

    def _save(self, idents: list[Identity]) -> None:
        data = {'interface': self.interface,
                'identities': [asdict(i) for i in sorted(idents, key=lambda i: i.user)]}
        tmp = self.root / 'identities.json.tmp'
        tmp.write_text(json.dumps(data, indent=1) + '\n')
        tmp.replace(self.root / 'identities.json')
        self.write_broker_files()

    def _ensure_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)

    # -- the running broker ----------------------------------------------------------------
    def reload_broker(self) -> int | None:
        """Send SIGHUP to the broker recorded in broker.pid if it runs; return its PID."""
        try:
            pid = int(self.pid_path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:  # only a mosquitto started with this directory's files (not a reused PID)
            cmdline = Path(f'/proc/{pid}/cmdline').read_bytes().split(b'\0')
        except OSError:
            return None
        if not cmdline or not cmdline[0].endswith(b'mosquitto'):
            return None
        try:
            os.kill(pid, signal.SIGHUP)
        except OSError:
            return None
        return pid


def _read_hashes(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except OSError:
        return {}
    return dict(line.split(':', 1) for line in text.splitlines() if ':' in line)


def _write_private(path: Path, text: str) -> None:
    """Write text to path readable by the owner only (created 0600, never wider)."""
    tmp = path.with_name(path.name + '.tmp')
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    tmp.replace(path)

