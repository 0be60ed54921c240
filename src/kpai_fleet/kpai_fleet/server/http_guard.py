"""ASGI middleware: Host header check, declared body size, security headers, contained errors.

Bodies sent without a Content-Length are bounded where they are read (read_body in app.py).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from kpai_fleet.faults import FaultLog, exception_kind

__all__ = ['DEFAULT_BODY_LIMIT', 'SECURITY_HEADERS', 'HttpGuard', 'host_of']

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_BODY_LIMIT = 64 * 1024
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b'x-content-type-options', b'nosniff'),
    (b'x-frame-options', b'DENY'),
    (b'content-security-policy', b"frame-ancestors 'none'"),
    (b'referrer-policy', b'no-referrer'),
)


def host_of(header: str) -> str:
    """Return the host name of a Host header without its port, lower case ([::1] -> ::1)."""
    text = header.strip().lower()
    if text.startswith('['):
        return text[1:text.find(']')] if ']' in text else ''
    return text.rsplit(':', 1)[0] if text.count(':') == 1 else text


class HttpGuard:
    """Wrap an ASGI app: refuse unknown Host headers and big declared bodies, add headers.

    An exception that escapes the app is counted in `faults` by type and answered with 500
    (when no response has started) instead of reaching the server's own error path.
    """

    def __init__(self, app: Asgi, *, allowed_hosts: Iterable[str], faults: FaultLog,
                 body_limits: Mapping[str, int] | None = None,
                 default_body_limit: int = DEFAULT_BODY_LIMIT) -> None:
        self.app = app
        self.allowed = frozenset(h.lower().strip('[]') for h in allowed_hosts)
        self.faults = faults
        self.body_limits = dict(body_limits or {})
        self.default_body_limit = default_body_limit
        self.refused_hosts = 0
        self.too_large = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] != 'http':
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get('headers', [])}
        host = host_of(headers.get(b'host', b'').decode('latin-1'))
        if '*' not in self.allowed and host not in self.allowed:
            self.refused_hosts += 1
            self.faults.record('http:bad_host', f'Host {host[:100]!r}')
            await _plain(send, 400, 'invalid Host header')
            return
        limit = self.body_limits.get(scope.get('path', ''), self.default_body_limit)
        try:
            declared = int(headers.get(b'content-length', b'0') or 0)
        except ValueError:
            await _plain(send, 400, 'invalid Content-Length')
            return
        if declared > limit:
            self.too_large += 1
            await _plain(send, 413, f'request body over {limit} bytes')
            return
        started = False

        async def secured_send(message: Message) -> None:
            nonlocal started
            if message['type'] == 'http.response.start':
                started = True
                names = {k.lower() for k, _ in message.get('headers', [])}
                message = dict(message, headers=[*message.get('headers', []), *(
                    h for h in SECURITY_HEADERS if h[0] not in names)])
            await send(message)

        try:
            await self.app(scope, receive, secured_send)
        except Exception as err:  # noqa: BLE001 - one request never takes the server down
            self.faults.record(f'http:{exception_kind(err)}',
                               f'{scope.get("method", "")} {scope.get("path", "")[:200]}')
            if not started:
                await _plain(send, 500, 'internal error (counted in /api/metrics)')


async def _plain(send: Send, status: int, detail: str) -> None:
    body = json.dumps({'detail': detail}).encode()
    await send({'type': 'http.response.start', 'status': status,
                'headers': [(b'content-type', b'application/json'),
                            (b'content-length', str(len(body)).encode()), *SECURITY_HEADERS]})
    await send({'type': 'http.response.body', 'body': body})
