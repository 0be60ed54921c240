"""Start and stop a local Mosquitto broker on a free loopback port with a generated config.

By default the broker refuses anonymous clients: it authenticates against a credentials
directory (`kpai_fleet.credentials`, the password file and ACL of every vehicle and of the
fleet server) and, with `tls_port`, adds a TLS listener with a demo CA. `allow_anonymous=True`
is for development only.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from kpai_fleet.credentials import SERVER_USER, CredentialStore
from kpai_fleet.errors import BrokerError
from kpai_fleet.tls import DemoTls, ensure_demo_tls

__all__ = ['MOSQUITTO', 'LocalBroker', 'free_port', 'wait_for_port']

MOSQUITTO = '/usr/sbin/mosquitto'


def free_port(host: str = '127.0.0.1') -> int:
    """Return a TCP port that is free on host right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, *, timeout: float) -> None:
    """Wait until host:port accepts TCP connections; raise BrokerError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as err:
            if time.monotonic() > deadline:
                raise BrokerError(f'{host}:{port} not accepting connections: {err}') from None
            time.sleep(0.05)


def _find_mosquitto() -> str:
    path = MOSQUITTO if os.access(MOSQUITTO, os.X_OK) else shutil.which('mosquitto')
    if not path:
        raise BrokerError('mosquitto not found: install it with `apt-get install mosquitto`')
    return path


@dataclass
class LocalBroker:
    """A Mosquitto process owned by this object (config and persistence in workdir).

    Authentication: `credentials` (a CredentialStore: password file + ACL), else `users`
    (name -> password, no ACL), else a fresh store in workdir holding only the fleet server's
    identity; `allow_anonymous=True` (development only) lets anyone in. `tls_port` (0: a free
    one) adds a TLS listener with a demo CA made in the credentials directory.
    """

    port: int = 0
    host: str = '127.0.0.1'
    workdir: Path | None = None
    users: dict[str, str] = field(default_factory=dict)
    allow_anonymous: bool = False
    credentials: CredentialStore | None = None
    tls_port: int | None = None
    tls: DemoTls | None = None
    proc: subprocess.Popen[bytes] | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f'mqtt://{self.host}:{self.port}'

    @property
    def tls_url(self) -> str:
        """Return the mqtts:// URL of the TLS listener (empty without one)."""
        return f'mqtts://{self.host}:{self.tls_port}' if self.tls_port else ''

    def _auth_lines(self, exe: str) -> list[str]:
        assert self.workdir is not None
        if self.allow_anonymous:
            return ['allow_anonymous true']
        if self.credentials is None and not self.users:
            self.credentials = CredentialStore(self.workdir / 'secrets')
            self.credentials.add_server(SERVER_USER)
        if self.credentials is not None:
            self.credentials.write_broker_files()
            return ['allow_anonymous false', f'password_file {self.credentials.passwd_path}',
                    f'acl_file {self.credentials.acl_path}']
        pw = self.workdir / 'passwd'
        pw.write_text(''.join(f'{u}:{p}\n' for u, p in self.users.items()))
        pw.chmod(0o600)
        helper = shutil.which('mosquitto_passwd') or str(Path(exe).parent.parent / 'bin'
                                                         / 'mosquitto_passwd')
        try:
            subprocess.run([helper, '-U', str(pw)], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError) as err:
            raise BrokerError(f'cannot hash the password file with {helper}: {err}') from err
        if os.geteuid() == 0:
            try:
                shutil.chown(pw, user='mosquitto')
            except (LookupError, OSError):
                pass
        return ['allow_anonymous false', f'password_file {pw}']

    def _tls_lines(self) -> list[str]:
        if self.tls_port is None:
            return []
        if not self.tls_port:
            self.tls_port = free_port(self.host)
        assert self.workdir is not None
        where = self.credentials.root if self.credentials is not None else self.workdir
        self.tls = ensure_demo_tls(where / 'tls')
        return [f'listener {self.tls_port} {self.host}', f'cafile {self.tls.ca_file}',
                f'certfile {self.tls.cert_file}', f'keyfile {self.tls.key_file}']

    def _write_config(self, exe: str) -> Path:
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix='kpai-mosquitto-')
            self.workdir = Path(self._tmp.name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            f'listener {self.port} {self.host}',
            'persistence true',
            f'persistence_location {self.workdir}/',
            'autosave_interval 1',
            'max_queued_messages 1000000',
            'max_inflight_messages 0',
            'message_size_limit 1048576',
            'log_dest stderr',
            'log_type error',
            'log_type warning',
            # as root, mosquitto would switch to the `mosquitto` user, which cannot read the
            # owner-only credential files (nor enter a private temporary directory)
            *(['user root'] if os.geteuid() == 0 else []),
            *self._auth_lines(exe),
            # listener settings below apply to every listener (per_listener_settings false)
            *self._tls_lines(),
        ]
        conf = self.workdir / 'mosquitto.conf'
        conf.write_text('\n'.join(lines) + '\n')
        return conf

    def start(self, *, timeout: float = 10.0) -> LocalBroker:
        """Start mosquitto and wait until it accepts connections."""
        exe = _find_mosquitto()
        if not self.port:
            self.port = free_port(self.host)
        conf = self._write_config(exe)
        assert self.workdir is not None
        log = open(self.workdir / 'mosquitto.log', 'ab')  # noqa: SIM115
        self.proc = subprocess.Popen([exe, '-c', str(conf)], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        try:
            deadline = time.monotonic() + timeout
            while True:
                if self.proc.poll() is not None:
                    raise BrokerError(f'mosquitto exited with {self.proc.returncode}: '
                                      + self.log_tail())
                try:
                    wait_for_port(self.host, self.port, timeout=0.2)
                    break
                except BrokerError:
                    if time.monotonic() > deadline:
                        raise
            if self.tls_port:
                wait_for_port(self.host, self.tls_port, timeout=timeout)
        except BrokerError:
            self.stop()
            raise
        if self.credentials is not None:
            self.credentials.pid_path.write_text(f'{self.proc.pid}\n')
        return self

    def reload(self) -> None:
        """Rewrite the password file and ACL from the credentials and send SIGHUP."""
        if self.credentials is not None:
            self.credentials.write_broker_files()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)

    def log_tail(self, lines: int = 20) -> str:
        """Return the end of the broker's log."""
        if self.workdir is None or not (self.workdir / 'mosquitto.log').exists():
            return ''
        return '\n'.join((self.workdir / 'mosquitto.log').read_text(
            errors='replace').splitlines()[-lines:])

    def stop(self, *, timeout: float = 5.0) -> None:
        """Stop the broker by its PID (SIGTERM, then SIGKILL); keeps persistence for restart."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        if self.credentials is not None:
            try:
                if self.credentials.pid_path.read_text().strip() == str(proc.pid):
                    self.credentials.pid_path.unlink()
            except OSError:
                pass
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        """Stop the broker and remove a temporary work directory."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalBroker:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()
