"""A throw-away PostgreSQL server (initdb in a temp dir, loopback port) for tests and bench."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from kpai_fleet.broker import free_port
from kpai_fleet.errors import StoreError

__all__ = ['PG_BIN', 'PostgresServer', 'find_pg_bin']

PG_BIN = Path('/usr/lib/postgresql')
TEST_USER = 'kpai-test'


def find_pg_bin() -> Path:
    """Return the newest /usr/lib/postgresql/<v>/bin holding initdb and pg_ctl."""
    versions = sorted((p for p in PG_BIN.glob('*/bin') if (p / 'initdb').exists()),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if versions:
        return versions[-1]
    found = shutil.which('initdb')
    if found:
        return Path(found).parent
    raise StoreError('PostgreSQL server binaries not found: apt-get install postgresql')


def _ensure_user() -> str:
    """Return an unprivileged user to run postgres as (created if running as root)."""
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(['useradd', '--system', '--no-create-home', '--shell', '/usr/sbin/nologin',
                        TEST_USER], check=True, capture_output=True)
    return TEST_USER


class PostgresServer:
    """initdb + pg_ctl start on 127.0.0.1:<free port>; trust auth for the local superuser."""

    def __init__(self, *, port: int = 0, dbname: str = 'kpai') -> None:
        self.port = port or free_port()
        self.dbname = dbname
        self.bin = find_pg_bin()
        self._tmp = tempfile.mkdtemp(prefix='kpai-pg-')
        self.datadir = Path(self._tmp) / 'data'
        self.user = ''
        self.as_root = os.geteuid() == 0

    def _run(self, *cmd: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        full = list(cmd)
        if self.as_root:
            full = ['runuser', '-u', self.user, '--', *full]
        return subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                              cwd=self._tmp)

    @property
    def url(self) -> str:
        return f'postgresql://{self.superuser}@127.0.0.1:{self.port}/{self.dbname}'

    @property
    def superuser(self) -> str:
        return self.user or pwd.getpwuid(os.geteuid()).pw_name

    def start(self, *, timeout: float = 60.0) -> PostgresServer:
        """Create the cluster (first time), start it and create the database."""
        if self.as_root:
            self.user = _ensure_user()
            shutil.chown(self._tmp, user=self.user)
        if not self.datadir.exists():
            r = self._run(str(self.bin / 'initdb'), '-D', str(self.datadir), '-A', 'trust',
                          '-U', self.superuser, '-E', 'UTF8', '--no-sync')
            if r.returncode:
                raise StoreError(f'initdb failed: {r.stderr.strip() or r.stdout.strip()}')
            fresh = True
        else:
            fresh = False
        opts = (f'-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='
                f'{self._tmp} -c fsync=off -c synchronous_commit=off -c full_page_writes=off')
        r = self._run(str(self.bin / 'pg_ctl'), '-D', str(self.datadir), '-o', opts, '-l',
                      str(Path(self._tmp) / 'pg.log'), '-w', '-t', str(int(timeout)), 'start',
                      timeout=timeout + 5)
        if r.returncode:
            raise StoreError(f'pg_ctl start failed: {r.stderr.strip()} {self.log_tail()}')
        if fresh:
            deadline = time.monotonic() + timeout
            while True:
                r = self._run(str(self.bin.parent / 'bin' / 'createdb') if (
                    self.bin / 'createdb').exists() else 'createdb', '-h', '127.0.0.1', '-p',
                    str(self.port), '-U', self.superuser, self.dbname)
                if r.returncode == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if r.returncode:
                raise StoreError(f'createdb failed: {r.stderr.strip()}')
        return self

    def log_tail(self, lines: int = 20) -> str:
        """Return the end of the server log."""
        log = Path(self._tmp) / 'pg.log'
        return '\n'.join(log.read_text(errors='replace').splitlines()[-lines:]) if (
            log.exists()) else ''

    def stop(self) -> None:
        """Stop the server (fast shutdown); the data directory stays for a restart."""
        if (self.datadir / 'postmaster.pid').exists():
            self._run(str(self.bin / 'pg_ctl'), '-D', str(self.datadir), '-m', 'fast', '-w',
                      'stop')

    def close(self) -> None:
        """Stop the server and delete its files."""
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
