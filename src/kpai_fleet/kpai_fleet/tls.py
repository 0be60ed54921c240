"""A demo certificate authority and a broker certificate for 127.0.0.1/localhost (openssl CLI)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kpai_fleet.errors import ConfigError

__all__ = ['DemoTls', 'ensure_demo_tls']

_EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']


@dataclass(frozen=True)
class DemoTls:
    """Paths of the demo CA certificate and the broker's certificate and key."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which('openssl')
    if exe is None:
        raise ConfigError('openssl not found: install it (apt-get install openssl) or run the '
                          'broker without TLS')
    try:
        subprocess.run([exe, *args], cwd=cwd, check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        detail = getattr(err, 'stderr', b'') or b''
        raise ConfigError(f'openssl {args[0]} failed: {detail.decode(errors="replace")[-300:]}'
                          f' ({type(err).__name__})') from None


def ensure_demo_tls(directory: Path, *, days: int = 825) -> DemoTls:
    """Create (once) a CA and a server certificate for 127.0.0.1, ::1 and localhost."""
    d = Path(directory)
    tls = DemoTls(d / 'ca.crt', d / 'server.crt', d / 'server.key')
    if all(p.exists() for p in (tls.ca_file, tls.cert_file, tls.key_file)):
        return tls
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    old_umask = os.umask(0o077)  # keys are created readable by the owner only
    try:
        _openssl('req', '-x509', *_EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', str(days),
                 '-subj', '/CN=KPAI fleet demo CA', cwd=d)
        _openssl('req', '-new', *_EC, '-keyout', 'server.key', '-out', 'server.csr',
                 '-subj', '/CN=localhost', cwd=d)
        (d / 'server.ext').write_text(
            'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n'
            'extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n')
        _openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key',
                 '-CAcreateserial', '-out', 'server.crt', '-days', str(days),
                 '-extfile', 'server.ext', cwd=d)
    finally:
        os.umask(old_umask)
    for name in ('server.csr', 'server.ext', 'ca.srl'):
        (d / name).unlink(missing_ok=True)
    tls.ca_file.chmod(0o644)
    tls.cert_file.chmod(0o644)
    return tls
