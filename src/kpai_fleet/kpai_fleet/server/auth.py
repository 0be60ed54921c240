"""Bearer tokens for API writes and signed session cookies for the dashboard login."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

__all__ = ['SessionSigner', 'check_bearer']


def check_bearer(header: str | None, token: str) -> bool:
    """Return True if an Authorization header carries exactly `Bearer <token>`."""
    if not token or not header:
        return False
    scheme, _, value = header.partition(' ')
    # bytes: compare_digest refuses non-ASCII str (a 500 instead of a 401)
    return scheme.lower() == 'bearer' and hmac.compare_digest(
        value.strip().encode('utf-8', 'surrogateescape'), token.encode())


class SessionSigner:
    """Issue and verify `user|expiry|signature` session cookies."""

    def __init__(self, secret: str = '', max_age_s: int = 12 * 3600) -> None:
        self._key = (secret or secrets.token_hex(32)).encode()
        self.max_age_s = max_age_s

    def _sign(self, body: str) -> str:
        mac = hmac.new(self._key, body.encode('utf-8', 'surrogateescape'),
                       hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip('=')

    def issue(self, user: str, now: float | None = None) -> str:
        """Return a cookie value for user, valid for max_age_s."""
        expiry = int((time.time() if now is None else now) + self.max_age_s)
        body = f'{user}|{expiry}'
        return f'{body}|{self._sign(body)}'

    def verify(self, cookie: str | None, now: float | None = None) -> str | None:
        """Return the user of a valid, unexpired cookie, else None."""
        if not cookie or cookie.count('|') != 2:
            return None
        user, expiry, sig = cookie.split('|')
        if not hmac.compare_digest(sig.encode('utf-8', 'surrogateescape'),
                                   self._sign(f'{user}|{expiry}').encode()):
            return None
        try:
            if int(expiry) < (time.time() if now is None else now):
                return None
        except ValueError:
            return None
        return user

    def csrf_token(self, cookie: str) -> str:
        """Return the CSRF token bound to a session cookie (sent back in a header on writes).

        A page of another origin can make the browser send the cookie but cannot read this
        token (same-origin policy), so it cannot forge the header.
        """
        return self._sign(f'csrf|{cookie}')

    def check_csrf(self, cookie: str, token: str | None) -> bool:
        """Return True if token is the CSRF token of the session cookie."""
        return bool(token) and hmac.compare_digest(
            str(token).encode('utf-8', 'surrogateescape'), self.csrf_token(cookie).encode())

    @staticmethod
    def check_password(given: str, expected: str) -> bool:
        """Compare passwords in constant time (an empty expected password never matches)."""
        return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())
