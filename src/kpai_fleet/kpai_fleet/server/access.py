"""Who is asking: operator or viewer (session cookie), program (bearer token), or nobody.

Reads need any of them (or `public_read`). Writes need the operator role: a bearer token, or
an operator session whose request carries the session's CSRF token in `X-CSRF-Token`.
"""

from __future__ import annotations

from dataclasses import dataclass

from kpai_fleet.server.auth import SessionSigner, check_bearer
from kpai_fleet.server.config import ServerConfig

__all__ = ['CSRF_HEADER', 'OPERATOR', 'VIEWER', 'Access', 'AccessDenied', 'Principal']

OPERATOR = 'operator'
VIEWER = 'viewer'
CSRF_HEADER = 'x-csrf-token'


class AccessDenied(Exception):
    """A request may not do what it asks; `status` is 401 (who are you) or 403 (not you)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    user: str
    role: str       # OPERATOR or VIEWER
    via: str        # 'session', 'token' or 'public'
    cookie: str = ''  # the session cookie (CSRF tokens are bound to it)


class Access:
    """Decide reads and writes from the configuration, the cookie and the headers."""

    def __init__(self, cfg: ServerConfig, signer: SessionSigner) -> None:
        self.cfg = cfg
        self.signer = signer

    def login(self, user: str, password: str) -> str | None:
        """Return the role of a user and password pair, or None if they do not match."""
        if user == self.cfg.dashboard_user and self.signer.check_password(
                password, self.cfg.dashboard_password):
            return OPERATOR
        if user == self.cfg.viewer_user and self.signer.check_password(
                password, self.cfg.viewer_password):
            return VIEWER
        return None

    def role_of(self, user: str) -> str | None:
        """Return the role of a logged-in user (None: no longer configured)."""
        if user == self.cfg.dashboard_user and self.cfg.dashboard_password:
            return OPERATOR
        if user == self.cfg.viewer_user and self.cfg.viewer_password:
            return VIEWER
        return None

    def principal(self, cookie: str | None, authorization: str | None) -> Principal | None:
        """Return who sends a request (bearer token first, then the session cookie)."""
        if check_bearer(authorization, self.cfg.api_token):
            return Principal('api-token', OPERATOR, 'token')
        user = self.signer.verify(cookie)
        role = self.role_of(user) if user else None
        if user and role and cookie:
            return Principal(user, role, 'session', cookie)
        if self.cfg.public_read:
            return Principal('', VIEWER, 'public')
        return None

    def check_write(self, who: Principal | None, authorization: str | None,
                    csrf: str | None) -> Principal:
        """Return the principal allowed to write, or raise AccessDenied saying why not."""
        if who is not None and who.via == 'session':
            if who.role != OPERATOR:
                raise AccessDenied(403, f'the {who.role} role cannot change the fleet')
            if not self.signer.check_csrf(who.cookie, csrf):
                raise AccessDenied(403, 'missing or invalid CSRF token (X-CSRF-Token)')
            return who
        if who is not None and who.via == 'token':
            return who
        if not self.cfg.api_token:
            raise AccessDenied(403, 'API writes are disabled: configure api_token or log in '
                               'as the operator')
        if authorization:
            raise AccessDenied(401, 'a valid bearer token is required')
        raise AccessDenied(401, 'log in as the operator or send a bearer token')
